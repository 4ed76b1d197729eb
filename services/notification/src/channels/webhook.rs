//! A county's own system, told through a signed webhook: `POST` of a JSON
//! message with `X-Jiesu-Id` (the notification id: the receiver's
//! idempotency key), `X-Jiesu-Timestamp` (Unix seconds) and
//! `X-Jiesu-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! A 2xx answer is taken; 408, 429 and 5xx are retried; other 4xx are not.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{AddressKind, Channel, ChannelConfig, Handover, Outgoing, Secret, SendError, excerpt};

pub struct Webhook {
    name: String,
    endpoint: String,
    secret: Secret,
    http: reqwest::Client,
}

/// The signature header's value for a body sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes a key of any length: this never returns early.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{timestamp}.{body}").as_bytes());
    let bytes = mac.finalize().into_bytes();
    format!(
        "sha256={}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

impl Webhook {
    pub fn new(name: &str, c: &ChannelConfig, http: reqwest::Client) -> Result<Self, String> {
        ChannelConfig::required(name, "endpoint", &c.endpoint)?;
        Ok(Self {
            name: name.to_owned(),
            endpoint: c.endpoint_or(name, "")?,
            secret: ChannelConfig::required_secret(name, "secret", &c.secret)?,
            http,
        })
    }
}

#[async_trait::async_trait]
impl Channel for Webhook {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::None
    }

    fn template_channel(&self) -> &'static str {
        "webhook"
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        let body = serde_json::json!({
            "id": m.id,
            "tenant": m.tenant,
            "kind": m.kind,
            "recipient_kind": m.recipient_kind,
            "recipient_id": m.recipient_id,
            "title": m.title,
            "body": m.body,
            "ticket_id": m.ticket_id,
            "ticket_url": m.ticket_url,
        })
        .to_string();
        let timestamp = chrono::Utc::now().timestamp();
        let resp = self
            .http
            .post(&self.endpoint)
            .header("Content-Type", "application/json")
            .header("X-Jiesu-Id", m.id.to_string())
            .header("X-Jiesu-Timestamp", timestamp.to_string())
            .header(
                "X-Jiesu-Signature",
                signature(self.secret.expose(), timestamp, &body),
            )
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::transport(&e))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            return Ok(Handover {
                provider_id: m.id.to_string(),
                answer: format!("HTTP {} {}", status.as_u16(), excerpt(&text)),
            });
        }
        Err(super::by_status(status, &text))
    }
}
