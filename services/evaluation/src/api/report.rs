//! `GetMonthlyReport`: the month's figures in one answer, for the console
//! and the exports.

use jiesu_auth::Principal;
use jiesu_common::tr;
use jiesu_proto::{evaluation as pb, status};
use sea_orm::ConnectionTrait;
use tonic::Status;

use super::{READERS, db_error, hotspots, rates};
use crate::{domain::rates::Period, warnings};

pub async fn get(
    db: &impl ConnectionTrait,
    who: &Principal,
    req: &pb::GetMonthlyReportRequest,
) -> Result<pb::MonthlyReport, Status> {
    who.require_any(READERS)?;
    let month = req.month.trim();
    let p = Period::parse(month)
        .ok()
        .filter(|p| p.unit == crate::domain::rates::PeriodUnit::Month)
        .ok_or_else(|| {
            status::invalid_field("month", tr!("格式应为 YYYY-MM", "must be YYYY-MM"))
        })?;
    let ask = |dimension: &str| pb::GetRatesRequest {
        dimension: dimension.to_owned(),
        period: month.to_owned(),
        ..Default::default()
    };
    let units = rates::get(db, who, &ask("unit")).await?;
    let streets = rates::get(db, who, &ask("street")).await?;
    let tenants = rates::get(db, who, &ask("tenant")).await?;
    let problems = hotspots::get(
        db,
        who,
        &pb::GetHotspotsRequest {
            dimension: "category".into(),
            period: month.to_owned(),
            limit: 200,
            ..Default::default()
        },
    )
    .await?;
    let mut top_problems = problems.rows;
    top_problems.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
    top_problems.truncate(10);
    let ranked: Vec<pb::RateRow> = units.rows.iter().filter(|r| r.rank > 0).cloned().collect();
    let best_units = ranked.iter().take(5).cloned().collect();
    let worst_units = ranked.iter().rev().take(5).cloned().collect();
    // Warnings open at any time in the month.
    let start = jiesu_common::time::china_midnight(p.from);
    let end = jiesu_common::time::china_midnight(p.to + chrono::TimeDelta::days(1));
    let in_month = warnings::list(db, who.scope.prefix(), "all", (start, end), 500, 0)
        .await
        .map_err(db_error)?;
    Ok(pb::MonthlyReport {
        month: month.to_owned(),
        total: tenants.total.clone(),
        top_problems,
        best_units,
        worst_units,
        units: units.rows,
        streets: streets.rows,
        tenants: tenants.rows,
        warnings: in_month,
        formula: units.formula,
    })
}
