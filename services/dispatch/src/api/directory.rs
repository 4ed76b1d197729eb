//! The units directory and the responsibility list (责任清单).

use jiesu_auth::{Principal, Role, principal};
use jiesu_common::{Text, tr};
use jiesu_proto::{dispatch as pb, status};
use sea_orm::{ConnectionTrait, TransactionTrait};
use tonic::{Code, Request, Response, Status};

use super::{DispatchError, field, staff};
use crate::{
    domain::responsibility,
    engine::Engine,
    store::directory::{self, UnitRow},
};

const KINDS: [&str; 4] = ["department", "street", "community", "utility"];

fn record(u: UnitRow) -> pb::UnitRecord {
    pb::UnitRecord {
        id: u.id,
        name: u.name,
        kind: u.kind,
        region_code: u.region_code,
        parent_id: u.parent_id.unwrap_or_default(),
        duty_phone: u.duty_phone,
        members: u.members,
        active: u.active,
    }
}

fn unit_id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn kinds() -> Text {
    tr!(
        "必须是 department、street、community 或 utility",
        "must be department, street, community or utility"
    )
}

fn admin(who: &Principal) -> Result<(), DispatchError> {
    Ok(who.require_any(&[Role::TenantAdmin])?)
}

fn today(e: &Engine) -> chrono::NaiveDate {
    jiesu_common::time::china_day(e.clock.now())
}

pub async fn list_units(
    e: &Engine,
    request: Request<pb::ListUnitsRequest>,
) -> Result<Response<pb::ListUnitsResponse>, Status> {
    let who = principal(&request)?;
    staff(&who)?;
    let r = request.get_ref();
    let kind = match r.kind.trim() {
        "" => None,
        k if KINDS.contains(&k) => Some(k),
        _ => return Err(field("kind", kinds()).into()),
    };
    let region = match r.region_code.trim() {
        "" => None,
        c if c.bytes().all(|b| b.is_ascii_digit()) && c.len() <= 12 => Some(c),
        _ => {
            return Err(field(
                "region_code",
                tr!("必须是行政区划代码", "must be a division code"),
            )
            .into());
        }
    };
    let rows = directory::units(&e.db, who.tenant.code(), kind, region, r.include_inactive)
        .await
        .map_err(DispatchError::from)?;
    Ok(Response::new(pb::ListUnitsResponse {
        units: rows.into_iter().map(record).collect(),
    }))
}

pub async fn put_unit(
    e: &Engine,
    request: Request<pb::UnitRecord>,
) -> Result<Response<pb::UnitRecord>, Status> {
    let who = principal(&request)?;
    admin(&who)?;
    let tenant = who.tenant.code().to_owned();
    let r = request.into_inner();
    let id = r.id.trim().to_owned();
    if !unit_id_ok(&id) {
        return Err(field(
            "id",
            tr!(
                "必须是 1 到 64 个小写字母、数字、- 或 _",
                "must be 1 to 64 lowercase letters, digits, - or _"
            ),
        )
        .into());
    }
    let name = r.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(field(
            "name",
            tr!("必须是 1 到 100 个字符", "must be 1 to 100 characters"),
        )
        .into());
    }
    let kind = r.kind.trim().to_owned();
    if !KINDS.contains(&kind.as_str()) {
        return Err(field("kind", kinds()).into());
    }
    let region = r.region_code.trim().to_owned();
    if !(region.len() >= 6 && region.len() <= 12 && region.bytes().all(|b| b.is_ascii_digit())) {
        return Err(field(
            "region_code",
            tr!(
                "必须是 6 到 12 位的行政区划代码",
                "must be a division code of 6 to 12 digits"
            ),
        )
        .into());
    }
    if !region.starts_with(&tenant) {
        return Err(field(
            "region_code",
            tr!("必须在本辖区范围内", "must lie inside the tenant's region"),
        )
        .into());
    }
    let phone = r.duty_phone.trim().to_owned();
    if phone.len() > 30
        || !phone
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'-' || b == b' ')
    {
        return Err(field(
            "duty_phone",
            tr!(
                "必须是由数字和 - 组成的办公电话",
                "must be an office number of digits and -"
            ),
        )
        .into());
    }
    if r.members.len() > 500
        || r.members
            .iter()
            .any(|m| m.trim().is_empty() || m.len() > 128)
    {
        return Err(field(
            "members",
            tr!(
                "最多 500 个账号，每个 1 到 128 个字符",
                "at most 500 account ids of 1 to 128 characters"
            ),
        )
        .into());
    }
    let parent = match r.parent_id.trim() {
        "" => None,
        p if p == id => {
            return Err(field(
                "parent_id",
                tr!("单位不能是自己的上级", "a unit cannot be its own parent"),
            )
            .into());
        }
        p => Some(p.to_owned()),
    };
    let txn = e.db.begin().await.map_err(DispatchError::from)?;
    if let Some(p) = &parent {
        // The parent exists, and this unit is not among its ancestors.
        let mut at = Some(p.clone());
        let mut hops = 0;
        while let Some(cur) = at {
            let Some(u) = directory::unit_by_id(&txn, &tenant, &cur)
                .await
                .map_err(DispatchError::from)?
            else {
                return Err(field(
                    "parent_id",
                    tr!(
                        "`{cur}` 不是本辖区的单位",
                        "`{cur}` is not a unit of the tenant"
                    ),
                )
                .into());
            };
            if u.id == id || hops > 20 {
                return Err(field(
                    "parent_id",
                    tr!(
                        "会使单位层级出现循环",
                        "would make a cycle in the hierarchy"
                    ),
                )
                .into());
            }
            at = u.parent_id;
            hops += 1;
        }
    }
    if !r.active {
        let n = directory::unit_in_use(&txn, &tenant, &id, today(e))
            .await
            .map_err(DispatchError::from)?;
        if n > 0 {
            return Err(status::coded(
                Code::FailedPrecondition,
                "unit_in_use",
                tr!(
                    "责任清单中现有 {n} 条记录指向该单位，请先修改这些记录",
                    "{n} current entries of the responsibility list name this unit; change them first"
                ),
                None,
            ));
        }
    }
    let mut members: Vec<String> = r.members.iter().map(|m| m.trim().to_owned()).collect();
    members.sort();
    members.dedup();
    let row = UnitRow {
        id: id.clone(),
        name,
        kind,
        region_code: region,
        parent_id: parent,
        duty_phone: phone,
        members,
        active: r.active,
    };
    directory::put_unit(&txn, &tenant, &row)
        .await
        .map_err(DispatchError::from)?;
    txn.commit().await.map_err(DispatchError::from)?;
    tracing::info!(tenant = %tenant, unit_id = %id, "unit saved");
    Ok(Response::new(record(row)))
}

pub async fn export(
    e: &Engine,
    request: Request<pb::ExportResponsibilitiesRequest>,
) -> Result<Response<pb::ResponsibilitiesCsv>, Status> {
    let who = principal(&request)?;
    who.require_any(&[Role::TenantAdmin, Role::Dispatcher, Role::Supervisor])
        .map_err(DispatchError::from)?;
    let list = directory::entries(&e.db, who.tenant.code())
        .await
        .map_err(DispatchError::from)?;
    let csv = responsibility::to_csv(&list).map_err(|m| {
        tracing::error!(error = %m, "writing the responsibility list");
        status::internal()
    })?;
    Ok(Response::new(pb::ResponsibilitiesCsv {
        csv,
        ..Default::default()
    }))
}

pub async fn import(
    e: &Engine,
    request: Request<pb::ResponsibilitiesCsv>,
) -> Result<Response<pb::ImportResponsibilitiesResponse>, Status> {
    let who = principal(&request)?;
    admin(&who)?;
    let tenant = who.tenant.code().to_owned();
    let text = &request.get_ref().csv;
    let refuse = |errors: Vec<Text>| -> Status {
        let shown = Text::join(errors.iter().take(20));
        let more = errors.len().saturating_sub(20);
        let tail = if more > 0 {
            tr!("（另有 {more} 处）", " (and {more} more)")
        } else {
            Text::default()
        };
        status::invalid_field("csv", shown.then(&tail))
    };
    let req = request.get_ref();
    if req.known_categories.is_empty() {
        return Err(field(
            "known_categories",
            tr!(
                "必填：本辖区分类树的全部编码",
                "is required: the codes of the tenant's category tree"
            ),
        )
        .into());
    }
    // Every problem of the file in one answer: its lines, its conflicts,
    // unknown categories and (below) unknown units.
    let (lines, mut errors) = responsibility::read_csv(text, &tenant);
    errors.extend(responsibility::unknown_categories(
        &lines,
        &req.known_categories,
    ));
    if lines.len() > 20_000 {
        return Err(field("csv", tr!("最多 20000 条", "at most 20000 entries")).into());
    }
    let txn = e.db.begin().await.map_err(DispatchError::from)?;
    // Every unit named must be an active unit of the tenant.
    let known: Vec<String> = directory::units(&txn, &tenant, None, None, false)
        .await
        .map_err(DispatchError::from)?
        .into_iter()
        .map(|u| u.id)
        .collect();
    for (line, entry) in &lines {
        for u in std::iter::once(&entry.lead).chain(&entry.co) {
            if !known.contains(u) {
                errors.push(responsibility::at_line(
                    *line,
                    &tr!(
                        "`{u}` 不是本辖区在用的单位",
                        "`{u}` is not an active unit of the tenant"
                    ),
                ));
            }
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| line_of(&e.en));
        return Err(refuse(errors));
    }
    let list: Vec<responsibility::Entry> = lines.into_iter().map(|(_, e)| e).collect();
    if req.dry_run {
        txn.rollback().await.map_err(DispatchError::from)?;
    } else {
        directory::replace_entries(&txn, &tenant, &list)
            .await
            .map_err(DispatchError::from)?;
        txn.commit().await.map_err(DispatchError::from)?;
        tracing::info!(tenant = %tenant, entries = list.len(), "responsibility list replaced");
    }
    Ok(Response::new(pb::ImportResponsibilitiesResponse {
        entries: u32::try_from(list.len()).unwrap_or(u32::MAX),
        dry_run: req.dry_run,
    }))
}

/// The line a problem names first (`line N: ...`, `lines N and M: ...`), so
/// the answer reads top to bottom.
fn line_of(problem: &str) -> usize {
    problem
        .trim_start_matches("lines ")
        .trim_start_matches("line ")
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

pub async fn gaps(
    e: &Engine,
    request: Request<pb::ResponsibilityGapsRequest>,
) -> Result<Response<pb::ResponsibilityGapsResponse>, Status> {
    let who = principal(&request)?;
    who.require_any(&[Role::TenantAdmin, Role::Dispatcher, Role::Supervisor])
        .map_err(DispatchError::from)?;
    let tenant = who.tenant.code().to_owned();
    let categories = &request.get_ref().categories;
    if categories.len() > 5000 {
        return Err(field("categories", tr!("最多 5000 个", "at most 5000")).into());
    }
    let streets = directory::units(&e.db, &tenant, Some("street"), None, false)
        .await
        .map_err(DispatchError::from)?;
    let mut regions: Vec<(String, String)> = streets
        .into_iter()
        .map(|u| (u.region_code, u.name))
        .collect();
    regions.sort();
    regions.dedup_by(|a, b| a.0 == b.0);
    if regions.is_empty() {
        regions.push((tenant.clone(), String::new()));
    }
    let list = directory::entries(&e.db, &tenant)
        .await
        .map_err(DispatchError::from)?;
    let codes: Vec<String> = regions.iter().map(|(c, _)| c.clone()).collect();
    let found = responsibility::gaps(&list, categories, &codes, today(e));
    Ok(Response::new(pb::ResponsibilityGapsResponse {
        gaps: found
            .into_iter()
            .map(|(category, region_code)| pb::ResponsibilityGap {
                region_name: regions
                    .iter()
                    .find(|(c, _)| *c == region_code)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
                category,
                region_code,
            })
            .collect(),
        regions: codes,
    }))
}

/// Whether `who` may act for the unit its token names: a unit with a
/// member list admits only its members.
pub async fn may_act_for_unit<C: ConnectionTrait>(
    conn: &C,
    who: &Principal,
) -> Result<bool, DispatchError> {
    let Some(unit) = &who.unit else {
        return Ok(true);
    };
    let row = directory::unit_by_id(conn, who.tenant.code(), unit).await?;
    Ok(match row {
        Some(u) => u.active && (u.members.is_empty() || u.members.contains(&who.sub)),
        None => false,
    })
}
