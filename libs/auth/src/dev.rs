//! The local development signer behind `jiesu token`.
//!
//! An Ed25519 key in a PKCS#8 PEM file. Services trust its public half only
//! when `auth.dev_signing_key_file` is configured, which production never does.

use std::{path::Path, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use sha2::{Digest, Sha256};

use crate::{Role, WireClaims};

/// What `jiesu token` asks for.
#[derive(Debug, Clone)]
pub struct TokenSpec {
    pub sub: String,
    pub tenant: String,
    pub scope: Option<String>,
    pub roles: Vec<Role>,
    pub unit: Option<String>,
    pub grids: Vec<String>,
    pub ttl: Duration,
}

pub struct DevSigner {
    encoding: EncodingKey,
    kid: String,
    public_x: String,
}

/// A fresh Ed25519 key as PKCS#8 PEM.
pub fn generate_dev_key_pem() -> Result<String, String> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| format!("no randomness: {e}"))?;
    let key = SigningKey::from_bytes(&seed);
    key.to_pkcs8_pem(LineEnding::LF)
        .map(|pem| pem.to_string())
        .map_err(|e| format!("cannot encode key: {e}"))
}

impl DevSigner {
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|_| "not an Ed25519 PKCS#8 PEM private key".to_owned())?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| format!("cannot encode key: {e}"))?;
        let public_x = URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes());
        // RFC 7638 thumbprint as the key id.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{public_x}"}}"#);
        let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            kid,
            public_x,
        })
    }

    pub fn from_file(path: &Path) -> Result<Self, String> {
        let pem = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        Self::from_pem(&pem)
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS document with one key.
    pub fn jwks_json(&self) -> String {
        serde_json::json!({
            "keys": [{
                "kty": "OKP",
                "crv": "Ed25519",
                "x": self.public_x,
                "kid": self.kid,
                "alg": "EdDSA",
                "use": "sig",
            }]
        })
        .to_string()
    }

    /// Signs arbitrary claims with this key (tests craft odd tokens with it).
    pub fn sign_json(&self, claims: &serde_json::Value) -> Result<String, String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| e.to_string())
    }

    pub fn sign(&self, spec: &TokenSpec, issuer: &str, audience: &str) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs();
        let claims = WireClaims {
            sub: spec.sub.clone(),
            tenant: spec.tenant.clone(),
            scope: spec.scope.clone(),
            roles: spec.roles.iter().map(|r| r.as_str().to_owned()).collect(),
            unit: spec.unit.clone(),
            grids: spec.grids.clone(),
            iss: issuer.to_owned(),
            aud: serde_json::Value::String(audience.to_owned()),
            exp: now + spec.ttl.as_secs(),
            iat: Some(now),
        };
        let value = serde_json::to_value(&claims).map_err(|e| e.to_string())?;
        self.sign_json(&value)
    }
}
