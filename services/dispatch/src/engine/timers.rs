//! Reconciling a work order's durable timers with its clocks and summons:
//! the notices it still needs are planned, the others cancelled.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};

use super::{SummonsRow, clocks_of};
use crate::{
    domain::{clock, workflow::Status},
    store::{
        settings::{Settings, stmt},
        work_orders,
    },
};

/// A timer an order needs: notice, deadline, deadline moment, due moment,
/// and the summoned unit for report-in timers.
type Wanted = (String, String, DateTime<Utc>, DateTime<Utc>, Option<String>);

/// Brings the order's pending timers in line with its clocks and summons:
/// cancels those no longer wanted and adds the missing ones. A notice that
/// already fired for the same deadline is not planned again.
pub async fn reconcile_timers<C: ConnectionTrait>(
    conn: &C,
    m: &work_orders::Model,
    summons: &[SummonsRow],
    s: &Settings,
) -> Result<(), DbErr> {
    let status = Status::parse(&m.status).unwrap_or(Status::Triage);
    let mut wanted: Vec<Wanted> = Vec::new();
    if status.is_open() {
        for p in clock::plan(&clocks_of(m), &s.calendar, s.reminder_at, s.supervise_after) {
            wanted.push((
                p.notice.into(),
                p.deadline.into(),
                p.deadline_at,
                p.due_at,
                None,
            ));
        }
        for x in summons.iter().filter(|x| x.reported_at.is_none()) {
            wanted.push((
                clock::REPORT_OVERDUE.into(),
                clock::REPORT.into(),
                x.due_at,
                x.due_at,
                Some(x.unit_id.clone()),
            ));
        }
    }
    // Timers already set or fired for this order (cancelled ones are gone).
    let existing = conn
        .query_all_raw(stmt(
            "SELECT id, notice, deadline, deadline_at, unit_id, fired_at IS NOT NULL AS fired \
             FROM timers WHERE work_order_id = $1 AND cancelled_at IS NULL",
            vec![m.id.into()],
        ))
        .await?;
    let mut have: Vec<(String, String, DateTime<Utc>, Option<String>)> = Vec::new();
    let mut cancel: Vec<i64> = Vec::new();
    for r in existing {
        let key: (String, String, DateTime<Utc>, Option<String>) = (
            r.try_get("", "notice")?,
            r.try_get("", "deadline")?,
            r.try_get("", "deadline_at")?,
            r.try_get("", "unit_id")?,
        );
        let wanted_now = wanted
            .iter()
            .any(|w| (&w.0, &w.1, &w.2, &w.4) == (&key.0, &key.1, &key.2, &key.3));
        let fired: bool = r.try_get("", "fired")?;
        if !wanted_now && !fired {
            cancel.push(r.try_get("", "id")?);
        } else {
            have.push(key);
        }
    }
    if !cancel.is_empty() {
        conn.execute_raw(stmt(
            "UPDATE timers SET cancelled_at = now() WHERE id = ANY($1)",
            vec![cancel.into()],
        ))
        .await?;
    }
    // A notice already set, or fired for the same deadline, is not set again.
    wanted.retain(|w| {
        !have
            .iter()
            .any(|h| (&h.0, &h.1, &h.2, &h.3) == (&w.0, &w.1, &w.2, &w.4))
    });
    if wanted.is_empty() {
        return Ok(());
    }
    let (mut notices, mut deadlines, mut deadline_ats, mut dues, mut units) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (notice, deadline, deadline_at, due_at, unit) in wanted {
        notices.push(notice);
        deadlines.push(deadline);
        deadline_ats.push(deadline_at);
        dues.push(due_at);
        // '' stands for "no unit" in the array; NULLIF restores it.
        units.push(unit.unwrap_or_default());
    }
    conn.execute_raw(stmt(
        "INSERT INTO timers (tenant, work_order_id, notice, deadline, deadline_at, due_at, \
         version, unit_id) \
         SELECT $1, $2, n, d, da, du, $3, NULLIF(u, '') \
         FROM unnest($4::text[], $5::text[], $6::timestamptz[], $7::timestamptz[], $8::text[]) \
           AS t(n, d, da, du, u)",
        vec![
            m.tenant.clone().into(),
            m.id.into(),
            m.version.into(),
            notices.into(),
            deadlines.into(),
            deadline_ats.into(),
            dues.into(),
            units.into(),
        ],
    ))
    .await?;
    Ok(())
}
