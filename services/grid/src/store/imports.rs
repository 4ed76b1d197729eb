//! Streamed layer imports (`layer_imports`): each import's progress is a
//! row, so that any replica can report it while the upload runs.

use chrono::{DateTime, Utc};
use jiesu_common::Text;
use jiesu_proto::{grid::LayerImport, time::to_timestamp};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use super::stmt;

const COLUMNS: &str = "id, status, bytes_received, total_bytes, features_read, created, updated, \
    problems, problems_en, started_at, finished_at";

fn import_of(r: &sea_orm::QueryResult) -> Result<LayerImport, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let started: DateTime<Utc> = r.try_get("", "started_at")?;
    let finished: Option<DateTime<Utc>> = r.try_get("", "finished_at")?;
    let n = |c: &str| -> Result<u64, DbErr> {
        Ok(u64::try_from(r.try_get::<i64>("", c)?).unwrap_or(0))
    };
    let k = |c: &str| -> Result<u32, DbErr> {
        Ok(u32::try_from(r.try_get::<i32>("", c)?).unwrap_or(0))
    };
    Ok(LayerImport {
        id: id.to_string(),
        status: r.try_get("", "status")?,
        bytes_received: n("bytes_received")?,
        total_bytes: n("total_bytes")?,
        features_read: k("features_read")?,
        created: k("created")?,
        updated: k("updated")?,
        problems: r.try_get("", "problems")?,
        problems_en: r.try_get("", "problems_en")?,
        started_at: Some(to_timestamp(started)),
        finished_at: finished.map(to_timestamp),
    })
}

/// Starts an import; `false` when one with this id exists already.
pub async fn start<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
    started_by: &str,
    total_bytes: u64,
) -> Result<bool, DbErr> {
    let started = conn
        .execute_raw(stmt(
            "INSERT INTO layer_imports (tenant, id, started_by, status, total_bytes) \
             VALUES ($1, $2, $3, 'receiving', $4) ON CONFLICT DO NOTHING",
            vec![
                tenant.into(),
                id.into(),
                started_by.into(),
                i64::try_from(total_bytes).unwrap_or(0).into(),
            ],
        ))
        .await?;
    Ok(started.rows_affected() > 0)
}

/// Records how far an unfinished import got (a late write never touches
/// a finished one).
pub async fn progress<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
    (bytes, features): (u64, u32),
    status: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE layer_imports SET bytes_received = $3, features_read = $4, status = $5 \
         WHERE tenant = $1 AND id = $2 AND finished_at IS NULL",
        vec![
            tenant.into(),
            id.into(),
            i64::try_from(bytes).unwrap_or(i64::MAX).into(),
            i32::try_from(features).unwrap_or(i32::MAX).into(),
            status.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// Ends an import: (created, updated) when done, its problems (at most
/// 100 kept, in both languages) when it failed.
pub async fn finish<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
    outcome: &Result<(u32, u32), Vec<Text>>,
) -> Result<Option<LayerImport>, DbErr> {
    let (status, created, updated, problems) = match outcome {
        Ok((c, u)) => ("done", *c, *u, &[][..]),
        Err(p) => ("failed", 0, 0, &p[..p.len().min(100)]),
    };
    let zh: Vec<String> = problems.iter().map(|p| p.zh.clone()).collect();
    let en: Vec<String> = problems.iter().map(|p| p.en.clone()).collect();
    conn.query_one_raw(stmt(
        &format!(
            "UPDATE layer_imports SET status = $3, created = $4, updated = $5, \
               problems = $6, problems_en = $7, finished_at = now() \
             WHERE tenant = $1 AND id = $2 RETURNING {COLUMNS}"
        ),
        vec![
            tenant.into(),
            id.into(),
            status.into(),
            i32::try_from(created).unwrap_or(i32::MAX).into(),
            i32::try_from(updated).unwrap_or(i32::MAX).into(),
            zh.into(),
            en.into(),
        ],
    ))
    .await?
    .as_ref()
    .map(import_of)
    .transpose()
}

pub async fn get<C: ConnectionTrait>(
    conn: &C,
    tenant: &str,
    id: Uuid,
) -> Result<Option<LayerImport>, DbErr> {
    conn.query_one_raw(stmt(
        &format!("SELECT {COLUMNS} FROM layer_imports WHERE tenant = $1 AND id = $2"),
        vec![tenant.into(), id.into()],
    ))
    .await?
    .as_ref()
    .map(import_of)
    .transpose()
}
