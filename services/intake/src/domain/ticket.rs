//! A create request made valid: each field checked and normalised into a
//! `ValidTicket`, and the fingerprint that tells a retry from a reused key.

use jiesu_common::text::says;
use jiesu_proto::intake::CreateTicketRequest;
use sha2::{Digest, Sha256};

use super::{
    Channel, FieldError, Kind, Nature, Urgency, attributes, bad, normalize_id_number,
    normalize_phone, tr,
};

pub const MAX_CONTENT_CHARS: usize = 4000;
pub const MAX_ADDRESS_CHARS: usize = 200;
pub const MAX_NAME_CHARS: usize = 50;
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
pub const MAX_ATTRIBUTES: usize = 50;

/// A request that passed validation, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTicket {
    pub idempotency_key: Option<String>,
    pub channel: Channel,
    pub kind: Kind,
    pub nature: Nature,
    pub category: String,
    pub content: String,
    pub urgency: Urgency,
    pub point: Option<(f64, f64)>,
    pub address: Option<String>,
    /// Street or community code given with the location.
    pub region_code: Option<String>,
    pub citizen_name: Option<String>,
    pub citizen_phone: String,
    pub citizen_id_number: Option<String>,
    pub confidential: bool,
    /// As given (code → values), checked against the category by
    /// [`attributes::check`] once the category is known.
    pub attributes: Vec<(String, Vec<String>)>,
}

fn has_control(s: &str, allow_newlines: bool) -> bool {
    s.chars()
        .any(|c| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t' || c == '\r')))
}

/// China's extent, generously: points outside are typos (swapped lat/lon,
/// missing sign) rather than requests.
const LAT_RANGE: (f64, f64) = (3.0, 54.0);
const LON_RANGE: (f64, f64) = (73.0, 136.0);

pub fn validate(req: &CreateTicketRequest) -> Result<ValidTicket, FieldError> {
    let idempotency_key = match req.idempotency_key.trim() {
        "" => None,
        k if k.len() > MAX_IDEMPOTENCY_KEY || !k.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(bad(
                "idempotency_key",
                tr!(
                    "必须是 1 到 {MAX_IDEMPOTENCY_KEY} 个可打印 ASCII 字符",
                    "must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"
                ),
            ));
        }
        k => Some(k.to_owned()),
    };
    let channel = Channel::parse(req.channel.trim()).ok_or_else(|| {
        if req.channel.trim().is_empty() {
            bad("channel", says::required())
        } else {
            bad("channel", says::one_of(&Channel::names()))
        }
    })?;
    let nature = Nature::parse(req.nature.trim()).ok_or_else(|| {
        if req.nature.trim().is_empty() {
            bad("nature", says::required())
        } else {
            bad("nature", says::one_of(&Nature::names()))
        }
    })?;
    let kind = match req.kind.trim() {
        "" if channel == Channel::Enterprise => Kind::Development,
        "" => Kind::Livelihood,
        k => Kind::parse(k).ok_or_else(|| bad("kind", says::one_of(&Kind::names())))?,
    };
    let urgency = match req.urgency.trim() {
        "" => Urgency::Normal,
        u => Urgency::parse(u).ok_or_else(|| bad("urgency", says::one_of(&Urgency::names())))?,
    };
    let category = req.category.trim();
    if category.is_empty() {
        return Err(bad("category", says::required()));
    }
    if category.len() > 32
        || !category
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(bad(
            "category",
            tr!("不是分类编码", "is not a category code"),
        ));
    }
    let content = req.content.trim();
    if content.is_empty() {
        return Err(bad("content", says::required()));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(bad("content", says::at_most_chars(MAX_CONTENT_CHARS)));
    }
    if has_control(content, true) {
        return Err(bad("content", says::no_control_chars()));
    }

    let region_code = match req.location.as_ref().map(|l| l.region_code.trim()) {
        None | Some("") => None,
        Some(c) if (6..=12).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) => {
            Some(c.to_owned())
        }
        Some(_) => {
            return Err(bad(
                "location.region_code",
                tr!(
                    "必须是 6 到 12 位的行政区划代码（街道 9 位，社区 12 位）",
                    "must be a division code of 6 to 12 digits (street 9, community 12)"
                ),
            ));
        }
    };
    let (point, address) = match &req.location {
        None => (None, None),
        Some(loc) => {
            let point = match (loc.lat, loc.lon) {
                (None, None) => None,
                (Some(_), None) => {
                    return Err(bad(
                        "location.lon",
                        tr!("给出 lat 时必填", "is required when lat is given"),
                    ));
                }
                (None, Some(_)) => {
                    return Err(bad(
                        "location.lat",
                        tr!("给出 lon 时必填", "is required when lon is given"),
                    ));
                }
                (Some(lat), Some(lon)) => {
                    jiesu_common::geo::check_point("location", lat, lon)?;
                    if !(LAT_RANGE.0..=LAT_RANGE.1).contains(&lat)
                        || !(LON_RANGE.0..=LON_RANGE.1).contains(&lon)
                    {
                        return Err(bad(
                            "location",
                            tr!(
                                "位于服务范围之外（请检查 lat 和 lon 是否填反）",
                                "lies outside the service area (check that lat and lon are not swapped)"
                            ),
                        ));
                    }
                    Some((lat, lon))
                }
            };
            let address = loc.address.trim();
            if address.chars().count() > MAX_ADDRESS_CHARS {
                return Err(bad(
                    "location.address",
                    says::at_most_chars(MAX_ADDRESS_CHARS),
                ));
            }
            if has_control(address, false) {
                return Err(bad("location.address", says::no_control_chars()));
            }
            (point, (!address.is_empty()).then(|| address.to_owned()))
        }
    };

    let citizen = req.citizen.as_ref().ok_or_else(|| {
        bad(
            "citizen",
            tr!(
                "必填（至少要有回访用的电话号码）",
                "is required (at least a phone number for the callback)"
            ),
        )
    })?;
    let name = citizen.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(bad("citizen.name", says::at_most_chars(MAX_NAME_CHARS)));
    }
    if has_control(name, false) {
        return Err(bad("citizen.name", says::no_control_chars()));
    }
    let phone = normalize_phone(&citizen.phone).ok_or_else(|| {
        if citizen.phone.trim().is_empty() {
            bad("citizen.phone", says::required())
        } else {
            bad(
                "citizen.phone",
                tr!(
                    "必须是中国大陆手机号码（以 1 开头的 11 位数字）或带区号的固定电话",
                    "must be a mainland mobile number (11 digits starting with 1) or a landline with area code"
                ),
            )
        }
    })?;

    let id_number = match citizen.id_number.trim() {
        "" => None,
        raw => Some(normalize_id_number(raw).ok_or_else(|| {
            bad(
                "citizen.id_number",
                tr!(
                    "必须是校验位正确的 18 位居民身份证号码",
                    "must be an 18-character resident ID number with a valid check digit"
                ),
            )
        })?),
    };
    if req.attributes.len() > MAX_ATTRIBUTES {
        return Err(bad(
            "attributes",
            tr!(
                "最多 {MAX_ATTRIBUTES} 项",
                "must have at most {MAX_ATTRIBUTES} entries"
            ),
        ));
    }
    let mut attributes: Vec<(String, Vec<String>)> = Vec::with_capacity(req.attributes.len());
    for a in &req.attributes {
        let code = a.code.trim();
        if code.is_empty() || !attributes::is_code(code) {
            return Err(bad(
                "attributes",
                tr!(
                    "属性编码只能由字母、数字和 _ 组成（最多 64 个字符）",
                    "attribute codes are letters, digits and _ (at most 64)"
                ),
            ));
        }
        if attributes.iter().any(|(c, _)| c == code) {
            return Err(bad(
                format!("attributes.{code}"),
                tr!("重复给出", "is given twice"),
            ));
        }
        attributes.push((
            code.to_owned(),
            a.values.iter().map(|v| v.trim().to_owned()).collect(),
        ));
    }

    Ok(ValidTicket {
        idempotency_key,
        channel,
        kind,
        nature,
        category: category.to_owned(),
        content: content.to_owned(),
        urgency,
        point,
        address,
        region_code,
        citizen_name: (!name.is_empty()).then(|| name.to_owned()),
        citizen_phone: phone,
        citizen_id_number: id_number,
        confidential: req.confidential,
        attributes,
    })
}

/// Fingerprint of a request, to tell a true retry from a reused key.
pub fn request_hash(t: &ValidTicket) -> String {
    let mut h = Sha256::new();
    for part in [
        t.channel.as_str(),
        t.kind.as_str(),
        if t.confidential { "confidential" } else { "" },
        t.citizen_id_number.as_deref().unwrap_or(""),
        t.nature.as_str(),
        &t.category,
        &t.content,
        t.urgency.as_str(),
        t.address.as_deref().unwrap_or(""),
        t.citizen_name.as_deref().unwrap_or(""),
        &t.citizen_phone,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    if let Some((lat, lon)) = t.point {
        h.update(lat.to_be_bytes());
        h.update(lon.to_be_bytes());
    }
    for (code, values) in &t.attributes {
        h.update(code.as_bytes());
        for v in values {
            h.update([1u8]);
            h.update(v.as_bytes());
        }
        h.update([0u8]);
    }
    // Only when given, so hashes of requests without one stay as they were.
    if let Some(rc) = &t.region_code {
        h.update(b"region_code");
        h.update(rc.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
