//! gRPC clients of the services behind the gateway, and the one way every
//! handler calls them: a [`Call`], which carries the caller's token (or
//! none, for the public and channel-signed endpoints) and the current
//! trace, and is sent again after a transport failure only where the call
//! site says a repeat is harmless. Clients connect lazily and time out.

use std::time::Duration;

use jiesu_proto::{
    dispatch::dispatch_service_client::DispatchServiceClient,
    evaluation::{
        evaluation_service_client::EvaluationServiceClient,
        public_evaluation_service_client::PublicEvaluationServiceClient,
    },
    grid::grid_service_client::GridServiceClient,
    intake::{
        intake_service_client::IntakeServiceClient,
        public_intake_service_client::PublicIntakeServiceClient,
    },
    notification::notification_service_client::NotificationServiceClient,
};
use tonic::{Code, Request, Response, Status, transport::Channel};

use crate::{AppState, GatewayConfig, extract::Caller};

#[derive(Clone)]
pub struct Backends {
    pub intake: IntakeServiceClient<Channel>,
    /// Intake's calls authenticated by channel credentials, or public.
    pub public: PublicIntakeServiceClient<Channel>,
    pub dispatch: DispatchServiceClient<Channel>,
    pub grid: GridServiceClient<Channel>,
    pub notification: NotificationServiceClient<Channel>,
    pub evaluation: EvaluationServiceClient<Channel>,
    /// Evaluation's tracking-page rating, called without a token.
    pub public_evaluation: PublicEvaluationServiceClient<Channel>,
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
            evaluation: EvaluationServiceClient::new(ch(
                "gateway.evaluation_url",
                &cfg.evaluation_url,
            )?)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
            public_evaluation: PublicEvaluationServiceClient::new(ch(
                "gateway.evaluation_url",
                &cfg.evaluation_url,
            )?),
            retries: cfg.retries,
        })
    }
}

/// One call to a service, as one caller. Handlers get it from
/// [`AppState::intake`] and its siblings and say, with [`Call::retried`] or
/// [`Call::once`], whether the call may be repeated.
pub struct Call<'a, C> {
    client: &'a C,
    /// The caller's token, forwarded so the service checks it again; none
    /// for the public endpoints and those authenticated by channel
    /// credentials inside the message.
    token: Option<&'a str>,
    retries: u32,
}

impl<C: Clone> Call<'_, C> {
    /// Reads, and creates carrying an idempotency key: sent again (up to
    /// `gateway.retries` more times, with backoff) while the service cannot
    /// be reached, since repeating them changes nothing.
    pub async fn retried<M: Clone, R>(
        self,
        msg: M,
        method: impl AsyncFn(C, Request<M>) -> Result<Response<R>, Status>,
    ) -> Result<R, Status> {
        self.send(msg, |m| Some(m.clone()), method).await
    }

    /// Writes, and reads the service records: sent once, since a lost
    /// answer may mean the call took effect; the client decides whether to
    /// send it again.
    pub async fn once<M, R>(
        self,
        msg: M,
        method: impl AsyncFn(C, Request<M>) -> Result<Response<R>, Status>,
    ) -> Result<R, Status> {
        self.send(msg, |_| None, method).await
    }

    /// Sends `msg` through `method` on a copy of the client and answers the
    /// service's message. After a transport failure, `again` makes the next
    /// attempt's message, or ends the call with the failure.
    async fn send<M, R>(
        self,
        msg: M,
        again: impl Fn(&M) -> Option<M>,
        method: impl AsyncFn(C, Request<M>) -> Result<Response<R>, Status>,
    ) -> Result<R, Status> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        let mut msg = msg;
        loop {
            let next = if attempt < self.retries {
                again(&msg)
            } else {
                None
            };
            match method(self.client.clone(), self.request(msg)?).await {
                Err(s) if is_transport_failure(&s) => {
                    let Some(next) = next else {
                        return Err(s);
                    };
                    attempt += 1;
                    tracing::debug!(attempt, "backend unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 3).min(Duration::from_secs(2));
                    msg = next;
                }
                answer => return answer.map(Response::into_inner),
            }
        }
    }

    /// The request for `msg`, carrying the token (if any) and the trace.
    fn request<T>(&self, msg: T) -> Result<Request<T>, Status> {
        let mut req = Request::new(msg);
        if let Some(token) = self.token {
            jiesu_auth::bearer_metadata(&mut req, token)?;
        }
        jiesu_runtime::grpc::inject_traceparent(&mut req);
        Ok(req)
    }
}

/// The services, as the verified caller or (public) as nobody.
impl AppState {
    fn call<'a, C>(&'a self, client: &'a C, caller: Option<&'a Caller>) -> Call<'a, C> {
        Call {
            client,
            token: caller.map(|c| c.token.as_str()),
            retries: self.backends.retries,
        }
    }

    pub fn intake<'a>(&'a self, caller: &'a Caller) -> Call<'a, IntakeServiceClient<Channel>> {
        self.call(&self.backends.intake, Some(caller))
    }

    /// Intake's calls made without a token: public reads, and deliveries
    /// authenticated by a channel's credentials.
    pub fn public(&self) -> Call<'_, PublicIntakeServiceClient<Channel>> {
        self.call(&self.backends.public, None)
    }

    pub fn dispatch<'a>(&'a self, caller: &'a Caller) -> Call<'a, DispatchServiceClient<Channel>> {
        self.call(&self.backends.dispatch, Some(caller))
    }

    pub fn grid<'a>(&'a self, caller: &'a Caller) -> Call<'a, GridServiceClient<Channel>> {
        self.call(&self.backends.grid, Some(caller))
    }

    pub fn notification<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> Call<'a, NotificationServiceClient<Channel>> {
        self.call(&self.backends.notification, Some(caller))
    }

    pub fn evaluation<'a>(
        &'a self,
        caller: &'a Caller,
    ) -> Call<'a, EvaluationServiceClient<Channel>> {
        self.call(&self.backends.evaluation, Some(caller))
    }

    /// Evaluation's public calls (the tracking page's rating).
    pub fn public_evaluation(&self) -> Call<'_, PublicEvaluationServiceClient<Channel>> {
        self.call(&self.backends.public_evaluation, None)
    }
}

/// Largest gRPC message to intake (attachments travel in one message).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// True for failures of the connection rather than answers of the service:
/// `Unavailable` (nobody listening) and `Unknown` (the connection broke
/// mid-call, so the outcome is unknown). Our services never answer
/// `Unknown` themselves.
pub fn is_transport_failure(s: &Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown) && !jiesu_proto::status::is_overloaded(s)
}
