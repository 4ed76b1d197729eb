//! Channel configuration: `notification.channels.<name>` (one instance
//! each) and `notification.routes.<tenant>.<recipient kind>` (the chain).

use std::{collections::HashMap, fmt};

use serde::{Deserialize, Deserializer};

/// tenant (or `*`) → recipient kind → channel names, tried in order.
pub type Routes = HashMap<String, HashMap<String, Vec<String>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChannelKind {
    AliyunSms,
    TencentSms,
    HttpSms,
    Smtp,
    WecomRobot,
    Webhook,
}

/// A credential. Given inline (from an environment variable a Kubernetes
/// Secret fills) or as `file:/path` (a mounted Secret), read once at start.
/// Never printed: `Debug` shows `***`.
#[derive(Clone, Default)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, reading the file a `file:` secret names.
    pub fn resolve(&self, key: &str) -> Result<Secret, String> {
        match self.0.strip_prefix("file:") {
            Some(path) => std::fs::read_to_string(path)
                .map(|v| Secret(v.trim().to_owned()))
                .map_err(|e| format!("{key}: cannot read the secret file: {e}")),
            None => Ok(self.clone()),
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// One channel instance. Which fields apply depends on `kind`; each
/// adapter refuses a missing one by its key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelConfig {
    pub kind: ChannelKind,
    /// The provider's address; defaults to the public endpoint for Aliyun,
    /// Tencent Cloud and WeCom. Required for `http_sms`, `webhook`.
    #[serde(default)]
    pub endpoint: String,
    /// Aliyun AccessKeyId / Tencent SecretId.
    #[serde(default)]
    pub access_key_id: String,
    /// Aliyun AccessKeySecret / Tencent SecretKey.
    #[serde(default)]
    pub access_key_secret: Secret,
    /// Tencent region (`ap-guangzhou`).
    #[serde(default)]
    pub region: String,
    /// Tencent SmsSdkAppId.
    #[serde(default)]
    pub sdk_app_id: String,
    /// The approved SMS sign (签名), e.g. `青岛市南区12345`.
    #[serde(default)]
    pub sign_name: String,
    /// The approved SMS template (Aliyun TemplateCode / Tencent
    /// TemplateId) the text goes into; `template_codes` per event kind.
    #[serde(default)]
    pub template_code: String,
    #[serde(default)]
    pub template_codes: HashMap<String, String>,
    /// Aliyun: the template's variable that takes the text (`content`).
    #[serde(default)]
    pub template_param: String,
    /// SMTP server.
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    /// SMTP: `starttls` (default), `tls` or `none` (a relay on a trusted
    /// network only).
    #[serde(default)]
    pub security: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// SMTP sender, e.g. `青岛市南区12345热线 <noreply@example.gov.cn>`.
    #[serde(default)]
    pub from: String,
    /// WeCom: the default robot's key (a recipient's own robot wins);
    /// webhook: the HMAC key.
    #[serde(default)]
    pub secret: Secret,
    /// WeCom: `markdown` (default) or `text`.
    #[serde(default)]
    pub format: String,
    /// Messages a minute per robot (WeCom: 20) or per provider account
    /// (0: unlimited).
    #[serde(default)]
    pub per_minute: u32,
    /// http_sms: `POST` (default) or `GET`.
    #[serde(default)]
    pub method: String,
    /// http_sms: `json` (default) or `form`.
    #[serde(default)]
    pub body: String,
    /// http_sms: request fields, each a text with `{phone}`, `{content}`,
    /// `{id}`, `{sign_name}` in it.
    #[serde(default)]
    pub fields: HashMap<String, String>,
    /// http_sms: extra headers.
    #[serde(default)]
    pub headers: HashMap<String, Secret>,
    /// http_sms: success rule, a JSON pointer into the answer (`/code`)
    /// and the value that means success (`0`); empty: any 2xx.
    #[serde(default)]
    pub success_pointer: String,
    #[serde(default)]
    pub success_value: String,
    /// http_sms: answers (values at `success_pointer`) that mean the number
    /// is wrong or the text refused: not retried.
    #[serde(default)]
    pub permanent_values: Vec<String>,
}

impl ChannelConfig {
    /// `notification.channels.<name>.<field>`, for errors.
    pub fn key(name: &str, field: &str) -> String {
        format!("notification.channels.{name}.{field}")
    }

    pub fn required<'a>(name: &str, field: &str, value: &'a str) -> Result<&'a str, String> {
        if value.trim().is_empty() {
            return Err(format!("{}: must be set", Self::key(name, field)));
        }
        Ok(value.trim())
    }

    pub fn required_secret(name: &str, field: &str, value: &Secret) -> Result<Secret, String> {
        let key = Self::key(name, field);
        let v = value.resolve(&key)?;
        if v.is_empty() {
            return Err(format!("{key}: must be set"));
        }
        Ok(v)
    }

    /// `endpoint`, or the provider's public one.
    pub fn endpoint_or(&self, name: &str, default: &str) -> Result<String, String> {
        let e = if self.endpoint.trim().is_empty() {
            default
        } else {
            self.endpoint.trim()
        };
        let url = url::Url::parse(e)
            .map_err(|_| format!("{}: not a URL", Self::key(name, "endpoint")))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "{}: must be an http(s):// URL",
                Self::key(name, "endpoint")
            ));
        }
        Ok(e.to_owned())
    }

    /// The template code for an event kind, else the channel's.
    pub fn template_for<'a>(&'a self, kind: &str) -> &'a str {
        self.template_codes
            .get(kind)
            .map_or(self.template_code.as_str(), String::as_str)
    }
}
