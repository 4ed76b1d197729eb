//! WeCom (企业微信) group robot: `POST <endpoint>?key=<robot key>` with a
//! text or markdown message. A robot takes 20 messages a minute (more are
//! refused with errcode 45009), text up to 2,048 bytes and markdown up to
//! 4,096: a longer message is split at line ends into numbered parts, and
//! all its parts are counted against the robot's minute before the first
//! is sent. The robot is the recipient's own (a grid's residents' group,
//! a unit's group) or the channel's default.

use serde::Deserialize;

use super::{
    AddressKind, Channel, ChannelConfig, Handover, Outgoing, Secret, SendError, excerpt,
    limit::PerMinute,
};

pub const ENDPOINT: &str = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send";
const TEXT_MAX: usize = 2048;
const MARKDOWN_MAX: usize = 4096;
/// Room kept in each part for its `(2/3)` marker.
const MARKER_ROOM: usize = 16;

pub struct WecomRobot {
    /// Parts of a message already taken by the robot, by notification id:
    /// a retry after a failed part goes on from there (in this process).
    progress: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, usize>>,
    name: String,
    endpoint: String,
    default_key: Secret,
    markdown: bool,
    limit: PerMinute,
    http: reqwest::Client,
}

impl WecomRobot {
    pub fn new(name: &str, c: &ChannelConfig, http: reqwest::Client) -> Result<Self, String> {
        let markdown = match c.format.trim() {
            "" | "markdown" => true,
            "text" => false,
            _ => {
                return Err(format!(
                    "{}: must be markdown or text",
                    ChannelConfig::key(name, "format")
                ));
            }
        };
        Ok(Self {
            progress: std::sync::Mutex::default(),
            name: name.to_owned(),
            endpoint: c.endpoint_or(name, ENDPOINT)?,
            default_key: c.secret.resolve(&ChannelConfig::key(name, "secret"))?,
            markdown,
            limit: PerMinute::new(if c.per_minute == 0 { 20 } else { c.per_minute }),
            http,
        })
    }

    /// The message as it goes out, in parts that fit the robot's limit.
    pub fn parts(&self, title: &str, body: &str) -> Vec<String> {
        let text = if self.markdown {
            format!("**{title}**\n{body}")
        } else {
            format!("{title}\n{body}")
        };
        let max = if self.markdown {
            MARKDOWN_MAX
        } else {
            TEXT_MAX
        };
        let mut parts = split(&text, max - MARKER_ROOM);
        let n = parts.len();
        if n > 1 {
            for (i, p) in parts.iter_mut().enumerate() {
                p.push_str(&format!("\n({}/{n})", i + 1));
            }
        }
        parts
    }
}

impl WecomRobot {
    /// One part to the robot, its answer classified.
    async fn send_part(&self, key: &str, msgtype: &str, content: &str) -> Result<(), SendError> {
        let body = serde_json::json!({ "msgtype": msgtype, msgtype: { "content": content } });
        let resp = self
            .http
            .post(&self.endpoint)
            .query(&[("key", key)])
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::transport(&e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| SendError::transport(&e))?;
        let Ok(a) = serde_json::from_str::<Answer>(&text) else {
            return Err(super::by_status(status, &text));
        };
        match a.errcode {
            0 => Ok(()),
            45009 => Err(SendError::Retry {
                reason: format!("企业微信机器人 45009: {}", excerpt(&a.errmsg)),
                after: Some(std::time::Duration::from_secs(60)),
            }),
            -1 => Err(SendError::retry(format!(
                "企业微信机器人 -1: {}",
                excerpt(&a.errmsg)
            ))),
            code => Err(SendError::permanent(format!(
                "企业微信机器人 {code}: {}",
                excerpt(&a.errmsg)
            ))),
        }
    }
}

/// Splits `text` into pieces of at most `max` bytes, at a line end where
/// one is in the second half of a piece, else at a character boundary.
pub fn split(text: &str, max: usize) -> Vec<String> {
    let mut parts = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(nl) = rest[..cut].rfind('\n').filter(|nl| *nl >= max / 2) {
            cut = nl + 1;
        }
        parts.push(rest[..cut].trim_end_matches('\n').to_owned());
        rest = &rest[cut..];
    }
    if !rest.is_empty() || parts.is_empty() {
        parts.push(rest.to_owned());
    }
    parts
}

#[derive(Deserialize)]
struct Answer {
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

#[async_trait::async_trait]
impl Channel for WecomRobot {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::Robot
    }

    fn needs_address(&self) -> bool {
        self.default_key.is_empty()
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        let key = if m.to.trim().is_empty() {
            self.default_key.expose()
        } else {
            m.to.trim()
        };
        if key.is_empty() {
            return Err(SendError::permanent("收件方没有企业微信群机器人"));
        }
        let body = match (m.ticket_url, self.markdown) {
            (Some(url), true) => format!("{}\n[查看工单]({url})", m.body),
            (Some(url), false) => format!("{}\n查看工单：{url}", m.body),
            (None, _) => m.body.to_owned(),
        };
        let parts = self.parts(m.title, &body);
        let limit = self.limit.limit();
        if limit > 0 && parts.len() > limit {
            return Err(SendError::permanent(format!(
                "消息过长：需分 {} 条发送，超过机器人每分钟 {limit} 条的上限",
                parts.len()
            )));
        }
        let done = self
            .progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&m.id)
            .copied()
            .unwrap_or(0)
            .min(parts.len());
        let left = parts.len() - done;
        self.limit
            .take(key, left)
            .map_err(|after| SendError::Deferred { after })?;
        let msgtype = if self.markdown { "markdown" } else { "text" };
        for (i, content) in parts.iter().enumerate().skip(done) {
            let sent = self.send_part(key, msgtype, content).await;
            if let Err(e) = sent {
                self.limit.give_back(key, parts.len() - i);
                if matches!(e, SendError::Permanent { .. }) {
                    self.progress
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&m.id);
                }
                return Err(e);
            }
            self.progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(m.id, i + 1);
        }
        self.progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&m.id);
        Ok(Handover {
            provider_id: m.id.simple().to_string(),
            answer: format!("ok ({} part(s))", parts.len()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_splits_at_line_ends_within_the_limit() {
        let line = "网格员请注意：明日上午九点起小区停水维修。\n";
        let body = line.repeat(200);
        let parts = split(&body, MARKDOWN_MAX - MARKER_ROOM);
        assert!(parts.len() > 1);
        assert!(parts.iter().all(|p| p.len() <= MARKDOWN_MAX - MARKER_ROOM));
        assert!(parts[..parts.len() - 1].iter().all(|p| p.ends_with('。')));
        assert_eq!(parts.concat().replace('\n', ""), body.replace('\n', ""));
        // No line end at all: cut at a character boundary.
        let solid = "停".repeat(3000);
        let parts = split(&solid, 100);
        assert!(parts.iter().all(|p| p.len() <= 100));
        assert_eq!(parts.concat(), solid);
    }
}
