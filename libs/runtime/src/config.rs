//! Configuration in layers: built-in defaults (the `Default` impls of the
//! settings types, via `#[serde(default)]`), then an optional TOML file, then
//! environment variables `JIESU__SECTION__KEY`.
//!
//! The environment can be injected (`env = Some(map)`) so tests never call
//! `std::env::set_var`.

use std::{collections::HashMap, path::Path};

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;

pub const ENV_PREFIX: &str = "JIESU";
pub const ENV_SEPARATOR: &str = "__";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key is present but its value is unusable.
    #[error("invalid configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// The sources could not be read or merged (unreadable file, bad TOML...).
    #[error("cannot load configuration: {0}")]
    Load(String),
}

impl ConfigError {
    pub fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Loads `T` from the layers described in the module docs.
pub fn load_config<T: DeserializeOwned>(
    file: Option<&Path>,
    env: Option<HashMap<String, String>>,
) -> Result<T, ConfigError> {
    let mut builder = Config::builder();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError::Load(format!("{}: {e}", path.display())))?;
        builder = builder.add_source(File::from_str(&text, FileFormat::Toml));
    }
    let environment = Environment::with_prefix(ENV_PREFIX)
        .prefix_separator(ENV_SEPARATOR)
        .separator(ENV_SEPARATOR)
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("auth.algorithms")
        .with_list_parse_key("bus.backoff")
        .source(env);
    builder = builder.add_source(environment);
    let merged = builder
        .build()
        .map_err(|e| ConfigError::Load(e.to_string()))?;
    merged.try_deserialize::<T>().map_err(from_config_error)
}

fn from_config_error(e: config::ConfigError) -> ConfigError {
    match e {
        config::ConfigError::Type {
            key: Some(key),
            unexpected,
            expected,
            ..
        } => ConfigError::Invalid {
            key,
            message: format!("expected {expected}, found {unexpected}"),
        },
        config::ConfigError::At {
            error,
            key: Some(key),
            ..
        } => ConfigError::Invalid {
            key,
            message: error.to_string(),
        },
        config::ConfigError::NotFound(key) => ConfigError::Invalid {
            key,
            message: "missing".into(),
        },
        other => ConfigError::Load(other.to_string()),
    }
}

/// Parses a socket address, naming the key when it is wrong.
pub fn parse_addr(key: &str, value: &str) -> Result<std::net::SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::invalid(
            key,
            format!("`{value}` is not a socket address such as 0.0.0.0:8080"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use std::time::Duration;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        gateway: Gateway,
    }

    #[derive(Debug, Deserialize)]
    #[serde(default)]
    struct Gateway {
        http_addr: String,
        max_body_bytes: u32,
        #[serde(with = "humantime_serde")]
        timeout: Duration,
    }

    impl Default for Gateway {
        fn default() -> Self {
            Self {
                http_addr: "0.0.0.0:8080".into(),
                max_body_bytes: 65536,
                timeout: Duration::from_secs(5),
            }
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Option<HashMap<String, String>> {
        Some(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    #[test]
    fn defaults_hold_without_any_source() {
        let s: Sample = load_config(None, env(&[])).unwrap();
        assert_eq!(s.gateway.http_addr, "0.0.0.0:8080");
        assert_eq!(s.gateway.timeout, Duration::from_secs(5));
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = std::env::temp_dir().join(format!("jiesu-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("jiesu.toml");
        std::fs::write(
            &file,
            "[gateway]\nhttp_addr = \"127.0.0.1:1\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let s: Sample = load_config(
            Some(&file),
            env(&[
                ("JIESU__GATEWAY__HTTP_ADDR", "127.0.0.1:9999"),
                ("JIESU__GATEWAY__TIMEOUT", "250ms"),
            ]),
        )
        .unwrap();
        assert_eq!(s.gateway.http_addr, "127.0.0.1:9999");
        assert_eq!(s.gateway.max_body_bytes, 10);
        assert_eq!(s.gateway.timeout, Duration::from_millis(250));
    }

    #[test]
    fn a_bad_value_names_its_key() {
        let err = load_config::<Sample>(None, env(&[("JIESU__GATEWAY__MAX_BODY_BYTES", "lots")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.max_body_bytes"), "{err}");
    }

    #[test]
    fn a_bad_duration_names_its_key() {
        let err = load_config::<Sample>(None, env(&[("JIESU__GATEWAY__TIMEOUT", "soon")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("gateway.timeout"), "{err}");
    }
}
