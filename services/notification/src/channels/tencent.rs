//! Tencent Cloud SMS `SendSms` (2021-01-11) signed with TC3-HMAC-SHA256.
//! The notification id is the `SessionContext`, which the provider gives
//! back in its answer and its receipts.

use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{
    AddressKind, Channel, ChannelConfig, Handover, Outgoing, Secret, SendError, excerpt,
    limit::PerMinute,
};

pub const ENDPOINT: &str = "https://sms.tencentcloudapi.com/";
const SERVICE: &str = "sms";
const VERSION: &str = "2021-01-11";
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";

fn hmac256(key: &[u8], msg: &str) -> Vec<u8> {
    // HMAC takes a key of any length: this never returns early.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The pieces of a TC3-HMAC-SHA256 signature, each as the documentation
/// names it, so each can be compared with its example.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tc3 {
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub authorization: String,
}

/// Signs a POST of `payload` to `/` for `service` at `timestamp`
/// (seconds), with these lower-case headers (name, value; `host` among
/// them) signed in order.
pub fn sign(
    secret_id: &str,
    secret_key: &str,
    service: &str,
    timestamp: i64,
    headers: &[(&str, &str)],
    payload: &str,
) -> Tc3 {
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let canonical_request = format!(
        "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex(&Sha256::digest(payload.as_bytes()))
    );
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap_or_default()
        .format("%Y-%m-%d")
        .to_string();
    let scope = format!("{date}/{service}/tc3_request");
    let string_to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let secret_date = hmac256(format!("TC3{secret_key}").as_bytes(), &date);
    let secret_service = hmac256(&secret_date, service);
    let secret_signing = hmac256(&secret_service, "tc3_request");
    let signature = hex(&hmac256(&secret_signing, &string_to_sign));
    let authorization = format!(
        "TC3-HMAC-SHA256 Credential={secret_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    );
    Tc3 {
        canonical_request,
        string_to_sign,
        signature,
        authorization,
    }
}

pub struct TencentSms {
    name: String,
    endpoint: String,
    host: String,
    secret_id: String,
    secret: Secret,
    region: String,
    sdk_app_id: String,
    sign_name: String,
    cfg: ChannelConfig,
    limit: PerMinute,
    http: reqwest::Client,
}

impl TencentSms {
    pub fn new(name: &str, c: &ChannelConfig, http: reqwest::Client) -> Result<Self, String> {
        ChannelConfig::required(name, "template_code", &c.template_code)?;
        let endpoint = c.endpoint_or(name, ENDPOINT)?;
        let host = url::Url::parse(&endpoint)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .ok_or_else(|| format!("{}: names no host", ChannelConfig::key(name, "endpoint")))?;
        Ok(Self {
            name: name.to_owned(),
            endpoint,
            host,
            secret_id: ChannelConfig::required(name, "access_key_id", &c.access_key_id)?.to_owned(),
            secret: ChannelConfig::required_secret(
                name,
                "access_key_secret",
                &c.access_key_secret,
            )?,
            region: if c.region.trim().is_empty() {
                "ap-guangzhou".into()
            } else {
                c.region.trim().to_owned()
            },
            sdk_app_id: ChannelConfig::required(name, "sdk_app_id", &c.sdk_app_id)?.to_owned(),
            sign_name: ChannelConfig::required(name, "sign_name", &c.sign_name)?.to_owned(),
            cfg: c.clone(),
            limit: PerMinute::new(c.per_minute),
            http,
        })
    }

    /// The request body of one message.
    pub fn payload(&self, m: &Outgoing<'_>) -> String {
        let phone = if m.to.starts_with('+') {
            m.to.to_owned()
        } else {
            format!("+86{}", m.to)
        };
        serde_json::json!({
            "PhoneNumberSet": [phone],
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": m.sign_name.unwrap_or(&self.sign_name),
            "TemplateId": m.template_code.unwrap_or_else(|| self.cfg.template_for(m.kind)),
            "TemplateParamSet": [m.body],
            "SessionContext": m.id.simple().to_string(),
        })
        .to_string()
    }
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Response")]
    response: Answer,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    error: Option<ApiError>,
    #[serde(default)]
    send_status_set: Vec<SendStatus>,
    #[serde(default)]
    request_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ApiError {
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SendStatus {
    #[serde(default)]
    serial_no: String,
    code: String,
    #[serde(default)]
    message: String,
}

/// A code worth retrying: throttles, the provider's own faults. The
/// others (the number, the template, the sign, the credentials) are not.
fn retried(code: &str) -> bool {
    code.starts_with("LimitExceeded")
        || code.starts_with("RequestLimitExceeded")
        || code.starts_with("InternalError")
        || code == "FailedOperation.FailResolvePacket"
        || code == "ResourceUnavailable"
}

#[async_trait::async_trait]
impl Channel for TencentSms {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::Phone
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        self.limit
            .take(&self.secret_id, 1)
            .map_err(|after| SendError::Deferred { after })?;
        let payload = self.payload(m);
        let timestamp = chrono::Utc::now().timestamp();
        let tc3 = sign(
            &self.secret_id,
            self.secret.expose(),
            SERVICE,
            timestamp,
            &[("content-type", CONTENT_TYPE), ("host", &self.host)],
            &payload,
        );
        let resp = self
            .http
            .post(&self.endpoint)
            .header("Authorization", tc3.authorization)
            .header("Content-Type", CONTENT_TYPE)
            .header("X-TC-Action", "SendSms")
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-Version", VERSION)
            .header("X-TC-Region", &self.region)
            .body(payload)
            .send()
            .await
            .map_err(|e| SendError::transport(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| SendError::transport(&e))?;
        let Ok(Envelope { response: a }) = serde_json::from_str::<Envelope>(&text) else {
            return Err(super::by_status(status, &text));
        };
        let (code, message, serial) = match (&a.error, a.send_status_set.first()) {
            (Some(e), _) => (e.code.as_str(), e.message.as_str(), ""),
            (None, Some(s)) => (s.code.as_str(), s.message.as_str(), s.serial_no.as_str()),
            (None, None) => {
                return Err(SendError::retry(format!(
                    "腾讯云短信 answered with no send status (RequestId={})",
                    a.request_id
                )));
            }
        };
        if code == "Ok" {
            return Ok(Handover {
                provider_id: serial.to_owned(),
                answer: format!("Ok RequestId={}", a.request_id),
            });
        }
        let reason = format!("腾讯云短信 {code}: {}", excerpt(message));
        if retried(code) || status.is_server_error() {
            Err(SendError::retry(reason))
        } else {
            Err(SendError::permanent(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAYLOAD: &str =
        r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    /// The "签名方法 v3" documentation's worked example (CVM
    /// DescribeInstances, 2019-02-25), step by step.
    #[test]
    fn the_documentation_example_signs_as_documented() {
        let tc3 = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            "cvm",
            1_551_113_065,
            &[
                ("content-type", CONTENT_TYPE),
                ("host", "cvm.tencentcloudapi.com"),
            ],
            PAYLOAD,
        );
        assert_eq!(
            tc3.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\ncontent-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            tc3.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            tc3.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            tc3.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    /// The current revision of the page signs `x-tc-action` too, with the
    /// secret shown masked (the asterisks are part of the key).
    #[test]
    fn the_current_revision_with_the_action_header_signs_as_documented() {
        let tc3 = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            "cvm",
            1_551_113_065,
            &[
                ("content-type", CONTENT_TYPE),
                ("host", "cvm.tencentcloudapi.com"),
                ("x-tc-action", "describeinstances"),
            ],
            PAYLOAD,
        );
        assert!(
            tc3.string_to_sign
                .ends_with("7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84")
        );
        assert_eq!(
            tc3.signature,
            "be4f67d323c78ab9acb7395e43c0dbcf822a9cfac32fea2449a7bc7726b770a3"
        );
    }
}
