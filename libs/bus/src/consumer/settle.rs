//! How a delivery ends on NATS: acked, nakked with backoff, or moved to
//! the dead-letter stream with the reason.

use async_nats::{
    HeaderMap,
    jetstream::{AckKind, Message},
};

use super::{Handler, Outcome, Runner, count};
use crate::{H_CONSUMER, H_DELIVERED, H_ERROR, H_MSG_ID, H_ORIGINAL_SUBJECT};

impl<H: Handler> Runner<H> {
    pub(super) async fn ack(&self, msg: &Message, outcome: Outcome) {
        let label = match outcome {
            Outcome::Applied => "applied",
            Outcome::Duplicate => "duplicate",
        };
        count(&self.spec.durable, label);
        if let Err(e) = msg.ack().await {
            // The effect is committed; a redelivery hits the inbox.
            tracing::warn!(error = %e, "ack failed; the redelivery will be a no-op");
        }
    }

    pub(super) async fn retry(&self, msg: &Message, delivered: i64, reason: &str) {
        let wait = self.bus.cfg.backoff_for(delivered);
        count(&self.spec.durable, "retry");
        tracing::warn!(error = %reason, retry_in = ?wait, "event handling failed; will retry");
        let _ = msg.ack_with(AckKind::Nak(Some(wait))).await;
    }

    pub(super) async fn dead_letter(
        &self,
        msg: &Message,
        original: &HeaderMap,
        delivered: i64,
        reason: &str,
    ) {
        let durable = self.spec.durable.as_str();
        let mut headers = original.clone();
        let msg_id = original
            .get(H_MSG_ID)
            .map(|v| v.as_str().to_owned())
            .unwrap_or_else(|| {
                format!("seq-{}", msg.info().map(|i| i.stream_sequence).unwrap_or(0))
            });
        // One dead letter per (event, consumer) even if this runs twice.
        headers.insert(H_MSG_ID, format!("{msg_id}:{durable}").as_str());
        headers.insert(H_ORIGINAL_SUBJECT, msg.subject.as_str());
        headers.insert(H_CONSUMER, durable);
        headers.insert(H_DELIVERED, delivered.to_string().as_str());
        let reason: String = reason
            .chars()
            .filter(|c| !c.is_control())
            .take(500)
            .collect();
        headers.insert(H_ERROR, reason.as_str());
        let published = match self
            .bus
            .js
            .publish_with_headers(
                self.bus.dead_letter_subject(durable),
                headers,
                msg.payload.clone(),
            )
            .await
        {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match published {
            Ok(()) => {
                count(durable, "dead_letter");
                tracing::error!(reason = %reason, delivered, "event moved to the dead-letter stream");
                let _ = msg.ack_with(AckKind::Term).await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot dead-letter the event; it will be redelivered");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(self.bus.cfg.backoff_for(delivered))))
                    .await;
            }
        }
    }
}
