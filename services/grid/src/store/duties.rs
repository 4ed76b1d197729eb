//! Duty rules (`duty_rules`), the tasks they generate (`duty_tasks`, one
//! per rule, period and target), check-ins and the compliance counts.

use chrono::{DateTime, Utc};
use jiesu_proto::{
    grid::{DutyRule, DutyTask},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use uuid::Uuid;

use super::stmt;
use crate::domain::duties::{ComplianceBy, NewTask, Visitable};

/// The tenant's own rules (none until an admin saves some).
pub async fn rules<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Vec<DutyRule>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT code, name, target, categories, every, active FROM duty_rules \
         WHERE tenant = $1 ORDER BY code",
        vec![tenant.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(DutyRule {
            code: r.try_get("", "code")?,
            name: r.try_get("", "name")?,
            target: r.try_get("", "target")?,
            categories: r.try_get("", "categories")?,
            every: r.try_get("", "every")?,
            active: r.try_get("", "active")?,
        })
    })
    .collect()
}

/// Replaces the tenant's rules with `rules` (checked) in one transaction.
pub async fn replace_rules(
    db: &DatabaseConnection,
    tenant: &str,
    rules: &[DutyRule],
) -> Result<(), DbErr> {
    let txn = db.begin().await?;
    txn.execute_raw(stmt(
        "DELETE FROM duty_rules WHERE tenant = $1",
        vec![tenant.into()],
    ))
    .await?;
    for r in rules {
        txn.execute_raw(stmt(
            "INSERT INTO duty_rules (tenant, code, name, target, categories, every, active) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                tenant.into(),
                r.code.trim().to_owned().into(),
                r.name.trim().to_owned().into(),
                r.target.clone().into(),
                r.categories.clone().into(),
                r.every.clone().into(),
                r.active.into(),
            ],
        ))
        .await?;
    }
    txn.commit().await
}

/// Whom a rule of `target` visits: every household, or the active key
/// persons of `categories` (all categories when empty). Other targets
/// visit places, not people.
pub async fn visitables<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    target: &str,
    categories: &[String],
) -> Result<Vec<Visitable>, DbErr> {
    let rows = match target {
        "household" => {
            conn.query_all_raw(stmt(
                "SELECT id::text AS id, grid_code, '' AS category FROM households \
                 WHERE tenant = $1",
                vec![tenant.into()],
            ))
            .await?
        }
        "key_person" => {
            conn.query_all_raw(stmt(
                "SELECT id::text AS id, grid_code, category FROM key_persons \
                 WHERE tenant = $1 AND active \
                   AND (cardinality($2::text[]) = 0 OR category = ANY($2))",
                vec![tenant.into(), categories.to_vec().into()],
            ))
            .await?
        }
        _ => return Ok(Vec::new()),
    };
    rows.into_iter()
        .map(|r| {
            Ok(Visitable {
                id: r.try_get("", "id")?,
                grid: r.try_get("", "grid_code")?,
                category: r.try_get("", "category")?,
            })
        })
        .collect()
}

/// Creates the tasks of one rule and period that do not exist yet;
/// returns how many were new.
pub async fn insert_tasks<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    rule: &str,
    (period, due): (String, DateTime<Utc>),
    tasks: Vec<NewTask>,
) -> Result<u32, DbErr> {
    if tasks.is_empty() {
        return Ok(0);
    }
    let mut cols: [Vec<String>; 5] = Default::default();
    let mut ids = Vec::with_capacity(tasks.len());
    for t in tasks {
        ids.push(Uuid::now_v7());
        cols[0].push(t.grid);
        cols[1].push(t.community);
        cols[2].push(t.kind.to_owned());
        cols[3].push(t.target);
        cols[4].push(t.label);
    }
    let [grid, community, kind, target, label] = cols;
    let done = conn
        .execute_raw(stmt(
            "INSERT INTO duty_tasks (tenant, id, rule_code, period, grid_code, community_code, \
               target_kind, target_id, target_label, due_at) \
             SELECT $1, id, $2, $3, g, c, k, t, l, $4 \
             FROM unnest($5::uuid[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
               AS u(id, g, c, k, t, l) \
             ON CONFLICT (tenant, rule_code, period, target_id) DO NOTHING",
            vec![
                tenant.into(),
                rule.into(),
                period.into(),
                due.into(),
                ids.into(),
                grid.into(),
                community.into(),
                kind.into(),
                target.into(),
                label.into(),
            ],
        ))
        .await?;
    Ok(u32::try_from(done.rows_affected()).unwrap_or(u32::MAX))
}

const TASK_COLUMNS: &str = "id, rule_code, period, grid_code, target_kind, target_id, \
    target_label, due_at, done_at, done_by, distance_m, note, photo IS NOT NULL AS has_photo";

fn task_of(r: &sea_orm::QueryResult) -> Result<DutyTask, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let due: DateTime<Utc> = r.try_get("", "due_at")?;
    let done: Option<DateTime<Utc>> = r.try_get("", "done_at")?;
    Ok(DutyTask {
        id: id.to_string(),
        rule_code: r.try_get("", "rule_code")?,
        period: r.try_get("", "period")?,
        grid_code: r.try_get("", "grid_code")?,
        target_kind: r.try_get("", "target_kind")?,
        target_id: r.try_get("", "target_id")?,
        target_label: r.try_get("", "target_label")?,
        due_at: Some(to_timestamp(due)),
        done_at: done.map(to_timestamp),
        done_by: r
            .try_get::<Option<String>>("", "done_by")?
            .unwrap_or_default(),
        distance_m: r
            .try_get::<Option<f64>>("", "distance_m")?
            .unwrap_or_default(),
        note: r.try_get::<Option<String>>("", "note")?.unwrap_or_default(),
        has_photo: r.try_get("", "has_photo")?,
    })
}

/// Up to 1,000 tasks of some grids (`None`: all) in `state` (`open`,
/// `done` or `all`), of one period if given, by due time.
pub async fn list_tasks<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    grids: Option<Vec<String>>,
    state: &str,
    period: Option<&str>,
) -> Result<Vec<DutyTask>, DbErr> {
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {TASK_COLUMNS} FROM duty_tasks WHERE tenant = $1 \
               AND ($2::text[] IS NULL OR grid_code = ANY($2)) \
               AND ($3 = 'all' OR ($3 = 'open') = (done_at IS NULL)) \
               AND ($4::text IS NULL OR period = $4) \
             ORDER BY due_at, grid_code, target_label LIMIT 1000"
        ),
        vec![
            tenant.into(),
            grids.into(),
            state.into(),
            period.map(str::to_owned).into(),
        ],
    ))
    .await?
    .iter()
    .map(task_of)
    .collect()
}

/// The grid of a task, if it exists.
pub async fn task_grid<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
) -> Result<Option<String>, DbErr> {
    conn.query_one_raw(stmt(
        "SELECT grid_code FROM duty_tasks WHERE tenant = $1 AND id = $2",
        vec![tenant.into(), id.into()],
    ))
    .await?
    .map(|r| r.try_get("", "grid_code"))
    .transpose()
}

/// Locks a task: its grid and whether it is done already.
pub async fn lock_task(
    txn: &DatabaseTransaction,
    tenant: &str,
    id: Uuid,
) -> Result<Option<(String, bool)>, DbErr> {
    txn.query_one_raw(stmt(
        "SELECT grid_code, done_at IS NOT NULL AS done FROM duty_tasks \
         WHERE tenant = $1 AND id = $2 FOR UPDATE",
        vec![tenant.into(), id.into()],
    ))
    .await?
    .map(|r| Ok((r.try_get("", "grid_code")?, r.try_get("", "done")?)))
    .transpose()
}

/// What a check-in records.
pub struct CheckIn<'a> {
    pub by: &'a str,
    pub lat: f64,
    pub lon: f64,
    pub distance_m: f64,
    pub note: &'a str,
    /// The photo and its MIME type.
    pub photo: Option<(&'a [u8], &'a str)>,
}

/// Marks a task done.
pub async fn complete(
    txn: &DatabaseTransaction,
    tenant: &str,
    id: Uuid,
    c: &CheckIn<'_>,
) -> Result<Option<DutyTask>, DbErr> {
    txn.query_one_raw(stmt(
        &format!(
            "UPDATE duty_tasks SET done_at = now(), done_by = $3, lat = $4, lon = $5, \
               distance_m = $6, note = $7, photo = $8, photo_type = $9 \
             WHERE tenant = $1 AND id = $2 RETURNING {TASK_COLUMNS}"
        ),
        vec![
            tenant.into(),
            id.into(),
            c.by.into(),
            c.lat.into(),
            c.lon.into(),
            c.distance_m.into(),
            c.note.into(),
            c.photo.map(|(b, _)| b.to_vec()).into(),
            c.photo.map(|(_, t)| t.to_owned()).into(),
        ],
    ))
    .await?
    .as_ref()
    .map(task_of)
    .transpose()
}

/// One row of compliance counts.
pub struct Counts {
    pub key: String,
    pub name: String,
    pub due: i64,
    pub done: i64,
    pub on_time: i64,
}

/// Tasks due in (`start`, `end`] inside `scope`, counted by grid,
/// community or worker.
pub async fn compliance<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    by: ComplianceBy,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    scope: &str,
) -> Result<Vec<Counts>, DbErr> {
    let sql = match by {
        ComplianceBy::Grid => {
            "SELECT grid_code AS key, grid_code AS name, count(*) AS due, count(done_at) AS done, count(*) FILTER (WHERE done_at <= due_at) AS on_time \
             FROM duty_tasks WHERE tenant = $1 AND due_at > $2 AND due_at <= $3 \
               AND starts_with(community_code, $4) \
             GROUP BY grid_code ORDER BY grid_code"
        }
        ComplianceBy::Community => {
            "SELECT community_code AS key, community_code AS name, count(*) AS due, \
               count(done_at) AS done, count(*) FILTER (WHERE done_at <= due_at) AS on_time FROM duty_tasks \
             WHERE tenant = $1 AND due_at > $2 AND due_at <= $3 \
               AND starts_with(community_code, $4) \
             GROUP BY community_code ORDER BY community_code"
        }
        ComplianceBy::Worker => {
            "SELECT w.id::text AS key, w.name, count(*) AS due, count(t.done_at) AS done, count(*) FILTER (WHERE t.done_at <= t.due_at) AS on_time \
             FROM duty_tasks t JOIN assignments a ON a.tenant = t.tenant AND a.grid_code = t.grid_code \
               JOIN workers w ON w.tenant = a.tenant AND w.id = a.worker_id \
             WHERE t.tenant = $1 AND t.due_at > $2 AND t.due_at <= $3 \
               AND starts_with(t.community_code, $4) \
             GROUP BY w.id, w.name ORDER BY w.name, w.id"
        }
    };
    conn.query_all_raw(stmt(
        sql,
        vec![tenant.into(), start.into(), end.into(), scope.into()],
    ))
    .await?
    .into_iter()
    .map(|r| {
        Ok(Counts {
            key: r.try_get("", "key")?,
            name: r.try_get("", "name")?,
            due: r.try_get("", "due")?,
            done: r.try_get("", "done")?,
            on_time: r.try_get("", "on_time")?,
        })
    })
    .collect()
}
