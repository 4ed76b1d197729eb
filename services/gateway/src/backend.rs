//! gRPC clients of the services behind the gateway: lazily connected,
//! timed out, retried on "unavailable" with backoff, carrying the caller's
//! token and the trace context.

use std::{future::Future, time::Duration};

use jiesu_proto::{
    dispatch::dispatch_service_client::DispatchServiceClient,
    grid::grid_service_client::GridServiceClient,
    intake::{
        intake_service_client::IntakeServiceClient,
        public_intake_service_client::PublicIntakeServiceClient,
    },
    notification::notification_service_client::NotificationServiceClient,
};
use tonic::{Code, Request, Status, transport::Channel};

use crate::GatewayConfig;

#[derive(Clone)]
pub struct Backends {
    pub intake: IntakeServiceClient<Channel>,
    /// Intake's calls authenticated by channel credentials, or public.
    pub public: PublicIntakeServiceClient<Channel>,
    pub dispatch: DispatchServiceClient<Channel>,
    pub grid: GridServiceClient<Channel>,
    pub notification: NotificationServiceClient<Channel>,
    pub retries: u32,
}

impl Backends {
    pub fn new(cfg: &GatewayConfig) -> Result<Self, (&'static str, String)> {
        let ch = |key: &'static str, url: &str| {
            jiesu_runtime::grpc::lazy_channel(url, cfg.connect_timeout, cfg.request_timeout)
                .map_err(|e| (key, e.to_string()))
        };
        let intake = ch("gateway.intake_url", &cfg.intake_url)?;
        Ok(Self {
            intake: IntakeServiceClient::new(intake.clone())
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            public: PublicIntakeServiceClient::new(intake),
            dispatch: DispatchServiceClient::new(ch("gateway.dispatch_url", &cfg.dispatch_url)?),
            grid: GridServiceClient::new(ch("gateway.grid_url", &cfg.grid_url)?)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            notification: NotificationServiceClient::new(ch(
                "gateway.notification_url",
                &cfg.notification_url,
            )?),
            retries: cfg.retries,
        })
    }
}

/// Largest gRPC message to intake (attachments travel in one message).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A request carrying the caller's token and the current trace.
pub fn request<T>(token: &str, msg: T) -> Result<Request<T>, Status> {
    let mut req = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut req, token)?;
    jiesu_runtime::grpc::inject_traceparent(&mut req);
    Ok(req)
}

/// A request without a caller token (channel-authenticated or public),
/// carrying the current trace.
pub fn public_request<T>(msg: T) -> Request<T> {
    let mut req = Request::new(msg);
    jiesu_runtime::grpc::inject_traceparent(&mut req);
    req
}

/// True for failures of the connection rather than answers of the service:
/// `Unavailable` (nobody listening) and `Unknown` (the connection broke
/// mid-call, so the outcome is unknown). Our services never answer
/// `Unknown` themselves.
pub fn is_transport_failure(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown) && !jiesu_proto::status::is_overloaded(s)
}

/// Calls `f` until it succeeds, fails with an answer of the service, or
/// `retries` extra attempts are used. Only for calls that are safe to repeat
/// (reads, and creates carrying an idempotency key).
pub async fn with_retry<T, F, Fut>(retries: u32, mut f: F) -> Result<T, Status>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Status>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match f().await {
            Err(s) if is_transport_failure(&s) && attempt < retries => {
                attempt += 1;
                tracing::debug!(attempt, "backend unavailable; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 3).min(Duration::from_secs(2));
            }
            other => return other,
        }
    }
}
