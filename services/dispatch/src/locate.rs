//! Asking grid where a ticket lies, for routing by street and community:
//! with a short timeout, a small cache, and never in the way — when grid
//! does not answer in time, the ticket is routed by the region code it
//! came with (and, failing that, waits in the triage queue).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jiesu_proto::grid::{
    LocateForRequest, internal_grid_service_client::InternalGridServiceClient,
};
use tonic::{Request, transport::Channel};

/// Cached answers, per tenant and point rounded to about a metre.
type Cache = HashMap<(String, i64, i64), (Instant, String)>;

const CACHE_TTL: Duration = Duration::from_secs(600);
const CACHE_MAX: usize = 50_000;

#[derive(Clone)]
pub struct Locator {
    client: InternalGridServiceClient<Channel>,
    key: String,
    cache: Arc<Mutex<Cache>>,
}

impl Locator {
    /// A locator for grid at `url`, presenting `key`; `None` when no URL
    /// is configured.
    pub fn new(url: &str, key: &str) -> Result<Option<Self>, String> {
        if url.trim().is_empty() {
            return Ok(None);
        }
        let channel = jiesu_runtime::grpc::lazy_channel(
            url.trim(),
            Duration::from_millis(500),
            Duration::from_millis(300),
        )
        .map_err(|e| e.to_string())?;
        Ok(Some(Self {
            client: InternalGridServiceClient::new(channel),
            key: key.trim().to_owned(),
            cache: Arc::default(),
        }))
    }

    /// The community code of the basic grid holding the point, if grid
    /// answers and knows one.
    pub async fn community(&self, tenant: &str, lat: f64, lon: f64) -> Option<String> {
        #[allow(clippy::cast_possible_truncation)]
        let k = (
            tenant.to_owned(),
            (lat * 1e5).round() as i64,
            (lon * 1e5).round() as i64,
        );
        if let Ok(c) = self.cache.lock()
            && let Some((at, code)) = c.get(&k)
            && at.elapsed() < CACHE_TTL
        {
            return Some(code.clone());
        }
        let mut req = Request::new(LocateForRequest {
            tenant: tenant.to_owned(),
            lat,
            lon,
        });
        jiesu_auth::service_key::attach(&mut req, &self.key).ok()?;
        jiesu_runtime::grpc::inject_traceparent(&mut req);
        let answer = match self.client.clone().locate_for(req).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::warn!(code = ?s.code(), "grid did not locate the ticket; routing by its region code");
                return None;
            }
        };
        let code = answer.community_code;
        if code.is_empty() {
            return None;
        }
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(k, (Instant::now(), code.clone()));
        }
        Some(code)
    }
}
