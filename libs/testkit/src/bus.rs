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
        Self::on(&nats_url())
    }

    /// The same on the NATS server at `url` (a drill's own).
    pub fn on(url: &str) -> TestBus {
        let tag = unique_tag();
        TestBus {
            cfg: BusConfig {
                url: url.to_owned(),
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

    /// The payloads of every event published so far as `<context>
    /// <tenant> <event>` (e.g. `intake`, `370202`, `ticket.received`), in
    /// order: what the services told each other, read off the bus rather
    /// than out of any service's tables.
    pub async fn published(&self, context: &str, tenant: &str, event: &str) -> Vec<Vec<u8>> {
        use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
        let bus = self.connect().await;
        let Ok(stream) = bus.js.get_stream(bus.stream_name(context)).await else {
            return Vec::new();
        };
        let mut consumer = stream
            .create_consumer(pull::Config {
                filter_subject: bus.subject(context, tenant, event),
                deliver_policy: DeliverPolicy::All,
                ack_policy: AckPolicy::None,
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("reading {context} {event}: {e}"));
        let pending = consumer
            .info()
            .await
            .map(|i| i.num_pending as usize)
            .unwrap_or_else(|e| panic!("reading {context} {event}: {e}"));
        let mut out = Vec::with_capacity(pending);
        while out.len() < pending {
            let mut batch = consumer
                .fetch()
                .max_messages(pending - out.len())
                .messages()
                .await
                .unwrap_or_else(|e| panic!("reading {context} {event}: {e}"));
            while let Some(m) = futures::StreamExt::next(&mut batch).await {
                let m = m.unwrap_or_else(|e| panic!("reading {context} {event}: {e}"));
                out.push(m.payload.to_vec());
            }
        }
        out
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
