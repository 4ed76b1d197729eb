//! Channels: the ways a notification leaves Jiesu, each an adapter behind
//! [`Channel`]. A tenant's configuration names channel instances (an Aliyun
//! SMS account, an SMTP relay, a WeCom robot, a county's webhook…) and, per
//! recipient kind, the chain of them to try in order (decision 0032).
//!
//! An adapter turns one message into one provider call and classifies the
//! answer: handed over (with the provider's id and answer), worth retrying
//! (an outage, a throttle: with the provider's wait when it names one), or
//! not (an invalid number, a template the provider refuses): the deliverer
//! then takes the next channel of the chain. Credentials come from secrets
//! and never reach a log, a trace, an error or the database.

pub mod aliyun;
pub mod config;
pub mod http_sms;
pub mod limit;
pub mod smtp;
pub mod tencent;
pub mod webhook;
pub mod wecom;

use std::{collections::HashMap, sync::Arc, time::Duration};

use uuid::Uuid;

pub use config::{ChannelConfig, ChannelKind, Secret};

/// What an address of a channel is: a channel that names its own
/// destination (a robot, a webhook) needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// A mobile number (SMS).
    Phone,
    /// An email address.
    Email,
    /// A WeCom robot key of the recipient's group (the channel's own robot
    /// when the recipient has none).
    Robot,
    /// None: the channel's configuration is the destination.
    None,
}

impl AddressKind {
    /// The name of the recipient-directory field that holds it.
    pub fn field(self) -> &'static str {
        match self {
            Self::Phone => "sms",
            Self::Email => "email",
            Self::Robot => "wecom_robot",
            Self::None => "",
        }
    }
}

/// One message to hand over.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The notification's id: the idempotency key given to providers that
    /// take one (Aliyun `OutId`, Tencent `SessionContext`, the webhook's
    /// `X-Jiesu-Id`, the email's `Message-ID`).
    pub id: Uuid,
    pub tenant: &'a str,
    /// What happened, e.g. `ticket.dispatched`.
    pub kind: &'a str,
    pub recipient_kind: &'a str,
    pub recipient_id: &'a str,
    pub title: &'a str,
    /// The body with its link filled in.
    pub body: &'a str,
    pub ticket_id: Option<Uuid>,
    /// Where staff open the ticket in the console (staff recipients with a
    /// ticket only); channels with room for it add it.
    pub ticket_url: Option<&'a str>,
    /// Phone, email or robot key, as [`Channel::address`] asks; empty for
    /// [`AddressKind::None`].
    pub to: &'a str,
    /// The tenant's SMS template binds the text to this approved template
    /// code and sign, over the channel's own.
    pub template_code: Option<&'a str>,
    pub sign_name: Option<&'a str>,
}

/// A message the provider took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handover {
    /// The provider's id of the message (BizId, SerialNo, Message-ID…).
    pub provider_id: String,
    /// The provider's answer, short, with no credential and no address.
    pub answer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again on this channel: an outage, a time-out, a 5xx, a
    /// throttle. `after` is the provider's wait when it names one.
    #[error("{reason}")]
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// This channel will never take this message (an invalid number, a
    /// template or sign the provider refuses, credentials refused): the
    /// next channel of the chain is tried, or the notification fails.
    #[error("{reason}")]
    Permanent { reason: String },
    /// The channel's own rate limit is reached: wait, without counting an
    /// attempt.
    #[error("rate limit of the channel reached")]
    Deferred { after: Duration },
}

impl SendError {
    pub fn retry(reason: impl Into<String>) -> Self {
        Self::Retry {
            reason: reason.into(),
            after: None,
        }
    }

    pub fn permanent(reason: impl Into<String>) -> Self {
        Self::Permanent {
            reason: reason.into(),
        }
    }

    /// A transport error of an HTTP call: retried (the provider may have
    /// taken the message; the idempotency key keeps that from doubling
    /// where the provider supports one).
    pub fn transport(e: &reqwest::Error) -> Self {
        // `reqwest::Error`'s Display names the URL, which for a WeCom robot
        // carries its key: keep only the kind of failure.
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "unreadable answer"
        } else {
            "request failed"
        };
        Self::retry(format!("provider unreachable: {kind}"))
    }
}

#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// The instance's name in configuration (`aliyun`, `smtp`…), recorded on
    /// each notification it carried.
    fn name(&self) -> &str;
    /// What address it needs of a recipient.
    fn address(&self) -> AddressKind;
    /// Whether a recipient without that address cannot be reached through
    /// it (a WeCom channel with a default robot can reach anyone).
    fn needs_address(&self) -> bool {
        self.address() != AddressKind::None
    }
    /// Which of a tenant's templates applies to it: `sms`, `email`,
    /// `wecom`, `webhook`, or `*` (only the templates for every channel).
    fn template_channel(&self) -> &'static str {
        match self.address() {
            AddressKind::Phone => "sms",
            AddressKind::Email => "email",
            AddressKind::Robot => "wecom",
            AddressKind::None => "*",
        }
    }
    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError>;
}

/// The `log` channel: a line in the service log (ids and title only). The
/// chain of any recipient kind no configuration routes.
pub struct LogChannel;

pub const LOG: &str = "log";

#[async_trait::async_trait]
impl Channel for LogChannel {
    fn name(&self) -> &str {
        LOG
    }

    fn address(&self) -> AddressKind {
        AddressKind::None
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        tracing::info!(
            notification_id = %m.id,
            tenant = %m.tenant,
            recipient_kind = %m.recipient_kind,
            recipient_id = %m.recipient_id,
            title = %m.title,
            "notification written to the log"
        );
        Ok(Handover {
            provider_id: m.id.to_string(),
            answer: "logged".into(),
        })
    }
}

/// The channels of the process and each tenant's chains.
pub struct Channels {
    by_name: HashMap<String, Arc<dyn Channel>>,
    /// tenant → recipient kind → chain; tenant `*` is every other tenant.
    routes: config::Routes,
}

impl Channels {
    /// Builds every configured channel (clients, credentials read from
    /// their files) and checks that each route names channels that exist.
    pub fn build(
        channels: &HashMap<String, ChannelConfig>,
        routes: &config::Routes,
    ) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(3))
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| format!("HTTP client: {e}"))?;
        let mut by_name: HashMap<String, Arc<dyn Channel>> = HashMap::new();
        by_name.insert(LOG.into(), Arc::new(LogChannel));
        for (name, c) in channels {
            let channel: Arc<dyn Channel> = match c.kind {
                ChannelKind::AliyunSms => Arc::new(aliyun::AliyunSms::new(name, c, http.clone())?),
                ChannelKind::TencentSms => {
                    Arc::new(tencent::TencentSms::new(name, c, http.clone())?)
                }
                ChannelKind::HttpSms => Arc::new(http_sms::HttpSms::new(name, c, http.clone())?),
                ChannelKind::Smtp => Arc::new(smtp::Smtp::new(name, c)?),
                ChannelKind::WecomRobot => Arc::new(wecom::WecomRobot::new(name, c, http.clone())?),
                ChannelKind::Webhook => Arc::new(webhook::Webhook::new(name, c, http.clone())?),
            };
            if name == LOG {
                return Err(format!(
                    "notification.channels.{name}: `log` is the built-in channel's name"
                ));
            }
            by_name.insert(name.clone(), channel);
        }
        for (tenant, kinds) in routes {
            for (kind, chain) in kinds {
                if chain.is_empty() {
                    return Err(format!(
                        "notification.routes.{tenant}.{kind}: names no channel"
                    ));
                }
                for c in chain {
                    if !by_name.contains_key(c) {
                        return Err(format!(
                            "notification.routes.{tenant}.{kind}: no channel named `{c}` (notification.channels)"
                        ));
                    }
                }
            }
        }
        Ok(Self {
            by_name,
            routes: routes.clone(),
        })
    }

    /// Channels of the log only: what a process with no delivery
    /// configuration has.
    pub fn log_only() -> Self {
        Self {
            by_name: HashMap::from([(LOG.to_owned(), Arc::new(LogChannel) as Arc<dyn Channel>)]),
            routes: HashMap::new(),
        }
    }

    /// The chain for a tenant's recipient kind: the tenant's route, else
    /// the default (`*`) route, else the log.
    pub fn chain(&self, tenant: &str, recipient_kind: &str) -> Vec<Arc<dyn Channel>> {
        let names = self
            .routes
            .get(tenant)
            .and_then(|r| r.get(recipient_kind))
            .or_else(|| self.routes.get("*").and_then(|r| r.get(recipient_kind)));
        match names {
            Some(names) => names
                .iter()
                .filter_map(|n| self.by_name.get(n).cloned())
                .collect(),
            None => vec![self.by_name[LOG].clone()],
        }
    }
}

/// A short, single-line excerpt of a provider's answer for the record,
/// with anything that looks like an address (a word with `@`, a run of 7
/// or more digits) masked: answers echo the recipient.
pub fn excerpt(text: &str) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(300)
        .collect();
    let words: Vec<String> = one_line
        .split(' ')
        .map(|w| {
            if w.contains('@') {
                "〔地址〕".to_owned()
            } else {
                mask_digits(w)
            }
        })
        .collect();
    words.join(" ").trim().to_owned()
}

/// Runs of 7 or more ASCII digits become `*`s.
fn mask_digits(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 {
            out.push_str(&"*".repeat(run.len()));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in word.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// Classifies an HTTP status the provider answered with no parsable
/// body: 429 and 5xx are retried, other 4xx are not.
pub fn by_status(status: reqwest::StatusCode, body: &str) -> SendError {
    let reason = format!(
        "provider answered HTTP {}: {}",
        status.as_u16(),
        excerpt(body)
    );
    if status == reqwest::StatusCode::TOO_MANY_REQUESTS
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status.is_server_error()
    {
        SendError::retry(reason)
    } else {
        SendError::permanent(reason)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_excerpt_masks_what_looks_like_an_address() {
        assert_eq!(
            super::excerpt("550 5.1.1 <li@example.cn>: no such user\nphone 13800138000 code 45009"),
            "550 5.1.1 〔地址〕 no such user phone *********** code 45009"
        );
    }
}
