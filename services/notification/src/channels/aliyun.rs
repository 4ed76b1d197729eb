//! Aliyun SMS `SendSms` (dysmsapi 2017-05-25) with the RPC signature,
//! version 1.0 (HMAC-SHA1 over the sorted, percent-encoded parameters; the
//! key is the AccessKeySecret followed by `&`). The notification id is the
//! `OutId`, so the provider's receipts name the message.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha1::Sha1;

use super::{
    AddressKind, Channel, ChannelConfig, Handover, Outgoing, Secret, SendError, excerpt,
    limit::PerMinute,
};

pub const ENDPOINT: &str = "https://dysmsapi.aliyuncs.com/";

/// Percent-encoding as the RPC signature wants it: RFC 3986 unreserved
/// characters stay, everything else is `%XX` of its UTF-8 bytes (so a
/// space is `%20`, `*` is `%2A` and `~` stays).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string the signature is computed over.
pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    let canonical = params
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&canonical)
    )
}

/// `Signature` of a request with these parameters (all but `Signature`).
pub fn signature(secret: &str, method: &str, params: &BTreeMap<String, String>) -> String {
    // HMAC takes a key of any length: this never returns early.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()) else {
        return String::new();
    };
    mac.update(string_to_sign(method, params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

pub struct AliyunSms {
    name: String,
    endpoint: String,
    access_key_id: String,
    secret: Secret,
    sign_name: String,
    cfg: ChannelConfig,
    param: String,
    limit: PerMinute,
    http: reqwest::Client,
}

impl AliyunSms {
    pub fn new(name: &str, c: &ChannelConfig, http: reqwest::Client) -> Result<Self, String> {
        ChannelConfig::required(name, "template_code", &c.template_code)?;
        Ok(Self {
            name: name.to_owned(),
            endpoint: c.endpoint_or(name, ENDPOINT)?,
            access_key_id: ChannelConfig::required(name, "access_key_id", &c.access_key_id)?
                .to_owned(),
            secret: ChannelConfig::required_secret(
                name,
                "access_key_secret",
                &c.access_key_secret,
            )?,
            sign_name: ChannelConfig::required(name, "sign_name", &c.sign_name)?.to_owned(),
            param: if c.template_param.trim().is_empty() {
                "content".into()
            } else {
                c.template_param.trim().to_owned()
            },
            cfg: c.clone(),
            limit: PerMinute::new(c.per_minute),
            http,
        })
    }

    /// Every parameter of the call but its signature.
    pub fn params(
        &self,
        m: &Outgoing<'_>,
        nonce: &str,
        timestamp: &str,
    ) -> BTreeMap<String, String> {
        let template_param = serde_json::json!({ self.param.as_str(): m.body }).to_string();
        [
            ("AccessKeyId", self.access_key_id.as_str()),
            ("Action", "SendSms"),
            ("Format", "JSON"),
            ("OutId", &m.id.simple().to_string()),
            ("PhoneNumbers", m.to),
            ("RegionId", "cn-hangzhou"),
            ("SignName", m.sign_name.unwrap_or(&self.sign_name)),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", nonce),
            ("SignatureVersion", "1.0"),
            (
                "TemplateCode",
                m.template_code
                    .unwrap_or_else(|| self.cfg.template_for(m.kind)),
            ),
            ("TemplateParam", &template_param),
            ("Timestamp", timestamp),
            ("Version", "2017-05-25"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Answer {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    biz_id: String,
    #[serde(default)]
    request_id: String,
}

/// Codes worth retrying: throttles and the provider's own faults. Every
/// other code names something a retry cannot fix (the number, the
/// template, the sign, the credentials, the balance).
const RETRIED: &[&str] = &[
    "isv.BUSINESS_LIMIT_CONTROL",
    "Throttling",
    "Throttling.User",
    "Throttling.Api",
    "ServiceUnavailable",
    "InternalError",
    "isp.SYSTEM_ERROR",
];

#[async_trait::async_trait]
impl Channel for AliyunSms {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::Phone
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        self.limit
            .take(&self.access_key_id, 1)
            .map_err(|after| SendError::Deferred { after })?;
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut params = self.params(m, &nonce, &timestamp);
        let sig = signature(self.secret.expose(), "POST", &params);
        params.insert("Signature".into(), sig);
        let resp = self
            .http
            .post(&self.endpoint)
            .form(&params)
            .send()
            .await
            .map_err(|e| SendError::transport(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| SendError::transport(&e))?;
        let Ok(a) = serde_json::from_str::<Answer>(&text) else {
            return Err(super::by_status(status, &text));
        };
        if a.code == "OK" {
            return Ok(Handover {
                provider_id: a.biz_id,
                answer: format!("OK RequestId={}", a.request_id),
            });
        }
        let reason = format!("阿里云短信 {}: {}", a.code, excerpt(&a.message));
        if RETRIED.contains(&a.code.as_str()) || status.is_server_error() {
            Err(SendError::retry(reason))
        } else {
            Err(SendError::permanent(reason))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    /// The SMS documentation's example ("HTTP协议及签名"): its request line
    /// carries `Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D`.
    #[test]
    fn the_sms_documentation_example_signs_as_documented() {
        let p = params(&[
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]);
        assert_eq!(
            string_to_sign("GET", &p),
            "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
        );
        let sig = signature("testSecret", "GET", &p);
        assert_eq!(sig, "zJDF+Lrzhj/ThnlvIToysFRq6t4=");
        assert_eq!(percent_encode(&sig), "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D");
    }

    /// The RPC signature page's example (ECS DescribeRegions).
    #[test]
    fn the_rpc_signature_example_signs_as_documented() {
        let p = params(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("Format", "XML"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2016-02-23T12:46:24Z"),
            ("Version", "2014-05-26"),
        ]);
        assert_eq!(
            signature("testsecret", "GET", &p),
            "OLeaidS1JvxuMvnyHOwuJ+uX5qY="
        );
    }

    #[test]
    fn percent_encoding_follows_rfc_3986_as_the_signature_wants() {
        assert_eq!(percent_encode("a b*c~d+e/f"), "a%20b%2Ac~d%2Be%2Ff");
        assert_eq!(percent_encode("短"), "%E7%9F%AD");
    }
}
