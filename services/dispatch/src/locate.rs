//! Asking grid where a ticket lies, for routing by street and community
//! and to notice a point outside the tenant's territory: with a short
//! timeout, a small cache, and never in the way — when grid does not answer
//! in time, the ticket is routed by the region code it came with (and,
//! failing that, waits in the triage queue).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jiesu_proto::grid::{
    LocateForRequest, internal_grid_service_client::InternalGridServiceClient,
};
use tonic::{Request, transport::Channel};

/// What grid said of a point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Where {
    /// In a basic grid of this community.
    Community(String),
    /// Clearly outside the tenant's territory as its grids cover it.
    Outside,
    /// Grid did not answer, or the point lies in no grid (a gap).
    Unknown,
}

/// Cached answers, per tenant and point rounded to about a metre.
type Cache = HashMap<(String, i64, i64), (Instant, Where)>;

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

    /// Where the point lies, as far as grid can say in time.
    pub async fn locate(&self, tenant: &str, lat: f64, lon: f64) -> Where {
        #[allow(clippy::cast_possible_truncation)]
        let k = (
            tenant.to_owned(),
            (lat * 1e5).round() as i64,
            (lon * 1e5).round() as i64,
        );
        if let Ok(c) = self.cache.lock()
            && let Some((at, known)) = c.get(&k)
            && at.elapsed() < CACHE_TTL
        {
            return known.clone();
        }
        let mut req = Request::new(LocateForRequest {
            tenant: tenant.to_owned(),
            lat,
            lon,
        });
        if jiesu_auth::service_key::attach(&mut req, &self.key).is_err() {
            return Where::Unknown;
        }
        jiesu_runtime::grpc::inject_traceparent(&mut req);
        let answer = match self.client.clone().locate_for(req).await {
            Ok(r) => r.into_inner(),
            Err(s) => {
                tracing::warn!(code = ?s.code(), "grid did not locate the ticket; routing by its region code");
                return Where::Unknown;
            }
        };
        let known = if answer.outside_territory {
            Where::Outside
        } else if answer.community_code.is_empty() {
            return Where::Unknown;
        } else {
            Where::Community(answer.community_code)
        };
        if let Ok(mut c) = self.cache.lock() {
            if c.len() >= CACHE_MAX {
                c.clear();
            }
            c.insert(k, (Instant::now(), known.clone()));
        }
        known
    }
}
