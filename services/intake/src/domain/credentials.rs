//! Channel credentials: HMAC keys for webhook channels, api keys for Open311
//! clients. Both are 256 random bits; intake keeps the HMAC key encrypted
//! (it must verify with it) and only a digest of an api key.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

/// Prefix that makes an Open311 key recognisable in a secret scanner.
pub const API_KEY_PREFIX: &str = "o311_";
/// Prefix of a webhook signing secret.
pub const SECRET_PREFIX: &str = "whsec_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKind {
    Webhook,
    Open311,
}

impl AuthKind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "open311" => Some(Self::Open311),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Open311 => "open311",
        }
    }
}

fn random_token(prefix: &str) -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::getrandom(&mut buf)?;
    Ok(format!("{prefix}{}", URL_SAFE_NO_PAD.encode(buf)))
}

pub fn new_api_key() -> Result<String, getrandom::Error> {
    random_token(API_KEY_PREFIX)
}

pub fn new_secret() -> Result<String, getrandom::Error> {
    random_token(SECRET_PREFIX)
}

/// A token for Open311 `tokens/{token}`: short enough to type, unguessable.
pub fn new_public_token() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 12];
    getrandom::getrandom(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(buf))
}

/// What is stored for an api key.
pub fn api_key_digest(key: &str) -> String {
    hex(&Sha256::digest(key.trim().as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
