use std::{path::PathBuf, sync::Arc, time::Duration};

use jiesu_auth::{AuthConfig, DevSigner, Role, TokenSpec};
use jiesu_pii::{Keyring, PiiConfig};

use crate::unique_tag;

/// A signing key and a keyring in a temporary directory.
pub struct TestKeys {
    pub dir: PathBuf,
    pub dev_key_file: PathBuf,
    pub keyring_file: PathBuf,
    signer: DevSigner,
}

impl Default for TestKeys {
    fn default() -> Self {
        Self::new()
    }
}

impl TestKeys {
    pub fn new() -> TestKeys {
        let dir = std::env::temp_dir().join(format!("jiesu-test-{}", unique_tag()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let dev_key_file = dir.join("jwt-dev-key.pem");
        let pem = jiesu_auth::generate_dev_key_pem().expect("key");
        std::fs::write(&dev_key_file, &pem).expect("write key");
        let keyring_file = dir.join("pii-keyring.json");
        std::fs::write(&keyring_file, Keyring::generate_json().expect("keyring"))
            .expect("write keyring");
        TestKeys {
            signer: DevSigner::from_pem(&pem).expect("signer"),
            dir,
            dev_key_file,
            keyring_file,
        }
    }

    pub fn signer(&self) -> &DevSigner {
        &self.signer
    }

    pub fn auth_config(&self) -> AuthConfig {
        AuthConfig {
            dev_signing_key_file: self.dev_key_file.display().to_string(),
            ..AuthConfig::default()
        }
    }

    pub fn pii_config(&self) -> PiiConfig {
        PiiConfig {
            keyring_file: self.keyring_file.display().to_string(),
        }
    }

    pub fn keyring(&self) -> Arc<Keyring> {
        Arc::new(Keyring::load(&self.pii_config()).expect("keyring"))
    }

    /// A valid token for `sub` in `tenant` with `roles`.
    pub fn token(&self, tenant: &str, roles: &[Role], sub: &str) -> String {
        self.token_with(TokenSpec {
            sub: sub.into(),
            tenant: tenant.into(),
            scope: None,
            roles: roles.to_vec(),
            unit: None,
            grids: vec![],
            ttl: Duration::from_secs(3600),
        })
    }

    /// A valid token for `sub` acting for handling unit `unit`.
    pub fn unit_token(&self, tenant: &str, roles: &[Role], sub: &str, unit: &str) -> String {
        self.token_with(TokenSpec {
            sub: sub.into(),
            tenant: tenant.into(),
            scope: None,
            roles: roles.to_vec(),
            unit: Some(unit.into()),
            grids: vec![],
            ttl: Duration::from_secs(3600),
        })
    }

    pub fn token_with(&self, spec: TokenSpec) -> String {
        let cfg = AuthConfig::default();
        self.signer
            .sign(&spec, &cfg.issuer, &cfg.audience)
            .expect("sign")
    }
}

impl Drop for TestKeys {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
