//! The runner loop: sets up the durable consumer (again if it vanished),
//! pulls batches, and takes each delivery from its headers to an outcome.

use std::{panic::AssertUnwindSafe, time::Duration};

use async_nats::jetstream::{
    Message,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
};
use futures::{FutureExt, StreamExt};
use jiesu_proto::Event;
use jiesu_runtime::Readiness;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use super::{Delivery, Failure, HandleError, Handler, Outcome, Runner, unreachable};
use crate::{BusError, H_MSG_ID, H_TENANT, H_TRACEPARENT};

/// Pause before pulling again after a pull failed (NATS unreachable).
const PULL_RETRY_DELAY: Duration = Duration::from_millis(1000);

/// How often an idle consumer asks whether its durable still exists: a pull
/// on a durable that vanished (NATS restarted without its store) just comes
/// back empty.
const IDLE_CHECK: Duration = Duration::from_secs(3);

/// Joint transactions a consumer that applies pulls together keeps in
/// flight (each of up to `2 × bus.consumer_concurrency` events).
const TOGETHER_IN_FLIGHT: usize = 4;

/// Most events one joint transaction takes, whatever the concurrency: a
/// handler may write a row of ~50 parameters per event in one statement, and
/// PostgreSQL takes at most 65,535.
const TOGETHER_MAX: usize = 256;

impl<H: Handler> Runner<H> {
    pub(super) async fn setup(&self) -> Result<PullConsumer, BusError> {
        let ctx = <H::Event as Event>::CONTEXT;
        let stream = self.bus.ensure_stream(ctx).await?;
        self.bus.ensure_dead_letter_stream().await?;
        let cfg = &self.bus.cfg;
        let config = pull::Config {
            durable_name: Some(self.spec.durable.clone()),
            description: Some(format!(
                "{} <- {}",
                self.spec.durable,
                <H::Event as Event>::NAME
            )),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: cfg.ack_wait,
            // Unlimited on the server: this runner decides when to give up,
            // so no event silently stops being delivered.
            max_deliver: -1,
            filter_subject: self.bus.filter(ctx, <H::Event as Event>::NAME),
            max_ack_pending: (cfg.consumer_concurrency * 64) as i64,
            ..Default::default()
        };
        stream
            .get_or_create_consumer(&self.spec.durable, config)
            .await
            .map_err(|e| BusError::JetStream(format!("consumer {}: {e}", self.spec.durable)))
    }

    pub(super) async fn setup_until_ok(
        &self,
        shutdown: &CancellationToken,
    ) -> Option<PullConsumer> {
        let mut delay = Duration::from_millis(200);
        loop {
            match self.setup().await {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(consumer = %self.spec.durable, error = %e, "consumer set-up failed; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    pub(super) async fn run(
        self: std::sync::Arc<Self>,
        shutdown: CancellationToken,
        ready: Readiness,
    ) {
        let Some(mut consumer) = self.setup_until_ok(&shutdown).await else {
            return;
        };
        ready.set(true);
        let concurrency = self.bus.cfg.consumer_concurrency;
        // A consumer applying pulls together takes more at once: up to
        // TOGETHER_IN_FLIGHT chunks of `2 × concurrency` (at most
        // TOGETHER_MAX) in flight.
        let batch_size = self.spec.batch.unwrap_or(if H::APPLY_TOGETHER {
            (concurrency * 2).min(TOGETHER_MAX) * TOGETHER_IN_FLIGHT
        } else {
            concurrency * 2
        });
        let mut last_housekeeping = tokio::time::Instant::now();
        let mut last_idle_check = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            let batch = consumer
                .batch()
                .max_messages(batch_size)
                .expires(Duration::from_secs(1))
                .messages()
                .await;
            let pulled_cleanly = match batch {
                Ok(messages) => {
                    let saw_error = std::sync::atomic::AtomicBool::new(false);
                    let received = std::sync::atomic::AtomicUsize::new(0);
                    let messages = messages.take_until(shutdown.cancelled());
                    if H::APPLY_TOGETHER {
                        messages
                            .ready_chunks((concurrency * 2).min(TOGETHER_MAX))
                            .for_each_concurrent(TOGETHER_IN_FLIGHT, |chunk| {
                                let this = self.clone();
                                let (saw_error, received) = (&saw_error, &received);
                                async move {
                                    let mut msgs = Vec::with_capacity(chunk.len());
                                    for m in chunk {
                                        match m {
                                            Ok(msg) => msgs.push(msg),
                                            Err(e) => {
                                                saw_error.store(true, std::sync::atomic::Ordering::Relaxed);
                                                tracing::debug!(consumer = %this.spec.durable, error = %e, "pull batch ended with an error");
                                            }
                                        }
                                    }
                                    received.fetch_add(msgs.len(), std::sync::atomic::Ordering::Relaxed);
                                    this.process_together(msgs).await;
                                }
                            })
                            .await;
                    } else {
                        messages
                        .for_each_concurrent(concurrency, |m| {
                            let this = self.clone();
                            let (saw_error, received) = (&saw_error, &received);
                            async move {
                                match m {
                                    Ok(msg) => {
                                        received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                        this.process(msg).await
                                    }
                                    Err(e) => {
                                        saw_error.store(true, std::sync::atomic::Ordering::Relaxed);
                                        tracing::debug!(consumer = %this.spec.durable, error = %e, "pull batch ended with an error");
                                    }
                                }
                            }
                        })
                        .await;
                    }
                    let idle = received.into_inner() == 0;
                    let check = idle && last_idle_check.elapsed() >= IDLE_CHECK;
                    if check {
                        last_idle_check = tokio::time::Instant::now();
                    }
                    !saw_error.into_inner() && !check
                }
                Err(e) => {
                    tracing::warn!(consumer = %self.spec.durable, error = %e, "pull failed");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(PULL_RETRY_DELAY) => {}
                    }
                    false
                }
            };
            // The durable may be gone (deleted, or NATS restored without it):
            // set it up again. A new durable redelivers from the start and
            // the inbox absorbs what was applied already. Asked after a
            // failed pull, and now and then while idle.
            if !pulled_cleanly && !shutdown.is_cancelled() && consumer.get_info().await.is_err() {
                tracing::warn!(consumer = %self.spec.durable, "durable consumer missing; setting it up again");
                ready.set(false);
                match self.setup_until_ok(&shutdown).await {
                    Some(c) => consumer = c,
                    None => break,
                }
                ready.set(true);
            }
            if last_housekeeping.elapsed() > Duration::from_secs(600) {
                last_housekeeping = tokio::time::Instant::now();
                self.housekeeping().await;
            }
        }
        ready.set(false);
    }

    pub(super) async fn process(&self, msg: Message) {
        let durable = self.spec.durable.as_str();
        let delivered = msg.info().map(|i| i.delivered).unwrap_or(1);
        let headers = msg.headers.clone().unwrap_or_default();
        let get = |k: &str| headers.get(k).map(|v| v.as_str().to_owned());
        let span = tracing::info_span!(
            "consume",
            consumer = durable,
            subject = %msg.subject,
            event_id = tracing::field::Empty,
            delivered,
            otel.kind = "consumer",
        );
        if let Some(tp) = get(H_TRACEPARENT) {
            jiesu_runtime::telemetry::set_remote_parent(&span, &tp);
        }
        async {
            let Some(event_id) = get(H_MSG_ID).and_then(|v| Uuid::parse_str(&v).ok()) else {
                self.dead_letter(&msg, &headers, delivered, "missing or malformed Nats-Msg-Id")
                    .await;
                return;
            };
            tracing::Span::current().record("event_id", tracing::field::display(event_id));
            let event = match <H::Event as prost::Message>::decode(msg.payload.as_ref()) {
                Ok(e) => e,
                Err(e) => {
                    let reason = format!("undecodable payload: {e}");
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                    return;
                }
            };
            let delivery = Delivery {
                event_id,
                subject: msg.subject.to_string(),
                tenant: get(H_TENANT).unwrap_or_default(),
                delivered,
            };
            // The first delivery is attempt 1 at no cost; later ones are
            // counted in the database, and only if it answers.
            let attempt = if delivered <= 1 {
                1
            } else {
                match self.count_attempt(event_id).await {
                    Ok(n) => n,
                    Err(e) => {
                        self.retry(&msg, delivered, &format!("cannot count the attempt: {e}"))
                            .await;
                        return;
                    }
                }
            };
            if attempt > self.bus.cfg.max_deliver {
                match self.already_applied(event_id).await {
                    Ok(true) => self.ack(&msg, Outcome::Duplicate).await,
                    Ok(false) => {
                        let reason = format!(
                            "gave up after {} attempts (the handler failed, crashed or timed out each time)",
                            attempt - 1
                        );
                        self.dead_letter(&msg, &headers, delivered, &reason).await;
                    }
                    Err(e) => self.retry(&msg, delivered, &e.to_string()).await,
                }
                return;
            }
            let started = std::time::Instant::now();
            let result = match AssertUnwindSafe(self.apply(event, &delivery))
                .catch_unwind()
                .await
            {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(HandleError::Reject(r))) => Err(Failure::Reject(r)),
                Ok(Err(HandleError::Db(e))) if unreachable(&e) => {
                    Err(Failure::Infrastructure(e.to_string()))
                }
                Ok(Err(e)) => Err(Failure::Handler(e.to_string())),
                Err(_) => Err(Failure::Handler("the handler panicked".into())),
            };
            metrics::histogram!("jiesu_consumer_handle_seconds", "consumer" => durable.to_owned())
                .record(started.elapsed().as_secs_f64());
            match result {
                Ok(outcome) => self.ack(&msg, outcome).await,
                Err(Failure::Reject(reason)) => {
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                }
                Err(Failure::Handler(reason)) if attempt >= self.bus.cfg.max_deliver => {
                    self.dead_letter(&msg, &headers, delivered, &reason).await;
                }
                Err(Failure::Handler(reason)) => self.retry(&msg, delivered, &reason).await,
                Err(Failure::Infrastructure(reason)) => {
                    // Not the event's fault: take the attempt back (best
                    // effort; if the database is down this fails too).
                    if delivered > 1 {
                        let _ = self.uncount_attempt(event_id).await;
                    }
                    self.retry(&msg, delivered, &reason).await;
                }
            }
        }
        .instrument(span)
        .await
    }
}
