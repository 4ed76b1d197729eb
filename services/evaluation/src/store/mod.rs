//! Evaluation's tables and queries. A facts row changes only through
//! [`change_facts`], which keeps the day rollups in the same transaction.

mod changes;
pub mod facts;
pub mod formulas;

pub use changes::{Changes, Rollups};

use std::collections::BTreeMap;

use chrono::{NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, DatabaseTransaction, DbBackend, DbErr, EntityTrait,
    IntoActiveModel, QuerySelect, Statement, Value,
};
use uuid::Uuid;

use crate::domain::counts::{COUNTERS, Counts, RollupKey, delta, monthly, with_months};

/// The tenants a scope prefix (`$1`) reads: those under it (a city's
/// counties) and the one over it (a street's county).
pub const COVERS: &str = "(tenant LIKE $1 || '%' OR $1 LIKE tenant || '%')";
/// [`COVERS`] with the prefix as `$2`.
const COVERS2: &str = "(tenant LIKE $2 || '%' OR $2 LIKE tenant || '%')";

pub fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Locks the ticket's facts row, making an empty one first if the ticket
/// is new (so two events of one ticket wait for each other).
pub async fn lock_facts(
    txn: &DatabaseTransaction,
    ticket_id: Uuid,
    tenant: &str,
) -> Result<facts::Model, DbErr> {
    // Most events find the row: one statement then.
    if let Some(row) = facts::Entity::find_by_id(ticket_id)
        .lock_exclusive()
        .one(txn)
        .await?
    {
        return Ok(row);
    }
    txn.execute_raw(stmt(
        "INSERT INTO ticket_facts (ticket_id, tenant) VALUES ($1, $2) \
         ON CONFLICT (ticket_id) DO NOTHING",
        vec![ticket_id.into(), tenant.into()],
    ))
    .await?;
    facts::Entity::find_by_id(ticket_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("ticket_facts {ticket_id}")))
}

/// Applies `edit` to the ticket's facts and, when anything changed, saves
/// the row and moves its contribution in the rollups. Answers the row as
/// saved. (Events change many rows at once through [`Changes`].)
pub async fn change_facts(
    txn: &DatabaseTransaction,
    ticket_id: Uuid,
    tenant: &str,
    edit: impl FnOnce(&mut facts::Model),
) -> Result<facts::Model, DbErr> {
    let before = lock_facts(txn, ticket_id, tenant).await?;
    let mut after = before.clone();
    edit(&mut after);
    if after == before {
        return Ok(after);
    }
    after.updated_at = Utc::now();
    let saved = after
        .clone()
        .into_active_model()
        .reset_all()
        .update(txn)
        .await?;
    // Names before rollups, as a pull of events writes them (so the two
    // never wait for each other in a circle).
    name_keys(txn, &before, &saved).await?;
    let moved = with_months(delta(Some(&before.facts()), &saved.facts()));
    let rows: Vec<(&str, &RollupKey, &Counts)> = moved
        .iter()
        .map(|(k, c)| (saved.tenant.as_str(), k, c))
        .collect();
    apply_rollups_of(txn, &rows).await?;
    Ok(saved)
}

/// Adds each row's counts to `rollup_day` in one statement.
pub async fn apply_rollups(
    txn: &impl ConnectionTrait,
    tenant: &str,
    rows: &BTreeMap<RollupKey, Counts>,
) -> Result<(), DbErr> {
    let rows: Vec<(&str, &RollupKey, &Counts)> = rows.iter().map(|(k, c)| (tenant, k, c)).collect();
    apply_rollups_of(txn, &rows).await
}

/// Adds counts to `rollup_day` rows of any tenants, in the order given:
/// callers give (tenant, key) order, so two transactions never wait for
/// each other's rows in a circle. One statement per 2,000 rows.
pub async fn apply_rollups_of(
    txn: &impl ConnectionTrait,
    rows: &[(&str, &RollupKey, &Counts)],
) -> Result<(), DbErr> {
    let rows: Vec<&(&str, &RollupKey, &Counts)> = rows.iter().filter(|r| !r.2.is_zero()).collect();
    let cols = COUNTERS.join(", ");
    let set = COUNTERS
        .iter()
        .map(|c| format!("{c} = rollup_day.{c} + EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let per = 4 + COUNTERS.len();
    for part in rows.chunks(2000) {
        let mut values: Vec<Value> = Vec::with_capacity(part.len() * per);
        let mut tuples = Vec::with_capacity(part.len());
        for (i, (tenant, (dim, day, key), c)) in part.iter().enumerate() {
            let ph: Vec<String> = (0..per).map(|k| format!("${}", 1 + i * per + k)).collect();
            tuples.push(format!("({})", ph.join(", ")));
            values.push((*tenant).into());
            values.push((*dim).into());
            values.push((*day).into());
            values.push(key.clone().into());
            values.extend(c.0.iter().map(|v| Value::from(*v)));
        }
        let sql = format!(
            "INSERT INTO rollup_day (tenant, dim, day, key, {cols}) VALUES {} \
             ON CONFLICT (dim, tenant, day, key) DO UPDATE SET {set}",
            tuples.join(", ")
        );
        txn.execute_raw(stmt(&sql, values)).await?;
    }
    Ok(())
}

/// The names of the unit and the category levels that `after` names
/// anew: (dimension, key, name).
fn names_to_keep(
    before: &facts::Model,
    after: &facts::Model,
) -> Vec<(&'static str, String, String)> {
    let mut names: Vec<(&'static str, String, String)> = Vec::new();
    if !after.unit_id.is_empty()
        && (after.unit_id != before.unit_id || after.unit_name != before.unit_name)
    {
        names.push(("unit", after.unit_id.clone(), after.unit_name.clone()));
    }
    if after.category_path != before.category_path
        || after.category_path_names != before.category_path_names
    {
        let codes = after.category_path();
        let labels: Vec<String> =
            serde_json::from_value(after.category_path_names.clone()).unwrap_or_default();
        for (code, name) in codes.iter().zip(&labels) {
            names.push(("category", code.clone(), name.clone()));
        }
        if codes.is_empty() && !after.category.is_empty() {
            names.push((
                "category",
                after.category.clone(),
                after.category_name.clone(),
            ));
        }
    }
    names.retain(|(_, _, name)| !name.is_empty());
    names
}

/// Keeps the names of the unit and the category levels the row names.
async fn name_keys(
    txn: &DatabaseTransaction,
    before: &facts::Model,
    after: &facts::Model,
) -> Result<(), DbErr> {
    for (dim, key, name) in names_to_keep(before, after) {
        txn.execute_raw(stmt(
            "INSERT INTO key_names (tenant, dim, key, name) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (tenant, dim, key) DO UPDATE SET name = EXCLUDED.name \
             WHERE key_names.name <> EXCLUDED.name",
            vec![
                after.tenant.clone().into(),
                dim.into(),
                key.into(),
                name.into(),
            ],
        ))
        .await?;
    }
    Ok(())
}

/// Summed counts per key of one dimension over days `from..=to`, for the
/// tenants under `prefix` (a region code prefix).
pub async fn sum_rollups(
    conn: &impl ConnectionTrait,
    dim: &str,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
    within: &str,
) -> Result<Vec<(String, Counts)>, DbErr> {
    let sums = COUNTERS
        .iter()
        .map(|c| format!("SUM({c})::BIGINT AS {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // The tenants first (few rows), then one index range per tenant and
    // dimension over the days: a city's counties are read, nothing else.
    let tenants: Vec<String> = conn
        .query_all_raw(stmt(
            &format!("SELECT DISTINCT tenant FROM rollup_day WHERE dim = 'tenant' AND {COVERS}"),
            vec![prefix.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "tenant"))
        .collect::<Result<_, _>>()?;
    if tenants.is_empty() {
        return Ok(Vec::new());
    }
    // Whole months from their month rows, the days around them from the
    // day rows.
    let (head, months, tail) = split_months(from, to);
    // An empty range PostgreSQL can read (its dates stop at 4713 BC).
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let none = (epoch.succ_opt().unwrap_or(epoch), epoch);
    let (head, months, tail) = (
        head.unwrap_or(none),
        months.unwrap_or(none),
        tail.unwrap_or(none),
    );
    let sql = format!(
        "SELECT key, {sums} FROM rollup_day \
         WHERE tenant = ANY(string_to_array($3, ',')) AND key LIKE $4 \
           AND ((dim = $1 AND day BETWEEN $5 AND $6) \
             OR (dim = $1 AND day BETWEEN $7 AND $8) \
             OR (dim = $2 AND day BETWEEN $9 AND $10)) \
         GROUP BY key ORDER BY key"
    );
    let rows = conn
        .query_all_raw(stmt(
            &sql,
            vec![
                dim.into(),
                monthly(dim).unwrap_or(dim).into(),
                tenants.join(",").into(),
                format!("{within}%").into(),
                head.0.into(),
                head.1.into(),
                tail.0.into(),
                tail.1.into(),
                months.0.into(),
                months.1.into(),
            ],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            let mut c = Counts::default();
            for (i, name) in COUNTERS.iter().enumerate() {
                c.0[i] = r.try_get::<Option<i64>>("", name)?.unwrap_or(0);
            }
            Ok((r.try_get("", "key")?, c))
        })
        .collect()
}

/// First and last day of a range.
pub type Days = (NaiveDate, NaiveDate);

/// Days `from..=to` as the days before the first whole month, the whole
/// months (first days of the first and the last), and the days after.
pub fn split_months(from: NaiveDate, to: NaiveDate) -> (Option<Days>, Option<Days>, Option<Days>) {
    use chrono::{Datelike, Months};
    let first = if from.day() == 1 {
        Some(from)
    } else {
        from.with_day(1)
            .and_then(|d| d.checked_add_months(Months::new(1)))
    };
    let next_after_to = to.succ_opt();
    let last_end = match next_after_to {
        Some(n) if n.day() == 1 => Some(to),
        _ => to.with_day(1).and_then(|d| d.pred_opt()),
    };
    match (first, last_end) {
        (Some(f), Some(l)) if f <= l => {
            let last_month = l.with_day(1).unwrap_or(l);
            let head = (from < f).then(|| (from, f.pred_opt().unwrap_or(f)));
            let tail = (l < to).then(|| (l.succ_opt().unwrap_or(l), to));
            (head, Some((f, last_month)), tail)
        }
        _ => (Some((from, to)), None, None),
    }
}

/// Names of a dimension's keys for the tenants under `prefix`.
pub async fn key_names(
    conn: &impl ConnectionTrait,
    dim: &str,
    prefix: &str,
) -> Result<BTreeMap<String, String>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            &format!("SELECT key, name FROM key_names WHERE dim = $2 AND {COVERS}"),
            vec![prefix.into(), dim.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("", "key")?, r.try_get("", "name")?)))
        .collect()
}

/// Requests of the imported history per key of a category or place
/// dimension over days `from..=to` (none for the category groups, which
/// the history does not name).
pub async fn history_sum(
    conn: &impl ConnectionTrait,
    dim: &str,
    prefix: &str,
    from: NaiveDate,
    to: NaiveDate,
    within: &str,
) -> Result<Vec<(String, i64)>, DbErr> {
    let key = match dim {
        "category" => "category",
        "district" => "rpad(left(region_code, 6), 12, '0')",
        "street" => {
            "CASE WHEN substr(region_code, 7, 3) <> '000' THEN rpad(left(region_code, 9), 12, '0') END"
        }
        "community" => "CASE WHEN substr(region_code, 10, 3) <> '000' THEN region_code END",
        _ => return Ok(Vec::new()),
    };
    let sql = format!(
        "SELECT k AS key, sum(count)::BIGINT AS n FROM ( \
           SELECT {key} AS k, count FROM history_counts \
            WHERE {COVERS} AND day BETWEEN $2 AND $3) h \
         WHERE k IS NOT NULL AND k LIKE $4 GROUP BY k"
    );
    conn.query_all_raw(stmt(
        &sql,
        vec![
            prefix.into(),
            from.into(),
            to.into(),
            format!("{within}%").into(),
        ],
    ))
    .await?
    .iter()
    .map(|r| Ok((r.try_get("", "key")?, r.try_get("", "n")?)))
    .collect()
}

/// Requests received per key and bucket (day, or month when `monthly`).
pub async fn received_series(
    conn: &impl ConnectionTrait,
    dim: &str,
    prefix: &str,
    keys: &[String],
    from: NaiveDate,
    to: NaiveDate,
    monthly: bool,
) -> Result<BTreeMap<String, BTreeMap<NaiveDate, i64>>, DbErr> {
    if keys.is_empty() {
        return Ok(BTreeMap::new());
    }
    let bucket = if monthly {
        "date_trunc('month', day)::date"
    } else {
        "day"
    };
    let sql = format!(
        "SELECT key, {bucket} AS b, sum(received)::BIGINT AS n FROM rollup_day \
         WHERE dim = $1 AND {COVERS2} AND day BETWEEN $3 AND $4 \
           AND key = ANY(string_to_array($5, ',')) GROUP BY 1, 2"
    );
    let rows = conn
        .query_all_raw(stmt(
            &sql,
            vec![
                dim.into(),
                prefix.into(),
                from.into(),
                to.into(),
                keys.join(",").into(),
            ],
        ))
        .await?;
    let mut out: BTreeMap<String, BTreeMap<NaiveDate, i64>> = BTreeMap::new();
    for r in &rows {
        out.entry(r.try_get("", "key")?)
            .or_default()
            .insert(r.try_get("", "b")?, r.try_get("", "n")?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn ranges_split_into_days_and_whole_months() {
        assert_eq!(
            split_months(d("2026-06-01"), d("2026-06-30")),
            (None, Some((d("2026-06-01"), d("2026-06-01"))), None)
        );
        assert_eq!(
            split_months(d("2026-05-20"), d("2026-08-10")),
            (
                Some((d("2026-05-20"), d("2026-05-31"))),
                Some((d("2026-06-01"), d("2026-07-01"))),
                Some((d("2026-08-01"), d("2026-08-10")))
            )
        );
        assert_eq!(
            split_months(d("2026-06-02"), d("2026-06-30")),
            (Some((d("2026-06-02"), d("2026-06-30"))), None, None)
        );
        assert_eq!(
            split_months(d("2026-02-01"), d("2026-02-27")),
            (Some((d("2026-02-01"), d("2026-02-27"))), None, None)
        );
        assert_eq!(
            split_months(d("2026-01-01"), d("2026-12-31")),
            (None, Some((d("2026-01-01"), d("2026-12-01"))), None)
        );
    }
}
