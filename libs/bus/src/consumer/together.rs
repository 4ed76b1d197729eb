//! A pull applied in one transaction, for handlers that ask for it
//! ([`Handler::APPLY_TOGETHER`]): the first deliveries that decode get their
//! inbox rows in one insert and their effects through
//! [`Handler::handle_batch`], then one commit and the acks. Redeliveries and
//! malformed messages go the one-by-one way, and so does every event of a
//! joint transaction that failed, so attempts and dead letters stay per
//! event and a bad event never holds the others back.

use std::{collections::HashSet, panic::AssertUnwindSafe};

use async_nats::jetstream::Message;
use futures::{FutureExt, StreamExt};
use jiesu_proto::Event;
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};
use tracing::Instrument;
use uuid::Uuid;

use super::{Delivery, HandleError, Handler, Outcome, Runner, count};
use crate::{H_MSG_ID, H_TENANT};

/// The event and its delivery when `msg` is a first delivery that decodes;
/// None sends it the one-by-one way, which deals with everything else.
fn first_delivery<E: Event>(msg: &Message) -> Option<(E, Delivery)> {
    let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
    if delivered > 1 {
        return None;
    }
    let headers = msg.headers.as_ref()?;
    let event_id = Uuid::parse_str(headers.get(H_MSG_ID)?.as_str()).ok()?;
    let event = <E as prost::Message>::decode(msg.payload.as_ref()).ok()?;
    let tenant = headers
        .get(H_TENANT)
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    Some((
        event,
        Delivery {
            event_id,
            subject: msg.subject.to_string(),
            tenant,
            delivered,
        },
    ))
}

impl<H: Handler> Runner<H> {
    /// Applies the messages of one chunk of a pull.
    pub(super) async fn process_together(&self, msgs: Vec<Message>) {
        let mut joint: Vec<(Message, (H::Event, Delivery))> = Vec::new();
        let mut alone = Vec::new();
        for msg in msgs {
            match first_delivery::<H::Event>(&msg) {
                Some(ed) => joint.push((msg, ed)),
                None => alone.push(msg),
            }
        }
        if joint.len() == 1 {
            alone.extend(joint.drain(..).map(|(m, _)| m));
        }
        if !joint.is_empty() {
            let durable = self.spec.durable.as_str();
            let (msgs, events): (Vec<Message>, Vec<(H::Event, Delivery)>) =
                joint.into_iter().unzip();
            let ids: Vec<Uuid> = events.iter().map(|(_, d)| d.event_id).collect();
            let span = tracing::info_span!(
                "consume_together",
                consumer = durable,
                events = msgs.len(),
                otel.kind = "consumer",
            );
            let started = std::time::Instant::now();
            let result = AssertUnwindSafe(self.apply_together(events))
                .catch_unwind()
                .instrument(span)
                .await;
            match result {
                Ok(Ok(mut fresh)) => {
                    metrics::histogram!("jiesu_consumer_handle_seconds", "consumer" => durable.to_owned())
                        .record(started.elapsed().as_secs_f64());
                    let outcomes: Vec<Outcome> = ids
                        .iter()
                        .map(|id| {
                            if fresh.remove(id) {
                                Outcome::Applied
                            } else {
                                Outcome::Duplicate
                            }
                        })
                        .collect();
                    futures::future::join_all(
                        msgs.iter()
                            .zip(outcomes)
                            .map(|(msg, outcome)| self.ack(msg, outcome)),
                    )
                    .await;
                }
                failed => {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "the handler panicked".to_owned(),
                    };
                    count(durable, "together_failed");
                    tracing::warn!(consumer = durable, error = %reason, events = msgs.len(),
                        "applying a pull together failed; applying its events one by one");
                    alone.extend(msgs);
                }
            }
        }
        futures::stream::iter(alone)
            .for_each_concurrent(self.bus.cfg.consumer_concurrency, |m| self.process(m))
            .await;
    }

    /// One transaction: the inbox rows, then the effects of the events
    /// whose rows are new. Answers the ids applied now.
    async fn apply_together(
        &self,
        events: Vec<(H::Event, Delivery)>,
    ) -> Result<HashSet<Uuid>, HandleError> {
        let txn = self.db.begin().await?;
        let ids: Vec<Uuid> = events.iter().map(|(_, d)| d.event_id).collect();
        let subjects: Vec<String> = events.iter().map(|(_, d)| d.subject.clone()).collect();
        let rows = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_inbox (consumer, event_id, subject) \
                 SELECT $1, e, s FROM unnest($2::uuid[], $3::text[]) AS t(e, s) \
                 ON CONFLICT DO NOTHING RETURNING event_id",
                [
                    self.spec.durable.clone().into(),
                    ids.into(),
                    subjects.into(),
                ],
            ))
            .await?;
        let fresh = rows
            .iter()
            .map(|r| r.try_get::<Uuid>("", "event_id"))
            .collect::<Result<HashSet<Uuid>, _>>()?;
        // The same event twice in one pull (published again after the
        // stream's duplicate window) is applied once.
        let mut taken = HashSet::new();
        let batch: Vec<(H::Event, Delivery)> = events
            .into_iter()
            .filter(|(_, d)| fresh.contains(&d.event_id) && taken.insert(d.event_id))
            .collect();
        if batch.is_empty() {
            txn.rollback().await?;
            return Ok(fresh);
        }
        self.handler.handle_batch(&txn, batch).await?;
        txn.commit().await?;
        self.handler.after_commit();
        Ok(fresh)
    }
}
