//! 未诉先办: high-frequency matters found as tickets arrive, seasons found
//! in earlier years, and the proactive items both become. Also the
//! history of requests counted before Jiesu, which seasons and last year's
//! figures need from day one.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use jiesu_bus::Outbox;
use jiesu_common::{Text, time::china_today, tr};
use jiesu_proto::{evaluation as pb, evaluation::FrequentMatterLifted, time::to_timestamp};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, QueryResult};
use uuid::Uuid;

use crate::{
    domain::frequency::{FrequencyPolicy, Year, place_prefix, season},
    policies::Policies,
    store::{facts, stmt},
};

pub async fn policy(conn: &impl ConnectionTrait, tenant: &str) -> Result<FrequencyPolicy, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT definition FROM frequency_policies WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => serde_json::from_value(r.try_get("", "definition")?).unwrap_or_default(),
        None => FrequencyPolicy::default(),
    })
}

pub async fn put_policy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    p: &FrequencyPolicy,
    by: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO frequency_policies (tenant, definition, updated_by) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant) DO UPDATE SET definition = EXCLUDED.definition, \
         updated_by = EXCLUDED.updated_by, updated_at = now()",
        vec![
            tenant.into(),
            serde_json::to_value(p).unwrap_or_default().into(),
            by.into(),
        ],
    ))
    .await?;
    Ok(())
}

/// The region a facts row is judged under, in SQL.
const REGION_SQL: &str = "rpad(COALESCE(NULLIF(order_region, ''), received_region), 12, '0')";

fn place_name_level(place: &str) -> &'static str {
    match place.get(9..) {
        Some(c) if c != "000" => "community",
        _ => match place.get(6..9) {
            Some(s) if s != "000" => "street",
            _ => "district",
        },
    }
}

/// After facts changes (a pull's, before and after each): a ticket whose
/// category and place have just become known is counted. The same category
/// at the same place reaching the policy's threshold within its window
/// opens a matter (once: a lock per category and place, and a unique open
/// matter), which lifts every ticket in it; later tickets join the open
/// matter and are lifted too. Tickets of one category and place are taken
/// together, the places in order (so two transactions never wait for each
/// other's locks in a circle).
pub async fn observe_all(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    policies: &mut Policies,
    changes: &[(facts::Model, facts::Model)],
) -> Result<(), DbErr> {
    // (tenant, category, place) → the tickets newly counted there.
    let mut places: BTreeMap<(String, String, String), Vec<&facts::Model>> = BTreeMap::new();
    for (before, after) in changes {
        if after.received_at.is_none()
            || after.category.is_empty()
            || after.merged
            || after.withdrawn
        {
            continue;
        }
        let p = policies.frequency(txn, &after.tenant).await?;
        let Some(place) = p.place(after.region_code()) else {
            continue;
        };
        let counted_before = before.received_at.is_some()
            && before.category == after.category
            && p.place(before.region_code()).as_deref() == Some(place.as_str());
        if !counted_before {
            places
                .entry((after.tenant.clone(), after.category.clone(), place))
                .or_default()
                .push(after);
        }
    }
    if places.is_empty() {
        return Ok(());
    }
    // Every place's lock in one statement, in the order of the locks'
    // numbers, the same in every transaction.
    let mut cols: [Vec<String>; 3] = Default::default();
    for (t, c, p) in places.keys() {
        cols[0].push(t.clone());
        cols[1].push(c.clone());
        cols[2].push(p.clone());
    }
    let [ts, cs, ps] = cols;
    let keys = vec![ts.into(), cs.into(), ps.into()];
    txn.execute_raw(stmt(
        "SELECT pg_advisory_xact_lock(h) FROM (SELECT DISTINCT \
           hashtext('evaluation-matter:' || t || ':' || c || ':' || p) AS h \
           FROM unnest($1::text[], $2::text[], $3::text[]) AS u(t, c, p) ORDER BY h) AS l",
        keys.clone(),
    ))
    .await?;
    let mut open: BTreeMap<(String, String, String), (Uuid, i32)> = BTreeMap::new();
    for r in txn
        .query_all_raw(stmt(
            "SELECT m.id, m.window_days, m.tenant, m.category, m.place_code FROM frequent_matters m \
             JOIN unnest($1::text[], $2::text[], $3::text[]) AS u(t, c, p) \
               ON m.tenant = u.t AND m.category = u.c AND m.place_code = u.p \
             WHERE m.status = 'open'",
            keys,
        ))
        .await?
    {
        open.insert(
            (r.try_get("", "tenant")?, r.try_get("", "category")?, r.try_get("", "place_code")?),
            (r.try_get("", "id")?, r.try_get("", "window_days")?),
        );
    }
    // Tickets at a place with an open matter join it, and those new to it
    // are lifted: one event per matter.
    let (mut matters, mut joining) = (Vec::new(), Vec::new());
    for (key, tickets) in &places {
        if let Some((id, _)) = open.get(key) {
            for t in tickets {
                matters.push(*id);
                joining.push(t.ticket_id);
            }
        }
    }
    if !matters.is_empty() {
        let mut added: BTreeMap<Uuid, Vec<Uuid>> = BTreeMap::new();
        for r in txn
            .query_all_raw(stmt(
                "INSERT INTO matter_tickets (matter_id, ticket_id) \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[]) \
                 ON CONFLICT DO NOTHING RETURNING matter_id, ticket_id",
                vec![matters.into(), joining.into()],
            ))
            .await?
        {
            added
                .entry(r.try_get("", "matter_id")?)
                .or_default()
                .push(r.try_get("", "ticket_id")?);
        }
        let sizes = matter_sizes(txn, added.keys().copied().collect()).await?;
        let mut lifted = Vec::new();
        for (key, tickets) in &places {
            let (Some((id, window)), Some(first)) = (open.get(key), tickets.first()) else {
                continue;
            };
            if let Some(new) = added.remove(id) {
                let count = sizes.get(id).copied().unwrap_or(new.len());
                lifted.push(lift(first, *id, &key.2, count, *window, new));
            }
        }
        outbox.enqueue_all(txn, &lifted).await?;
    }
    for (key, tickets) in &places {
        if open.contains_key(key) {
            continue;
        }
        let p = policies.frequency(txn, &key.0).await?.clone();
        open_if_due(txn, outbox, &p, &key.2, tickets).await?;
    }
    Ok(())
}

/// At a place with no open matter (its lock held): the tickets in the
/// window, with `tickets`, reaching the threshold open a matter and lift
/// them all.
async fn open_if_due(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    p: &FrequencyPolicy,
    place: &str,
    tickets: &[&facts::Model],
) -> Result<(), DbErr> {
    let (Some(after), Some(received)) = (
        tickets.first(),
        tickets.iter().filter_map(|t| t.received_at).min(),
    ) else {
        return Ok(());
    };
    let place = place.to_owned();
    let last_closed: Option<DateTime<Utc>> = txn
        .query_one_raw(stmt(
            "SELECT max(closed_at) AS at FROM frequent_matters \
             WHERE tenant = $1 AND category = $2 AND place_code = $3",
            vec![
                after.tenant.clone().into(),
                after.category.clone().into(),
                place.clone().into(),
            ],
        ))
        .await?
        .map(|r| r.try_get("", "at"))
        .transpose()?
        .flatten();
    // From a window before this request on, later ones included: events
    // of requests made in any order all see each other.
    let from = received - TimeDelta::days(i64::from(p.window_days));
    let from = last_closed.map_or(from, |c| c.max(from));
    let rows = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT ticket_id, unit_id FROM ticket_facts WHERE tenant = $1 AND category = $2 \
                 AND received_at > $3 AND {REGION_SQL} LIKE $4 \
                 AND NOT merged AND NOT withdrawn AND excluded_reason IS NULL"
            ),
            vec![
                after.tenant.clone().into(),
                after.category.clone().into(),
                from.into(),
                format!("{}%", place_prefix(&place)).into(),
            ],
        ))
        .await?;
    if rows.len() < p.threshold as usize {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(rows.len());
    let mut units: BTreeMap<String, usize> = BTreeMap::new();
    for r in &rows {
        ids.push(r.try_get::<Uuid>("", "ticket_id")?);
        let unit: String = r.try_get("", "unit_id")?;
        if !unit.is_empty() {
            *units.entry(unit).or_default() += 1;
        }
    }
    let matter = Uuid::now_v7();
    let window = i32::try_from(p.window_days).unwrap_or(7);
    txn.execute_raw(stmt(
        "INSERT INTO frequent_matters (id, tenant, category, place_level, place_code, window_days, \
         threshold, opened_at) VALUES ($1, $2, $3, $4, $5, $6, $7, now())",
        vec![
            matter.into(),
            after.tenant.clone().into(),
            after.category.clone().into(),
            p.level.clone().into(),
            place.clone().into(),
            window.into(),
            i32::try_from(p.threshold).unwrap_or(i32::MAX).into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        "INSERT INTO matter_tickets (matter_id, ticket_id) \
         SELECT $1, t FROM unnest($2::uuid[]) AS u(t) ON CONFLICT DO NOTHING",
        vec![matter.into(), ids.clone().into()],
    ))
    .await?;
    let owner = units
        .iter()
        .max_by_key(|(u, n)| (**n, std::cmp::Reverse((*u).clone())))
        .map(|(u, _)| u.clone())
        .unwrap_or_default();
    let owner_name = unit_name(txn, &after.tenant, &owner).await?;
    let n = ids.len();
    let title = format!(
        "高频诉求：{}（{}近{}天{}件）",
        after.category_name, place, p.window_days, n
    );
    let detail = format!(
        "同一地点同类诉求 {} 天内达到 {} 件（阈值 {} 件），已提级至领导督办。请牵头单位查找根源、系统治理，做到未诉先办。",
        p.window_days, n, p.threshold
    );
    txn.execute_raw(stmt(
        "INSERT INTO proactive_items (id, tenant, source, matter_id, category, category_name, \
         place_level, place_code, title, detail, owner_unit_id, owner_unit_name, due_date, created_at) \
         VALUES ($1, $2, 'frequency', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())",
        vec![
            Uuid::now_v7().into(),
            after.tenant.clone().into(),
            matter.into(),
            after.category.clone().into(),
            after.category_name.clone().into(),
            p.level.clone().into(),
            place.clone().into(),
            title.into(),
            detail.into(),
            owner.into(),
            owner_name.into(),
            (china_today() + TimeDelta::days(30)).into(),
        ],
    ))
    .await?;
    tracing::info!(tenant = %after.tenant, category = %after.category, place = %place, tickets = n, "high-frequency matter lifted");
    outbox
        .enqueue(txn, &lift(after, matter, &place, n, window, ids))
        .await?;
    Ok(())
}

/// How many requests each matter holds.
async fn matter_sizes(
    txn: &DatabaseTransaction,
    ids: Vec<Uuid>,
) -> Result<BTreeMap<Uuid, usize>, DbErr> {
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    for r in txn
        .query_all_raw(stmt(
            "SELECT matter_id, count(*) AS n FROM matter_tickets \
             WHERE matter_id = ANY($1) GROUP BY matter_id",
            vec![ids.into()],
        ))
        .await?
    {
        let n: i64 = r.try_get("", "n")?;
        out.insert(r.try_get("", "matter_id")?, usize::try_from(n).unwrap_or(0));
    }
    Ok(out)
}

async fn unit_name(conn: &impl ConnectionTrait, tenant: &str, unit: &str) -> Result<String, DbErr> {
    if unit.is_empty() {
        return Ok(String::new());
    }
    Ok(conn
        .query_one_raw(stmt(
            "SELECT name FROM key_names WHERE tenant = $1 AND dim = 'unit' AND key = $2",
            vec![tenant.into(), unit.into()],
        ))
        .await?
        .map(|r| r.try_get("", "name"))
        .transpose()?
        .unwrap_or_default())
}

#[allow(clippy::too_many_arguments)]
fn lift(
    f: &facts::Model,
    matter: Uuid,
    place: &str,
    count: usize,
    window: i32,
    tickets: Vec<Uuid>,
) -> FrequentMatterLifted {
    let note = format!(
        "高频诉求提级：{}在{}近{}天已有{}件，列入领导督办",
        f.category_name, place, window, count
    );
    FrequentMatterLifted {
        matter_id: matter.to_string(),
        tenant: f.tenant.clone(),
        category: f.category.clone(),
        category_name: f.category_name.clone(),
        place_code: place.to_owned(),
        count: u32::try_from(count).unwrap_or(u32::MAX),
        window_days: u32::try_from(window).unwrap_or(0),
        ticket_ids: tickets.iter().map(ToString::to_string).collect(),
        note,
    }
}

// ---------------------------------------------------------------- items

const ITEM_COLUMNS: &str = "i.id, i.tenant, i.source, i.matter_id, i.category, i.category_name, \
    i.place_level, i.place_code, i.title, i.detail, i.owner_unit_id, i.owner_unit_name, \
    i.due_date, i.status, i.progress, i.result, i.created_at, i.closed_at, \
    (SELECT count(*) FROM matter_tickets t WHERE t.matter_id = i.matter_id) AS requests";

/// How many days the effect compares before and after.
pub const EFFECT_DAYS: i64 = 30;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Note {
    at: DateTime<Utc>,
    by_role: String,
    note: String,
}

pub fn item_from(r: &QueryResult) -> Result<pb::ProactiveItem, DbErr> {
    let id: Uuid = r.try_get("", "id")?;
    let due: NaiveDate = r.try_get("", "due_date")?;
    let notes: Vec<Note> = serde_json::from_value(r.try_get("", "progress")?).unwrap_or_default();
    Ok(pb::ProactiveItem {
        id: id.to_string(),
        tenant: r.try_get("", "tenant")?,
        source: r.try_get("", "source")?,
        category: r.try_get("", "category")?,
        category_name: r.try_get("", "category_name")?,
        place_level: r.try_get("", "place_level")?,
        place_code: r.try_get("", "place_code")?,
        title: r.try_get("", "title")?,
        detail: r.try_get("", "detail")?,
        owner_unit_id: r.try_get("", "owner_unit_id")?,
        owner_unit_name: r.try_get("", "owner_unit_name")?,
        due_date: due.to_string(),
        status: r.try_get("", "status")?,
        progress: notes
            .into_iter()
            .map(|n| pb::ProgressNote {
                at: Some(to_timestamp(n.at)),
                by_role: n.by_role,
                note: n.note,
            })
            .collect(),
        result: r.try_get("", "result")?,
        created_at: Some(to_timestamp(r.try_get("", "created_at")?)),
        closed_at: r
            .try_get::<Option<DateTime<Utc>>>("", "closed_at")?
            .map(to_timestamp),
        requests: u32::try_from(r.try_get::<i64>("", "requests")?).unwrap_or(0),
        effect: None,
    })
}

/// Filters of a listing; the caller's scope is applied on top.
pub struct ItemFilter<'a> {
    pub prefix: &'a str,
    pub level: &'a str,
    pub within: &'a str,
    pub statuses: &'a [&'a str],
    pub source: &'a str,
    /// Only this owner unit's (a handler's list).
    pub owner: Option<&'a str>,
    pub limit: u64,
    pub offset: u64,
}

pub async fn list_items(
    conn: &impl ConnectionTrait,
    f: &ItemFilter<'_>,
) -> Result<Vec<pb::ProactiveItem>, DbErr> {
    let statuses: Vec<String> = f.statuses.iter().map(|s| (*s).to_owned()).collect();
    conn.query_all_raw(stmt(
        &format!(
            "SELECT {ITEM_COLUMNS} FROM proactive_items i WHERE i.place_code LIKE $1 \
             AND i.place_code LIKE $2 AND ($3 = '' OR i.place_level = $3) \
             AND i.status = ANY(string_to_array($4, ',')) AND ($5 = '' OR i.source = $5) \
             AND ($8::text IS NULL OR i.owner_unit_id = $8) \
             ORDER BY i.due_date, i.id LIMIT $6 OFFSET $7"
        ),
        vec![
            format!("{}%", f.prefix).into(),
            format!("{}%", f.within).into(),
            f.level.into(),
            statuses.join(",").into(),
            f.source.into(),
            i64::try_from(f.limit).unwrap_or(500).into(),
            i64::try_from(f.offset).unwrap_or(0).into(),
            f.owner.map(str::to_owned).into(),
        ],
    ))
    .await?
    .iter()
    .map(item_from)
    .collect()
}

pub async fn item(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<pb::ProactiveItem>, DbErr> {
    conn.query_one_raw(stmt(
        &format!("SELECT {ITEM_COLUMNS} FROM proactive_items i WHERE i.id = $1"),
        vec![id.into()],
    ))
    .await?
    .as_ref()
    .map(item_from)
    .transpose()
}

/// Requests of a category under a place in days `from..=to`, Jiesu's and
/// the imported history's.
pub async fn requests_in(
    conn: &impl ConnectionTrait,
    tenant: &str,
    category: &str,
    place: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<i64, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            &format!(
                "SELECT \
                   (SELECT count(*) FROM ticket_facts WHERE tenant = $1 AND category = $2 \
                      AND received_at >= ($4::date::timestamp AT TIME ZONE 'Asia/Shanghai') \
                      AND received_at < (($5::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai') \
                      AND {REGION_SQL} LIKE $3 AND NOT merged AND NOT withdrawn) \
                 + (SELECT COALESCE(sum(count), 0) FROM history_counts WHERE tenant = $1 \
                      AND category = $2 AND day BETWEEN $4 AND $5 AND rpad(region_code, 12, '0') LIKE $3) \
                 AS n"
            ),
            vec![
                tenant.into(),
                category.into(),
                format!("{}%", place_prefix(place)).into(),
                from.into(),
                to.into(),
            ],
        ))
        .await?;
    Ok(row
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or(0))
}

/// Requests before the item was made and after it was done.
pub async fn effect(
    conn: &impl ConnectionTrait,
    it: &pb::ProactiveItem,
    today: NaiveDate,
) -> Result<pb::Effect, DbErr> {
    let day = |t: &Option<jiesu_proto::time::Timestamp>| {
        t.as_ref()
            .and_then(jiesu_proto::time::from_timestamp)
            .map(jiesu_common::time::china_day)
    };
    let made = day(&it.created_at).unwrap_or(today);
    let span = TimeDelta::days(EFFECT_DAYS);
    let before = requests_in(
        conn,
        &it.tenant,
        &it.category,
        &it.place_code,
        made - span,
        made - TimeDelta::days(1),
    )
    .await?;
    let (after, complete, measured) = match (it.status.as_str(), day(&it.closed_at)) {
        ("done", Some(done)) => {
            let end = done + span;
            let n = requests_in(
                conn,
                &it.tenant,
                &it.category,
                &it.place_code,
                done + TimeDelta::days(1),
                end.min(today),
            )
            .await?;
            (n, today >= end, true)
        }
        _ => (0, false, false),
    };
    Ok(pb::Effect {
        days: u32::try_from(EFFECT_DAYS).unwrap_or(30),
        before,
        after,
        complete,
        measured,
    })
}

/// A change of an item, already checked by the caller.
pub struct ItemChange {
    pub owner: Option<(String, String)>,
    pub due: Option<NaiveDate>,
    pub status: Option<String>,
    pub note: Option<(String, String)>,
    pub result: Option<String>,
}

/// Applies a change; closing an item closes its matter (so the same
/// requests at the same place may be counted afresh).
pub async fn update_item(txn: &DatabaseTransaction, id: Uuid, c: &ItemChange) -> Result<(), DbErr> {
    if let Some((unit, name)) = &c.owner {
        txn.execute_raw(stmt(
            "UPDATE proactive_items SET owner_unit_id = $2, owner_unit_name = $3 WHERE id = $1",
            vec![id.into(), unit.clone().into(), name.clone().into()],
        ))
        .await?;
    }
    if let Some(due) = c.due {
        txn.execute_raw(stmt(
            "UPDATE proactive_items SET due_date = $2 WHERE id = $1",
            vec![id.into(), due.into()],
        ))
        .await?;
    }
    if let Some((role, note)) = &c.note {
        let n = serde_json::to_value(Note {
            at: Utc::now(),
            by_role: role.clone(),
            note: note.clone(),
        })
        .unwrap_or_default();
        txn.execute_raw(stmt(
            "UPDATE proactive_items SET progress = progress || jsonb_build_array($2::jsonb) WHERE id = $1",
            vec![id.into(), n.into()],
        ))
        .await?;
    }
    if let Some(result) = &c.result {
        txn.execute_raw(stmt(
            "UPDATE proactive_items SET result = $2 WHERE id = $1",
            vec![id.into(), result.clone().into()],
        ))
        .await?;
    }
    if let Some(status) = &c.status {
        let closing = matches!(status.as_str(), "done" | "cancelled");
        txn.execute_raw(stmt(
            "UPDATE proactive_items SET status = $2, \
             closed_at = CASE WHEN $3 THEN COALESCE(closed_at, now()) ELSE NULL END WHERE id = $1",
            vec![id.into(), status.clone().into(), closing.into()],
        ))
        .await?;
        if closing {
            txn.execute_raw(stmt(
                "UPDATE frequent_matters SET status = 'closed', closed_at = now() \
                 WHERE id = (SELECT matter_id FROM proactive_items WHERE id = $1) AND status = 'open'",
                vec![id.into()],
            ))
            .await?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- seasons

/// Requests per (category, place) in each earlier year's copy of the
/// window and in that whole year.
async fn years_of(
    txn: &DatabaseTransaction,
    tenant: &str,
    from: NaiveDate,
    to: NaiveDate,
    back: u32,
) -> Result<BTreeMap<(String, String), Year>, DbErr> {
    let (Some(wf), Some(wt)) = (
        from.checked_sub_months(Months::new(12 * back)),
        to.checked_sub_months(Months::new(12 * back)),
    ) else {
        return Ok(BTreeMap::new());
    };
    let yf = wt - TimeDelta::days(364);
    let place = "CASE WHEN substr(r, 7, 3) <> '000' THEN rpad(left(r, 9), 12, '0') \
                 ELSE rpad(left(r, 6), 12, '0') END";
    let rows = txn
        .query_all_raw(stmt(
            &format!(
                "SELECT category, {place} AS place, \
                   COALESCE(sum(n) FILTER (WHERE day BETWEEN $2 AND $3), 0)::BIGINT AS win, \
                   sum(n)::BIGINT AS total \
                 FROM ( \
                   SELECT category, {REGION_SQL} AS r, (received_at AT TIME ZONE 'Asia/Shanghai')::date AS day, 1 AS n \
                     FROM ticket_facts WHERE tenant = $1 AND received_at IS NOT NULL \
                      AND received_at >= ($4::date::timestamp AT TIME ZONE 'Asia/Shanghai') \
                      AND received_at < (($3::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai') \
                      AND NOT merged AND NOT withdrawn \
                   UNION ALL \
                   SELECT category, rpad(region_code, 12, '0') AS r, day, count AS n \
                     FROM history_counts WHERE tenant = $1 AND day BETWEEN $4 AND $3 \
                 ) x GROUP BY 1, 2"
            ),
            vec![tenant.into(), wf.into(), wt.into(), yf.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok((
                (r.try_get("", "category")?, r.try_get("", "place")?),
                Year {
                    window: r.try_get("", "win")?,
                    total: r.try_get("", "total")?,
                },
            ))
        })
        .collect()
}

/// Looks at the weeks ahead of `today` in earlier years; each category
/// and place that rose in them (see [`season`]) becomes a proactive item,
/// unless one made for this season is still ahead.
pub async fn scan_seasons(
    txn: &DatabaseTransaction,
    tenant: &str,
    today: NaiveDate,
) -> Result<(Vec<pb::ProactiveItem>, usize), DbErr> {
    let p = policy(txn, tenant).await?;
    let days = i64::from(p.season_weeks) * 7;
    let (from, to) = (today, today + TimeDelta::days(days - 1));
    let mut per: BTreeMap<(String, String), Vec<Year>> = BTreeMap::new();
    for back in 1..=p.season_years {
        for (k, y) in years_of(txn, tenant, from, to, back).await? {
            per.entry(k).or_default().push(y);
        }
    }
    let examined = per.len();
    let mut created = Vec::new();
    for ((category, place), years) in per {
        let window_days = u32::try_from(days).unwrap_or(28);
        let Some(s) = season(&years, window_days, p.season_min_count, p.season_ratio) else {
            continue;
        };
        // One item per season: none while an earlier one's window is ahead.
        let pending = txn
            .query_one_raw(stmt(
                "SELECT 1 AS x FROM proactive_items WHERE tenant = $1 AND source = 'seasonal' \
                 AND category = $2 AND place_code = $3 AND season_from > $4",
                vec![
                    tenant.into(),
                    category.clone().into(),
                    place.clone().into(),
                    (today - TimeDelta::days(days)).into(),
                ],
            ))
            .await?
            .is_some();
        if pending {
            continue;
        }
        let name: String = txn
            .query_one_raw(stmt(
                "SELECT name FROM key_names WHERE tenant = $1 AND dim = 'category' AND key = $2",
                vec![tenant.into(), category.clone().into()],
            ))
            .await?
            .map(|r| r.try_get("", "name"))
            .transpose()?
            .unwrap_or_else(|| category.clone());
        let owner = txn
            .query_one_raw(stmt(
                &format!(
                    "SELECT unit_id FROM ticket_facts WHERE tenant = $1 AND category = $2 \
                     AND {REGION_SQL} LIKE $3 AND unit_id <> '' \
                     GROUP BY unit_id ORDER BY count(*) DESC, unit_id LIMIT 1"
                ),
                vec![
                    tenant.into(),
                    category.clone().into(),
                    format!("{}%", place_prefix(&place)).into(),
                ],
            ))
            .await?
            .map(|r| r.try_get::<String>("", "unit_id"))
            .transpose()?
            .unwrap_or_default();
        let owner_name = unit_name(txn, tenant, &owner).await?;
        let title = format!(
            "季节性高发：{name}（{place}，{from} 起 {} 周）",
            p.season_weeks
        );
        let detail = format!(
            "往年同期平均 {:.0} 件，约为平时的 {:.1} 倍（{} 年中有 {} 年如此）。请在高发期前排查隐患、提前处置，做到未诉先办。",
            s.average,
            s.ratio,
            years.len(),
            s.years
        );
        let row = txn
            .query_one_raw(stmt(
                "INSERT INTO proactive_items (id, tenant, source, season_from, category, category_name, \
                 place_level, place_code, title, detail, owner_unit_id, owner_unit_name, due_date, created_at) \
                 VALUES ($1, $2, 'seasonal', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now()) \
                 ON CONFLICT DO NOTHING RETURNING id",
                vec![
                    Uuid::now_v7().into(),
                    tenant.into(),
                    from.into(),
                    category.clone().into(),
                    name.into(),
                    place_name_level(&place).into(),
                    place.clone().into(),
                    title.into(),
                    detail.into(),
                    owner.into(),
                    owner_name.into(),
                    (today + TimeDelta::days(7)).into(),
                ],
            ))
            .await?;
        if let Some(r) = row {
            let id: Uuid = r.try_get("", "id")?;
            if let Some(it) = item(txn, id).await? {
                tracing::info!(tenant, category = %it.category, place = %it.place_code, "seasonal proactive item");
                created.push(it);
            }
        }
    }
    txn.execute_raw(stmt(
        "INSERT INTO seasonal_scans (tenant, day) VALUES ($1, $2) \
         ON CONFLICT (tenant) DO UPDATE SET day = EXCLUDED.day",
        vec![tenant.into(), today.into()],
    ))
    .await?;
    Ok((created, examined))
}

/// Tenants whose seasons have not been scanned today.
pub async fn unscanned(
    conn: &impl ConnectionTrait,
    today: NaiveDate,
) -> Result<Vec<String>, DbErr> {
    conn.query_all_raw(stmt(
        "SELECT DISTINCT r.tenant FROM rollup_day r \
         LEFT JOIN seasonal_scans s ON s.tenant = r.tenant \
         WHERE r.dim = 'tenant' AND (s.day IS NULL OR s.day < $1)",
        vec![today.into()],
    ))
    .await?
    .iter()
    .map(|r| r.try_get("", "tenant"))
    .collect()
}

/// The daily scan: each tenant not scanned today, one replica at a time.
pub async fn scan_all(db: &sea_orm::DatabaseConnection, today: NaiveDate) -> Result<usize, DbErr> {
    use sea_orm::TransactionTrait;
    let mut created = 0;
    for tenant in unscanned(db, today).await? {
        let txn = db.begin().await?;
        let locked = txn
            .query_one_raw(stmt(
                "SELECT pg_try_advisory_xact_lock(hashtext('evaluation-seasons:' || $1)) AS ok",
                vec![tenant.clone().into()],
            ))
            .await?
            .map(|r| r.try_get::<bool>("", "ok"))
            .transpose()?
            .unwrap_or(false);
        if !locked {
            continue;
        }
        created += scan_seasons(&txn, &tenant, today).await?.0.len();
        txn.commit().await?;
    }
    Ok(created)
}

// ---------------------------------------------------------------- history

/// One line of an imported history.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryRow {
    pub day: NaiveDate,
    pub category: String,
    pub region_code: String,
    pub count: i32,
    pub category_name: String,
}

/// Most lines one import takes.
pub const MAX_HISTORY_ROWS: usize = 500_000;

/// Reads the whole file; every problem found (up to ten) or every row.
pub fn parse_history(
    csv: &str,
    tenant_prefix: &str,
    today: NaiveDate,
) -> Result<Vec<HistoryRow>, Vec<Text>> {
    // Excel saves UTF-8 CSV with a byte order mark.
    let csv = csv.strip_prefix('\u{feff}').unwrap_or(csv);
    let mut rd = ::csv::ReaderBuilder::new()
        .trim(::csv::Trim::All)
        .flexible(true)
        .from_reader(csv.as_bytes());
    let header: Vec<String> = match rd.headers() {
        Ok(h) => h.iter().map(str::to_owned).collect(),
        Err(_) => return Err(vec![tr!("无法读取表头", "the header cannot be read")]),
    };
    let want = ["day", "category", "region_code", "count"];
    if header.len() < 4
        || header[..4] != want
        || (header.len() == 5 && header[4] != "category_name")
        || header.len() > 5
    {
        return Err(vec![tr!(
            "表头必须是 day,category,region_code,count[,category_name]",
            "the header must be day,category,region_code,count[,category_name]"
        )]);
    }
    let mut rows = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, rec) in rd.records().enumerate() {
        let line = i + 2;
        if problems.len() >= 10 {
            break;
        }
        if rows.len() >= MAX_HISTORY_ROWS {
            problems.push(tr!(
                "超过 {} 行，请分批导入",
                "more than {} rows; import in parts",
                MAX_HISTORY_ROWS
            ));
            break;
        }
        let Ok(rec) = rec else {
            problems.push(tr!("第 {} 行：无法解析", "row {}: cannot be read", line));
            continue;
        };
        let get = |k: usize| rec.get(k).unwrap_or("").to_owned();
        let day = match NaiveDate::parse_from_str(&get(0), "%Y-%m-%d") {
            Ok(d) if d <= today && d.year() >= 1990 => d,
            Ok(_) => {
                problems.push(tr!(
                    "第 {} 行：day 必须在 1990 年到今天之间",
                    "row {}: day must be between 1990 and today",
                    line
                ));
                continue;
            }
            Err(_) => {
                problems.push(tr!(
                    "第 {} 行：day 应为 YYYY-MM-DD",
                    "row {}: day must be YYYY-MM-DD",
                    line
                ));
                continue;
            }
        };
        let category = get(1);
        if category.is_empty() || category.len() > 64 {
            problems.push(tr!(
                "第 {} 行：category 不能为空且不超过 64 个字符",
                "row {}: category must be 1 to 64 characters",
                line
            ));
            continue;
        }
        let region = get(2);
        let ok_region = [6, 9, 12].contains(&region.len())
            && region.bytes().all(|b| b.is_ascii_digit())
            && region.starts_with(tenant_prefix);
        if !ok_region {
            problems.push(tr!(
                "第 {} 行：region_code 必须是本辖区（{}）的 6、9 或 12 位区划代码",
                "row {}: region_code must be a 6, 9 or 12 digit code under the tenant ({})",
                line,
                tenant_prefix
            ));
            continue;
        }
        let count = match get(3).parse::<i32>() {
            Ok(n) if (0..=1_000_000).contains(&n) => n,
            _ => {
                problems.push(tr!(
                    "第 {} 行：count 必须是 0 到 1000000 的整数",
                    "row {}: count must be a whole number from 0 to 1000000",
                    line
                ));
                continue;
            }
        };
        let region_code = format!("{region:0<12}");
        if !seen.insert((day, category.clone(), region_code.clone())) {
            problems.push(tr!(
                "第 {} 行：与前面的行重复（同一天、分类、区划）",
                "row {}: repeats an earlier row (same day, category and region)",
                line
            ));
            continue;
        }
        rows.push(HistoryRow {
            day,
            category,
            region_code,
            count,
            category_name: get(4),
        });
    }
    if problems.is_empty() && rows.is_empty() {
        problems.push(tr!("文件没有数据行", "the file has no rows"));
    }
    if problems.is_empty() {
        Ok(rows)
    } else {
        Err(problems)
    }
}

/// Writes the rows (a row imported again replaces its count; rows not in the file stay).
pub async fn write_history(
    txn: &DatabaseTransaction,
    tenant: &str,
    rows: &[HistoryRow],
) -> Result<(), DbErr> {
    for chunk in rows.chunks(1000) {
        let mut values: Vec<sea_orm::Value> = vec![tenant.into()];
        let mut tuples = Vec::with_capacity(chunk.len());
        for (i, r) in chunk.iter().enumerate() {
            let b = 2 + i * 4;
            tuples.push(format!("($1, ${}, ${}, ${}, ${})", b, b + 1, b + 2, b + 3));
            values.push(r.day.into());
            values.push(r.category.clone().into());
            values.push(r.region_code.clone().into());
            values.push(r.count.into());
        }
        txn.execute_raw(stmt(
            &format!(
                "INSERT INTO history_counts (tenant, day, category, region_code, count) VALUES {} \
                 ON CONFLICT (tenant, day, category, region_code) DO UPDATE SET count = EXCLUDED.count",
                tuples.join(", ")
            ),
            values,
        ))
        .await?;
    }
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.category_name.is_empty()) {
        names.insert(&r.category, &r.category_name);
    }
    for (code, name) in names {
        txn.execute_raw(stmt(
            "INSERT INTO key_names (tenant, dim, key, name) VALUES ($1, 'category', $2, $3) \
             ON CONFLICT (tenant, dim, key) DO NOTHING",
            vec![tenant.into(), code.into(), name.into()],
        ))
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn a_history_file_is_read_whole_and_every_problem_named() {
        let ok = "day,category,region_code,count,category_name\n\
                  2025-11-03,GR01,370202006,12,供暖不热\n2025-11-04,GR01,370202006001,3,\n";
        let rows = parse_history(ok, "370202", d("2026-12-01")).unwrap_or_default();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].region_code, "370202006000");
        let bad = "day,category,region_code,count\n2025-13-01,GR01,370202006,1\n\
                   2025-11-01,,370202006,1\n2025-11-01,GR01,370203006,1\n2025-11-01,GR01,370202006,-4\n\
                   2027-01-01,GR01,370202006,1\n2025-11-02,GR01,370202006,1\n2025-11-02,GR01,370202006000,2\n";
        let problems = parse_history(bad, "370202", d("2026-12-01"))
            .err()
            .unwrap_or_default();
        let rows: Vec<String> = problems.iter().map(|t| t.en.clone()).collect();
        assert_eq!(rows.len(), 6, "{rows:?}");
        assert!(
            rows[0].starts_with("row 2:") && rows[5].starts_with("row 8:"),
            "{rows:?}"
        );
        assert!(parse_history("a,b\n", "370202", d("2026-12-01")).is_err());
        assert!(
            parse_history(
                "day,category,region_code,count\n",
                "370202",
                d("2026-12-01")
            )
            .is_err()
        );
    }

    #[test]
    fn places_name_their_level() {
        assert_eq!(place_name_level("370202006001"), "community");
        assert_eq!(place_name_level("370202006000"), "street");
        assert_eq!(place_name_level("370202000000"), "district");
    }
}
