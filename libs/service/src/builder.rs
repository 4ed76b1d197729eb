//! [`ServiceBuilder`]: a service declares what it has; this wires it.
//!
//! Order matters and is the same for every service: the database is opened
//! (and migrated when `database.migrate_on_start`), the stream ensured if
//! the service publishes, then on [`ServiceBuilder::serve`] the port is
//! bound first — a target that cannot listen starts nothing — and only then
//! the gRPC server, consumers and tasks start. At shutdown the server and
//! every consumer and task drain first; the relay publishes what they left
//! in the outbox last, all inside the grace period.

use std::{convert::Infallible, future::Future};

use jiesu_auth::{AuthInterceptor, Verifier};
use jiesu_bus::{Bus, ConsumerSpec, Handler, Outbox, Relay, spawn_consumer};
use jiesu_runtime::{Readiness, RunningTarget, StartError, TargetCtx};
use sea_orm::DatabaseConnection;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::{
    body::Body,
    server::NamedService,
    service::{RoutesBuilder, interceptor::InterceptedService},
};
use tonic_health::ServingStatus;

use crate::{Env, Target};

type Start = Box<dyn FnOnce() -> JoinHandle<()> + Send>;

/// Builds one gRPC service target. See the module documentation.
pub struct ServiceBuilder {
    name: &'static str,
    ctx: TargetCtx,
    verifier: Verifier,
    db: DatabaseConnection,
    bus: Bus,
    outbox: Outbox,
    relay: bool,
    routes: RoutesBuilder,
    /// gRPC services reported by the health service.
    served: Vec<&'static str>,
    /// Consumers and tasks, started once the port is bound.
    starts: Vec<Start>,
}

impl ServiceBuilder {
    /// Checks `cfg` ([`Target::validate`]), opens target `T`'s database
    /// (its URL from `cfg` or `database.url`) and takes the process's bus.
    pub async fn open<T: Target>(cfg: &T::Config, env: &Env) -> Result<Self, StartError> {
        T::validate(cfg).map_err(|e| StartError::new(T::NAME, e))?;
        let db = jiesu_db::open::<T::Migrations>(T::NAME, T::database_url(cfg), &env.database)
            .await
            .map_err(|e| StartError::new(T::NAME, e))?;
        let bus = env.bus(T::NAME)?;
        Ok(Self {
            name: T::NAME,
            ctx: env.ctx.clone(),
            verifier: env.verifier.clone(),
            db,
            outbox: Outbox::new(&bus.cfg),
            bus,
            relay: false,
            routes: RoutesBuilder::default(),
            served: Vec::new(),
            starts: Vec::new(),
        })
    }

    /// The service publishes events: its stream exists before anything is
    /// written, and a relay publishes its outbox until every writer drained.
    /// A refusal by JetStream is retried until `bus.connect_timeout`: a
    /// server can fail a create for a moment (nats-server 2.9 answers
    /// "could not create storage directory" when another stream of the
    /// account is deleted at the same instant).
    pub async fn relay_outbox(mut self) -> Result<Self, StartError> {
        let deadline = tokio::time::Instant::now() + self.bus.cfg.connect_timeout;
        let mut delay = std::time::Duration::from_millis(100);
        loop {
            match self.bus.ensure_stream(self.name).await {
                Ok(_) => break,
                Err(e) if tokio::time::Instant::now() + delay < deadline => {
                    tracing::warn!(service = self.name, error = %e, "stream not ready yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(2));
                }
                Err(e) => return Err(self.error(e)),
            }
        }
        self.relay = true;
        Ok(self)
    }

    /// The service's database.
    pub fn db(&self) -> DatabaseConnection {
        self.db.clone()
    }

    /// The outbox events are written to in the same transaction as the
    /// change they announce (relayed only after [`Self::relay_outbox`]).
    pub fn outbox(&self) -> Outbox {
        self.outbox.clone()
    }

    /// The process's bus.
    pub fn bus(&self) -> Bus {
        self.bus.clone()
    }

    /// Cancelled on SIGTERM: tasks stop taking work when it fires.
    pub fn shutdown(&self) -> CancellationToken {
        self.ctx.shutdown.clone()
    }

    /// A readiness entry `<service>.<part>`, pending until set.
    pub fn readiness(&self, part: &str) -> Readiness {
        self.ctx
            .readiness
            .register(&format!("{}.{part}", self.name))
    }

    /// A start-up error of this service.
    pub fn error(&self, e: impl std::fmt::Display) -> StartError {
        StartError::new(self.name, e)
    }

    /// A gRPC service every call of which carries a bearer token, verified
    /// before the handler runs (the principal is in the request's
    /// extensions).
    pub fn grpc<S>(self, svc: S) -> Self
    where
        InterceptedService<S, AuthInterceptor>: GrpcService,
    {
        let interceptor = AuthInterceptor::new(self.verifier.clone());
        self.grpc_own_auth(InterceptedService::new(svc, interceptor))
    }

    /// A gRPC service that authenticates its callers itself (channel
    /// credentials, a service key) or serves public reads.
    pub fn grpc_own_auth<S: GrpcService>(mut self, svc: S) -> Self {
        self.served.push(S::NAME);
        self.routes.add_service(svc);
        self
    }

    /// A durable consumer of `H::Event` named `durable` (stable across
    /// releases, `<service>-<event>`); ready once subscribed.
    pub fn consumer<H: Handler>(mut self, durable: &str, handler: H) -> Self {
        let part = durable
            .strip_prefix(self.name)
            .and_then(|s| s.strip_prefix('-'))
            .unwrap_or(durable)
            .replace('-', "_");
        let ready = self.readiness(&format!("consumer.{part}"));
        let (bus, db, shutdown) = (self.bus.clone(), self.db.clone(), self.shutdown());
        let spec = ConsumerSpec::new(durable);
        self.starts.push(Box::new(move || {
            spawn_consumer(bus, db, spec, handler, shutdown, ready)
        }));
        self
    }

    /// A background task; it must return soon after `shutdown` fires. It
    /// may write the outbox: the relay drains after it.
    pub fn task<F, Fut>(mut self, run: F) -> Self
    where
        F: FnOnce(CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let shutdown = self.shutdown();
        self.starts
            .push(Box::new(move || tokio::spawn(run(shutdown))));
        self
    }

    /// Binds `<service>.grpc_addr` (port 0 allowed) and starts everything
    /// declared.
    pub async fn serve(self, addr: &str) -> Result<RunningTarget, StartError> {
        let key = format!("{}.grpc_addr", self.name);
        let (listener, local) = jiesu_runtime::grpc::bind(&key, addr)
            .await
            .map_err(|e| self.error(e))?;
        let Self {
            name,
            ctx,
            db,
            bus,
            outbox,
            relay,
            mut routes,
            served,
            starts,
            ..
        } = self;
        routes.add_service(health(&served, ctx.shutdown.clone()).await);
        let router =
            jiesu_runtime::grpc::server().add_routes(crate::panics::guard(routes.routes(), name));
        let server = jiesu_runtime::grpc::serve(
            router,
            listener,
            name,
            ctx.readiness.register(&format!("{name}.grpc")),
            ctx.shutdown.clone(),
        );
        let mut writers = vec![server];
        writers.extend(starts.into_iter().map(|start| start()));
        let tasks = if relay {
            let ready = ctx.readiness.register(&format!("{name}.outbox"));
            vec![Relay::new(db, bus, &outbox, name).spawn_after(writers, ready, &ctx)]
        } else {
            writers
        };
        Ok(RunningTarget::new(name, local, tasks))
    }
}

/// The gRPC health service: each of `served` is serving until shutdown.
async fn health(
    served: &[&'static str],
    shutdown: CancellationToken,
) -> tonic_health::pb::health_server::HealthServer<impl tonic_health::pb::health_server::Health> {
    let (reporter, service) = tonic_health::server::health_reporter();
    for name in served {
        reporter
            .set_service_status(*name, ServingStatus::Serving)
            .await;
    }
    let served = served.to_vec();
    tokio::spawn(async move {
        shutdown.cancelled().await;
        for name in served {
            reporter
                .set_service_status(name, ServingStatus::NotServing)
                .await;
        }
    });
    service
}

/// What a tonic server (or one wrapped in an interceptor) is, as the router
/// needs it.
pub trait GrpcService:
    tonic::codegen::Service<
        http::Request<Body>,
        Response: axum::response::IntoResponse,
        Error = Infallible,
        Future: Send + 'static,
    > + NamedService
    + Clone
    + Send
    + Sync
    + 'static
{
}

impl<S> GrpcService for S where
    S: tonic::codegen::Service<
            http::Request<Body>,
            Response: axum::response::IntoResponse,
            Error = Infallible,
            Future: Send + 'static,
        > + NamedService
        + Clone
        + Send
        + Sync
        + 'static
{
}
