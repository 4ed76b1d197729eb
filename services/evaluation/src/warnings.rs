//! Early warnings: each tenant's rules judged against the rollups every
//! `evaluation.warning_interval` (the same loop scans each tenant's
//! seasons once a day). A breach opens one warning per rule and
//! key (a partial unique index, so replicas racing open it once) and
//! publishes `warning.raised`; a recovered figure clears it and publishes
//! `warning.cleared`. Too few tickets leave a warning as it is.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use jiesu_bus::Outbox;
use jiesu_common::time::china_today;
use jiesu_proto::{
    evaluation::{self as pb, WarningCleared, WarningRaised},
    time::to_timestamp,
};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr, QueryResult, TransactionTrait,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{
    domain::{
        counts::Counts,
        warnings::{Judgement, Rule, judge},
    },
    store::{self, formulas, stmt},
};

/// A rule as stored.
#[derive(Debug, Clone)]
pub struct StoredRule {
    pub id: Uuid,
    pub tenant: String,
    pub rule: Rule,
    pub active: bool,
}

fn rule_from(r: &QueryResult) -> Result<StoredRule, DbErr> {
    Ok(StoredRule {
        id: r.try_get("", "id")?,
        tenant: r.try_get("", "tenant")?,
        active: r.try_get("", "active")?,
        rule: Rule {
            name: r.try_get("", "name")?,
            metric: r.try_get("", "metric")?,
            dimension: r.try_get("", "dimension")?,
            window_days: u32::try_from(r.try_get::<i32>("", "window_days")?).unwrap_or(1),
            threshold: r.try_get("", "threshold")?,
            min_tickets: u32::try_from(r.try_get::<i32>("", "min_tickets")?).unwrap_or(1),
        },
    })
}

const RULE_COLUMNS: &str =
    "id, tenant, name, metric, dimension, window_days, threshold, min_tickets, active";

pub async fn rules(conn: &impl ConnectionTrait, tenant: &str) -> Result<Vec<StoredRule>, DbErr> {
    conn.query_all_raw(stmt(
        &format!("SELECT {RULE_COLUMNS} FROM warning_rules WHERE tenant = $1 ORDER BY name, id"),
        vec![tenant.into()],
    ))
    .await?
    .iter()
    .map(rule_from)
    .collect()
}

/// Adds (`id` none) or changes a rule of the tenant; `None` when the id
/// names no rule of the tenant.
pub async fn put_rule(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: Option<Uuid>,
    rule: &Rule,
    active: bool,
    by: &str,
) -> Result<Option<StoredRule>, DbErr> {
    let values = |id: Uuid| {
        vec![
            id.into(),
            tenant.into(),
            rule.name.trim().to_owned().into(),
            rule.metric.clone().into(),
            rule.dimension.clone().into(),
            i32::try_from(rule.window_days).unwrap_or(i32::MAX).into(),
            rule.threshold.into(),
            i32::try_from(rule.min_tickets).unwrap_or(i32::MAX).into(),
            active.into(),
            by.into(),
        ]
    };
    let row = match id {
        None => {
            conn.query_one_raw(stmt(
                &format!(
                    "INSERT INTO warning_rules (id, tenant, name, metric, dimension, window_days, \
                     threshold, min_tickets, active, updated_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {RULE_COLUMNS}"
                ),
                values(Uuid::now_v7()),
            ))
            .await?
        }
        Some(id) => {
            conn.query_one_raw(stmt(
                &format!(
                    "UPDATE warning_rules SET name = $3, metric = $4, dimension = $5, \
                     window_days = $6, threshold = $7, min_tickets = $8, active = $9, \
                     updated_by = $10, updated_at = now() \
                     WHERE id = $1 AND tenant = $2 RETURNING {RULE_COLUMNS}"
                ),
                values(id),
            ))
            .await?
        }
    };
    row.as_ref().map(rule_from).transpose()
}

const WARNING_COLUMNS: &str = "id, tenant, rule_id, rule_name, dimension, key, name, metric, \
    figure, threshold, base, window_from, window_to, status, opened_at, cleared_at, \
    cleared_figure, last_figure, last_checked_at";

pub fn warning_from(r: &QueryResult) -> Result<pb::Warning, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let rule_id: Uuid = r.try_get("", "rule_id")?;
    let from: NaiveDate = r.try_get("", "window_from")?;
    let to: NaiveDate = r.try_get("", "window_to")?;
    Ok(pb::Warning {
        id: id.to_string(),
        rule_id: rule_id.to_string(),
        rule_name: r.try_get("", "rule_name")?,
        dimension: r.try_get("", "dimension")?,
        key: r.try_get("", "key")?,
        name: r.try_get("", "name")?,
        metric: r.try_get("", "metric")?,
        figure: r.try_get("", "figure")?,
        threshold: r.try_get("", "threshold")?,
        base: r.try_get("", "base")?,
        status: r.try_get("", "status")?,
        opened_at: Some(to_timestamp(r.try_get("", "opened_at")?)),
        cleared_at: r
            .try_get::<Option<chrono::DateTime<Utc>>>("", "cleared_at")?
            .map(to_timestamp),
        cleared_figure: r
            .try_get::<Option<f64>>("", "cleared_figure")?
            .unwrap_or(0.0),
        last_figure: r.try_get("", "last_figure")?,
        window_from: from.to_string(),
        window_to: to.to_string(),
        tenant: r.try_get("", "tenant")?,
        checked_at: Some(to_timestamp(r.try_get("", "last_checked_at")?)),
    })
}

/// Warnings of the tenants the scope `prefix` reads, newest first, open at
/// some time between `cleared_by` and `open_by`.
pub async fn list(
    conn: &impl ConnectionTrait,
    prefix: &str,
    status: &str,
    (cleared_by, open_by): (DateTime<Utc>, DateTime<Utc>),
    limit: u64,
    offset: u64,
) -> Result<Vec<pb::Warning>, DbErr> {
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {WARNING_COLUMNS} FROM warnings WHERE {covers} \
             AND ($2 = 'all' OR status = $2) \
             AND opened_at < $5 AND (cleared_at IS NULL OR cleared_at >= $6) \
             ORDER BY opened_at DESC, id LIMIT $3 OFFSET $4",
            covers = crate::store::COVERS
        ),
        vec![
            prefix.into(),
            status.into(),
            i64::try_from(limit).unwrap_or(500).into(),
            i64::try_from(offset).unwrap_or(0).into(),
            open_by.into(),
            cleared_by.into(),
        ],
    ))
    .await?
    .iter()
    .map(warning_from)
    .collect()
}

/// Checks every tenant's rules until shutdown.
pub async fn run(db: DatabaseConnection, outbox: Outbox, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        match check_all(&db, &outbox, china_today()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(changed = n, "warnings raised or cleared"),
            Err(e) => tracing::warn!(error = %e, "warning check failed; trying again next round"),
        }
        // Seasons ahead, once a day per tenant.
        match crate::proactive::scan_all(&db, china_today()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(created = n, "seasonal proactive items"),
            Err(e) => tracing::warn!(error = %e, "season scan failed; trying again next round"),
        }
    }
}

/// One round over every tenant with rules; answers how many warnings
/// opened or cleared.
pub async fn check_all(
    db: &DatabaseConnection,
    outbox: &Outbox,
    today: NaiveDate,
) -> Result<usize, DbErr> {
    let tenants: Vec<String> = db
        .query_all_raw(stmt("SELECT DISTINCT tenant FROM warning_rules", vec![]))
        .await?
        .iter()
        .map(|r| r.try_get("", "tenant"))
        .collect::<Result<_, _>>()?;
    let mut changed = 0;
    for tenant in tenants {
        let txn = db.begin().await?;
        // One replica checks a tenant at a time; the others skip it.
        let locked = txn
            .query_one_raw(stmt(
                "SELECT pg_try_advisory_xact_lock(hashtext('evaluation-warnings:' || $1)) AS ok",
                vec![tenant.clone().into()],
            ))
            .await?
            .map(|r| r.try_get::<bool>("", "ok"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            continue;
        }
        // One tenant's fault (say, a formula row that no longer reads)
        // does not stop the others' warnings.
        match check_tenant(&txn, outbox, &tenant, today).await {
            Ok(n) => {
                txn.commit().await?;
                changed += n;
            }
            Err(e) => {
                tracing::warn!(tenant = %tenant, error = %e, "warnings of a tenant not checked");
                let _ = txn.rollback().await;
            }
        }
    }
    if changed > 0 {
        outbox.wake();
    }
    Ok(changed)
}

async fn open_warnings(
    txn: &DatabaseTransaction,
    rule: Uuid,
) -> Result<BTreeMap<String, Uuid>, DbErr> {
    txn.query_all_raw(stmt(
        "SELECT key, id FROM warnings WHERE rule_id = $1 AND status = 'open'",
        vec![rule.into()],
    ))
    .await?
    .iter()
    .map(|r| Ok((r.try_get("", "key")?, r.try_get("", "id")?)))
    .collect()
}

async fn clear(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    id: Uuid,
    figure: Option<f64>,
) -> Result<usize, DbErr> {
    let row = txn
        .query_one_raw(stmt(
            &format!(
                "UPDATE warnings SET status = 'cleared', cleared_at = now(), \
                 cleared_figure = COALESCE($2, last_figure), last_figure = COALESCE($2, last_figure), \
                 last_checked_at = now() WHERE id = $1 AND status = 'open' RETURNING {WARNING_COLUMNS}"
            ),
            vec![id.into(), figure.into()],
        ))
        .await?;
    match row {
        Some(r) => {
            let w = warning_from(&r)?;
            outbox
                .enqueue(txn, &WarningCleared { warning: Some(w) })
                .await?;
            Ok(1)
        }
        None => Ok(0),
    }
}

async fn check_tenant(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    tenant: &str,
    today: NaiveDate,
) -> Result<usize, DbErr> {
    let all_formulas = formulas::list(txn, tenant).await?;
    let mut changed = 0;
    for r in rules(txn, tenant).await? {
        let open = open_warnings(txn, r.id).await?;
        if !r.active {
            for id in open.values() {
                changed += clear(txn, outbox, *id, None).await?;
            }
            continue;
        }
        let days = i64::from(r.rule.window_days);
        let windows = if r.rule.metric == "satisfaction_falling" {
            3
        } else {
            1
        };
        let mut sums: Vec<BTreeMap<String, Counts>> = Vec::new();
        let mut current = (today, today);
        for back in (0..windows).rev() {
            let to = today - TimeDelta::days(days * back);
            let from = to - TimeDelta::days(days - 1);
            current = (from, to);
            let rows = store::sum_rollups(txn, &r.rule.dimension, tenant, from, to, "").await?;
            sums.push(rows.into_iter().collect());
        }
        let formula = formulas::in_force(&all_formulas, current.0, current.1)
            .0
            .formula;
        let names = if r.rule.dimension == "unit" {
            store::key_names(txn, "unit", tenant).await?
        } else {
            BTreeMap::new()
        };
        let mut keys: Vec<&String> = sums.last().map(|m| m.keys().collect()).unwrap_or_default();
        keys.extend(
            open.keys()
                .filter(|k| !keys.contains(k))
                .collect::<Vec<_>>(),
        );
        for key in keys {
            let windows: Vec<Counts> = sums
                .iter()
                .map(|m| m.get(key).copied().unwrap_or_default())
                .collect();
            match (judge(&r.rule, &windows, &formula), open.get(key)) {
                (Judgement::Breach { figure, .. }, Some(id)) => {
                    txn.execute_raw(stmt(
                        "UPDATE warnings SET last_figure = $2, last_checked_at = now() WHERE id = $1",
                        vec![(*id).into(), figure.into()],
                    ))
                    .await?;
                }
                (
                    Judgement::Breach {
                        figure,
                        threshold,
                        base,
                    },
                    None,
                ) => {
                    let row = txn
                        .query_one_raw(stmt(
                            &format!(
                                "INSERT INTO warnings (id, tenant, rule_id, rule_name, dimension, key, \
                                 name, metric, figure, threshold, base, window_from, window_to, \
                                 opened_at, last_figure, last_checked_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now(), $9, now()) \
                                 ON CONFLICT (rule_id, key) WHERE status = 'open' DO NOTHING \
                                 RETURNING {WARNING_COLUMNS}"
                            ),
                            vec![
                                Uuid::now_v7().into(),
                                tenant.into(),
                                r.id.into(),
                                r.rule.name.clone().into(),
                                r.rule.dimension.clone().into(),
                                key.clone().into(),
                                names.get(key).cloned().unwrap_or_default().into(),
                                r.rule.metric.clone().into(),
                                figure.into(),
                                threshold.into(),
                                base.into(),
                                current.0.into(),
                                current.1.into(),
                            ],
                        ))
                        .await?;
                    if let Some(row) = row {
                        let w = warning_from(&row)?;
                        tracing::info!(tenant, key = %w.key, rule = %w.rule_name, figure, "warning raised");
                        outbox
                            .enqueue(txn, &WarningRaised { warning: Some(w) })
                            .await?;
                        changed += 1;
                    }
                }
                (Judgement::Fine { figure }, Some(id)) => {
                    changed += clear(txn, outbox, *id, Some(figure)).await?;
                }
                (Judgement::Unjudged, Some(id)) => {
                    txn.execute_raw(stmt(
                        "UPDATE warnings SET last_checked_at = now() WHERE id = $1",
                        vec![(*id).into()],
                    ))
                    .await?;
                }
                (Judgement::Fine { .. } | Judgement::Unjudged, None) => {}
            }
        }
    }
    Ok(changed)
}
