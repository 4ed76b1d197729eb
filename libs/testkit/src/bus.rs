use jiesu_bus::{Bus, BusConfig};

use crate::{nats_url, run_detached, unique_tag};

/// A private corner of the NATS server: subjects under `t<tag>.` and streams
/// named `T<TAG>_...`, deleted when the test ends.
pub struct TestBus {
    pub cfg: BusConfig,
}

impl Default for TestBus {
    fn default() -> Self {
        Self::new()
    }
}

impl TestBus {
    pub fn new() -> TestBus {
        let tag = unique_tag();
        TestBus {
            cfg: BusConfig {
                url: nats_url(),
                subject_root: format!("t{tag}"),
                stream_prefix: format!("T{}_", tag.to_ascii_uppercase()),
                connect_timeout: std::time::Duration::from_secs(10),
                ..BusConfig::default()
            },
        }
    }

    pub async fn connect(&self) -> Bus {
        Bus::connect(&self.cfg, "jiesu-test")
            .await
            .unwrap_or_else(|e| panic!("NATS: {e}"))
    }
}

impl Drop for TestBus {
    fn drop(&mut self) {
        let cfg = self.cfg.clone();
        run_detached(async move {
            let Ok(client) = async_nats::connect(cfg.url.as_str()).await else {
                return;
            };
            let js = async_nats::jetstream::new(client);
            let mut names = js.stream_names();
            let mut mine = Vec::new();
            while let Some(Ok(name)) = futures::StreamExt::next(&mut names).await {
                if name.starts_with(&cfg.stream_prefix) {
                    mine.push(name);
                }
            }
            for name in mine {
                let _ = js.delete_stream(&name).await;
            }
        });
    }
}
