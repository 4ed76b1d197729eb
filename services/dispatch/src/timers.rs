//! Durable timers: every replica polls for due timers, claims a batch with
//! `FOR UPDATE SKIP LOCKED` and a short lease, and fires each claimed timer
//! in a transaction that locks the work order, re-checks the timer (still
//! ours, not fired, not cancelled) and marks it fired together with its
//! effect. A replica that dies holding leases delays those timers by at most
//! the lease plus one poll; none fires twice.

use std::{collections::HashMap, time::Duration};

use chrono::{DateTime, Utc};
use jiesu_proto::dispatch as pb;
use jiesu_proto::time::to_timestamp;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{clock, workflow::Status},
    engine::{self, Engine},
    store::{settings::stmt, work_orders},
};

#[derive(Debug, Clone)]
pub struct TimerConfig {
    pub poll: Duration,
    pub lease: Duration,
    pub batch: u32,
    /// Names the replica in `lease_owner` / `fired_by`.
    pub owner: String,
}

struct Claimed {
    id: i64,
    work_order_id: Uuid,
}

/// Claims up to `batch` due timers for `owner` for `lease`.
async fn claim(e: &Engine, cfg: &TimerConfig) -> Result<Vec<Claimed>, DbErr> {
    let lease_ms = i64::try_from(cfg.lease.as_millis()).unwrap_or(i64::MAX);
    let rows =
        e.db.query_all_raw(stmt(
            "UPDATE timers t SET lease_owner = $1, \
               lease_until = now() + $2 * interval '1 millisecond', attempts = t.attempts + 1 \
             FROM (SELECT id FROM timers WHERE fired_at IS NULL AND cancelled_at IS NULL \
                     AND due_at <= $4 AND (lease_until IS NULL OR lease_until < now()) \
                   ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) due \
             WHERE t.id = due.id RETURNING t.id, t.work_order_id",
            vec![
                cfg.owner.clone().into(),
                lease_ms.into(),
                i64::from(cfg.batch).into(),
                e.clock.now().into(),
            ],
        ))
        .await?;
    rows.into_iter()
        .map(|r| {
            Ok(Claimed {
                id: r.try_get("", "id")?,
                work_order_id: r.try_get("", "work_order_id")?,
            })
        })
        .collect()
}

/// zh-CN text of a notice.
fn notice_text(notice: &str, deadline: &str) -> String {
    let what = match deadline {
        clock::SIGN => "签收",
        clock::RESPOND => "首次响应",
        clock::RESOLVE => "办结",
        _ => "报到",
    };
    match notice {
        clock::REMINDER => format!("提醒单：{what}时限将至"),
        clock::URGE => format!("催办单：已到{what}时限"),
        clock::SUPERVISE => format!("督办单：{what}已超期"),
        _ => "报到超时：被召集单位未按时报到".to_owned(),
    }
}

/// Fires the claimed timers in one transaction; returns how many fired.
async fn fire(e: &Engine, cfg: &TimerConfig, claimed: &[Claimed]) -> Result<usize, DbErr> {
    let txn = e.db.begin().await?;
    // Work orders first, in id order, as actions lock them: no deadlock.
    let mut orders: Vec<Uuid> = claimed.iter().map(|c| c.work_order_id).collect();
    orders.sort();
    orders.dedup();
    let mut models: HashMap<Uuid, work_orders::Model> = work_orders::Entity::find()
        .filter(work_orders::Column::Id.is_in(orders))
        .order_by_asc(work_orders::Column::Id)
        .lock_exclusive()
        .all(&txn)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect();
    let ids: Vec<i64> = claimed.iter().map(|c| c.id).collect();
    let rows = txn
        .query_all_raw(stmt(
            "SELECT id, work_order_id, notice, deadline, deadline_at, unit_id FROM timers \
             WHERE id = ANY($1) AND lease_owner = $2 AND fired_at IS NULL AND cancelled_at IS NULL \
             ORDER BY due_at, id FOR UPDATE",
            vec![ids.into(), cfg.owner.clone().into()],
        ))
        .await?;
    let now = e.clock.now();
    let (mut fired, mut dropped): (Vec<i64>, Vec<i64>) = (Vec::new(), Vec::new());
    for r in rows {
        let id: i64 = r.try_get("", "id")?;
        let order_id: Uuid = r.try_get("", "work_order_id")?;
        let notice: String = r.try_get("", "notice")?;
        let deadline: String = r.try_get("", "deadline")?;
        let deadline_at: DateTime<Utc> = r.try_get("", "deadline_at")?;
        let unit: Option<String> = r.try_get("", "unit_id")?;
        let Some(m) = models.get_mut(&order_id) else {
            dropped.push(id);
            continue;
        };
        let status = Status::parse(&m.status).unwrap_or(Status::Triage);
        // Still wanted? The order is open, not paused, and the deadline is
        // the one the timer was set for and not met.
        let live = status.is_open()
            && m.paused_at.is_none()
            && if deadline == clock::REPORT {
                txn.query_one_raw(stmt(
                    "SELECT 1 AS x FROM summons WHERE work_order_id = $1 AND unit_id = $2 \
                     AND due_at = $3 AND reported_at IS NULL",
                    vec![order_id.into(), unit.clone().into(), deadline_at.into()],
                ))
                .await?
                .is_some()
            } else {
                engine::clocks_of(m)
                    .running()
                    .iter()
                    .any(|(name, due)| *name == deadline && *due == deadline_at)
            };
        if !live {
            dropped.push(id);
            continue;
        }
        let text = notice_text(&notice, &deadline);
        let mut lifted = None;
        // 督办 of the resolve deadline lifts the order one whistle level.
        if notice == clock::SUPERVISE && deadline == clock::RESOLVE && m.level < 4 {
            lifted = Some(m.level);
            txn.execute_raw(stmt(
                "UPDATE work_orders SET level = level + 1, version = version + 1, updated_at = $2 \
                 WHERE id = $1",
                vec![m.id.into(), now.into()],
            ))
            .await?;
            m.level += 1;
            m.version += 1;
        }
        engine::timeline_entry(&txn, m, now, &notice, "system", text.clone()).await?;
        let mut change = engine::change(m, "system", &text, now);
        if let Some(u) = &unit {
            change.unit_id.clone_from(u);
        }
        e.outbox
            .enqueue(
                &txn,
                &pb::WorkOrderNoticeIssued {
                    change: Some(change),
                    notice: notice.clone(),
                    deadline: deadline.clone(),
                    due_at: Some(to_timestamp(deadline_at)),
                },
            )
            .await?;
        if let Some(from) = lifted {
            let note = format!("超期自动升级至{}级", m.level);
            engine::timeline_entry(&txn, m, now, "escalated", "system", note.clone()).await?;
            e.outbox
                .enqueue(
                    &txn,
                    &pb::WorkOrderEscalated {
                        change: Some(engine::change(m, "system", &note, now)),
                        from_level: u32::try_from(from).unwrap_or(1),
                    },
                )
                .await?;
        }
        fired.push(id);
    }
    // Stale timers (the order moved on) are cancelled, not fired.
    txn.execute_raw(stmt(
        "UPDATE timers SET cancelled_at = $2 WHERE id = ANY($1)",
        vec![dropped.into(), now.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        "UPDATE timers SET fired_at = $2, fired_by = $3 WHERE id = ANY($1)",
        vec![fired.clone().into(), now.into(), cfg.owner.clone().into()],
    ))
    .await?;
    txn.commit().await?;
    if !fired.is_empty() {
        e.outbox.wake();
    }
    Ok(fired.len())
}

/// One round: claim and fire until nothing is due. Returns timers fired.
pub async fn run_once(e: &Engine, cfg: &TimerConfig) -> Result<usize, DbErr> {
    let mut total = 0;
    loop {
        let claimed = claim(e, cfg).await?;
        if claimed.is_empty() {
            return Ok(total);
        }
        let full = claimed.len() >= usize::try_from(cfg.batch).unwrap_or(usize::MAX);
        total += fire(e, cfg, &claimed).await?;
        if !full {
            return Ok(total);
        }
    }
}

/// The timer loop of a replica, until `shutdown`.
pub async fn run(e: Engine, cfg: TimerConfig, shutdown: CancellationToken) {
    tracing::info!(owner = %cfg.owner, poll_ms = cfg.poll.as_millis() as u64, "timers running");
    loop {
        match run_once(&e, &cfg).await {
            Ok(n) if n > 0 => {
                metrics::counter!("jiesu_dispatch_timers_fired_total").increment(n as u64);
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "timer round failed; retrying"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(cfg.poll) => {}
        }
    }
}
