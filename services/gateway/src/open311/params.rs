//! What an Open311 client sends: the file name (which also picks the
//! format), the query string or form, and the checks of each parameter,
//! failing with 400 (404 for an unknown jurisdiction) in the client's
//! format. Also the way back: our field path → the parameter it came from.

use chrono::{DateTime, NaiveDate, Utc};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{
        AttributeValue, Citizen, CreateTicketRequest, CreateWithApiKeyRequest, Location,
        SearchRequestsRequest,
    },
    time::to_timestamp,
};

use super::{Format, Open311Error, Result};

/// Parameters in the order the client sent them.
pub type Params = Vec<(String, String)>;

/// `services.json` → (`services`, Json). The format decides how errors
/// about everything else are written, so it is read first.
pub fn split_file(file: &str) -> Result<(&str, Format)> {
    let (stem, ext) = file.rsplit_once('.').ok_or_else(|| {
        Open311Error::not_found(
            tr!(
                "请在路径中加上格式：.json 或 .xml",
                "add the format to the path: .json or .xml"
            ),
            Format::Json,
        )
    })?;
    let format = match ext.to_ascii_lowercase().as_str() {
        "json" => Format::Json,
        "xml" => Format::Xml,
        _ => {
            return Err(Open311Error::not_found(
                tr!("格式必须是 json 或 xml", "format must be json or xml"),
                Format::Json,
            ));
        }
    };
    if stem.is_empty() {
        return Err(Open311Error::not_found(tr!("未找到", "not found"), format));
    }
    Ok((stem, format))
}

/// Parameters of a query string or form body, in order.
pub fn parse(raw: &[u8], format: Format) -> Result<Params> {
    let pairs: Params = form_urlencoded::parse(raw)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, v)| k.contains('\u{FFFD}') || v.contains('\u{FFFD}'))
    {
        let name: String = k.chars().filter(|c| *c != '\u{FFFD}').take(64).collect();
        return Err(Open311Error::bad(
            tr!("{name}：不是有效的 UTF-8", "{name}: is not valid UTF-8"),
            format,
        ));
    }
    if pairs.len() > 200 {
        return Err(Open311Error::bad(
            tr!("参数过多", "too many parameters"),
            format,
        ));
    }
    Ok(pairs)
}

fn first<'a>(p: &'a [(String, String)], name: &str) -> Option<&'a str> {
    p.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub fn text(p: &[(String, String)], name: &str) -> String {
    first(p, name).unwrap_or_default().to_owned()
}

/// The tenant in the path is a division code, and `jurisdiction_id`, when
/// given, names the same one.
pub fn check_tenant(tenant: &str, p: &[(String, String)], format: Format) -> Result<()> {
    let known_shape =
        (6..=12).contains(&tenant.len()) && tenant.bytes().all(|b| b.is_ascii_digit());
    let jurisdiction_ok = first(p, "jurisdiction_id")
        .map(|j| j.trim().is_empty() || j.trim() == tenant)
        .unwrap_or(true);
    if !known_shape || !jurisdiction_ok {
        return Err(Open311Error::not_found(
            tr!("未找到 jurisdiction_id", "jurisdiction_id not found"),
            format,
        ));
    }
    Ok(())
}

/// ISO 8601 with a zone, or a bare date meaning that day in China.
fn parse_date(name: &str, raw: &str, format: Format) -> Result<DateTime<Utc>> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(jiesu_common::time::china_midnight(d));
    }
    Err(Open311Error::bad(
        tr!(
            "{name}：必须是带时区的 ISO 8601 时间，如 2026-11-01T00:00:00+08:00",
            "{name}: must be ISO 8601 with a time zone, e.g. 2026-11-01T00:00:00+08:00"
        ),
        format,
    ))
}

fn date_param(p: &[(String, String)], name: &str, format: Format) -> Result<Option<DateTime<Utc>>> {
    first(p, name)
        .filter(|v| !v.trim().is_empty())
        .map(|v| parse_date(name, v, format))
        .transpose()
}

fn int_param(p: &[(String, String)], name: &str, format: Format) -> Result<i32> {
    match first(p, name).map(str::trim) {
        None | Some("") => Ok(0),
        Some(v) => v.parse::<i32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            Open311Error::bad(
                tr!("{name}：必须是正整数", "{name}: must be a positive integer"),
                format,
            )
        }),
    }
}

fn list_param(p: &[(String, String)], name: &str) -> Vec<String> {
    p.iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// `GET requests`: the search the parameters ask for.
pub fn search_request(
    tenant: &str,
    p: &[(String, String)],
    format: Format,
) -> Result<SearchRequestsRequest> {
    let statuses = list_param(p, "status");
    let status = match (
        statuses.iter().any(|s| s == "open"),
        statuses.iter().any(|s| s == "closed"),
    ) {
        _ if statuses.iter().any(|s| s != "open" && s != "closed") => {
            return Err(Open311Error::bad(
                tr!(
                    "status：必须是 open 或 closed",
                    "status: must be open or closed"
                ),
                format,
            ));
        }
        (true, false) => "open",
        (false, true) => "closed",
        _ => "",
    };
    let start = date_param(p, "start_date", format)?;
    let end = date_param(p, "end_date", format)?;
    Ok(SearchRequestsRequest {
        tenant: tenant.to_owned(),
        ids: list_param(p, "service_request_id"),
        service_codes: list_param(p, "service_code"),
        start: start.map(to_timestamp),
        end: end.map(to_timestamp),
        status: status.into(),
        page: int_param(p, "page", format)?,
        page_size: int_param(p, "page_size", format)?,
    })
}

fn flag(p: &[(String, String)], name: &str, format: Format) -> Result<bool> {
    match first(p, name).map(|v| v.trim().to_ascii_lowercase()) {
        None => Ok(false),
        Some(v) => match v.as_str() {
            "" | "false" | "0" => Ok(false),
            "true" | "1" => Ok(true),
            _ => Err(Open311Error::bad(
                tr!(
                    "{name}：必须是 true 或 false",
                    "{name}: must be true or false"
                ),
                format,
            )),
        },
    }
}

/// A decimal degree; intake checks the range and answers with the field,
/// which [`param_name`] turns back into `lat` or `long`.
fn coordinate(p: &[(String, String)], name: &str, format: Format) -> Result<Option<f64>> {
    match first(p, name).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Some)
            .ok_or_else(|| {
                Open311Error::bad(
                    tr!("{name}：必须是十进制数", "{name}: must be a decimal number"),
                    format,
                )
            }),
    }
}

/// `attribute[code]=v` and `attribute[code][]=v1&attribute[code][]=v2`.
fn attributes(p: &[(String, String)], format: Format) -> Result<Vec<AttributeValue>> {
    let mut out: Vec<AttributeValue> = Vec::new();
    for (k, v) in p {
        let Some(rest) = k.strip_prefix("attribute[") else {
            continue;
        };
        let code = rest
            .strip_suffix("][]")
            .or_else(|| rest.strip_suffix(']'))
            .filter(|c| !c.is_empty() && !c.contains(['[', ']']))
            .ok_or_else(|| {
                Open311Error::bad(
                    tr!(
                        "attribute：请写成 attribute[code]=value",
                        "attribute: write attribute[code]=value"
                    ),
                    format,
                )
            })?;
        match out.iter_mut().find(|a| a.code == code) {
            Some(a) => a.values.push(v.clone()),
            None => out.push(AttributeValue {
                code: code.to_owned(),
                values: vec![v.clone()],
            }),
        }
    }
    Ok(out)
}

/// `POST requests`: the ticket the form describes, for the channel whose
/// `api_key` it carries.
pub fn create_request(
    tenant: &str,
    api_key: String,
    idempotency_key: String,
    p: &[(String, String)],
    format: Format,
) -> Result<CreateWithApiKeyRequest> {
    let lat = coordinate(p, "lat", format)?;
    let lon = coordinate(p, "long", format)?;
    let name = [text(p, "last_name"), text(p, "first_name")]
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(CreateWithApiKeyRequest {
        tenant: tenant.to_owned(),
        api_key,
        ticket: Some(CreateTicketRequest {
            idempotency_key,
            channel: String::new(),
            nature: text(p, "nature"),
            category: text(p, "service_code"),
            content: text(p, "description"),
            location: Some(Location {
                lat,
                lon,
                address: text(p, "address_string"),
                region_code: String::new(),
            }),
            citizen: Some(Citizen {
                name,
                phone: text(p, "phone"),
                id_number: String::new(),
            }),
            urgency: text(p, "urgency"),
            kind: text(p, "kind"),
            confidential: flag(p, "confidential", format)?,
            attributes: attributes(p, format)?,
            direct_answer: None,
        }),
        account_id: text(p, "account_id"),
        device_id: text(p, "device_id"),
        email: text(p, "email"),
        media_url: text(p, "media_url"),
    })
}

/// Our field path → the Open311 parameter a client sent.
pub fn param_name(field: &str) -> String {
    match field {
        "content" => "description".into(),
        "category" => "service_code".into(),
        "location.lat" => "lat".into(),
        "location.lon" => "long".into(),
        "location" => "lat/long/address_string".into(),
        "location.address" => "address_string".into(),
        "citizen.phone" => "phone".into(),
        "citizen.name" => "first_name/last_name".into(),
        "citizen.id_number" => "id_number".into(),
        "citizen" => "phone".into(),
        f => match f.strip_prefix("attributes.") {
            Some(code) => format!("attribute[{code}]"),
            None => f.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_params() {
        assert_eq!(
            split_file("services.json").ok().map(|f| f.1),
            Some(Format::Json)
        );
        assert_eq!(split_file("CG02.XML").ok().map(|f| f.1), Some(Format::Xml));
        assert!(split_file("services").is_err());
        assert!(split_file("services.csv").is_err());
        assert_eq!(
            param_name("attributes.noise_period"),
            "attribute[noise_period]"
        );
        assert_eq!(param_name("location.lon"), "long");
        let p = vec![
            ("attribute[source][]".to_owned(), "shop".to_owned()),
            ("attribute[source][]".to_owned(), "renovation".to_owned()),
            ("attribute[noise_period]".to_owned(), "night".to_owned()),
        ];
        let a = attributes(&p, Format::Json).ok().unwrap_or_default();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].values, ["shop", "renovation"]);
    }
}
