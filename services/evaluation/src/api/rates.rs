//! `GetRates`: rollups summed over a period, turned into rates with the
//! formula in force on the period's first day, ranked, beside the period
//! before.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use jiesu_auth::Principal;
use jiesu_common::tr;
use jiesu_proto::{evaluation as pb, status};
use sea_orm::ConnectionTrait;
use tonic::Status;

use super::{db_error, views};
use crate::{
    domain::{
        counts::{Counts, DIMENSIONS},
        rates::{Formula, Period, Rates, rates},
    },
    store::{self, formulas},
};

const REGION_DIMS: [&str; 3] = ["district", "street", "community"];

pub(super) fn period(period: &str, from: &str, to: &str) -> Result<Period, Status> {
    let day = |field: &str, raw: &str| {
        NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
            .ok()
            .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
            .ok_or_else(|| {
                status::invalid_field(
                    field,
                    tr!(
                        "格式应为 YYYY-MM-DD（2000 至 2100 年）",
                        "must be YYYY-MM-DD (years 2000 to 2100)"
                    ),
                )
            })
    };
    match (period.trim(), from.trim(), to.trim()) {
        (p, "", "") if !p.is_empty() => {
            Period::parse(p).map_err(|m| status::invalid_field("period", m))
        }
        ("", f, t) if !f.is_empty() && !t.is_empty() => {
            Period::range(day("from", f)?, day("to", t)?)
                .map_err(|m| status::invalid_field("to", m))
        }
        ("", "", "") => Err(status::invalid_field(
            "period",
            tr!(
                "必须给出 period，或同时给出 from 和 to",
                "give period, or both from and to"
            ),
        )),
        ("", _, "") => Err(status::invalid_field(
            "to",
            tr!("不能为空", "must not be empty"),
        )),
        ("", "", _) => Err(status::invalid_field(
            "from",
            tr!("不能为空", "must not be empty"),
        )),
        _ => Err(status::invalid_field(
            "period",
            tr!(
                "period 与 from/to 只能二选一",
                "give either period or from/to, not both"
            ),
        )),
    }
}

fn rates_pb(r: &Rates) -> pb::Rates {
    let round = |x: Option<f64>| x.map(|v| (v * 1e6).round() / 1e6);
    pb::Rates {
        response: round(r.response),
        resolution: round(r.resolution),
        satisfaction: round(r.satisfaction),
        composite: round(r.composite),
        sign_on_time: round(r.sign_on_time),
        resolve_on_time: round(r.resolve_on_time),
        same_day: round(r.same_day),
        return_rate: round(r.return_rate),
        reopen_rate: round(r.reopen_rate),
        avg_work_hours: round(r.avg_work_hours),
    }
}

/// Ranks by composite score, best first; ties share a rank. Rows without a
/// score are not ranked.
fn ranks(rows: &[(String, Rates)]) -> BTreeMap<String, u32> {
    let mut scored: Vec<(&String, f64)> = rows
        .iter()
        .filter_map(|(k, r)| r.composite.map(|c| (k, (c * 1e6).round() / 1e6)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out = BTreeMap::new();
    let mut last: Option<(f64, u32)> = None;
    for (i, (k, score)) in scored.into_iter().enumerate() {
        let rank = match last {
            Some((s, r)) if s == score => r,
            _ => u32::try_from(i + 1).unwrap_or(u32::MAX),
        };
        last = Some((score, rank));
        out.insert(k.clone(), rank);
    }
    out
}

pub async fn get(
    db: &impl ConnectionTrait,
    who: &Principal,
    req: &pb::GetRatesRequest,
) -> Result<pb::RatesResponse, Status> {
    let dim = req.dimension.trim();
    if !DIMENSIONS.contains(&dim) {
        return Err(status::invalid_field(
            "dimension",
            tr!("必须是 {} 之一", "must be one of {}", DIMENSIONS.join(", ")),
        ));
    }
    let p = period(&req.period, &req.from, &req.to)?;
    let within = req.within.trim();
    if !within.is_empty() && !REGION_DIMS.contains(&dim) {
        return Err(status::invalid_field(
            "within",
            tr!(
                "只能与 district、street、community 维度一起使用",
                "only goes with the district, street and community dimensions"
            ),
        ));
    }
    let within = if REGION_DIMS.contains(&dim) {
        super::region_prefix(who, within)?
    } else {
        String::new()
    };
    // A handler reads only its own unit's row.
    let mut keys: Vec<String> = req.keys.iter().map(|k| k.trim().to_owned()).collect();
    if let Some(unit) = super::own_unit(who) {
        if dim != "unit" {
            return Err(status::permission_denied(tr!(
                "承办人员只能查看本单位（dimension=unit）的考核数据",
                "a handler reads its own unit's figures only (dimension=unit)"
            )));
        }
        keys = vec![unit.to_owned()];
    }
    let prefix = who.scope.prefix();
    let within = within.as_str();
    let all_formulas = formulas::list(db, who.tenant.code())
        .await
        .map_err(db_error)?;
    let (formula, later) = formulas::in_force(&all_formulas, p.from, p.to);
    let prev = p.previous();

    let sum = async |q: &Period| -> Result<Vec<(String, Counts)>, Status> {
        let rows = store::sum_rollups(db, dim, prefix, q.from, q.to, within)
            .await
            .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter(|(k, _)| keys.is_empty() || keys.contains(k))
            .collect())
    };
    let now_rows = sum(&p).await?;
    let (prev_rows, prev_formula) = match &prev {
        Some(q) => (
            sum(q).await?,
            formulas::in_force(&all_formulas, q.from, q.to).0.formula,
        ),
        None => (Vec::new(), Formula::default()),
    };
    let judged = |rows: &[(String, Counts)], f: &Formula| -> Vec<(String, Rates)> {
        rows.iter().map(|(k, c)| (k.clone(), rates(c, f))).collect()
    };
    let now_rates = judged(&now_rows, &formula.formula);
    let prev_rates = judged(&prev_rows, &prev_formula);
    let (now_rank, prev_rank) = (ranks(&now_rates), ranks(&prev_rates));
    let prev_map: BTreeMap<&String, &Rates> = prev_rates.iter().map(|(k, r)| (k, r)).collect();
    let name_dim = match dim {
        "unit" => "unit",
        "category1" | "category2" | "category" => "category",
        _ => "",
    };
    let names = if name_dim.is_empty() {
        BTreeMap::new()
    } else {
        store::key_names(db, name_dim, prefix)
            .await
            .map_err(db_error)?
    };
    let mut total = Counts::default();
    let mut rows: Vec<pb::RateRow> = now_rows
        .iter()
        .zip(&now_rates)
        .map(|((key, c), (_, r))| {
            total.add(c);
            pb::RateRow {
                key: key.clone(),
                name: names.get(key).cloned().unwrap_or_default(),
                counts: Some(views::counts(c)),
                rates: Some(rates_pb(r)),
                rank: now_rank.get(key).copied().unwrap_or(0),
                previous: prev_map.get(key).map(|r| rates_pb(r)),
                previous_rank: prev_rank.get(key).copied().unwrap_or(0),
            }
        })
        .collect();
    rows.sort_by_key(|r| (r.rank == 0, r.rank, r.key.clone()));
    let total_rates = rates(&total, &formula.formula);
    let mut prev_total = Counts::default();
    for (_, c) in &prev_rows {
        prev_total.add(c);
    }
    Ok(pb::RatesResponse {
        dimension: dim.to_owned(),
        from: p.from.to_string(),
        to: p.to.to_string(),
        previous_from: prev.map(|q| q.from.to_string()).unwrap_or_default(),
        previous_to: prev.map(|q| q.to.to_string()).unwrap_or_default(),
        formula: Some(views::formula(&formula)),
        formula_changes_within: later.iter().map(ToString::to_string).collect(),
        rows,
        total: Some(pb::RateRow {
            key: String::new(),
            name: "合计".into(),
            counts: Some(views::counts(&total)),
            rates: Some(rates_pb(&total_rates)),
            rank: 0,
            previous: (!prev_rows.is_empty()).then(|| rates_pb(&rates(&prev_total, &prev_formula))),
            previous_rank: 0,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_a_rank_and_unscored_rows_are_not_ranked() {
        let r = |c: Option<f64>| Rates {
            composite: c,
            ..Rates::default()
        };
        let rows = vec![
            ("a".to_owned(), r(Some(80.0))),
            ("b".to_owned(), r(Some(95.0))),
            ("c".to_owned(), r(Some(80.0))),
            ("d".to_owned(), r(None)),
        ];
        let got = ranks(&rows);
        assert_eq!(got.get("b"), Some(&1));
        assert_eq!(got.get("a"), Some(&2));
        assert_eq!(got.get("c"), Some(&2));
        assert_eq!(got.get("d"), None);
    }
}
