//! Grid events (网格事件): matters a grid worker finds. Each is closed
//! inside the grid with its result, or whistled up (吹哨): grid announces
//! `grid_event.whistled` and intake turns it into a ticket (channel grid) at
//! the chosen level; grid learns the ticket's number from intake's
//! `ticket.received`. The share closed inside the grid is counted per area
//! and period. Broadcasts (a command or emergency notice to the residents'
//! groups of grids) live here too: one more fact for notification.

use chrono::{DateTime, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_bus::{Delivery, HandleError, Handler};
use jiesu_pii::redact_text;
use jiesu_proto::{
    grid::{
        BroadcastReceipt, BroadcastRequest, BroadcastRequested, CloseEventRequest,
        EventStatsRequest, EventStatsResponse, EventStatsRow, GetEventRequest, GridEvent,
        GridEventClosed, GridEventReported, GridEventWhistled, ListEventsRequest,
        ListEventsResponse, ReportEventRequest, WhistleEventRequest,
    },
    intake::TicketReceived,
    status,
    time::{from_timestamp, to_timestamp},
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, TransactionTrait};
use tonic::Status;
use uuid::Uuid;

use crate::{
    ctx::{ADMINS, Ctx, count, db_error, parse_id},
    domain::layer::Kind,
    store::stmt,
};

/// The submitter intake records for a whistled event's ticket.
pub const SUBMITTER_PREFIX: &str = "grid-event:";

const LEVELS: [&str; 3] = ["L2", "L3", "L4"];

const COLUMNS: &str = "id, grid_code, community_code, reporter, content, category, lat, lon, \
    status, result, level, reason, ticket_id, tracking_no, reported_at, closed_at";

fn event_of(r: &sea_orm::QueryResult) -> Result<GridEvent, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let reported: DateTime<Utc> = r.try_get("", "reported_at")?;
    let closed: Option<DateTime<Utc>> = r.try_get("", "closed_at")?;
    Ok(GridEvent {
        id: id.to_string(),
        grid_code: r.try_get("", "grid_code")?,
        community_code: r.try_get("", "community_code")?,
        reporter: r.try_get("", "reporter")?,
        content: r.try_get("", "content")?,
        category: r.try_get("", "category")?,
        lat: r.try_get("", "lat")?,
        lon: r.try_get("", "lon")?,
        status: r.try_get("", "status")?,
        result: r.try_get("", "result")?,
        level: r.try_get("", "level")?,
        reason: r.try_get("", "reason")?,
        ticket_id: r.try_get("", "ticket_id")?,
        tracking_no: r.try_get("", "tracking_no")?,
        reported_at: Some(to_timestamp(reported)),
        closed_at: closed.map(to_timestamp),
    })
}

/// What a fact about an event may carry: no personal data in the text.
fn public(mut e: GridEvent) -> GridEvent {
    e.content = redact_text(&e.content);
    e.result = redact_text(&e.result);
    e.reason = redact_text(&e.reason);
    e
}

fn text(field: &str, v: &str, max: usize) -> Result<String, Status> {
    let v = v.trim();
    if v.is_empty() || v.chars().count() > max {
        return Err(status::invalid_field(
            field,
            format!("required, at most {max} characters"),
        ));
    }
    if v.chars().any(|c| c.is_control() && c != '\n') {
        return Err(status::invalid_field(
            field,
            "must not contain control characters",
        ));
    }
    Ok(v.to_owned())
}

fn category(field: &str, v: &str) -> Result<String, Status> {
    let v = v.trim();
    if v.len() > 32
        || !v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(status::invalid_field(field, "must be a category code"));
    }
    Ok(v.to_owned())
}

impl Ctx {
    async fn event_locked(
        &self,
        txn: &DatabaseTransaction,
        tenant: &str,
        id: Uuid,
    ) -> Result<GridEvent, Status> {
        let row = txn
            .query_one_raw(stmt(
                &format!(
                    "SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND id = $2 FOR UPDATE"
                ),
                vec![tenant.into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("grid event"))?;
        event_of(&row).map_err(db_error)
    }

    pub async fn report_event(
        &self,
        who: &Principal,
        req: ReportEventRequest,
    ) -> Result<GridEvent, Status> {
        who.require_any(&[Role::GridWorker])?;
        let tenant = who.tenant.code();
        if !req.lat.is_finite() || !(-90.0..=90.0).contains(&req.lat) {
            return Err(status::invalid_field("lat", "must be a latitude"));
        }
        if !req.lon.is_finite() || !(-180.0..=180.0).contains(&req.lon) {
            return Err(status::invalid_field("lon", "must be a longitude"));
        }
        let content = text("content", &req.content, 2000)?;
        let cat = category("category", &req.category)?;
        let grid = match req.grid_code.trim() {
            "" => self
                .layers
                .get(tenant)
                .and_then(|idx| idx.locate(req.lon, req.lat).basic.cloned())
                .ok_or_else(|| {
                    status::invalid_field("lat", "the point lies in no grid of the tenant")
                })?,
            code => self.grid(tenant, code)?,
        };
        if grid.kind != Kind::Basic {
            return Err(status::invalid_field("grid_code", "must be a basic grid"));
        }
        self.may_work_on(who, &grid.code).await?;
        let key = req.idempotency_key.trim();
        let key = (!key.is_empty()).then(|| key.to_owned());
        let txn = self.db.begin().await.map_err(db_error)?;
        let row = txn
            .query_one_raw(stmt(
                &format!(
                    "INSERT INTO grid_events (tenant, id, grid_code, community_code, reporter, \
                       idempotency_key, content, category, lat, lon, status) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'reported') \
                     ON CONFLICT (tenant, reporter, idempotency_key) DO NOTHING RETURNING {COLUMNS}"
                ),
                vec![
                    tenant.into(),
                    Uuid::now_v7().into(),
                    grid.code.clone().into(),
                    grid.community.clone().into(),
                    who.sub.clone().into(),
                    key.clone().into(),
                    content.into(),
                    cat.into(),
                    req.lat.into(),
                    req.lon.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let Some(row) = row else {
            // A retry with the same key: the first event.
            let row = txn
                .query_one_raw(stmt(
                    &format!(
                        "SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND reporter = $2 \
                         AND idempotency_key = $3"
                    ),
                    vec![tenant.into(), who.sub.clone().into(), key.into()],
                ))
                .await
                .map_err(db_error)?
                .ok_or_else(status::internal)?;
            return event_of(&row).map_err(db_error);
        };
        let event = event_of(&row).map_err(db_error)?;
        self.outbox
            .enqueue(
                &txn,
                &GridEventReported {
                    tenant: tenant.to_owned(),
                    event: Some(public(event.clone())),
                },
            )
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        Ok(event)
    }

    /// The grid of an event `who` may close or whistle: its grid's workers,
    /// and supervisors and admins inside their scope. Checked before the
    /// transaction, so that no second connection is taken inside it.
    async fn authorize_event(&self, who: &Principal, id: &str) -> Result<String, Status> {
        let id = parse_id("id", id)?;
        let grid: String = self
            .db
            .query_one_raw(stmt(
                "SELECT grid_code FROM grid_events WHERE tenant = $1 AND id = $2",
                vec![who.tenant.code().into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("grid event"))?
            .try_get("", "grid_code")
            .map_err(db_error)?;
        self.may_work_on(who, &grid).await?;
        Ok(grid)
    }

    /// Locks an event that is still open (the caller was authorised before
    /// the transaction, so that no second connection is taken inside it).
    async fn open_event(
        &self,
        txn: &DatabaseTransaction,
        who: &Principal,
        id: &str,
        authorized_grid: &str,
    ) -> Result<GridEvent, Status> {
        let id = parse_id("id", id)?;
        let e = self.event_locked(txn, who.tenant.code(), id).await?;
        if e.grid_code != authorized_grid {
            // Its grid was split or merged in between: ask again.
            return Err(status::coded(
                tonic::Code::Aborted,
                "grid_changed",
                "the event's grid changed meanwhile; send it again",
                None,
            ));
        }
        if e.status != "reported" {
            return Err(status::coded(
                tonic::Code::FailedPrecondition,
                "illegal_transition",
                format!("the event is already {}", e.status),
                None,
            ));
        }
        Ok(e)
    }

    pub async fn close_event(
        &self,
        who: &Principal,
        req: CloseEventRequest,
    ) -> Result<GridEvent, Status> {
        let result = text("result", &req.result, 2000)?;
        let grid = self.authorize_event(who, &req.id).await?;
        let txn = self.db.begin().await.map_err(db_error)?;
        let e = self.open_event(&txn, who, &req.id, &grid).await?;
        let row = txn
            .query_one_raw(stmt(
                &format!(
                    "UPDATE grid_events SET status = 'closed', result = $3, closed_at = now() \
                     WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
                ),
                vec![
                    who.tenant.code().into(),
                    parse_id("id", &e.id)?.into(),
                    result.into(),
                ],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("grid event"))?;
        let event = event_of(&row).map_err(db_error)?;
        self.outbox
            .enqueue(
                &txn,
                &GridEventClosed {
                    tenant: who.tenant.code().to_owned(),
                    event: Some(public(event.clone())),
                },
            )
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        Ok(event)
    }

    pub async fn whistle_event(
        &self,
        who: &Principal,
        req: WhistleEventRequest,
    ) -> Result<GridEvent, Status> {
        if !LEVELS.contains(&req.level.as_str()) {
            return Err(status::invalid_field(
                "level",
                "must be L2 (community), L3 (street) or L4 (district)",
            ));
        }
        let reason = text("reason", &req.reason, 500)?;
        let given = category("category", &req.category)?;
        let grid = self.authorize_event(who, &req.id).await?;
        let txn = self.db.begin().await.map_err(db_error)?;
        let e = self.open_event(&txn, who, &req.id, &grid).await?;
        let cat = if given.is_empty() {
            e.category.clone()
        } else {
            given
        };
        if cat.is_empty() {
            return Err(status::invalid_field(
                "category",
                "is required: the ticket needs a category",
            ));
        }
        let row = txn
            .query_one_raw(stmt(
                &format!(
                    "UPDATE grid_events SET status = 'whistled', level = $3, reason = $4, \
                       category = $5, closed_at = now() \
                     WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
                ),
                vec![
                    who.tenant.code().into(),
                    parse_id("id", &e.id)?.into(),
                    req.level.clone().into(),
                    reason.into(),
                    cat.into(),
                ],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("grid event"))?;
        let event = event_of(&row).map_err(db_error)?;
        self.outbox
            .enqueue(
                &txn,
                &GridEventWhistled {
                    tenant: who.tenant.code().to_owned(),
                    event: Some(public(event.clone())),
                    reporter_sub: who.sub.clone(),
                },
            )
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        tracing::info!(tenant = %who.tenant.code(), event_id = %event.id, level = %event.level, "grid event whistled up");
        Ok(event)
    }

    pub async fn get_event(
        &self,
        who: &Principal,
        req: GetEventRequest,
    ) -> Result<GridEvent, Status> {
        let id = parse_id("id", &req.id)?;
        let row = self
            .db
            .query_one_raw(stmt(
                &format!("SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 AND id = $2"),
                vec![who.tenant.code().into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("grid event"))?;
        let e = event_of(&row).map_err(db_error)?;
        if who.has_role(Role::Dispatcher) {
            if !e.community_code.starts_with(who.scope.prefix()) {
                return Err(status::not_found("grid event"));
            }
        } else {
            self.may_work_on(who, &e.grid_code).await?;
        }
        Ok(e)
    }

    pub async fn list_events(
        &self,
        who: &Principal,
        req: ListEventsRequest,
    ) -> Result<ListEventsResponse, Status> {
        let grid = req.grid_code.trim();
        let grids = self.listed_grids(who, grid).await?;
        let st = req.status.trim();
        if !["", "reported", "closed", "whistled"].contains(&st) {
            return Err(status::invalid_field(
                "status",
                "must be reported, closed or whistled",
            ));
        }
        let rows = self
            .db
            .query_all_raw(stmt(
                &format!(
                    "SELECT {COLUMNS} FROM grid_events WHERE tenant = $1 \
                       AND ($2::text[] IS NULL OR grid_code = ANY($2)) \
                       AND ($3 = '' OR status = $3) \
                     ORDER BY reported_at DESC LIMIT 500"
                ),
                vec![who.tenant.code().into(), grids.into(), st.into()],
            ))
            .await
            .map_err(db_error)?;
        let events = rows
            .iter()
            .map(event_of)
            .collect::<Result<_, _>>()
            .map_err(db_error)?;
        Ok(ListEventsResponse { events })
    }

    pub async fn event_stats(
        &self,
        who: &Principal,
        req: EventStatsRequest,
    ) -> Result<EventStatsResponse, Status> {
        who.require_any(&[Role::Supervisor, Role::TenantAdmin, Role::Dispatcher])?;
        let from = req.from.as_ref().and_then(from_timestamp);
        let to = req.to.as_ref().and_then(from_timestamp);
        let (Some(from), Some(to)) = (from, to) else {
            return Err(status::invalid_field("from", "from and to are required"));
        };
        if to <= from {
            return Err(status::invalid_field("to", "must be after from"));
        }
        let key = match req.by.trim() {
            "grid" => "grid_code",
            "community" | "" => "community_code",
            "street" => "left(community_code, 9)",
            "county" => "left(community_code, 6)",
            _ => {
                return Err(status::invalid_field(
                    "by",
                    "must be grid, community, street or county",
                ));
            }
        };
        let rows = self
            .db
            .query_all_raw(stmt(
                &format!(
                    "SELECT {key} AS key, count(*) AS reported, \
                       count(*) FILTER (WHERE status = 'closed') AS closed, \
                       count(*) FILTER (WHERE status = 'whistled') AS whistled \
                     FROM grid_events WHERE tenant = $1 AND starts_with(community_code, $2) \
                       AND reported_at >= $3 AND reported_at < $4 \
                     GROUP BY 1 ORDER BY 1"
                ),
                vec![
                    who.tenant.code().into(),
                    who.scope.prefix().into(),
                    from.into(),
                    to.into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        let mut total = EventStatsRow {
            key: "total".into(),
            ..EventStatsRow::default()
        };
        for r in rows {
            let n = |c: &str| -> Result<u32, Status> {
                let v: i64 = r.try_get("", c).map_err(db_error)?;
                Ok(count(usize::try_from(v).unwrap_or(0)))
            };
            let row = stats_row(
                r.try_get("", "key").map_err(db_error)?,
                n("reported")?,
                n("closed")?,
                n("whistled")?,
            );
            total.reported += row.reported;
            total.closed_in_grid += row.closed_in_grid;
            total.whistled += row.whistled;
            out.push(row);
        }
        let total = stats_row(
            total.key,
            total.reported,
            total.closed_in_grid,
            total.whistled,
        );
        Ok(EventStatsResponse {
            rows: out,
            total: Some(total),
        })
    }

    pub async fn broadcast(
        &self,
        who: &Principal,
        req: BroadcastRequest,
    ) -> Result<BroadcastReceipt, Status> {
        who.require_any(&ADMINS)?;
        let tenant = who.tenant.code();
        let kind = match req.kind.trim() {
            k @ ("command" | "emergency") => k.to_owned(),
            _ => {
                return Err(status::invalid_field(
                    "kind",
                    "must be command or emergency",
                ));
            }
        };
        let title = text("title", &req.title, 60)?;
        let body = text("body", &req.body, 1000)?;
        let index = self
            .layers
            .get(tenant)
            .ok_or_else(|| status::invalid_field("grid_codes", "the tenant has no grids"))?;
        let scope = who.scope.prefix();
        let mut grids: Vec<String> = Vec::new();
        for (i, code) in req.grid_codes.iter().enumerate() {
            if !index
                .get(code)
                .is_some_and(|g| g.community.starts_with(scope))
            {
                return Err(status::invalid_field(
                    &format!("grid_codes[{i}]"),
                    format!("no grid {code} inside your scope"),
                ));
            }
            grids.push(code.clone());
        }
        for (i, region) in req.region_codes.iter().enumerate() {
            // A region above the caller's scope reaches only the scope.
            let within = if region.starts_with(scope) {
                region.as_str()
            } else if scope.starts_with(region.as_str()) {
                scope
            } else {
                return Err(status::invalid_field(
                    &format!("region_codes[{i}]"),
                    "must lie inside your scope",
                ));
            };
            grids.extend(
                index
                    .grids()
                    .iter()
                    .filter(|g| g.kind == Kind::Basic && g.community.starts_with(within))
                    .map(|g| g.code.clone()),
            );
        }
        grids.sort();
        grids.dedup();
        if grids.is_empty() {
            return Err(status::invalid_field(
                "grid_codes",
                "name grids or regions that hold grids",
            ));
        }
        let id = Uuid::now_v7();
        let txn = self.db.begin().await.map_err(db_error)?;
        txn.execute_raw(stmt(
            "INSERT INTO broadcasts (tenant, id, kind, title, body, grid_codes, requested_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                tenant.into(),
                id.into(),
                kind.clone().into(),
                title.clone().into(),
                body.clone().into(),
                grids.clone().into(),
                who.sub.clone().into(),
            ],
        ))
        .await
        .map_err(db_error)?;
        self.outbox
            .enqueue(
                &txn,
                &BroadcastRequested {
                    tenant: tenant.to_owned(),
                    id: id.to_string(),
                    kind,
                    title,
                    body,
                    grid_codes: grids.clone(),
                    at: Some(to_timestamp(Utc::now())),
                },
            )
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        self.outbox.wake();
        Ok(BroadcastReceipt {
            id: id.to_string(),
            grid_codes: grids,
        })
    }
}

fn stats_row(key: String, reported: u32, closed: u32, whistled: u32) -> EventStatsRow {
    let ended = closed + whistled;
    EventStatsRow {
        key,
        reported,
        closed_in_grid: closed,
        whistled,
        open: reported.saturating_sub(ended),
        share_closed_in_grid: if ended > 0 {
            f64::from(closed) / f64::from(ended)
        } else {
            0.0
        },
    }
}

/// `intake ticket.received` for a whistled event (submitter
/// `grid-event:<id>`) → the event records its ticket.
pub struct TicketReceivedHandler;

#[async_trait::async_trait]
impl Handler for TicketReceivedHandler {
    type Event = TicketReceived;

    async fn handle(
        &self,
        txn: &DatabaseTransaction,
        ev: TicketReceived,
        _delivery: &Delivery,
    ) -> Result<(), HandleError> {
        let Some(event_id) = ev.submitter_sub.strip_prefix(SUBMITTER_PREFIX) else {
            return Ok(());
        };
        let id = Uuid::parse_str(event_id)
            .map_err(|_| HandleError::Reject("submitter names no grid event".into()))?;
        txn.execute_raw(stmt(
            "UPDATE grid_events SET ticket_id = $3, tracking_no = $4 WHERE tenant = $1 AND id = $2",
            vec![
                ev.tenant.into(),
                id.into(),
                ev.ticket_id.into(),
                ev.tracking_no.into(),
            ],
        ))
        .await?;
        Ok(())
    }
}
