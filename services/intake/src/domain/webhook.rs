//! Signed webhook deliveries from a tenant's own platform.
//!
//! The platform sends the ticket as JSON with three headers:
//! `X-Jiesu-Timestamp` (Unix seconds), `X-Jiesu-Nonce` (unique per delivery,
//! 16 to 64 of `[A-Za-z0-9_-]`) and `X-Jiesu-Signature: v1=<hex>` where hex is
//! HMAC-SHA256 with the channel secret over `timestamp + "." + nonce + "." +
//! body`. During a key rotation the header may carry two signatures
//! separated by commas; one valid signature from a valid key suffices.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use jiesu_proto::intake::{AttributeValue, Citizen, CreateTicketRequest, Location};
use jiesu_runtime::json::JsonError;
use serde::Deserialize;
use sha2::Sha256;

use super::{FieldError, Text, bad, tr};

/// Why a delivery is not authentic. Each is a 401 with its own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    ChannelUnknown,
    SignatureMissing,
    SignatureInvalid,
    TimestampMissing,
    TimestampStale,
    NonceInvalid,
    NonceReplayed,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::ChannelUnknown => "channel_unknown",
            Refusal::SignatureMissing => "signature_missing",
            Refusal::SignatureInvalid => "signature_invalid",
            Refusal::TimestampMissing => "timestamp_missing",
            Refusal::TimestampStale => "timestamp_stale",
            Refusal::NonceInvalid => "nonce_invalid",
            Refusal::NonceReplayed => "nonce_replayed",
        }
    }
    pub fn message(self) -> Text {
        match self {
            Refusal::ChannelUnknown => tr!(
                "没有这个编号的有效 Webhook 渠道",
                "no active webhook channel with this id"
            ),
            Refusal::SignatureMissing => {
                tr!("缺少 X-Jiesu-Signature", "X-Jiesu-Signature is missing")
            }
            Refusal::SignatureInvalid => tr!(
                "签名与该渠道的任何有效密钥都不匹配",
                "the signature does not match any valid key of the channel"
            ),
            Refusal::TimestampMissing => tr!(
                "X-Jiesu-Timestamp 缺失或不是 Unix 秒数",
                "X-Jiesu-Timestamp is missing or not Unix seconds"
            ),
            Refusal::TimestampStale => tr!(
                "X-Jiesu-Timestamp 超出允许的时间窗口",
                "X-Jiesu-Timestamp is outside the accepted window"
            ),
            Refusal::NonceInvalid => tr!(
                "X-Jiesu-Nonce 必须是 16 到 64 个 A-Z a-z 0-9 _ - 字符",
                "X-Jiesu-Nonce must be 16 to 64 characters of A-Z a-z 0-9 _ -"
            ),
            Refusal::NonceReplayed => tr!("该 nonce 已被使用过", "this nonce was already used"),
        }
    }
}

/// Checks the timestamp against `now` (both Unix seconds) and the nonce's
/// shape; returns the parsed timestamp.
pub fn check_freshness(
    timestamp: &str,
    nonce: &str,
    now: i64,
    window_secs: i64,
) -> Result<i64, Refusal> {
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::TimestampMissing)?;
    if (now - ts).abs() > window_secs {
        return Err(Refusal::TimestampStale);
    }
    let n = nonce.trim();
    if !(16..=64).contains(&n.len())
        || !n
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(Refusal::NonceInvalid);
    }
    Ok(ts)
}

/// The signature a sender computes (`None` only if HMAC refused the key,
/// which HMAC-SHA256 never does).
pub fn sign(secret: &[u8], timestamp: &str, nonce: &str, body: &[u8]) -> Option<String> {
    let mut mac = mac(secret, timestamp, nonce)?;
    mac.update(body);
    Some(format!(
        "v1={}",
        super::credentials::hex(&mac.finalize().into_bytes())
    ))
}

fn mac(secret: &[u8], timestamp: &str, nonce: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).ok()?;
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(nonce.trim().as_bytes());
    mac.update(b".");
    Some(mac)
}

/// True when one of the header's `v1=` signatures matches one of the keys
/// (compared in constant time).
pub fn verify(
    secrets: &[Vec<u8>],
    timestamp: &str,
    nonce: &str,
    body: &[u8],
    header: &str,
) -> Result<(), Refusal> {
    let sigs: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|part| part.trim().strip_prefix("v1="))
        .filter_map(unhex)
        .collect();
    if header.trim().is_empty() {
        return Err(Refusal::SignatureMissing);
    }
    for secret in secrets {
        for sig in &sigs {
            let Some(mut m) = mac(secret, timestamp, nonce) else {
                continue;
            };
            m.update(body);
            if m.verify_slice(sig).is_ok() {
                return Ok(());
            }
        }
    }
    Err(Refusal::SignatureInvalid)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() != 64 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub const MAX_EXTERNAL_ID: usize = 128;

/// The JSON a platform delivers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delivery {
    /// The platform's own id of the request: a redelivery is the same ticket.
    pub external_id: String,
    pub nature: String,
    #[serde(default)]
    pub kind: String,
    pub category: String,
    pub content: String,
    #[serde(default)]
    pub urgency: String,
    #[serde(default)]
    pub location: Option<DeliveryLocation>,
    pub citizen: DeliveryCitizen,
    #[serde(default)]
    pub confidential: bool,
    /// Attribute code → a value, or a list of values.
    #[serde(default)]
    pub attributes: BTreeMap<String, OneOrMany>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryLocation {
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    #[serde(default)]
    pub address: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryCitizen {
    #[serde(default)]
    pub name: String,
    pub phone: String,
    #[serde(default)]
    pub id_number: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// Parses a delivery body; errors name the field (never echo the value).
pub fn parse_delivery(body: &[u8]) -> Result<(String, CreateTicketRequest), FieldError> {
    let d: Delivery = jiesu_runtime::json::parse_strict(body).map_err(|e| match e {
        JsonError::Syntax(msg) => bad("body", msg),
        JsonError::Data { field, message } => bad(field, message),
    })?;
    let external_id = d.external_id.trim().to_owned();
    if external_id.is_empty()
        || external_id.len() > MAX_EXTERNAL_ID
        || !external_id.bytes().all(|b| b.is_ascii_graphic())
    {
        return Err(bad(
            "external_id",
            tr!(
                "必须是 1 到 {MAX_EXTERNAL_ID} 个可打印 ASCII 字符",
                "must be 1 to {MAX_EXTERNAL_ID} printable ASCII characters"
            ),
        ));
    }
    let req = CreateTicketRequest {
        idempotency_key: String::new(),
        channel: String::new(),
        nature: d.nature,
        category: d.category,
        content: d.content,
        location: d.location.map(|l| Location {
            lat: l.lat,
            lon: l.lon,
            address: l.address,
            region_code: String::new(),
        }),
        citizen: Some(Citizen {
            name: d.citizen.name,
            phone: d.citizen.phone,
            id_number: d.citizen.id_number,
        }),
        urgency: d.urgency,
        kind: d.kind,
        confidential: d.confidential,
        attributes: d
            .attributes
            .into_iter()
            .map(|(code, v)| AttributeValue {
                code,
                values: match v {
                    OneOrMany::One(s) => vec![s],
                    OneOrMany::Many(v) => v,
                },
            })
            .collect(),
        direct_answer: None,
    };
    Ok((external_id, req))
}
