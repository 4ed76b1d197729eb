//! Duties: the tenant's rules, generating the tasks of the current
//! periods, a worker's tasks and check-ins at the place, and compliance
//! per worker, grid and community.

use jiesu_auth::{Principal, Role};
use jiesu_common::{
    geo::{is_latitude, is_longitude},
    tr,
};
use jiesu_proto::{
    grid::{
        CheckInRequest, ComplianceRow, DutyComplianceRequest, DutyComplianceResponse, DutyRules,
        DutyTask, GenerateDutiesRequest, GenerateDutiesResponse, GetDutyRulesRequest,
        ListDutyTasksRequest, ListDutyTasksResponse,
    },
    time::from_timestamp,
};
use sea_orm::TransactionTrait;

use crate::{
    ctx::{ADMINS, Ctx, count},
    domain::duties::{
        ComplianceBy, check_position, check_rules, or_default, photo_type, report_period, share,
        task_state,
    },
    duty_rounds,
    error::{GridError, noun, parse_id},
    store::duties::{self, CheckIn},
};

pub async fn get_rules(
    ctx: &Ctx,
    who: &Principal,
    _req: GetDutyRulesRequest,
) -> Result<DutyRules, GridError> {
    who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::GridWorker])?;
    let rules = duties::rules(&ctx.db, who.tenant.code()).await?;
    Ok(DutyRules {
        rules: or_default(rules),
    })
}

pub async fn save_rules(
    ctx: &Ctx,
    who: &Principal,
    rules: DutyRules,
) -> Result<DutyRules, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    check_rules(&rules.rules)?;
    duties::replace_rules(&ctx.db, who.tenant.code(), &rules.rules).await?;
    get_rules(ctx, who, GetDutyRulesRequest::default()).await
}

pub async fn generate(
    ctx: &Ctx,
    who: &Principal,
    req: GenerateDutiesRequest,
) -> Result<GenerateDutiesResponse, GridError> {
    who.require_any(&[Role::TenantAdmin])?;
    let at = match req.at.as_ref() {
        None => chrono::Utc::now(),
        Some(ts) => from_timestamp(ts).ok_or_else(|| {
            GridError::field("at", tr!("必须是有效的时间", "must be a valid time"))
        })?,
    };
    let created = duty_rounds::generate(ctx, who.tenant.code(), at).await?;
    Ok(GenerateDutiesResponse { created })
}

pub async fn list_tasks(
    ctx: &Ctx,
    who: &Principal,
    req: ListDutyTasksRequest,
) -> Result<ListDutyTasksResponse, GridError> {
    let grids = ctx.listed_grids(who, req.grid_code.trim()).await?;
    let state = task_state(&req.state)?;
    let period = req.period.trim();
    let period = (!period.is_empty()).then_some(period);
    let tasks = duties::list_tasks(&ctx.db, who.tenant.code(), grids, state, period).await?;
    Ok(ListDutyTasksResponse { tasks })
}

pub async fn check_in(
    ctx: &Ctx,
    who: &Principal,
    req: CheckInRequest,
) -> Result<DutyTask, GridError> {
    who.require_any(&[Role::GridWorker])?;
    let tenant = who.tenant.code();
    let id = parse_id("task_id", &req.task_id)?;
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
    if req.note.chars().count() > 2000 {
        return Err(GridError::field(
            "note",
            tr!("最多 2000 个字符", "at most 2000 characters"),
        ));
    }
    let photo = photo_type(&req.photo, ctx.max_photo_bytes)?;
    // Authorised before the transaction: no second connection inside it.
    let task_grid = duties::task_grid(&ctx.db, tenant, id)
        .await?
        .ok_or(GridError::NotFound(noun::DUTY_TASK))?;
    ctx.may_work_on(who, &task_grid).await?;
    let txn = ctx.db.begin().await?;
    let (grid_code, done) = duties::lock_task(&txn, tenant, id)
        .await?
        .ok_or(GridError::NotFound(noun::DUTY_TASK))?;
    if done {
        return Err(GridError::AlreadyDone);
    }
    let grid = ctx
        .grid(tenant, &grid_code)
        .map_err(|_| GridError::GridRetired(grid_code.clone()))?;
    let distance = check_position(&grid, req.lon, req.lat, ctx.checkin_tolerance_m)?;
    let check_in = CheckIn {
        by: &who.sub,
        lat: req.lat,
        lon: req.lon,
        distance_m: distance,
        note: req.note.trim(),
        photo: photo.map(|mime| (req.photo.as_slice(), mime)),
    };
    let task = duties::complete(&txn, tenant, id, &check_in)
        .await?
        .ok_or(GridError::NotFound(noun::DUTY_TASK))?;
    txn.commit().await?;
    Ok(task)
}

pub async fn compliance(
    ctx: &Ctx,
    who: &Principal,
    req: DutyComplianceRequest,
) -> Result<DutyComplianceResponse, GridError> {
    who.require_any(&ADMINS)?;
    let period = report_period(req.period.trim()).ok_or_else(|| {
        GridError::field(
            "period",
            tr!(
                "必须是 YYYY-MM、YYYY-Www 或 YYYY-MM-DD",
                "must be YYYY-MM, YYYY-Www or YYYY-MM-DD"
            ),
        )
    })?;
    let by = ComplianceBy::parse(&req.by)?;
    let counts =
        duties::compliance(&ctx.db, who.tenant.code(), by, period, who.scope.prefix()).await?;
    let n = |v: i64| count(usize::try_from(v).unwrap_or(0));
    let rows = counts
        .into_iter()
        .map(|c| ComplianceRow {
            share: share(c.done, c.due),
            due: n(c.due),
            done: n(c.done),
            on_time: n(c.on_time),
            key: c.key,
            name: c.name,
        })
        .collect();
    Ok(DutyComplianceResponse { rows })
}
