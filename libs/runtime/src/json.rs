//! Strict JSON decoding whose errors name the field and never echo a value.
//! Used wherever a body arrives from outside: the gateway's REST bodies and
//! intake's signed webhook deliveries.

use jiesu_common::{Text, tr};
use serde::de::DeserializeOwned;

/// Why a body did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not UTF-8, not JSON, truncated or nested too deeply (HTTP 400).
    Syntax(Text),
    /// Valid JSON of the wrong shape: `field` is the dotted path (HTTP 422).
    Data { field: String, message: Text },
}

/// Syntax first (with serde_json's nesting limit), then the shape, so every
/// document too deep or malformed is a syntax error whatever the target type.
pub fn parse_strict<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(JsonError::Syntax(tr!(
            "请求体不是有效的 UTF-8",
            "the body is not valid UTF-8"
        )));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        JsonError::Syntax(if e.to_string().contains("recursion limit") {
            tr!(
                "JSON 嵌套层数过多",
                "the JSON document is nested too deeply"
            )
        } else if e.classify() == serde_json::error::Category::Eof {
            tr!(
                "JSON 不完整：请求体提前结束",
                "the body ends before the JSON document does"
            )
        } else {
            let (line, column) = (e.line(), e.column());
            tr!(
                "请求体不是有效的 JSON（第 {line} 行第 {column} 列）",
                "the body is not valid JSON (line {line}, column {column})"
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
fn describe_data_error(path: &str, raw: &str) -> (String, Text) {
    let raw = raw.split(" at line ").next().unwrap_or(raw);
    let expected = raw.split_once(", expected ").map(|(_, e)| e.to_owned());
    if let Some(rest) = raw.strip_prefix("missing field `") {
        let name = rest.split('`').next().unwrap_or_default();
        let field = if path == "." || path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}.{name}")
        };
        return (field, tr!("必填", "is required"));
    }
    if raw.starts_with("unknown field `") {
        // The path already ends with the unknown field's name.
        let field: String = path.chars().take(128).collect();
        let known = match expected.as_deref() {
            Some(e) => {
                let names = zh_list(e);
                tr!("（可用的字段：{names}）", " (expected {e})")
            }
            None => Text::default(),
        };
        return (
            field,
            tr!("不是可识别的字段", "is not a known field").then(&known),
        );
    }
    let kind = if raw.starts_with("invalid type") {
        tr!("类型错误", "has the wrong type")
    } else if raw.starts_with("invalid value") {
        tr!("取值无效", "has an invalid value")
    } else if raw.starts_with("invalid length") {
        tr!("长度错误", "has the wrong length")
    } else if raw.starts_with("unknown variant") {
        tr!("不是允许的取值", "is not one of the allowed values")
    } else if raw.starts_with("data did not match any variant") {
        tr!("类型错误", "has the wrong type")
    } else {
        tr!("无效", "is invalid")
    };
    let message = match expected {
        Some(e) => {
            let zh = expected_zh(&e);
            kind.then(&tr!("（应为{zh}）", " (expected {e})"))
        }
        None => kind,
    };
    let field = if path.is_empty() || path == "." {
        "body".to_owned()
    } else {
        path.chars().take(128).collect()
    };
    (field, message)
}

/// serde's expectation ("a string", "u32", "one of `a`, `b`") as a Chinese
/// reader says it; the rare ones are kept as serde wrote them.
fn expected_zh(e: &str) -> String {
    let named = match e {
        "a string" | "a borrowed string" | "string" | "a character" | "char" => "字符串",
        "a boolean" | "bool" => "布尔值",
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => "整数",
        "f32" | "f64" => "数字",
        "a sequence" => "数组",
        "a map" => "对象",
        "unit" => "null",
        _ => "",
    };
    if !named.is_empty() {
        return named.to_owned();
    }
    if e.starts_with("one of ") || e.starts_with('`') {
        return format!("以下之一：{}", zh_list(e));
    }
    if e.starts_with("struct ") {
        return "对象".to_owned();
    }
    if let Some(n) = e
        .strip_prefix("a tuple of size ")
        .or_else(|| e.strip_prefix("an array of length "))
    {
        return format!("{n} 个元素的数组");
    }
    format!(" {e}")
}

/// serde's list of names (`` `a` or `b` ``, `` one of `a`, `b`, `c` ``)
/// written the Chinese way: `` `a`、`b` ``.
fn zh_list(e: &str) -> String {
    e.strip_prefix("one of ")
        .unwrap_or(e)
        .replace("` or `", "`、`")
        .replace("`, `", "`、`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        phone: String,
        count: u32,
    }

    fn data_error(json: &str) -> (String, Text) {
        match parse_strict::<Body>(json.as_bytes()) {
            Err(JsonError::Data { field, message }) => (field, message),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refusals_read_in_both_languages_without_the_value() {
        let (field, m) = data_error(r#"{"phone":13800138000,"count":1}"#);
        assert_eq!(field, "phone");
        assert_eq!(m.zh, "类型错误（应为字符串）");
        assert_eq!(m.en, "has the wrong type (expected a string)");
        let (field, m) = data_error(r#"{"phone":"1"}"#);
        assert_eq!((field.as_str(), m.zh.as_str()), ("count", "必填"));
        let (field, m) = data_error(r#"{"phone":"1","count":1,"fax":2}"#);
        assert_eq!(field, "fax");
        assert_eq!(m.zh, "不是可识别的字段（可用的字段：`phone`、`count`）");
        assert!(m.en.starts_with("is not a known field (expected"), "{m:?}");
        let Err(JsonError::Syntax(m)) = parse_strict::<Body>(b"{\"phone\":") else {
            panic!("not a syntax error")
        };
        assert_eq!(m.zh, "JSON 不完整：请求体提前结束");
    }
}
