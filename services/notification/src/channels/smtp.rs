//! Email over SMTP (lettre, pooled connections). The subject is the
//! notification's title, the body its text (UTF-8, Chinese intact); the
//! `Message-ID` is made of the notification id, so a resent message can be
//! told from a second one.

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, header::ContentType},
    transport::smtp::authentication::Credentials,
};

use super::{AddressKind, Channel, ChannelConfig, Handover, Outgoing, SendError, excerpt};

pub struct Smtp {
    name: String,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    pub fn new(name: &str, c: &ChannelConfig) -> Result<Self, String> {
        let host = ChannelConfig::required(name, "host", &c.host)?;
        let from: Mailbox = ChannelConfig::required(name, "from", &c.from)?
            .parse()
            .map_err(|e| format!("{}: not a mailbox: {e}", ChannelConfig::key(name, "from")))?;
        let mut builder = match c.security.trim() {
            "" | "starttls" => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            "tls" => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            "none" => Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                host,
            )),
            _ => {
                return Err(format!(
                    "{}: must be starttls, tls or none",
                    ChannelConfig::key(name, "security")
                ));
            }
        }
        .map_err(|e| format!("{}: {e}", ChannelConfig::key(name, "host")))?;
        if c.port != 0 {
            builder = builder.port(c.port);
        }
        if !c.username.trim().is_empty() {
            let password = ChannelConfig::required_secret(name, "password", &c.password)?;
            builder = builder.credentials(Credentials::new(
                c.username.trim().to_owned(),
                password.expose().to_owned(),
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            from,
            transport: builder
                .timeout(Some(std::time::Duration::from_secs(15)))
                .build(),
        })
    }
}

#[async_trait::async_trait]
impl Channel for Smtp {
    fn name(&self) -> &str {
        &self.name
    }

    fn address(&self) -> AddressKind {
        AddressKind::Email
    }

    async fn send(&self, m: &Outgoing<'_>) -> Result<Handover, SendError> {
        let to: Mailbox =
            m.to.parse()
                .map_err(|_| SendError::permanent("收件地址不是有效的电子邮箱"))?;
        let host = self.from.email.domain().to_owned();
        let message_id = format!("<{}@{host}>", m.id.simple());
        let body = match m.ticket_url {
            Some(url) => format!("{}\n\n查看工单：{url}\n", m.body),
            None => m.body.to_owned(),
        };
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.title)
            .message_id(Some(message_id.clone()))
            .header(ContentType::TEXT_PLAIN)
            .body(body)
            .map_err(|e| SendError::permanent(format!("message cannot be built: {e}")))?;
        match self.transport.send(email).await {
            Ok(resp) => Ok(Handover {
                provider_id: message_id,
                answer: excerpt(&format!(
                    "{} {}",
                    resp.code(),
                    resp.message().collect::<Vec<_>>().join(" ")
                )),
            }),
            // 5xx: the server will never take it (no such mailbox, refused).
            Err(e) if e.is_permanent() => Err(SendError::permanent(format!(
                "SMTP refused: {}",
                excerpt(&e.to_string())
            ))),
            Err(e) => Err(SendError::retry(format!(
                "SMTP: {}",
                excerpt(&e.to_string())
            ))),
        }
    }
}
