//! A create request made valid: each field checked and normalised into a
//! `ValidTicket`, and the fingerprint that tells a retry from a reused key.

use jiesu_proto::intake::CreateTicketRequest;
use sha2::{Digest, Sha256};

use super::{
    Channel, FieldError, Kind, Nature, Urgency, attributes, bad, normalize_id_number,
    normalize_phone,
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
                format!("must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII characters"),
            ));
        }
        k => Some(k.to_owned()),
    };
    let channel = Channel::parse(req.channel.trim()).ok_or_else(|| {
        if req.channel.trim().is_empty() {
            bad("channel", "is required")
        } else {
            bad("channel", format!("must be one of: {}", Channel::names()))
        }
    })?;
    let nature = Nature::parse(req.nature.trim()).ok_or_else(|| {
        if req.nature.trim().is_empty() {
            bad("nature", "is required")
        } else {
            bad("nature", format!("must be one of: {}", Nature::names()))
        }
    })?;
    let kind = match req.kind.trim() {
        "" if channel == Channel::Enterprise => Kind::Development,
        "" => Kind::Livelihood,
        k => Kind::parse(k)
            .ok_or_else(|| bad("kind", format!("must be one of: {}", Kind::names())))?,
    };
    let urgency = match req.urgency.trim() {
        "" => Urgency::Normal,
        u => Urgency::parse(u)
            .ok_or_else(|| bad("urgency", format!("must be one of: {}", Urgency::names())))?,
    };
    let category = req.category.trim();
    if category.is_empty() {
        return Err(bad("category", "is required"));
    }
    if category.len() > 32
        || !category
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    {
        return Err(bad("category", "is not a category code"));
    }
    let content = req.content.trim();
    if content.is_empty() {
        return Err(bad("content", "is required"));
    }
    if content.chars().count() > MAX_CONTENT_CHARS {
        return Err(bad(
            "content",
            format!("must be at most {MAX_CONTENT_CHARS} characters"),
        ));
    }
    if has_control(content, true) {
        return Err(bad("content", "must not contain control characters"));
    }

    let region_code = match req.location.as_ref().map(|l| l.region_code.trim()) {
        None | Some("") => None,
        Some(c) if (6..=12).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_digit()) => {
            Some(c.to_owned())
        }
        Some(_) => {
            return Err(bad(
                "location.region_code",
                "must be a division code of 6 to 12 digits (street 9, community 12)",
            ));
        }
    };
    let (point, address) = match &req.location {
        None => (None, None),
        Some(loc) => {
            let point = match (loc.lat, loc.lon) {
                (None, None) => None,
                (Some(_), None) => {
                    return Err(bad("location.lon", "is required when lat is given"));
                }
                (None, Some(_)) => {
                    return Err(bad("location.lat", "is required when lon is given"));
                }
                (Some(lat), Some(lon)) => {
                    jiesu_common::geo::check_point("location", lat, lon)?;
                    if !(LAT_RANGE.0..=LAT_RANGE.1).contains(&lat)
                        || !(LON_RANGE.0..=LON_RANGE.1).contains(&lon)
                    {
                        return Err(bad(
                            "location",
                            "lies outside the service area (check that lat and lon are not swapped)",
                        ));
                    }
                    Some((lat, lon))
                }
            };
            let address = loc.address.trim();
            if address.chars().count() > MAX_ADDRESS_CHARS {
                return Err(bad(
                    "location.address",
                    format!("must be at most {MAX_ADDRESS_CHARS} characters"),
                ));
            }
            if has_control(address, false) {
                return Err(bad(
                    "location.address",
                    "must not contain control characters",
                ));
            }
            (point, (!address.is_empty()).then(|| address.to_owned()))
        }
    };

    let citizen = req.citizen.as_ref().ok_or_else(|| {
        bad(
            "citizen",
            "is required (at least a phone number for the callback)",
        )
    })?;
    let name = citizen.name.trim();
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(bad(
            "citizen.name",
            format!("must be at most {MAX_NAME_CHARS} characters"),
        ));
    }
    if has_control(name, false) {
        return Err(bad("citizen.name", "must not contain control characters"));
    }
    let phone = normalize_phone(&citizen.phone).ok_or_else(|| {
        if citizen.phone.trim().is_empty() {
            bad("citizen.phone", "is required")
        } else {
            bad(
                "citizen.phone",
                "must be a mainland mobile number (11 digits starting with 1) or a landline with area code",
            )
        }
    })?;

    let id_number = match citizen.id_number.trim() {
        "" => None,
        raw => Some(normalize_id_number(raw).ok_or_else(|| {
            bad(
                "citizen.id_number",
                "must be an 18-character resident ID number with a valid check digit",
            )
        })?),
    };
    if req.attributes.len() > MAX_ATTRIBUTES {
        return Err(bad(
            "attributes",
            format!("must have at most {MAX_ATTRIBUTES} entries"),
        ));
    }
    let mut attributes: Vec<(String, Vec<String>)> = Vec::with_capacity(req.attributes.len());
    for a in &req.attributes {
        let code = a.code.trim();
        if code.is_empty() || !attributes::is_code(code) {
            return Err(bad(
                "attributes",
                "attribute codes are letters, digits and _ (at most 64)",
            ));
        }
        if attributes.iter().any(|(c, _)| c == code) {
            return Err(bad(format!("attributes.{code}"), "is given twice"));
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
