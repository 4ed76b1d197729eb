//! Service keys: how one service proves itself to another for the few
//! internal calls no person makes (notification asking intake for a
//! contact, dispatch asking grid where a ticket lies). The caller sends its
//! key in `x-jiesu-service-key`; the callee is configured with SHA-256
//! digests of the keys it accepts, never the keys.

use sha2::{Digest, Sha256};
use tonic::{Request, Status};

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 hex digest of a key (what the callee's configuration lists).
pub fn digest(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Reads a comma-separated list of SHA-256 hex digests (config `key`).
pub fn parse_digests(
    raw: &str,
    key: &'static str,
) -> Result<Vec<String>, jiesu_runtime::ConfigError> {
    raw.split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let d = d.to_ascii_lowercase();
            if d.len() == 64 && d.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(d)
            } else {
                Err(jiesu_runtime::ConfigError::invalid(
                    key,
                    "must be SHA-256 digests in hex (64 characters), separated by commas",
                ))
            }
        })
        .collect()
}

/// Constant-time equality of two digests.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The digest of the key the request presents, if it is one of `accepted`;
/// otherwise `Unauthenticated` with code `service_key_invalid`.
pub fn verify<T>(request: &Request<T>, accepted: &[String]) -> Result<String, Status> {
    let refused = || {
        jiesu_proto::status::unauthenticated(
            "service_key_invalid",
            jiesu_common::tr!(
                "需要有效的 x-jiesu-service-key",
                "a valid x-jiesu-service-key is required"
            ),
        )
    };
    let key = request
        .metadata()
        .get(jiesu_proto::SERVICE_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or_else(refused)?;
    let d = digest(key);
    if accepted.iter().any(|a| same(a, &d)) {
        Ok(d)
    } else {
        Err(refused())
    }
}

/// Puts `key` on an outgoing request.
pub fn attach<T>(request: &mut Request<T>, key: &str) -> Result<(), Status> {
    let v = tonic::metadata::MetadataValue::try_from(key)
        .map_err(|_| Status::internal("service key is not valid metadata"))?;
    request.metadata_mut().insert(jiesu_proto::SERVICE_KEY, v);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_configured_key_passes() -> Result<(), Status> {
        let accepted =
            parse_digests(&digest("k1"), "x").map_err(|e| Status::internal(e.to_string()))?;
        let mut ok = Request::new(());
        attach(&mut ok, "k1")?;
        assert_eq!(verify(&ok, &accepted)?, digest("k1"));
        let mut bad = Request::new(());
        attach(&mut bad, "k2")?;
        assert!(verify(&bad, &accepted).is_err());
        assert!(verify(&Request::new(()), &accepted).is_err());
        assert!(parse_digests("abc", "x").is_err());
        Ok(())
    }
}
