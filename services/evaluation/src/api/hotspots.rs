//! `GetHotspots`: rising categories and places, this period against the
//! previous one and the same period a year before, with series for charts.

use std::collections::BTreeMap;

use chrono::{Datelike, Months, NaiveDate, TimeDelta};
use jiesu_auth::Principal;
use jiesu_common::tr;
use jiesu_proto::{evaluation as pb, status};
use sea_orm::ConnectionTrait;
use tonic::Status;

use super::{READERS, db_error, rates::period};
use crate::{
    domain::{counts::C, hotspots::rising},
    store,
};

const DIMENSIONS: [&str; 6] = [
    "category1",
    "category2",
    "category",
    "district",
    "street",
    "community",
];

async fn received(
    db: &impl ConnectionTrait,
    dim: &str,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
    within: &str,
) -> Result<BTreeMap<String, i64>, Status> {
    Ok(store::sum_rollups(db, dim, prefix, from, to, within)
        .await
        .map_err(db_error)?
        .into_iter()
        .map(|(k, c)| (k, c.get(C::Received)))
        .collect())
}

/// The buckets of a period: its days, or its months when longer than 62
/// days.
fn buckets(from: NaiveDate, to: NaiveDate) -> (Vec<NaiveDate>, bool) {
    let monthly = (to - from).num_days() >= 62;
    let mut out = Vec::new();
    let mut d = if monthly {
        from.with_day(1).unwrap_or(from)
    } else {
        from
    };
    while d <= to {
        out.push(d);
        d = if monthly {
            match d.checked_add_months(Months::new(1)) {
                Some(n) => n,
                None => break,
            }
        } else {
            d + TimeDelta::days(1)
        };
    }
    (out, monthly)
}

pub async fn get(
    db: &impl ConnectionTrait,
    who: &Principal,
    req: &pb::GetHotspotsRequest,
) -> Result<pb::HotspotsResponse, Status> {
    who.require_any(READERS)?;
    let dim = req.dimension.trim();
    if !DIMENSIONS.contains(&dim) {
        return Err(status::invalid_field(
            "dimension",
            tr!("必须是 {} 之一", "must be one of {}", DIMENSIONS.join(", ")),
        ));
    }
    let within = req.within.trim();
    let place = matches!(dim, "district" | "street" | "community");
    if !within.is_empty() && !place {
        return Err(status::invalid_field(
            "within",
            tr!(
                "只能与地点维度（district、street、community）一起使用",
                "goes with the place dimensions (district, street, community) only"
            ),
        ));
    }
    let within = if place {
        super::region_prefix(who, within)?
    } else {
        String::new()
    };
    let within = within.as_str();
    let floor = match req.min_count {
        0 => 10,
        n => i64::from(n),
    };
    let limit = match req.limit {
        0 => 20,
        n @ 1..=200 => n as usize,
        _ => {
            return Err(status::invalid_field(
                "limit",
                tr!("必须在 1 到 200 之间", "must be between 1 and 200"),
            ));
        }
    };
    let p = period(&req.period, &req.from, &req.to)?;
    let prefix = who.scope.prefix();
    let now = received(db, dim, prefix, p.from, p.to, within).await?;
    let prev = p.previous();
    let before = match &prev {
        Some(q) => received(db, dim, prefix, q.from, q.to, within).await?,
        None => BTreeMap::new(),
    };
    let ly = p.year_before();
    let mut last_year = match &ly {
        Some(q) => received(db, dim, prefix, q.from, q.to, within).await?,
        None => BTreeMap::new(),
    };
    if let Some(q) = &ly {
        for (k, n) in store::history_sum(db, dim, prefix, q.from, q.to, within)
            .await
            .map_err(db_error)?
        {
            *last_year.entry(k).or_default() += n;
        }
    }
    let len = |a: NaiveDate, b: NaiveDate| ((b - a).num_days() + 1) as f64;
    let scale = prev.map_or(1.0, |q| len(p.from, p.to) / len(q.from, q.to));
    let mut rows: Vec<pb::Hotspot> = now
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(key, &count)| {
            let previous = (*before.get(key).unwrap_or(&0) as f64 * scale).round() as i64;
            let year = *last_year.get(key).unwrap_or(&0);
            let change = |base: i64| (base > 0).then(|| count as f64 / base as f64 - 1.0);
            let (up, p_value) = rising(count, previous.max(year) as f64, floor);
            pb::Hotspot {
                key: key.clone(),
                name: String::new(),
                count,
                previous,
                last_year: year,
                change_previous: change(previous),
                change_last_year: change(year),
                rising: up,
                p_value,
                series: Vec::new(),
            }
        })
        .collect();
    rows.sort_by(|a, b| {
        b.rising
            .cmp(&a.rising)
            .then(b.count.cmp(&a.count))
            .then(a.key.cmp(&b.key))
    });
    rows.truncate(limit);
    let (days, monthly) = buckets(p.from, p.to);
    let keys: Vec<String> = rows.iter().map(|r| r.key.clone()).collect();
    let series = store::received_series(db, dim, prefix, &keys, p.from, p.to, monthly)
        .await
        .map_err(db_error)?;
    let names = if place {
        BTreeMap::new()
    } else {
        store::key_names(db, "category", prefix)
            .await
            .map_err(db_error)?
    };
    for r in &mut rows {
        let s = series.get(&r.key);
        r.series = days
            .iter()
            .map(|d| s.and_then(|m| m.get(d)).copied().unwrap_or(0))
            .collect();
        r.name = names.get(&r.key).cloned().unwrap_or_default();
    }
    let label = |d: &NaiveDate| {
        if monthly {
            d.format("%Y-%m").to_string()
        } else {
            d.to_string()
        }
    };
    Ok(pb::HotspotsResponse {
        dimension: dim.to_owned(),
        from: p.from.to_string(),
        to: p.to.to_string(),
        previous_from: prev.map(|q| q.from.to_string()).unwrap_or_default(),
        previous_to: prev.map(|q| q.to.to_string()).unwrap_or_default(),
        last_year_from: ly.map(|q| q.from.to_string()).unwrap_or_default(),
        last_year_to: ly.map(|q| q.to.to_string()).unwrap_or_default(),
        buckets: days.iter().map(label).collect(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_has_day_buckets_and_a_year_month_buckets() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
        let (b, monthly) = buckets(d("2026-02-01"), d("2026-02-28"));
        assert_eq!((b.len(), monthly), (28, false));
        let (b, monthly) = buckets(d("2026-01-01"), d("2026-12-31"));
        assert_eq!((b.len(), monthly), (12, true));
        assert_eq!(b[11], d("2026-12-01"));
    }
}
