//! The gRPC and event contracts of Jiesu, generated from `proto/`.
//!
//! Besides the generated code this crate fixes two conventions every service
//! shares: how an error travels in a `tonic::Status` (see [`status`]) and what
//! makes a protobuf message an event (see [`Event`]). It holds no behaviour.

pub mod status;
pub mod time;

#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used, missing_docs)]
pub mod jiesu {
    pub mod common {
        pub mod v1 {
            tonic::include_proto!("jiesu.common.v1");
        }
    }
    pub mod intake {
        pub mod v1 {
            tonic::include_proto!("jiesu.intake.v1");
        }
    }
    pub mod dispatch {
        pub mod v1 {
            tonic::include_proto!("jiesu.dispatch.v1");
        }
    }
    pub mod notification {
        pub mod v1 {
            tonic::include_proto!("jiesu.notification.v1");
        }
    }
    pub mod grid {
        pub mod v1 {
            tonic::include_proto!("jiesu.grid.v1");
        }
    }
    pub mod evaluation {
        pub mod v1 {
            tonic::include_proto!("jiesu.evaluation.v1");
        }
    }
}

pub use jiesu::common::v1 as common;
pub use jiesu::dispatch::v1 as dispatch;
pub use jiesu::evaluation::v1 as evaluation;
pub use jiesu::grid::v1 as grid;
pub use jiesu::intake::v1 as intake;
pub use jiesu::notification::v1 as notification;

/// gRPC metadata key carrying a service key (intake's contact hand-over).
pub const SERVICE_KEY: &str = "x-jiesu-service-key";

/// A protobuf message published as a fact on JetStream.
///
/// The subject is `<root>.<CONTEXT>.<tenant>.<NAME>`; the body is the encoded
/// message. Events never carry personal data.
pub trait Event: prost::Message + Default + Send + Sync + 'static {
    /// Bounded context that owns the event, e.g. `intake`.
    const CONTEXT: &'static str;
    /// Event name inside the context, dotted, e.g. `ticket.received`.
    const NAME: &'static str;
    /// Tenant (region code) the event concerns.
    fn tenant(&self) -> &str;
}

impl Event for intake::TicketReceived {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.received";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for intake::TicketInformationAdded {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.information_added";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for intake::TicketAnsweredDirectly {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.answered_directly";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for intake::TicketWithdrawn {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.withdrawn";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for intake::TicketMerged {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.merged";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for intake::TicketUnmerged {
    const CONTEXT: &'static str = "intake";
    const NAME: &'static str = "ticket.unmerged";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for dispatch::TicketDispatched {
    const CONTEXT: &'static str = "dispatch";
    const NAME: &'static str = "ticket.dispatched";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for dispatch::TicketProgressed {
    const CONTEXT: &'static str = "dispatch";
    const NAME: &'static str = "ticket.progressed";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for dispatch::TicketUnits {
    const CONTEXT: &'static str = "dispatch";
    const NAME: &'static str = "ticket.units";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for grid::GridsChanged {
    const CONTEXT: &'static str = "grid";
    const NAME: &'static str = "grids.changed";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// Grid events: each carries its tenant.
macro_rules! grid_event {
    ($($ty:ident => $name:literal),* $(,)?) => {$(
        impl Event for grid::$ty {
            const CONTEXT: &'static str = "grid";
            const NAME: &'static str = $name;
            fn tenant(&self) -> &str {
                &self.tenant
            }
        }
    )*};
}

grid_event! {
    GridSplit => "grid.split",
    GridMerged => "grid.merged",
    WorkerAssigned => "worker.assigned",
    GridEventReported => "grid_event.reported",
    GridEventClosed => "grid_event.closed",
    GridEventWhistled => "grid_event.whistled",
    BroadcastRequested => "broadcast.requested",
}

/// Work-order events: each wraps a [`dispatch::WorkOrderChange`].
macro_rules! work_order_event {
    ($($ty:ident => $name:literal),* $(,)?) => {$(
        impl Event for dispatch::$ty {
            const CONTEXT: &'static str = "dispatch";
            const NAME: &'static str = $name;
            fn tenant(&self) -> &str {
                self.change.as_ref().map_or("", |c| c.tenant.as_str())
            }
        }
    )*};
}

work_order_event! {
    WorkOrderSigned => "work_order.signed",
    WorkOrderReturned => "work_order.returned",
    WorkOrderReturnArbitrated => "work_order.return_arbitrated",
    WorkOrderExtensionRequested => "work_order.extension_requested",
    WorkOrderExtensionDecided => "work_order.extension_decided",
    WorkOrderResolved => "work_order.resolved",
    WorkOrderReviewed => "work_order.reviewed",
    WorkOrderClosed => "work_order.closed",
    WorkOrderReopened => "work_order.reopened",
    WorkOrderEscalated => "work_order.escalated",
    WorkOrderWhistleBlown => "work_order.whistle_blown",
    WorkOrderUnitReported => "work_order.unit_reported",
    WorkOrderNoticeIssued => "work_order.notice_issued",
    WorkOrderUpdated => "work_order.updated",
    // Read-only: every work-order event at once, for a consumer of all.
    AnyWorkOrderEvent => "work_order.*",
}

impl Event for evaluation::WarningRaised {
    const CONTEXT: &'static str = "evaluation";
    const NAME: &'static str = "warning.raised";
    fn tenant(&self) -> &str {
        self.warning.as_ref().map_or("", |w| w.tenant.as_str())
    }
}

impl Event for evaluation::WarningCleared {
    const CONTEXT: &'static str = "evaluation";
    const NAME: &'static str = "warning.cleared";
    fn tenant(&self) -> &str {
        self.warning.as_ref().map_or("", |w| w.tenant.as_str())
    }
}

impl Event for evaluation::FrequentMatterLifted {
    const CONTEXT: &'static str = "evaluation";
    const NAME: &'static str = "frequent_matter.lifted";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for evaluation::CallbackInvited {
    const CONTEXT: &'static str = "evaluation";
    const NAME: &'static str = "callback.invited";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl Event for evaluation::CallbackVerdictGiven {
    const CONTEXT: &'static str = "evaluation";
    const NAME: &'static str = "callback.verdict";
    fn tenant(&self) -> &str {
        &self.tenant
    }
}
