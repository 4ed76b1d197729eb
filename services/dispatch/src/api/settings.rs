//! The tenant admin's SLA policy and working calendar.

use chrono::{Datelike, NaiveDate};
use jiesu_auth::{Role, principal};
use jiesu_common::tr;
use jiesu_proto::dispatch as pb;
use sea_orm::{ConnectionTrait, TransactionTrait};
use tonic::{Request, Response, Status};

use super::{DispatchError, field};
use crate::{
    domain::{
        calendar::{Calendar, Shift, china},
        sla::{Limit, Policy, Rule},
    },
    engine::Engine,
    store::settings::{self, stmt},
};

const READERS: [Role; 4] = [
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];

fn policy_view(s: &settings::Settings) -> pb::SlaPolicy {
    pb::SlaPolicy {
        rules: s
            .policy
            .rules()
            .iter()
            .map(|r| pb::SlaRule {
                category: r.category.clone(),
                urgency: r.urgency.clone(),
                sign_for: r.sign_for.to_string(),
                first_response: r.first_response.to_string(),
                resolve: r.resolve.to_string(),
            })
            .collect(),
        reminder_at: s.reminder_at,
        supervise_after: s.supervise_after.to_string(),
        review_required: s.rules.review_required,
        max_extensions: s.rules.max_extensions,
        max_extension_days: s.rules.max_extension_days,
        max_reopens: s.rules.max_reopens,
        lift_after_returns: s.rules.lift_after_returns,
        allow_pause: s.rules.allow_pause,
        restart_on_redispatch: s.restart_on_redispatch,
        report_in_within: s.report_in_within.to_string(),
    }
}

pub async fn get_policy(
    e: &Engine,
    request: Request<pb::GetSlaPolicyRequest>,
) -> Result<Response<pb::SlaPolicy>, Status> {
    let who = principal(&request)?;
    who.require_any(&READERS).map_err(DispatchError::from)?;
    let s = settings::load(&e.db, who.tenant.code())
        .await
        .map_err(DispatchError::from)?;
    Ok(Response::new(policy_view(&s)))
}

fn limit_field(raw: &str, name: &'static str) -> Result<Limit, DispatchError> {
    Limit::parse(raw).map_err(|m| field(name, m))
}

fn at_most(v: u32, max: u32, name: &'static str) -> Result<i32, DispatchError> {
    if v > max {
        return Err(field(name, tr!("最多 {max}", "at most {max}")));
    }
    Ok(i32::try_from(v).unwrap_or(i32::MAX))
}

pub async fn put_policy(
    e: &Engine,
    request: Request<pb::SlaPolicy>,
) -> Result<Response<pb::SlaPolicy>, Status> {
    let who = principal(&request)?;
    who.require_any(&[Role::TenantAdmin])
        .map_err(DispatchError::from)?;
    let p = request.into_inner();
    if p.rules.len() > 500 {
        return Err(field("rules", tr!("最多 500 条规则", "at most 500 rules")).into());
    }
    let mut rules = Vec::with_capacity(p.rules.len());
    for r in &p.rules {
        rules.push(Rule {
            category: r.category.trim().to_owned(),
            urgency: r.urgency.trim().to_owned(),
            sign_for: limit_field(&r.sign_for, "rules.sign_for")?,
            first_response: limit_field(&r.first_response, "rules.first_response")?,
            resolve: limit_field(&r.resolve, "rules.resolve")?,
        });
    }
    Policy::new(rules.clone()).map_err(|m| field("rules", m))?;
    if !(0.5..=0.95).contains(&p.reminder_at) {
        return Err(field(
            "reminder_at",
            tr!("必须在 0.5 到 0.95 之间", "must be between 0.5 and 0.95"),
        )
        .into());
    }
    let supervise = limit_field(&p.supervise_after, "supervise_after")?;
    let report = limit_field(&p.report_in_within, "report_in_within")?;
    if p.max_extension_days == 0 {
        return Err(field("max_extension_days", tr!("至少为 1", "at least 1")).into());
    }
    let values = vec![
        who.tenant.code().into(),
        p.reminder_at.into(),
        supervise.to_string().into(),
        p.review_required.into(),
        at_most(p.max_extensions, 10, "max_extensions")?.into(),
        at_most(p.max_extension_days, 60, "max_extension_days")?.into(),
        at_most(p.max_reopens, 10, "max_reopens")?.into(),
        at_most(p.lift_after_returns, 10, "lift_after_returns")?.into(),
        p.allow_pause.into(),
        p.restart_on_redispatch.into(),
        report.to_string().into(),
    ];
    let tenant = who.tenant.code().to_owned();
    let txn = e.db.begin().await.map_err(DispatchError::from)?;
    let save = async {
        txn.execute_raw(stmt(
            "INSERT INTO sla_policies (tenant, reminder_at, supervise_after, review_required, \
             max_extensions, max_extension_days, max_reopens, lift_after_returns, allow_pause, \
             restart_on_redispatch, report_in_within, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now()) \
             ON CONFLICT (tenant) DO UPDATE SET reminder_at = $2, supervise_after = $3, \
             review_required = $4, max_extensions = $5, max_extension_days = $6, max_reopens = $7, \
             lift_after_returns = $8, allow_pause = $9, restart_on_redispatch = $10, \
             report_in_within = $11, updated_at = now()",
            values,
        ))
        .await?;
        txn.execute_raw(stmt(
            "DELETE FROM sla_rules WHERE tenant = $1",
            vec![tenant.clone().into()],
        ))
        .await?;
        for r in &rules {
            txn.execute_raw(stmt(
                "INSERT INTO sla_rules (tenant, category, urgency, sign_for, first_response, resolve) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                vec![
                    tenant.clone().into(),
                    r.category.clone().into(),
                    r.urgency.clone().into(),
                    r.sign_for.to_string().into(),
                    r.first_response.to_string().into(),
                    r.resolve.to_string().into(),
                ],
            ))
            .await?;
        }
        Ok::<(), sea_orm::DbErr>(())
    };
    save.await.map_err(DispatchError::from)?;
    txn.commit().await.map_err(DispatchError::from)?;
    e.settings.forget(&tenant);
    tracing::info!(tenant = %tenant, rules = rules.len(), "SLA policy replaced");
    let s = settings::load(&e.db, &tenant)
        .await
        .map_err(DispatchError::from)?;
    Ok(Response::new(policy_view(&s)))
}

async fn calendar_view<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    year: i32,
) -> Result<pb::CalendarView, DispatchError> {
    let cal = settings::load_calendar(conn, tenant).await?;
    let notes = conn
        .query_all_raw(stmt(
            "SELECT day, note FROM calendar_days WHERE tenant = $1 \
             AND day >= make_date($2, 1, 1) AND day < make_date($2 + 1, 1, 1)",
            vec![tenant.into(), year.into()],
        ))
        .await?;
    let mut noted: Vec<(NaiveDate, String)> = Vec::new();
    for r in notes {
        noted.push((r.try_get("", "day")?, r.try_get("", "note")?));
    }
    Ok(pb::CalendarView {
        year,
        days: cal
            .special_days(year)
            .into_iter()
            .map(|(d, holiday)| pb::CalendarDay {
                date: d.format("%Y-%m-%d").to_string(),
                kind: if holiday { "holiday" } else { "workday" }.into(),
                note: noted
                    .iter()
                    .find(|(x, _)| *x == d)
                    .map(|(_, n)| n.clone())
                    .unwrap_or_default(),
            })
            .collect(),
        shifts: cal.shifts().iter().map(ToString::to_string).collect(),
    })
}

pub async fn get_calendar(
    e: &Engine,
    request: Request<pb::GetCalendarRequest>,
) -> Result<Response<pb::CalendarView>, Status> {
    let who = principal(&request)?;
    who.require_any(&READERS).map_err(DispatchError::from)?;
    let year = match request.get_ref().year {
        0 => e.clock.now().with_timezone(&china()).year(),
        y if (2000..=2100).contains(&y) => y,
        _ => {
            return Err(field(
                "year",
                tr!("必须在 2000 到 2100 之间", "must be 2000 to 2100"),
            )
            .into());
        }
    };
    Ok(Response::new(
        calendar_view(&e.db, who.tenant.code(), year).await?,
    ))
}

pub async fn set_calendar(
    e: &Engine,
    request: Request<pb::SetCalendarDaysRequest>,
) -> Result<Response<pb::CalendarView>, Status> {
    let who = principal(&request)?;
    who.require_any(&[Role::TenantAdmin])
        .map_err(DispatchError::from)?;
    let r = request.into_inner();
    if r.days.is_empty() && r.shifts.is_empty() {
        return Err(field(
            "days",
            tr!(
                "请给出要修改的日期或工作时段",
                "give days to change or working hours"
            ),
        )
        .into());
    }
    if r.days.len() > 400 {
        return Err(field("days", tr!("一次最多 400 天", "at most 400 days at once")).into());
    }
    let mut days = Vec::with_capacity(r.days.len());
    for d in &r.days {
        let date = NaiveDate::parse_from_str(d.date.trim(), "%Y-%m-%d").map_err(|_| {
            field(
                "days.date",
                tr!(
                    "`{}` 不是 YYYY-MM-DD 格式的日期",
                    "`{}` is not a date YYYY-MM-DD",
                    d.date
                ),
            )
        })?;
        let kind = match d.kind.trim() {
            k @ ("holiday" | "workday" | "default") => k.to_owned(),
            _ => {
                return Err(field(
                    "days.kind",
                    tr!(
                        "必须是 holiday、workday 或 default",
                        "must be holiday, workday or default"
                    ),
                )
                .into());
            }
        };
        if d.note.chars().count() > 100 {
            return Err(field(
                "days.note",
                tr!("最多 100 个字符", "at most 100 characters"),
            )
            .into());
        }
        days.push((date, kind, d.note.trim().to_owned()));
    }
    let mut shifts = Vec::with_capacity(r.shifts.len());
    for s in &r.shifts {
        shifts.push(Shift::parse(s).map_err(|m| field("shifts", m))?);
    }
    let tenant = who.tenant.code().to_owned();
    // The result must be a calendar: shifts in order, no day both ways.
    let current = settings::load_calendar(&e.db, &tenant)
        .await
        .map_err(DispatchError::from)?;
    let check_shifts = if shifts.is_empty() {
        current.shifts().to_vec()
    } else {
        shifts.clone()
    };
    Calendar::new([], [], check_shifts).map_err(|m| field("shifts", m.text()))?;
    let txn = e.db.begin().await.map_err(DispatchError::from)?;
    let save = async {
        for (date, kind, note) in &days {
            txn.execute_raw(stmt(
                "INSERT INTO calendar_days (tenant, day, kind, note) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (tenant, day) DO UPDATE SET kind = $3, note = $4",
                vec![
                    tenant.clone().into(),
                    (*date).into(),
                    kind.clone().into(),
                    note.clone().into(),
                ],
            ))
            .await?;
        }
        if !shifts.is_empty() {
            let list: Vec<String> = shifts.iter().map(ToString::to_string).collect();
            txn.execute_raw(stmt(
                "INSERT INTO calendar_shifts (tenant, shifts) VALUES ($1, $2) \
                 ON CONFLICT (tenant) DO UPDATE SET shifts = $2",
                vec![tenant.clone().into(), list.into()],
            ))
            .await?;
        }
        Ok::<(), sea_orm::DbErr>(())
    };
    save.await.map_err(DispatchError::from)?;
    txn.commit().await.map_err(DispatchError::from)?;
    e.settings.forget(&tenant);
    tracing::info!(tenant = %tenant, days = days.len(), "calendar changed");
    let year = days.first().map_or_else(
        || e.clock.now().with_timezone(&china()).year(),
        |(d, _, _)| d.year(),
    );
    Ok(Response::new(calendar_view(&e.db, &tenant, year).await?))
}
