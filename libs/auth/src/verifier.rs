//! Token verification and key refresh.

use std::{
    collections::HashMap,
    path::PathBuf,
    str::FromStr,
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use jiesu_runtime::ConfigError;
use jsonwebtoken::{Algorithm, Validation, decode, decode_header, errors::ErrorKind};
use serde::Deserialize;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    AuthError, DevSigner, Principal, WireClaims,
    jwks::{VerificationKey, parse_jwks},
};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Required `iss` of every token.
    pub issuer: String,
    /// Required `aud` of every token.
    pub audience: String,
    /// JWKS document on disk (e.g. a mounted Secret); re-read on refresh.
    pub jwks_file: String,
    /// JWKS endpoint of the identity provider.
    pub jwks_url: String,
    /// How often the key set is re-read; an unknown `kid` triggers an earlier
    /// re-read, at most every `jwks_min_refresh`.
    #[serde(with = "humantime_serde")]
    pub jwks_refresh: Duration,
    #[serde(with = "humantime_serde")]
    pub jwks_min_refresh: Duration,
    /// Accepted signature algorithms. Symmetric ones are never accepted.
    pub algorithms: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Ed25519 PKCS#8 PEM used by `jiesu token`; its public key is trusted
    /// too. For local development only; leave empty in production.
    pub dev_signing_key_file: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            issuer: "jiesu-dev".into(),
            audience: "jiesu".into(),
            jwks_file: String::new(),
            jwks_url: String::new(),
            jwks_refresh: Duration::from_secs(300),
            jwks_min_refresh: Duration::from_secs(10),
            algorithms: vec!["EdDSA".into(), "ES256".into(), "RS256".into()],
            leeway: Duration::from_secs(60),
            dev_signing_key_file: String::new(),
        }
    }
}

impl AuthConfig {
    /// Checks the section and returns the allowed algorithms.
    pub fn validate(&self) -> Result<Vec<Algorithm>, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::invalid("auth.issuer", "must not be empty"));
        }
        if self.audience.is_empty() {
            return Err(ConfigError::invalid("auth.audience", "must not be empty"));
        }
        let mut algs = Vec::new();
        for a in &self.algorithms {
            let alg = Algorithm::from_str(a).map_err(|_| {
                ConfigError::invalid("auth.algorithms", format!("`{a}` is not a JWS algorithm"))
            })?;
            if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
                return Err(ConfigError::invalid(
                    "auth.algorithms",
                    format!("`{a}` is symmetric; only public-key algorithms are accepted"),
                ));
            }
            algs.push(alg);
        }
        if algs.is_empty() {
            return Err(ConfigError::invalid("auth.algorithms", "must not be empty"));
        }
        if !self.jwks_url.is_empty() && !jwks_url_is_safe(&self.jwks_url) {
            return Err(ConfigError::invalid(
                "auth.jwks_url",
                "must be an https:// URL (plain http only to a loopback address): whoever can \
                 alter the key set can forge any token",
            ));
        }
        if self.jwks_file.is_empty()
            && self.jwks_url.is_empty()
            && self.dev_signing_key_file.is_empty()
        {
            return Err(ConfigError::invalid(
                "auth.jwks_url",
                "no keys to verify tokens with: set auth.jwks_url, auth.jwks_file or (development) auth.dev_signing_key_file",
            ));
        }
        Ok(algs)
    }
}

fn jwks_url_is_safe(url: &str) -> bool {
    if url.starts_with("https://") {
        return true;
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let host = if let Some(v6) = host.strip_prefix('[') {
        v6.split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Verifies bearer tokens. Cheap to clone; one per process.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    issuer: String,
    audience: String,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    refresh_every: Duration,
    min_refresh: Duration,
    dev_key: Option<(String, VerificationKey)>,
    keys: RwLock<HashMap<String, VerificationKey>>,
    last_load: Mutex<Option<Instant>>,
    wake: Notify,
    http: reqwest::Client,
}

impl Verifier {
    /// Builds the verifier and loads the key set once. A JWKS file that cannot
    /// be read is a configuration error; an unreachable JWKS URL is retried
    /// by [`Verifier::spawn_refresh`] (until then tokens are refused).
    pub async fn start(cfg: &AuthConfig) -> Result<Self, ConfigError> {
        let algorithms = cfg.validate()?;
        let dev_key = if cfg.dev_signing_key_file.is_empty() {
            None
        } else {
            let signer = DevSigner::from_file(std::path::Path::new(&cfg.dev_signing_key_file))
                .map_err(|e| ConfigError::invalid("auth.dev_signing_key_file", e))?;
            let (mut keys, _) = parse_jwks(&signer.jwks_json(), &algorithms)
                .map_err(|e| ConfigError::invalid("auth.dev_signing_key_file", e))?;
            let key = keys.remove(signer.kid()).ok_or_else(|| {
                ConfigError::invalid(
                    "auth.dev_signing_key_file",
                    "EdDSA is not in auth.algorithms",
                )
            })?;
            tracing::warn!(
                kid = signer.kid(),
                "trusting the local development signing key"
            );
            Some((signer.kid().to_owned(), key))
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ConfigError::invalid("auth.jwks_url", e.to_string()))?;
        let verifier = Self {
            inner: Arc::new(Inner {
                issuer: cfg.issuer.clone(),
                audience: cfg.audience.clone(),
                algorithms,
                leeway: cfg.leeway.as_secs(),
                jwks_file: (!cfg.jwks_file.is_empty()).then(|| PathBuf::from(&cfg.jwks_file)),
                jwks_url: (!cfg.jwks_url.is_empty()).then(|| cfg.jwks_url.clone()),
                refresh_every: cfg.jwks_refresh.max(Duration::from_secs(1)),
                min_refresh: cfg.jwks_min_refresh,
                dev_key,
                keys: RwLock::new(HashMap::new()),
                last_load: Mutex::new(None),
                wake: Notify::new(),
                http,
            }),
        };
        verifier.install(HashMap::new());
        match verifier.reload().await {
            Ok(_) => {}
            Err(e) if verifier.inner.jwks_file.is_some() => {
                return Err(ConfigError::invalid("auth.jwks_file", e));
            }
            Err(e) => tracing::warn!(error = %e, "JWKS not loaded yet; will retry"),
        }
        Ok(verifier)
    }

    /// Number of keys currently trusted (readiness: at least one).
    pub fn key_count(&self) -> usize {
        self.inner.keys.read().map(|k| k.len()).unwrap_or(0)
    }

    fn install(&self, mut keys: HashMap<String, VerificationKey>) {
        if let Some((kid, key)) = &self.inner.dev_key {
            keys.insert(kid.clone(), key.clone());
        }
        if let Ok(mut current) = self.inner.keys.write() {
            *current = keys;
        }
    }

    /// Re-reads the JWKS source. Keeps the old keys when it fails.
    pub async fn reload(&self) -> Result<usize, String> {
        if let Ok(mut last) = self.inner.last_load.lock() {
            *last = Some(Instant::now());
        }
        let text = if let Some(path) = &self.inner.jwks_file {
            tokio::fs::read_to_string(path)
                .await
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        } else if let Some(url) = &self.inner.jwks_url {
            let resp = self
                .inner
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("cannot fetch JWKS: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("JWKS endpoint answered {}", resp.status()));
            }
            resp.text()
                .await
                .map_err(|e| format!("cannot read JWKS: {e}"))?
        } else {
            return Ok(self.key_count());
        };
        let (keys, skipped) = parse_jwks(&text, &self.inner.algorithms)?;
        if !skipped.is_empty() {
            tracing::warn!(
                ?skipped,
                "JWKS keys skipped (no kid, symmetric or algorithm not allowed)"
            );
        }
        self.install(keys);
        let n = self.key_count();
        tracing::debug!(keys = n, "JWKS loaded");
        Ok(n)
    }

    /// Periodic refresh, plus an early one when a token names an unknown key.
    pub fn spawn_refresh(
        &self,
        shutdown: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if self.inner.jwks_file.is_none() && self.inner.jwks_url.is_none() {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            loop {
                let wait = if this.key_count() == 0 {
                    Duration::from_secs(2)
                } else {
                    this.inner.refresh_every
                };
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                    _ = this.inner.wake.notified() => {
                        let since = this
                            .inner
                            .last_load
                            .lock()
                            .ok()
                            .and_then(|l| l.map(|t| t.elapsed()))
                            .unwrap_or(Duration::MAX);
                        if since < this.inner.min_refresh {
                            tokio::select! {
                                _ = shutdown.cancelled() => return,
                                _ = tokio::time::sleep(this.inner.min_refresh - since) => {}
                            }
                        }
                    }
                }
                if let Err(e) = this.reload().await {
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the previous keys");
                }
            }
        }))
    }

    fn key(&self, kid: &str) -> Option<VerificationKey> {
        self.inner.keys.read().ok()?.get(kid).cloned()
    }

    /// Verifies an `Authorization` header value (`Bearer <jwt>`).
    pub fn verify_bearer(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        let value = header.ok_or(AuthError::MissingToken)?.trim();
        let token = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            _ => return Err(AuthError::MissingToken),
        };
        self.verify(token)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::MissingToken);
        }
        let header = decode_header(token).map_err(|e| match e.kind() {
            ErrorKind::InvalidAlgorithmName | ErrorKind::InvalidAlgorithm => {
                AuthError::AlgorithmNotAllowed
            }
            _ => AuthError::Malformed,
        })?;
        if !self.inner.algorithms.contains(&header.alg) {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let kid = header
            .kid
            .filter(|k| !k.is_empty())
            .ok_or(AuthError::MissingKeyId)?;
        let key = match self.key(&kid) {
            Some(k) => k,
            None => {
                self.inner.wake.notify_one();
                return Err(AuthError::UnknownKey);
            }
        };
        if key.alg != header.alg {
            return Err(AuthError::AlgorithmNotAllowed);
        }
        let mut validation = Validation::new(key.alg);
        validation.leeway = self.inner.leeway;
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.inner.issuer]);
        validation.set_audience(&[&self.inner.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data =
            decode::<WireClaims>(token, &key.key, &validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
                ErrorKind::InvalidAudience => AuthError::WrongAudience,
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm => AuthError::AlgorithmNotAllowed,
                ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
                    AuthError::BadClaim(c.clone())
                }
                ErrorKind::Json(_) => AuthError::BadClaim("body".into()),
                _ => AuthError::Malformed,
            })?;
        Principal::from_wire(data.claims)
    }
}
