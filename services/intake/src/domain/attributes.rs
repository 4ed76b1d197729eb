//! Category attributes: the extra questions a category asks (Open311
//! GeoReport v2 "service definitions"), and checking a ticket's answers.

use serde::{Deserialize, Serialize};

use super::{FieldError, Text, bad, says, tr};

pub const MAX_VALUE_CHARS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Datatype {
    String,
    Number,
    Datetime,
    Text,
    Singlevaluelist,
    Multivaluelist,
}

impl Datatype {
    pub fn as_str(self) -> &'static str {
        match self {
            Datatype::String => "string",
            Datatype::Number => "number",
            Datatype::Datetime => "datetime",
            Datatype::Text => "text",
            Datatype::Singlevaluelist => "singlevaluelist",
            Datatype::Multivaluelist => "multivaluelist",
        }
    }

    fn is_list(self) -> bool {
        matches!(self, Datatype::Singlevaluelist | Datatype::Multivaluelist)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttributeOption {
    pub key: String,
    pub name: String,
}

/// One attribute of a category, as stored in `categories.attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeDef {
    pub code: String,
    pub datatype: Datatype,
    #[serde(default)]
    pub required: bool,
    /// The question as shown to the citizen (zh-CN).
    pub description: String,
    #[serde(default)]
    pub datatype_description: String,
    #[serde(default)]
    pub order: i32,
    #[serde(default)]
    pub values: Vec<AttributeOption>,
}

/// Attribute codes: ASCII letters, digits and `_`, at most 64.
pub fn is_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks definitions when a tenant imports them.
pub fn check_definitions(defs: &[AttributeDef]) -> Result<(), Text> {
    let mut seen = std::collections::HashSet::new();
    for d in defs {
        let code = &d.code;
        if !is_code(code) {
            return Err(tr!(
                "属性编码 {code:?} 只能由字母、数字和 _ 组成",
                "attribute code {code:?} is not letters, digits and _"
            ));
        }
        if !seen.insert(d.code.as_str()) {
            return Err(tr!(
                "属性 {code} 定义了两次",
                "attribute {code} is defined twice"
            ));
        }
        if d.datatype.is_list() && d.values.is_empty() {
            return Err(tr!(
                "属性 {code} 是列表，却没有可选值",
                "attribute {code} is a list without values"
            ));
        }
    }
    Ok(())
}

/// The ticket's answers checked against the category's definitions:
/// unknown codes, missing required ones, numbers that are not numbers,
/// datetimes without a time zone, values outside a list. Field names are
/// `attributes.<code>`.
pub fn check(
    defs: &[AttributeDef],
    given: &[(String, Vec<String>)],
) -> Result<Vec<(String, Vec<String>)>, FieldError> {
    for (code, _) in given {
        if !defs.iter().any(|d| &d.code == code) {
            return Err(bad(
                format!("attributes.{code}"),
                tr!("不是该分类的属性", "is not an attribute of this category"),
            ));
        }
    }
    let mut out = Vec::new();
    for d in defs {
        let field = || format!("attributes.{}", d.code);
        let values: Vec<String> = given
            .iter()
            .find(|(c, _)| c == &d.code)
            .map(|(_, v)| v.iter().filter(|s| !s.is_empty()).cloned().collect())
            .unwrap_or_default();
        if values.is_empty() {
            if d.required {
                let what = &d.description;
                return Err(bad(field(), tr!("必填（{what}）", "is required ({what})")));
            }
            continue;
        }
        if d.datatype != Datatype::Multivaluelist && values.len() > 1 {
            return Err(bad(field(), tr!("只能填一个值", "takes one value")));
        }
        for v in &values {
            if v.chars().count() > MAX_VALUE_CHARS {
                return Err(bad(field(), says::at_most_chars(MAX_VALUE_CHARS)));
            }
            if v.chars().any(|c| c.is_control() && c != '\n') {
                return Err(bad(field(), says::no_control_chars()));
            }
            match d.datatype {
                Datatype::Number => {
                    if !v.parse::<f64>().is_ok_and(f64::is_finite) {
                        return Err(bad(field(), tr!("必须是数字", "must be a number")));
                    }
                }
                Datatype::Datetime => {
                    if chrono::DateTime::parse_from_rfc3339(v).is_err() {
                        return Err(bad(
                            field(),
                            tr!(
                                "必须是带时区的日期时间（ISO 8601，如 2026-11-22T08:30:00+08:00）",
                                "must be a date and time with a time zone (ISO 8601, e.g. 2026-11-22T08:30:00+08:00)"
                            ),
                        ));
                    }
                }
                Datatype::Singlevaluelist | Datatype::Multivaluelist => {
                    if !d.values.iter().any(|o| &o.key == v) {
                        let keys: Vec<&str> = d.values.iter().map(|o| o.key.as_str()).collect();
                        return Err(bad(field(), says::one_of(&keys.join(", "))));
                    }
                }
                Datatype::String | Datatype::Text => {}
            }
        }
        out.push((d.code.clone(), values));
    }
    Ok(out)
}
