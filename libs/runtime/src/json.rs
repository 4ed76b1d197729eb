//! Strict JSON decoding whose errors name the field and never echo a value.
//! Used wherever a body arrives from outside: the gateway's REST bodies and
//! intake's signed webhook deliveries.

use serde::de::DeserializeOwned;

/// Why a body did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not UTF-8, not JSON, truncated or nested too deeply (HTTP 400).
    Syntax(String),
    /// Valid JSON of the wrong shape: `field` is the dotted path (HTTP 422).
    Data { field: String, message: String },
}

/// Syntax first (with serde_json's nesting limit), then the shape, so every
/// document too deep or malformed is a syntax error whatever the target type.
pub fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(JsonError::Syntax("the body is not valid UTF-8".into()));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        JsonError::Syntax(if e.to_string().contains("recursion limit") {
            "the JSON document is nested too deeply".to_owned()
        } else if e.classify() == serde_json::error::Category::Eof {
            "the body ends before the JSON document does".to_owned()
        } else {
            format!(
                "the body is not valid JSON (line {}, column {})",
                e.line(),
                e.column()
            )
        })
    })?;
    serde_path_to_error::deserialize::<_, T>(value).map_err(|err| {
        let path = err.path().to_string();
        let (field, message) = describe_data_error(&path, &err.into_inner().to_string());
        JsonError::Data { field, message }
    })
}

/// serde's data errors look like "invalid type: string \"x\", expected f64 at
/// line 1 column 9"; keep the kind and the expectation, drop the value.
fn describe_data_error(path: &str, raw: &str) -> (String, String) {
    let raw = raw.split(" at line ").next().unwrap_or(raw);
    let expected = raw.split_once(", expected ").map(|(_, e)| e.to_owned());
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return (field, "is required".into());
    }
    if raw.starts_with("unknown field `") {
        // The path already ends with the unknown field's name.
        let field: String = path.chars().take(128).collect();
        return (
            field,
            format!(
                "is not a known field{}",
                expected
                    .map(|e| format!(" (expected {e})"))
                    .unwrap_or_default()
            ),
        );
    }
    let kind = if raw.starts_with("invalid type") {
        "has the wrong type"
    } else if raw.starts_with("invalid value") {
        "has an invalid value"
    } else if raw.starts_with("invalid length") {
        "has the wrong length"
    } else if raw.starts_with("unknown variant") {
        "is not one of the allowed values"
    } else if raw.starts_with("data did not match any variant") {
        "has the wrong type"
    } else {
        "is invalid"
    };
    let message = match expected {
        Some(e) => format!("{kind} (expected {e})"),
        None => kind.to_owned(),
    };
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.chars().take(128).collect()
    };
    (field, message)
}
