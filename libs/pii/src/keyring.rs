use std::collections::HashMap;

use aes_gcm::{
    Aes256Gcm, Nonce,
    aead::{Aead, KeyInit, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use jiesu_runtime::ConfigError;
use serde::Deserialize;
use sha2::Sha256;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PiiConfig {
    /// JSON keyring: `{"active":"k2","keys":{"k1":"<base64 32 bytes>",...},
    /// "blind_index_key":"<base64 32 bytes>"}`; mount it from a Secret.
    pub keyring_file: String,
}

#[derive(Debug, thiserror::Error)]
pub enum PiiError {
    #[error("ciphertext is malformed")]
    Malformed,
    #[error("ciphertext uses key `{0}` which is not in the keyring")]
    UnknownKey(String),
    #[error("ciphertext does not authenticate")]
    Tampered,
    #[error("encryption failed")]
    Encrypt,
}

#[derive(Deserialize)]
struct KeyringFile {
    active: String,
    keys: HashMap<String, String>,
    blind_index_key: String,
}

/// The keys of a process. Cheap to share behind an `Arc`.
pub struct Keyring {
    active: String,
    ciphers: HashMap<String, Aes256Gcm>,
    blind: Vec<u8>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut ids: Vec<&String> = self.ciphers.keys().collect();
        ids.sort();
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

const PREFIX: &str = "v1";

impl Keyring {
    pub fn load(cfg: &PiiConfig) -> Result<Self, ConfigError> {
        if cfg.keyring_file.is_empty() {
            return Err(ConfigError::invalid(
                "pii.keyring_file",
                "must be set: this target stores personal data",
            ));
        }
        let text = std::fs::read_to_string(&cfg.keyring_file)
            .map_err(|e| ConfigError::invalid("pii.keyring_file", format!("cannot read: {e}")))?;
        Self::from_json(&text).map_err(|e| ConfigError::invalid("pii.keyring_file", e))
    }

    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: KeyringFile =
            serde_json::from_str(text).map_err(|e| format!("not a keyring document: {e}"))?;
        let mut ciphers = HashMap::new();
        for (id, b64) in &file.keys {
            if id.is_empty() || id.contains('.') {
                return Err(format!(
                    "key id `{id}` must be non-empty and contain no dot"
                ));
            }
            let bytes = decode_key(b64).map_err(|e| format!("key `{id}`: {e}"))?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| format!("key `{id}` must be 32 bytes"))?;
            ciphers.insert(id.clone(), cipher);
        }
        if !ciphers.contains_key(&file.active) {
            return Err(format!(
                "active key `{}` is not among the keys",
                file.active
            ));
        }
        let blind =
            decode_key(&file.blind_index_key).map_err(|e| format!("blind_index_key: {e}"))?;
        Ok(Self {
            active: file.active,
            ciphers,
            blind,
        })
    }

    /// A fresh keyring document with one key, for development and tests.
    pub fn generate_json() -> Result<String, String> {
        Ok(serde_json::json!({
            "active": "k1",
            "keys": {"k1": STANDARD.encode(random32()?)},
            "blind_index_key": STANDARD.encode(random32()?),
        })
        .to_string())
    }

    /// Seals `plaintext`; `aad` binds the result to where it is stored (e.g.
    /// `tickets.citizen_phone:<ticket id>`), so ciphertexts cannot be swapped
    /// between rows. Format: `v1.<key id>.<base64(nonce ‖ ciphertext)>`.
    pub fn encrypt(&self, plaintext: &str, aad: &str) -> Result<String, PiiError> {
        let cipher = self.ciphers.get(&self.active).ok_or(PiiError::Encrypt)?;
        let mut nonce = [0u8; 12];
        getrandom::getrandom(&mut nonce).map_err(|_| PiiError::Encrypt)?;
        let ct = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| PiiError::Encrypt)?;
        let mut blob = nonce.to_vec();
        blob.extend_from_slice(&ct);
        Ok(format!(
            "{PREFIX}.{}.{}",
            self.active,
            STANDARD.encode(blob)
        ))
    }

    pub fn decrypt(&self, sealed: &str, aad: &str) -> Result<String, PiiError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(PREFIX), Some(kid), Some(body)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(PiiError::Malformed);
        };
        let cipher = self
            .ciphers
            .get(kid)
            .ok_or_else(|| PiiError::UnknownKey(kid.to_owned()))?;
        let blob = STANDARD.decode(body).map_err(|_| PiiError::Malformed)?;
        if blob.len() < 12 + 16 {
            return Err(PiiError::Malformed);
        }
        let (nonce, ct) = blob.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| PiiError::Malformed)?;
        let pt = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| PiiError::Tampered)?;
        String::from_utf8(pt).map_err(|_| PiiError::Tampered)
    }

    /// The key id new ciphertexts are written with.
    pub fn active_key_id(&self) -> &str {
        &self.active
    }

    /// True when `sealed` was written with a key other than the active one.
    pub fn needs_rotation(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) != Some(self.active.as_str())
    }

    /// A keyed, deterministic digest for equality lookups ("same caller")
    /// without storing the value. `kind` separates domains (phone, id...).
    pub fn blind_index(&self, kind: &str, value: &str) -> String {
        let normalized: String = value
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.blind) else {
            return String::new();
        };
        mac.update(kind.as_bytes());
        mac.update(&[0]);
        mac.update(normalized.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

fn decode_key(b64: &str) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| "not base64".to_owned())?;
    if bytes.len() != 32 {
        return Err(format!("must be 32 bytes, got {}", bytes.len()));
    }
    Ok(bytes)
}

fn random32() -> Result<[u8; 32], String> {
    let mut k = [0u8; 32];
    getrandom::getrandom(&mut k).map_err(|e| e.to_string())?;
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> Keyring {
        Keyring::from_json(&Keyring::generate_json().unwrap()).unwrap()
    }

    #[test]
    fn round_trip_and_no_plaintext_in_the_ciphertext() {
        let k = ring();
        let sealed = k.encrypt("13800138000", "tickets.phone:1").unwrap();
        assert!(!sealed.contains("13800138000"));
        assert!(sealed.starts_with("v1.k1."));
        assert_eq!(
            k.decrypt(&sealed, "tickets.phone:1").unwrap(),
            "13800138000"
        );
    }

    #[test]
    fn ciphertext_is_bound_to_its_row() {
        let k = ring();
        let sealed = k.encrypt("13800138000", "tickets.phone:1").unwrap();
        assert!(matches!(
            k.decrypt(&sealed, "tickets.phone:2"),
            Err(PiiError::Tampered)
        ));
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = ring();
        let sealed = old.encrypt("370202199001011234", "a").unwrap();
        let old_doc = serde_json::json!({
            "active": "k2",
            "keys": {
                "k1": STANDARD.encode(random32().unwrap()),
                "k2": STANDARD.encode(random32().unwrap()),
            },
            "blind_index_key": STANDARD.encode(random32().unwrap()),
        });
        let rotated = Keyring::from_json(&old_doc.to_string()).unwrap();
        // A ring that does not hold k1's bytes cannot read it...
        assert!(rotated.decrypt(&sealed, "a").is_err());
        // ...while a ring holding both reads old and writes new.
        let both = Keyring {
            active: "k2".into(),
            ciphers: {
                let mut m = HashMap::new();
                m.insert("k1".to_owned(), old.ciphers["k1"].clone());
                m.insert("k2".to_owned(), rotated.ciphers["k2"].clone());
                m
            },
            blind: old.blind.clone(),
        };
        assert_eq!(both.decrypt(&sealed, "a").unwrap(), "370202199001011234");
        assert!(both.needs_rotation(&sealed));
        let fresh = both.encrypt("x", "a").unwrap();
        assert!(fresh.starts_with("v1.k2."));
        assert!(!both.needs_rotation(&fresh));
    }

    #[test]
    fn blind_index_is_stable_and_ignores_formatting() {
        let k = ring();
        assert_eq!(
            k.blind_index("phone", "138-0013-8000"),
            k.blind_index("phone", "13800138000")
        );
        assert_ne!(
            k.blind_index("phone", "13800138000"),
            k.blind_index("id", "13800138000")
        );
    }

    #[test]
    fn bad_keyrings_are_refused() {
        assert!(Keyring::from_json("{}").is_err());
        let short = serde_json::json!({"active":"k1","keys":{"k1":"c2hvcnQ="},"blind_index_key":"c2hvcnQ="});
        assert!(
            Keyring::from_json(&short.to_string())
                .unwrap_err()
                .contains("32 bytes")
        );
    }
}
