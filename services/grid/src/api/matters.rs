//! Grid events (网格事件) and broadcasts: a grid worker reports a matter;
//! it is closed inside the grid with its result, or whistled up (吹哨) to a
//! level (intake then makes it a ticket); the share closed inside the grid
//! is counted per area; a broadcast goes to the residents' groups of grids.

use chrono::Utc;
use jiesu_auth::{Principal, Role};
use jiesu_common::{
    geo::{is_latitude, is_longitude},
    tr,
};
use jiesu_proto::{
    grid::{
        BroadcastReceipt, BroadcastRequest, BroadcastRequested, CloseEventRequest,
        EventStatsRequest, EventStatsResponse, GetEventRequest, GridEvent, GridEventClosed,
        GridEventReported, GridEventWhistled, ListEventsRequest, ListEventsResponse,
        ReportEventRequest, WhistleEventRequest,
    },
    time::{from_timestamp, to_timestamp},
};
use sea_orm::{DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use crate::{
    ctx::{ADMINS, Ctx, count},
    domain::{
        layer::Kind,
        matters::{
            StatsBy, broadcast_grids, category, check_broadcast_kind, check_level, check_open,
            check_status_filter, public, stats_row, stats_total, text,
        },
    },
    error::{GridError, noun, parse_id},
    store::events::{self, Ending, Report},
};

pub async fn report_event(
    ctx: &Ctx,
    who: &Principal,
    req: ReportEventRequest,
) -> Result<GridEvent, GridError> {
    who.require_any(&[Role::GridWorker])?;
    let tenant = who.tenant.code();
    if !is_latitude(req.lat) {
        return Err(GridError::field(
            "lat",
            tr!("必须是纬度", "must be a latitude"),
        ));
    }
    if !is_longitude(req.lon) {
        return Err(GridError::field(
            "lon",
            tr!("必须是经度", "must be a longitude"),
        ));
    }
    let content = text("content", &req.content, 2000)?;
    let cat = category("category", &req.category)?;
    let grid = match req.grid_code.trim() {
        "" => ctx
            .layers
            .get(tenant)
            .and_then(|idx| idx.locate(req.lon, req.lat).basic.cloned())
            .ok_or_else(|| {
                GridError::field(
                    "lat",
                    tr!(
                        "该位置不在本辖区的任何网格内",
                        "the point lies in no grid of the tenant"
                    ),
                )
            })?,
        code => ctx.grid(tenant, code)?,
    };
    if grid.kind != Kind::Basic {
        return Err(GridError::field(
            "grid_code",
            tr!("必须是基础网格", "must be a basic grid"),
        ));
    }
    ctx.may_work_on(who, &grid.code).await?;
    let key = req.idempotency_key.trim();
    let key = (!key.is_empty()).then(|| key.to_owned());
    let txn = ctx.db.begin().await?;
    let report = Report {
        grid: &grid,
        reporter: &who.sub,
        idempotency_key: key.clone(),
        content,
        category: cat,
        lat: req.lat,
        lon: req.lon,
    };
    let Some(event) = events::insert(&txn, tenant, report).await? else {
        // A retry with the same key: the first event.
        return events::by_key(&txn, tenant, &who.sub, key)
            .await?
            .ok_or(GridError::Internal("an idempotency key without its event"));
    };
    let fact = GridEventReported {
        tenant: tenant.to_owned(),
        event: Some(public(event.clone())),
    };
    commit_with(ctx, txn, &fact).await?;
    Ok(event)
}

/// Who may close or whistle an event (each inside their grids or scope).
const EVENT_WORKERS: [Role; 3] = [Role::GridWorker, Role::Supervisor, Role::TenantAdmin];

/// The grid of an event `who` may close or whistle: its grid's workers,
/// and supervisors and admins inside their scope. Checked before the
/// transaction, so that no second connection is taken inside it.
async fn authorize_event(ctx: &Ctx, who: &Principal, id: Uuid) -> Result<String, GridError> {
    // Refused by role before the event is looked up.
    who.require_any(&EVENT_WORKERS)?;
    let grid = events::grid_of(&ctx.db, who.tenant.code(), id)
        .await?
        .ok_or(GridError::NotFound(noun::GRID_EVENT))?;
    ctx.may_work_on(who, &grid).await?;
    Ok(grid)
}

/// Locks the event, still open in the grid `who` was authorised for.
async fn lock_open(
    txn: &DatabaseTransaction,
    tenant: &str,
    id: Uuid,
    grid: &str,
) -> Result<GridEvent, GridError> {
    let e = events::lock(txn, tenant, id)
        .await?
        .ok_or(GridError::NotFound(noun::GRID_EVENT))?;
    check_open(&e, grid)?;
    Ok(e)
}

/// Queues `fact` with the change in `txn` and commits both.
async fn commit_with<E: jiesu_proto::Event>(
    ctx: &Ctx,
    txn: DatabaseTransaction,
    fact: &E,
) -> Result<(), GridError> {
    ctx.outbox.enqueue(&txn, fact).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(())
}

pub async fn close_event(
    ctx: &Ctx,
    who: &Principal,
    req: CloseEventRequest,
) -> Result<GridEvent, GridError> {
    let result = text("result", &req.result, 2000)?;
    let id = parse_id("id", &req.id)?;
    let tenant = who.tenant.code();
    let grid = authorize_event(ctx, who, id).await?;
    let txn = ctx.db.begin().await?;
    lock_open(&txn, tenant, id, &grid).await?;
    let event = events::end(&txn, tenant, id, Ending::Closed { result: &result })
        .await?
        .ok_or(GridError::NotFound(noun::GRID_EVENT))?;
    let fact = GridEventClosed {
        tenant: tenant.to_owned(),
        event: Some(public(event.clone())),
    };
    commit_with(ctx, txn, &fact).await?;
    Ok(event)
}

pub async fn whistle_event(
    ctx: &Ctx,
    who: &Principal,
    req: WhistleEventRequest,
) -> Result<GridEvent, GridError> {
    check_level(&req.level)?;
    let reason = text("reason", &req.reason, 500)?;
    let given = category("category", &req.category)?;
    let id = parse_id("id", &req.id)?;
    let tenant = who.tenant.code();
    let grid = authorize_event(ctx, who, id).await?;
    let txn = ctx.db.begin().await?;
    let e = lock_open(&txn, tenant, id, &grid).await?;
    let category = if given.is_empty() { e.category } else { given };
    if category.is_empty() {
        return Err(GridError::field(
            "category",
            tr!(
                "必填：转为诉求需要分类",
                "is required: the ticket needs a category"
            ),
        ));
    }
    let ending = Ending::Whistled {
        level: &req.level,
        reason: &reason,
        category: &category,
    };
    let event = events::end(&txn, tenant, id, ending)
        .await?
        .ok_or(GridError::NotFound(noun::GRID_EVENT))?;
    let fact = GridEventWhistled {
        tenant: tenant.to_owned(),
        event: Some(public(event.clone())),
        reporter_sub: who.sub.clone(),
    };
    commit_with(ctx, txn, &fact).await?;
    tracing::info!(tenant = %tenant, event_id = %event.id, level = %event.level, "grid event whistled up");
    Ok(event)
}

pub async fn get_event(
    ctx: &Ctx,
    who: &Principal,
    req: GetEventRequest,
) -> Result<GridEvent, GridError> {
    // Refused by role before the event is looked up.
    who.require_any(&[
        Role::Dispatcher,
        Role::GridWorker,
        Role::Supervisor,
        Role::TenantAdmin,
    ])?;
    let id = parse_id("id", &req.id)?;
    let e = events::get(&ctx.db, who.tenant.code(), id)
        .await?
        .ok_or(GridError::NotFound(noun::GRID_EVENT))?;
    // Dispatchers read the events of their area (a whistle's ticket leads
    // them here); everyone else those of the grids they work on.
    if who.has_role(Role::Dispatcher) {
        if !e.community_code.starts_with(who.scope.prefix()) {
            return Err(GridError::NotFound(noun::GRID_EVENT));
        }
    } else {
        ctx.may_work_on(who, &e.grid_code).await?;
    }
    Ok(e)
}

pub async fn list_events(
    ctx: &Ctx,
    who: &Principal,
    req: ListEventsRequest,
) -> Result<ListEventsResponse, GridError> {
    let grids = ctx.listed_grids(who, req.grid_code.trim()).await?;
    let status = req.status.trim();
    check_status_filter(status)?;
    let events = events::list(&ctx.db, who.tenant.code(), grids, status).await?;
    Ok(ListEventsResponse { events })
}

pub async fn event_stats(
    ctx: &Ctx,
    who: &Principal,
    req: EventStatsRequest,
) -> Result<EventStatsResponse, GridError> {
    who.require_any(&[Role::Supervisor, Role::TenantAdmin, Role::Dispatcher])?;
    let from = req.from.as_ref().and_then(from_timestamp);
    let to = req.to.as_ref().and_then(from_timestamp);
    let (Some(from), Some(to)) = (from, to) else {
        return Err(GridError::field(
            "from",
            tr!("from 和 to 都必填", "from and to are required"),
        ));
    };
    if to <= from {
        return Err(GridError::field(
            "to",
            tr!("必须晚于 from", "must be after from"),
        ));
    }
    let by = StatsBy::parse(&req.by)?;
    let counts = events::stats(
        &ctx.db,
        who.tenant.code(),
        who.scope.prefix(),
        by,
        (from, to),
    )
    .await?;
    let n = |v: i64| count(usize::try_from(v).unwrap_or(0));
    let rows: Vec<_> = counts
        .into_iter()
        .map(|(key, reported, closed, whistled)| {
            stats_row(key, n(reported), n(closed), n(whistled))
        })
        .collect();
    Ok(EventStatsResponse {
        total: Some(stats_total(&rows)),
        rows,
    })
}

pub async fn broadcast(
    ctx: &Ctx,
    who: &Principal,
    req: BroadcastRequest,
) -> Result<BroadcastReceipt, GridError> {
    who.require_any(&ADMINS)?;
    let tenant = who.tenant.code();
    let kind = check_broadcast_kind(&req.kind)?;
    let title = text("title", &req.title, 60)?;
    let body = text("body", &req.body, 1000)?;
    let index = ctx.layers.get(tenant).ok_or_else(|| {
        GridError::field(
            "grid_codes",
            tr!("本辖区还没有网格", "the tenant has no grids"),
        )
    })?;
    let grids = broadcast_grids(
        &index,
        who.scope.prefix(),
        &req.grid_codes,
        &req.region_codes,
    )?;
    let id = Uuid::now_v7();
    let fact = BroadcastRequested {
        tenant: tenant.to_owned(),
        id: id.to_string(),
        kind,
        title,
        body,
        grid_codes: grids.clone(),
        at: Some(to_timestamp(Utc::now())),
    };
    events::broadcast(&ctx.db, &ctx.outbox, id, &fact, &who.sub).await?;
    Ok(BroadcastReceipt {
        id: id.to_string(),
        grid_codes: grids,
    })
}
