//! JWKS documents into verification keys.

use std::{collections::HashMap, str::FromStr, sync::Arc};

use jsonwebtoken::{
    Algorithm, DecodingKey,
    jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet},
};

/// A usable verification key: the key and the one algorithm it verifies.
#[derive(Clone)]
pub struct VerificationKey {
    pub key: Arc<DecodingKey>,
    pub alg: Algorithm,
}

/// Parses a JWKS document. Keys without `kid`, symmetric keys and keys of an
/// algorithm outside `allowed` are skipped (and reported in the second value).
pub fn parse_jwks(
    text: &str,
    allowed: &[Algorithm],
) -> Result<(HashMap<String, VerificationKey>, Vec<String>), String> {
    let set: JwkSet =
        serde_json::from_str(text).map_err(|e| format!("not a JWKS document: {e}"))?;
    let mut keys = HashMap::new();
    let mut skipped = Vec::new();
    for jwk in &set.keys {
        let kid = match &jwk.common.key_id {
            Some(k) if !k.is_empty() => k.clone(),
            _ => {
                skipped.push("(key without kid)".to_owned());
                continue;
            }
        };
        match key_of(jwk) {
            Some((key, alg)) if allowed.contains(&alg) => {
                keys.insert(
                    kid,
                    VerificationKey {
                        key: Arc::new(key),
                        alg,
                    },
                );
            }
            _ => skipped.push(kid),
        }
    }
    Ok((keys, skipped))
}

fn key_of(jwk: &Jwk) -> Option<(DecodingKey, Algorithm)> {
    let declared = jwk
        .common
        .key_algorithm
        .and_then(|ka| serde_json::to_value(ka).ok())
        .and_then(|v| v.as_str().and_then(|s| Algorithm::from_str(s).ok()));
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P384 => Algorithm::ES384,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        // Shared secrets never come from a key set.
        _ => return None,
    };
    let alg = declared.unwrap_or(inferred);
    if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((key, alg))
}
