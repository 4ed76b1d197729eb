//! The frequency policy, proactive items (未诉先办), the season scan and the
//! history import.

use chrono::NaiveDate;
use jiesu_auth::{Principal, Role};
use jiesu_common::{time::china_today, tr};
use jiesu_proto::{evaluation as pb, status};
use sea_orm::TransactionTrait;
use tonic::{Code, Status};
use uuid::Uuid;

use super::{ADMINS, Core, READERS, db_error, text_field, views};
use crate::{domain::frequency::FrequencyPolicy, proactive};

const PLANNERS: &[Role] = &[Role::Supervisor, Role::TenantAdmin, Role::PlatformAdmin];

pub fn policy_pb(p: &FrequencyPolicy) -> pb::FrequencyPolicy {
    pb::FrequencyPolicy {
        level: p.level.clone(),
        window_days: p.window_days,
        threshold: p.threshold,
        season_weeks: p.season_weeks,
        season_years: p.season_years,
        season_min_count: p.season_min_count,
        season_ratio: p.season_ratio,
    }
}

pub async fn get_policy(core: &Core, who: &Principal) -> Result<pb::FrequencyPolicy, Status> {
    who.require_any(READERS)?;
    let p = proactive::policy(&core.db, who.tenant.code())
        .await
        .map_err(db_error)?;
    Ok(policy_pb(&p))
}

pub async fn put_policy(
    core: &Core,
    who: &Principal,
    req: &pb::FrequencyPolicy,
) -> Result<pb::FrequencyPolicy, Status> {
    who.require_any(ADMINS)?;
    let p = FrequencyPolicy {
        level: req.level.trim().to_owned(),
        window_days: req.window_days,
        threshold: req.threshold,
        season_weeks: req.season_weeks,
        season_years: req.season_years,
        season_min_count: req.season_min_count,
        season_ratio: req.season_ratio,
    };
    p.check()
        .map_err(|(field, msg)| status::invalid_field(field, msg))?;
    proactive::put_policy(&core.db, who.tenant.code(), &p, &who.sub)
        .await
        .map_err(db_error)?;
    Ok(policy_pb(&p))
}

fn item_id(raw: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(raw.trim())
        .map_err(|_| status::invalid_field("id", tr!("必须是 UUID", "must be a UUID")))
}

fn item_not_found() -> Status {
    status::not_found(tr!("未诉先办事项", "proactive item"))
}

/// The item if the caller may see it: in scope; a handler only its own
/// unit's.
async fn visible(core: &Core, who: &Principal, id: Uuid) -> Result<pb::ProactiveItem, Status> {
    let it = proactive::item(&core.db, id)
        .await
        .map_err(db_error)?
        .filter(|it| who.can_see(&it.place_code))
        .ok_or_else(item_not_found)?;
    if let Some(unit) = super::own_unit(who)
        && it.owner_unit_id != unit
    {
        return Err(item_not_found());
    }
    Ok(it)
}

pub async fn list(
    core: &Core,
    who: &Principal,
    req: &pb::ListProactiveItemsRequest,
) -> Result<pb::ListProactiveItemsResponse, Status> {
    let mut roles = READERS.to_vec();
    roles.push(Role::Handler);
    who.require_any(&roles)?;
    let level = req.level.trim();
    if !matches!(level, "" | "district" | "street" | "community") {
        return Err(status::invalid_field(
            "level",
            tr!(
                "必须是 district、street 或 community",
                "must be district, street or community"
            ),
        ));
    }
    let within = super::region_prefix(who, &req.within)?;
    let statuses: &[&str] = match req.status.trim() {
        "" | "active" => &["open", "in_progress"],
        "open" => &["open"],
        "in_progress" => &["in_progress"],
        "done" => &["done"],
        "cancelled" => &["cancelled"],
        "all" => &["open", "in_progress", "done", "cancelled"],
        _ => {
            return Err(status::invalid_field(
                "status",
                tr!(
                    "必须是 active、open、in_progress、done、cancelled 或 all",
                    "must be active, open, in_progress, done, cancelled or all"
                ),
            ));
        }
    };
    let source = req.source.trim();
    if !matches!(source, "" | "frequency" | "seasonal") {
        return Err(status::invalid_field(
            "source",
            tr!(
                "必须是 frequency 或 seasonal",
                "must be frequency or seasonal"
            ),
        ));
    }
    let (size, offset) = views::page(req.page_size, &req.page_token)?;
    let items = proactive::list_items(
        &core.db,
        &proactive::ItemFilter {
            prefix: who.scope.prefix(),
            level,
            within: &within,
            statuses,
            source,
            owner: super::own_unit(who),
            limit: size,
            offset,
        },
    )
    .await
    .map_err(db_error)?;
    let next_page_token = views::next_page(items.len(), size, offset);
    Ok(pb::ListProactiveItemsResponse {
        items,
        next_page_token,
    })
}

pub async fn get(core: &Core, who: &Principal, id: &str) -> Result<pb::ProactiveItem, Status> {
    let mut roles = READERS.to_vec();
    roles.push(Role::Handler);
    who.require_any(&roles)?;
    let mut it = visible(core, who, item_id(id)?).await?;
    it.effect = Some(
        proactive::effect(&core.db, &it, china_today())
            .await
            .map_err(db_error)?,
    );
    Ok(it)
}

pub async fn update(
    core: &Core,
    who: &Principal,
    req: &pb::UpdateProactiveItemRequest,
) -> Result<pb::ProactiveItem, Status> {
    let mut roles = PLANNERS.to_vec();
    roles.push(Role::Handler);
    who.require_any(&roles)?;
    let planner = PLANNERS.iter().any(|r| who.has_role(*r));
    let id = item_id(&req.id)?;
    let it = visible(core, who, id).await?;
    let only_planners = |field: &str| {
        status::coded(
            Code::PermissionDenied,
            "forbidden",
            tr!(
                "只有督办人员或管理员可以修改 {}",
                "only supervisors and admins may change {}",
                field
            ),
            Some(field),
        )
    };
    if !planner && it.owner_unit_id != who.unit.clone().unwrap_or_default() {
        return Err(item_not_found());
    }
    let owner = match &req.owner_unit_id {
        None => None,
        Some(_) if !planner => return Err(only_planners("owner_unit_id")),
        Some(u) => {
            let u = u.trim();
            if u.is_empty() || u.len() > 64 {
                return Err(status::invalid_field(
                    "owner_unit_id",
                    tr!("不能为空，且不超过 64 个字符", "must be 1 to 64 characters"),
                ));
            }
            Some((u.to_owned(), req.owner_unit_name.trim().to_owned()))
        }
    };
    let due = match &req.due_date {
        None => None,
        Some(_) if !planner => return Err(only_planners("due_date")),
        Some(d) => Some(
            NaiveDate::parse_from_str(d.trim(), "%Y-%m-%d")
                .ok()
                .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
                .ok_or_else(|| {
                    status::invalid_field(
                        "due_date",
                        tr!(
                            "格式应为 YYYY-MM-DD（2000 至 2100 年）",
                            "must be YYYY-MM-DD (years 2000 to 2100)"
                        ),
                    )
                })?,
        ),
    };
    let closed = matches!(it.status.as_str(), "done" | "cancelled");
    let new_status = match req.status.as_deref().map(str::trim) {
        None => None,
        Some(s @ ("in_progress" | "done")) => Some(s.to_owned()),
        Some("cancelled") if planner => Some("cancelled".to_owned()),
        Some("cancelled") => return Err(only_planners("status")),
        Some(_) => {
            return Err(status::invalid_field(
                "status",
                tr!(
                    "必须是 in_progress、done 或 cancelled",
                    "must be in_progress, done or cancelled"
                ),
            ));
        }
    };
    if closed && (new_status.is_some() || owner.is_some() || due.is_some()) {
        return Err(status::coded(
            Code::FailedPrecondition,
            "item_closed",
            tr!("该事项已办结或撤销", "the item is done or cancelled"),
            None,
        ));
    }
    let result = match &req.result {
        None => None,
        Some(r) => Some(text_field("result", r, true)?),
    };
    if new_status.as_deref() == Some("done") && result.is_none() && it.result.is_empty() {
        return Err(status::invalid_field(
            "result",
            tr!(
                "办结时必须说明处置结果",
                "say what was done when marking it done"
            ),
        ));
    }
    let note = text_field("progress_note", &req.progress_note, false)?;
    let role = if planner { "supervisor" } else { "handler" };
    let change = proactive::ItemChange {
        owner,
        due,
        status: new_status,
        note: (!note.is_empty()).then(|| (role.to_owned(), note)),
        result,
    };
    let txn = core.db.begin().await.map_err(db_error)?;
    proactive::update_item(&txn, id, &change)
        .await
        .map_err(db_error)?;
    txn.commit().await.map_err(db_error)?;
    get(core, who, &req.id).await
}

pub async fn scan(core: &Core, who: &Principal) -> Result<pb::ScanSeasonsResponse, Status> {
    who.require_any(PLANNERS)?;
    let txn = core.db.begin().await.map_err(db_error)?;
    let (created, examined) = proactive::scan_seasons(&txn, who.tenant.code(), china_today())
        .await
        .map_err(db_error)?;
    txn.commit().await.map_err(db_error)?;
    Ok(pb::ScanSeasonsResponse {
        // A narrower scope sees what the scan made inside it.
        created: created
            .into_iter()
            .filter(|it| who.can_see(&it.place_code))
            .collect(),
        examined: u32::try_from(examined).unwrap_or(u32::MAX),
    })
}

pub async fn import_history(
    core: &Core,
    who: &Principal,
    req: &pb::ImportHistoryRequest,
) -> Result<pb::ImportHistoryResponse, Status> {
    who.require_any(ADMINS)?;
    let rows = proactive::parse_history(&req.csv, who.tenant.prefix(), china_today()).map_err(
        |problems| {
            let mut msg = problems[0].clone();
            for p in &problems[1..] {
                msg = msg.then(&tr!("；", "; ")).then(p);
            }
            status::invalid_field("csv", msg)
        },
    )?;
    let first = rows.iter().map(|r| r.day).min();
    let last = rows.iter().map(|r| r.day).max();
    if !req.dry_run {
        let txn = core.db.begin().await.map_err(db_error)?;
        proactive::write_history(&txn, who.tenant.code(), &rows)
            .await
            .map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        tracing::info!(tenant = %who.tenant.code(), rows = rows.len(), "history imported");
    }
    Ok(pb::ImportHistoryResponse {
        rows: u32::try_from(rows.len()).unwrap_or(u32::MAX),
        first_day: first.map(|d| d.to_string()).unwrap_or_default(),
        last_day: last.map(|d| d.to_string()).unwrap_or_default(),
        dry_run: req.dry_run,
    })
}
