//! A tenant's SLA policy, state-machine switches and working calendar, as
//! stored, with the built-in defaults for a tenant that set none, and a
//! short-lived per-process cache (edits reach other replicas within its TTL).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::NaiveDate;
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, Value};

use crate::domain::{
    calendar::{Calendar, Shift, default_shifts},
    sla::{Limit, Policy, Rule, default_rules},
    workflow::Rules,
};

/// Everything dispatch needs to know about a tenant's way of working.
#[derive(Debug, Clone)]
pub struct Settings {
    pub policy: Policy,
    pub rules: Rules,
    /// Share of the working time after which the reminder goes out.
    pub reminder_at: f64,
    pub supervise_after: Limit,
    pub restart_on_redispatch: bool,
    pub report_in_within: Limit,
    pub calendar: Calendar,
    /// False while the tenant runs on the built-in rules.
    pub own_rules: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            policy: Policy::new(default_rules()).unwrap_or_default(),
            rules: Rules::default(),
            reminder_at: 0.8,
            supervise_after: Limit::Days(1),
            restart_on_redispatch: false,
            report_in_within: Limit::Hours(2),
            calendar: Calendar::national(),
            own_rules: false,
        }
    }
}

pub fn stmt(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

fn limit(raw: &str, fallback: Limit) -> Limit {
    Limit::parse(raw).unwrap_or(fallback)
}

/// Reads a tenant's settings (defaults for what it has not set).
pub async fn load<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Settings, DbErr> {
    let mut s = Settings::default();
    if let Some(row) = conn
        .query_one_raw(stmt(
            "SELECT reminder_at, supervise_after, review_required, max_extensions, \
             max_extension_days, max_reopens, lift_after_returns, allow_pause, \
             restart_on_redispatch, report_in_within FROM sla_policies WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?
    {
        let u = |n: i32| u32::try_from(n).unwrap_or(0);
        s.reminder_at = row.try_get("", "reminder_at")?;
        s.supervise_after = limit(
            &row.try_get::<String>("", "supervise_after")?,
            s.supervise_after,
        );
        s.report_in_within = limit(
            &row.try_get::<String>("", "report_in_within")?,
            s.report_in_within,
        );
        s.restart_on_redispatch = row.try_get("", "restart_on_redispatch")?;
        s.rules = Rules {
            review_required: row.try_get("", "review_required")?,
            max_extensions: u(row.try_get("", "max_extensions")?),
            max_extension_days: u(row.try_get("", "max_extension_days")?),
            max_reopens: u(row.try_get("", "max_reopens")?),
            lift_after_returns: u(row.try_get("", "lift_after_returns")?),
            allow_pause: row.try_get("", "allow_pause")?,
        };
    }
    let rows = conn
        .query_all_raw(stmt(
            "SELECT category, urgency, sign_for, first_response, resolve FROM sla_rules \
             WHERE tenant = $1 ORDER BY category, urgency",
            vec![tenant.into()],
        ))
        .await?;
    if !rows.is_empty() {
        let mut rules = Vec::with_capacity(rows.len());
        for r in rows {
            let (sign, first, resolve): (String, String, String) = (
                r.try_get("", "sign_for")?,
                r.try_get("", "first_response")?,
                r.try_get("", "resolve")?,
            );
            rules.push(Rule {
                category: r.try_get("", "category")?,
                urgency: r.try_get("", "urgency")?,
                sign_for: limit(&sign, Limit::Hours(2)),
                first_response: limit(&first, Limit::Days(1)),
                resolve: limit(&resolve, Limit::Days(15)),
            });
        }
        // Rules were checked when saved; a clash here would be a bug.
        match Policy::new(rules) {
            Ok(p) => {
                s.policy = p;
                s.own_rules = true;
            }
            Err(e) => {
                tracing::error!(tenant, error = %e.en, "stored SLA rules are inconsistent; using defaults")
            }
        }
    }
    s.calendar = load_calendar(conn, tenant).await?;
    Ok(s)
}

/// A tenant's overrides of the national days and its working hours.
pub async fn load_calendar<C: ConnectionTrait>(conn: &C, tenant: &str) -> Result<Calendar, DbErr> {
    let mut overrides: Vec<(NaiveDate, Option<bool>)> = Vec::new();
    for r in conn
        .query_all_raw(stmt(
            "SELECT day, kind FROM calendar_days WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?
    {
        let kind: String = r.try_get("", "kind")?;
        let kind = match kind.as_str() {
            "holiday" => Some(true),
            "workday" => Some(false),
            _ => None,
        };
        overrides.push((r.try_get("", "day")?, kind));
    }
    let shifts = match conn
        .query_one_raw(stmt(
            "SELECT shifts FROM calendar_shifts WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?
    {
        Some(r) => r
            .try_get::<Vec<String>>("", "shifts")?
            .iter()
            .filter_map(|x| Shift::parse(x).ok())
            .collect(),
        None => default_shifts(),
    };
    Ok(Calendar::with_overrides(&overrides, shifts).unwrap_or_else(|e| {
        tracing::error!(tenant, error = %e, "stored calendar is inconsistent; using the national one");
        Calendar::national()
    }))
}

/// Settings and when they were read.
type Cached = (Instant, Arc<Settings>);

/// Per-process cache of [`Settings`], `ttl` long.
#[derive(Clone)]
pub struct SettingsCache {
    inner: Arc<Mutex<HashMap<String, Cached>>>,
    ttl: Duration,
}

impl SettingsCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            inner: Arc::default(),
            ttl,
        }
    }

    pub async fn get<C: ConnectionTrait>(
        &self,
        conn: &C,
        tenant: &str,
    ) -> Result<Arc<Settings>, DbErr> {
        if let Ok(map) = self.inner.lock()
            && let Some((at, s)) = map.get(tenant)
            && at.elapsed() < self.ttl
        {
            return Ok(s.clone());
        }
        let s = Arc::new(load(conn, tenant).await?);
        if let Ok(mut map) = self.inner.lock() {
            map.insert(tenant.to_owned(), (Instant::now(), s.clone()));
        }
        Ok(s)
    }

    /// Drops a tenant's entry after an edit in this process.
    pub fn forget(&self, tenant: &str) {
        if let Ok(mut map) = self.inner.lock() {
            map.remove(tenant);
        }
    }
}
