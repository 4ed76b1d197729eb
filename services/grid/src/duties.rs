//! Duties: rules generate visit and patrol tasks per period (households
//! monthly, 四必访 and other key persons weekly, key places daily, a patrol
//! of every basic grid weekly); a grid worker checks in at the place, inside
//! the task's grid or near it; compliance is counted per worker, grid and
//! community.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, Offset, TimeZone, Utc};
use geo::{ClosestPoint, Contains, Distance, Haversine, InteriorPoint, Point};
use jiesu_auth::{Principal, Role};
use jiesu_proto::{
    grid::{
        CheckInRequest, ComplianceRow, DutyComplianceRequest, DutyComplianceResponse, DutyRule,
        DutyRules, DutyTask, ListDutyTasksRequest, ListDutyTasksResponse,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DbErr, TransactionTrait};
use tonic::Status;
use uuid::Uuid;

use crate::{
    ctx::{ADMINS, Ctx, count, db_error, parse_id},
    domain::layer::{Grid, Kind},
    people::category_label,
    store::stmt,
};

fn china() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

fn midnight(d: NaiveDate) -> DateTime<Utc> {
    d.and_hms_opt(0, 0, 0)
        .and_then(|t| china().from_local_datetime(&t).single())
        .map_or_else(Utc::now, |t| t.with_timezone(&Utc))
}

/// How often a rule's task recurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Every {
    Day,
    Week,
    Month,
}

impl Every {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "day" => Self::Day,
            "week" => Self::Week,
            "month" => Self::Month,
            _ => return None,
        })
    }

    /// The period holding `at` (China time): its key and its end (the
    /// task's due time).
    pub fn period(self, at: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let d = at.with_timezone(&china()).date_naive();
        match self {
            Self::Day => (
                d.format("%Y-%m-%d").to_string(),
                midnight(d + Duration::days(1)),
            ),
            Self::Week => {
                let w = d.iso_week();
                let monday = d - Duration::days(i64::from(d.weekday().num_days_from_monday()));
                (
                    format!("{}-W{:02}", w.year(), w.week()),
                    midnight(monday + Duration::days(7)),
                )
            }
            Self::Month => {
                let first = d.with_day(1).unwrap_or(d);
                let next = first
                    .checked_add_months(chrono::Months::new(1))
                    .unwrap_or(first);
                (d.format("%Y-%m").to_string(), midnight(next))
            }
        }
    }
}

/// A report period `YYYY-MM`, `YYYY-Www` or `YYYY-MM-DD` as [start, end).
pub fn report_period(s: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some((midnight(d), midnight(d + Duration::days(1))));
    }
    if let Some((y, w)) = s.split_once("-W") {
        let d = NaiveDate::from_isoywd_opt(y.parse().ok()?, w.parse().ok()?, chrono::Weekday::Mon)?;
        return Some((midnight(d), midnight(d + Duration::days(7))));
    }
    let d = NaiveDate::parse_from_str(&format!("{s}-01"), "%Y-%m-%d").ok()?;
    let next = d.checked_add_months(chrono::Months::new(1))?;
    Some((midnight(d), midnight(next)))
}

const TARGETS: [&str; 4] = ["household", "key_person", "key_place", "patrol"];

/// The rules a tenant starts with.
pub fn default_rules() -> Vec<DutyRule> {
    let rule = |code: &str, name: &str, target: &str, cats: &[&str], every: &str| DutyRule {
        code: code.into(),
        name: name.into(),
        target: target.into(),
        categories: cats.iter().map(|c| (*c).to_owned()).collect(),
        every: every.into(),
        active: true,
    };
    vec![
        rule(
            "households",
            "入户走访（每户每月）",
            "household",
            &[],
            "month",
        ),
        rule(
            "must_visit",
            "四必访（每周）",
            "key_person",
            &[
                "elderly_alone",
                "disabled",
                "hardship",
                "newborn",
                "newly_wed",
            ],
            "week",
        ),
        rule(
            "special_care",
            "重点人员走访（每周）",
            "key_person",
            &["community_correction", "mental_illness"],
            "week",
        ),
        rule(
            "key_places",
            "重点场所巡查（每日）",
            "key_place",
            &[],
            "day",
        ),
        rule("patrol", "网格巡查（每周）", "patrol", &[], "week"),
    ]
}

/// Meters from a point to a grid: 0 inside, else to its nearest edge.
pub fn distance_m(grid: &Grid, lon: f64, lat: f64) -> f64 {
    let p = Point::new(lon, lat);
    if grid.shape.contains(&p) {
        return 0.0;
    }
    match grid.shape.closest_point(&p) {
        geo::Closest::Intersection(_) => 0.0,
        geo::Closest::SinglePoint(q) => Haversine.distance(p, q),
        geo::Closest::Indeterminate => f64::INFINITY,
    }
}

/// JPEG or PNG, by the first bytes.
fn photo_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else {
        None
    }
}

/// One task to create.
struct NewTask {
    grid: String,
    community: String,
    kind: &'static str,
    target: String,
    label: String,
}

impl Ctx {
    pub async fn rules(&self, tenant: &str) -> Result<Vec<DutyRule>, DbErr> {
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT code, name, target, categories, every, active FROM duty_rules \
                 WHERE tenant = $1 ORDER BY code",
                vec![tenant.into()],
            ))
            .await?;
        if rows.is_empty() {
            return Ok(default_rules());
        }
        rows.into_iter()
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

    pub async fn get_rules(&self, who: &Principal) -> Result<DutyRules, Status> {
        who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::GridWorker])?;
        Ok(DutyRules {
            rules: self.rules(who.tenant.code()).await.map_err(db_error)?,
        })
    }

    pub async fn save_rules(&self, who: &Principal, rules: DutyRules) -> Result<DutyRules, Status> {
        who.require_any(&[Role::TenantAdmin])?;
        let tenant = who.tenant.code();
        let mut seen = std::collections::HashSet::new();
        for (i, r) in rules.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            if r.code.trim().is_empty() || !seen.insert(r.code.trim()) {
                return Err(status::invalid_field(&at("code"), "required and unique"));
            }
            if r.name.trim().is_empty() {
                return Err(status::invalid_field(&at("name"), "required"));
            }
            if !TARGETS.contains(&r.target.as_str()) {
                return Err(status::invalid_field(
                    &at("target"),
                    format!("must be one of {}", TARGETS.join(", ")),
                ));
            }
            if Every::parse(&r.every).is_none() {
                return Err(status::invalid_field(
                    &at("every"),
                    "must be day, week or month",
                ));
            }
            if let Some(c) = r.categories.iter().find(|c| category_label(c).is_none()) {
                return Err(status::invalid_field(
                    &at("categories"),
                    format!("`{c}` is not a key-person category"),
                ));
            }
        }
        let txn = self.db.begin().await.map_err(db_error)?;
        txn.execute_raw(stmt(
            "DELETE FROM duty_rules WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await
        .map_err(db_error)?;
        for r in &rules.rules {
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
            .await
            .map_err(db_error)?;
        }
        txn.commit().await.map_err(db_error)?;
        self.get_rules(who).await
    }

    /// Creates the tasks of the periods holding `at` that do not exist yet;
    /// safe to run by every replica at once (unique per rule, period and
    /// target).
    pub async fn generate(&self, tenant: &str, at: DateTime<Utc>) -> Result<u32, DbErr> {
        let Some(index) = self.layers.get(tenant) else {
            return Ok(0);
        };
        let community = |code: &str| index.get(code).map(|g| g.community.clone());
        let mut created = 0;
        for rule in self.rules(tenant).await? {
            let Some(every) = Every::parse(&rule.every).filter(|_| rule.active) else {
                continue;
            };
            let mut tasks = Vec::new();
            match rule.target.as_str() {
                "household" => {
                    for r in self
                        .db
                        .query_all_raw(stmt(
                            "SELECT id::text AS id, grid_code FROM households WHERE tenant = $1",
                            vec![tenant.into()],
                        ))
                        .await?
                    {
                        let grid: String = r.try_get("", "grid_code")?;
                        if let Some(c) = community(&grid) {
                            tasks.push(NewTask {
                                grid,
                                community: c,
                                kind: "household",
                                target: r.try_get("", "id")?,
                                label: "入户走访".into(),
                            });
                        }
                    }
                }
                "key_person" => {
                    for r in self
                        .db
                        .query_all_raw(stmt(
                            "SELECT id::text AS id, grid_code, category FROM key_persons \
                             WHERE tenant = $1 AND active \
                               AND (cardinality($2::text[]) = 0 OR category = ANY($2))",
                            vec![tenant.into(), rule.categories.clone().into()],
                        ))
                        .await?
                    {
                        let grid: String = r.try_get("", "grid_code")?;
                        let cat: String = r.try_get("", "category")?;
                        if let Some(c) = community(&grid) {
                            tasks.push(NewTask {
                                grid,
                                community: c,
                                kind: "key_person",
                                target: r.try_get("", "id")?,
                                label: format!(
                                    "重点人员走访（{}）",
                                    category_label(&cat).unwrap_or("其他")
                                ),
                            });
                        }
                    }
                }
                "key_place" => {
                    for g in index.grids().iter().filter(|g| g.kind == Kind::Dedicated) {
                        // The basic grid around the place does the visit.
                        let Some(p) = g.shape.interior_point() else {
                            continue;
                        };
                        let Some(basic) = index.locate(p.x(), p.y()).basic else {
                            continue;
                        };
                        tasks.push(NewTask {
                            grid: basic.code.clone(),
                            community: basic.community.clone(),
                            kind: "key_place",
                            target: g.code.clone(),
                            label: format!("重点场所巡查（{}）", g.name),
                        });
                    }
                }
                _ => {
                    for g in index.grids().iter().filter(|g| g.kind == Kind::Basic) {
                        tasks.push(NewTask {
                            grid: g.code.clone(),
                            community: g.community.clone(),
                            kind: "patrol",
                            target: g.code.clone(),
                            label: "网格巡查".into(),
                        });
                    }
                }
            }
            created += self
                .insert_tasks(tenant, &rule.code, every, at, tasks)
                .await?;
        }
        Ok(created)
    }

    async fn insert_tasks(
        &self,
        tenant: &str,
        rule: &str,
        every: Every,
        at: DateTime<Utc>,
        tasks: Vec<NewTask>,
    ) -> Result<u32, DbErr> {
        if tasks.is_empty() {
            return Ok(0);
        }
        let (period, due) = every.period(at);
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
        let done = self
            .db
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

    pub async fn list_tasks(
        &self,
        who: &Principal,
        req: ListDutyTasksRequest,
    ) -> Result<ListDutyTasksResponse, Status> {
        let grid = req.grid_code.trim();
        let grids = self.listed_grids(who, grid).await?;
        let state = match req.state.trim() {
            "" | "open" => "open",
            "done" => "done",
            "all" => "all",
            _ => return Err(status::invalid_field("state", "must be open, done or all")),
        };
        let period = req.period.trim();
        let rows = self
            .db
            .query_all_raw(stmt(
                &format!(
                    "SELECT {TASK_COLUMNS} FROM duty_tasks WHERE tenant = $1 \
                       AND ($2::text[] IS NULL OR grid_code = ANY($2)) \
                       AND ($3 = 'all' OR ($3 = 'open') = (done_at IS NULL)) \
                       AND ($4::text IS NULL OR period = $4) \
                     ORDER BY due_at, grid_code, target_label LIMIT 1000"
                ),
                vec![
                    who.tenant.code().into(),
                    grids.into(),
                    state.into(),
                    (!period.is_empty()).then(|| period.to_owned()).into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let tasks = rows
            .iter()
            .map(task_of)
            .collect::<Result<_, _>>()
            .map_err(db_error)?;
        Ok(ListDutyTasksResponse { tasks })
    }

    pub async fn check_in(&self, who: &Principal, req: CheckInRequest) -> Result<DutyTask, Status> {
        who.require_any(&[Role::GridWorker])?;
        let tenant = who.tenant.code();
        let id = parse_id("task_id", &req.task_id)?;
        if !req.lat.is_finite() || !(-90.0..=90.0).contains(&req.lat) {
            return Err(status::invalid_field("lat", "must be a latitude"));
        }
        if !req.lon.is_finite() || !(-180.0..=180.0).contains(&req.lon) {
            return Err(status::invalid_field("lon", "must be a longitude"));
        }
        if req.note.chars().count() > 2000 {
            return Err(status::invalid_field("note", "at most 2000 characters"));
        }
        let photo_kind = if req.photo.is_empty() {
            None
        } else if req.photo.len() > self.max_photo_bytes {
            return Err(status::invalid_field(
                "photo",
                format!("at most {} bytes", self.max_photo_bytes),
            ));
        } else {
            Some(
                photo_type(&req.photo)
                    .ok_or_else(|| status::invalid_field("photo", "must be a JPEG or PNG image"))?,
            )
        };
        // Authorised before the transaction: no second connection inside it.
        let task_grid: String = self
            .db
            .query_one_raw(stmt(
                "SELECT grid_code FROM duty_tasks WHERE tenant = $1 AND id = $2",
                vec![tenant.into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("duty task"))?
            .try_get("", "grid_code")
            .map_err(db_error)?;
        self.may_work_on(who, &task_grid).await?;
        let txn = self.db.begin().await.map_err(db_error)?;
        let row = txn
            .query_one_raw(stmt(
                "SELECT grid_code, done_at IS NOT NULL AS done FROM duty_tasks \
                 WHERE tenant = $1 AND id = $2 FOR UPDATE",
                vec![tenant.into(), id.into()],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("duty task"))?;
        let grid_code: String = row.try_get("", "grid_code").map_err(db_error)?;
        if row.try_get::<bool>("", "done").map_err(db_error)? {
            return Err(status::coded(
                tonic::Code::FailedPrecondition,
                "already_done",
                "this task was already checked in",
                None,
            ));
        }
        let grid = self.grid(tenant, &grid_code).map_err(|_| {
            status::coded(
                tonic::Code::FailedPrecondition,
                "grid_retired",
                format!("grid {grid_code} no longer exists (split or merged)"),
                None,
            )
        })?;
        let distance = distance_m(&grid, req.lon, req.lat);
        if distance > self.checkin_tolerance_m {
            return Err(status::invalid_field(
                "position",
                format!(
                    "the position lies {distance:.0} m outside grid {grid_code}; check in inside it or within {:.0} m",
                    self.checkin_tolerance_m
                ),
            ));
        }
        let row = txn
            .query_one_raw(stmt(
                &format!(
                    "UPDATE duty_tasks SET done_at = now(), done_by = $3, lat = $4, lon = $5, \
                       distance_m = $6, note = $7, photo = $8, photo_type = $9 \
                     WHERE tenant = $1 AND id = $2 RETURNING {TASK_COLUMNS}"
                ),
                vec![
                    tenant.into(),
                    id.into(),
                    who.sub.clone().into(),
                    req.lat.into(),
                    req.lon.into(),
                    distance.into(),
                    req.note.trim().to_owned().into(),
                    photo_kind.map(|_| req.photo.clone()).into(),
                    photo_kind.map(str::to_owned).into(),
                ],
            ))
            .await
            .map_err(db_error)?
            .ok_or_else(|| status::not_found("duty task"))?;
        let task = task_of(&row).map_err(db_error)?;
        txn.commit().await.map_err(db_error)?;
        Ok(task)
    }

    pub async fn compliance(
        &self,
        who: &Principal,
        req: DutyComplianceRequest,
    ) -> Result<DutyComplianceResponse, Status> {
        who.require_any(&ADMINS)?;
        let (start, end) = report_period(req.period.trim()).ok_or_else(|| {
            status::invalid_field("period", "must be YYYY-MM, YYYY-Www or YYYY-MM-DD")
        })?;
        let sql = match req.by.trim() {
            "grid" | "" => {
                "SELECT grid_code AS key, grid_code AS name, count(*) AS due, count(done_at) AS done, count(*) FILTER (WHERE done_at <= due_at) AS on_time \
                 FROM duty_tasks WHERE tenant = $1 AND due_at > $2 AND due_at <= $3 \
                   AND starts_with(community_code, $4) \
                 GROUP BY grid_code ORDER BY grid_code"
            }
            "community" => {
                "SELECT community_code AS key, community_code AS name, count(*) AS due, \
                   count(done_at) AS done, count(*) FILTER (WHERE done_at <= due_at) AS on_time FROM duty_tasks \
                 WHERE tenant = $1 AND due_at > $2 AND due_at <= $3 \
                   AND starts_with(community_code, $4) \
                 GROUP BY community_code ORDER BY community_code"
            }
            "worker" => {
                "SELECT w.id::text AS key, w.name, count(*) AS due, count(t.done_at) AS done, count(*) FILTER (WHERE t.done_at <= t.due_at) AS on_time \
                 FROM duty_tasks t JOIN assignments a ON a.tenant = t.tenant AND a.grid_code = t.grid_code \
                   JOIN workers w ON w.tenant = a.tenant AND w.id = a.worker_id \
                 WHERE t.tenant = $1 AND t.due_at > $2 AND t.due_at <= $3 \
                   AND starts_with(t.community_code, $4) \
                 GROUP BY w.id, w.name ORDER BY w.name, w.id"
            }
            _ => {
                return Err(status::invalid_field(
                    "by",
                    "must be worker, grid or community",
                ));
            }
        };
        let rows = self
            .db
            .query_all_raw(stmt(
                sql,
                vec![
                    who.tenant.code().into(),
                    start.into(),
                    end.into(),
                    who.scope.prefix().into(),
                ],
            ))
            .await
            .map_err(db_error)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let due: i64 = r.try_get("", "due").map_err(db_error)?;
            let done: i64 = r.try_get("", "done").map_err(db_error)?;
            let on_time: i64 = r.try_get("", "on_time").map_err(db_error)?;
            out.push(ComplianceRow {
                key: r.try_get("", "key").map_err(db_error)?,
                name: r.try_get("", "name").map_err(db_error)?,
                due: count(usize::try_from(due).unwrap_or(0)),
                done: count(usize::try_from(done).unwrap_or(0)),
                share: if due > 0 {
                    done as f64 / due as f64
                } else {
                    0.0
                },
                on_time: count(usize::try_from(on_time).unwrap_or(0)),
            });
        }
        Ok(DutyComplianceResponse { rows: out })
    }
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

/// Generates every tenant's tasks for the current periods, every `every`,
/// until `shutdown`.
pub async fn generate_loop(
    ctx: Ctx,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        let tenants = ctx.layers.tenants();
        for tenant in tenants {
            match ctx.generate(&tenant, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tenant = %tenant, created = n, "duty tasks generated"),
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "generating duty tasks failed; retrying")
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|_| Utc::now())
    }

    #[test]
    fn periods_follow_china_time() {
        // 2026-11-22 20:00 UTC is 2026-11-23 04:00 in China (a Monday).
        let t = at("2026-11-22T20:00:00Z");
        assert_eq!(
            Every::Day.period(t),
            ("2026-11-23".into(), at("2026-11-23T16:00:00Z"))
        );
        assert_eq!(
            Every::Week.period(t),
            ("2026-W48".into(), at("2026-11-29T16:00:00Z"))
        );
        assert_eq!(
            Every::Month.period(t),
            ("2026-11".into(), at("2026-11-30T16:00:00Z"))
        );
        assert_eq!(
            report_period("2026-11"),
            Some((at("2026-10-31T16:00:00Z"), at("2026-11-30T16:00:00Z")))
        );
        assert_eq!(
            report_period("2026-W48").map(|p| p.0),
            Some(at("2026-11-22T16:00:00Z"))
        );
        assert!(report_period("November").is_none());
    }

    #[test]
    fn distance_is_zero_inside_and_meters_outside() {
        use crate::domain::layer::{
            read,
            tests::{layer, square},
        };
        let g = read(&layer(vec![square(
            "G", "basic", 120.30, 36.04, 120.31, 36.05,
        )]))
        .unwrap_or_default()
        .remove(0);
        assert!(distance_m(&g, 120.305, 36.045).abs() < f64::EPSILON);
        // 0.001° of latitude is about 111 m.
        let d = distance_m(&g, 120.305, 36.051);
        assert!((d - 111.2).abs() < 1.0, "{d}");
        assert_eq!(photo_type(&[0xFF, 0xD8, 0xFF, 0xE0]), Some("image/jpeg"));
        assert_eq!(photo_type(b"GIF89a"), None);
    }
}
