//! Rows as answers.

use jiesu_auth::Principal;
use jiesu_common::tr;
use jiesu_proto::{evaluation as pb, status, time::to_timestamp};
use sea_orm::ConnectionTrait;
use tonic::Status;

use super::db_error;
use crate::{
    callbacks::{self, Attempt, ROUND_COLUMNS, Round},
    domain::{
        CallbackPolicy,
        counts::{Counts, contribution},
    },
    store::{facts, formulas, stmt},
};

pub fn counts(c: &Counts) -> pb::Counts {
    use crate::domain::counts::C;
    let g = |x: C| c.get(x);
    pb::Counts {
        received: g(C::Received),
        excluded: g(C::Excluded),
        merged: g(C::Merged),
        withdrawn: g(C::Withdrawn),
        assessed: g(C::Assessed),
        dispatched: g(C::Dispatched),
        signed_on_time: g(C::SignedOnTime),
        responded: g(C::Responded),
        responded_on_time: g(C::RespondedOnTime),
        resolved: g(C::Resolved),
        resolved_on_time: g(C::ResolvedOnTime),
        resolved_same_day: g(C::ResolvedSameDay),
        closed: g(C::Closed),
        returned: g(C::Returned),
        reopened: g(C::Reopened),
        callbacks_valid: g(C::CallbacksValid),
        satisfied: g(C::Satisfied),
        basic: g(C::Basic),
        unsatisfied: g(C::Unsatisfied),
        callback_resolved: g(C::CallbackResolved),
        unreachable: g(C::Unreachable),
        resolve_work_minutes: g(C::ResolveWorkMinutes),
    }
}

pub fn task(r: &Round, f: &facts::Model, log: &[Attempt]) -> pb::CallbackTask {
    pb::CallbackTask {
        ticket_id: r.ticket_id.to_string(),
        tracking_no: f.tracking_no.clone(),
        round: u32::try_from(r.round).unwrap_or(0),
        status: r.status.clone(),
        opened_at: Some(to_timestamp(r.opened_at)),
        due_at: Some(to_timestamp(r.due_at)),
        attempts: u32::try_from(r.attempts).unwrap_or(0),
        verdict: r.satisfaction.as_ref().map(|s| pb::Verdict {
            resolved: r.resolved.unwrap_or(false),
            satisfaction: s.clone(),
            comment: r.comment.clone(),
            method: r.method.clone().unwrap_or_default(),
            by_role: r.by_role.clone().unwrap_or_default(),
            at: r.answered_at.map(to_timestamp),
            reopen_requested: r.reopen_requested,
        }),
        unit_name: f.unit_name.clone(),
        category_name: f.category_name.clone(),
        tenant: r.tenant.clone(),
        attempt_log: log
            .iter()
            .filter(|a| a.round == r.round)
            .map(|a| pb::CallbackAttempt {
                at: Some(to_timestamp(a.at)),
                outcome: a.outcome.clone(),
                note: a.note.clone(),
                by_role: a.by_role.clone(),
            })
            .collect(),
    }
}

pub async fn ticket(
    db: &impl ConnectionTrait,
    f: &facts::Model,
) -> Result<pb::TicketEvaluation, Status> {
    let rounds = callbacks::rounds(db, f.ticket_id).await.map_err(db_error)?;
    let log = callbacks::attempts(db, f.ticket_id)
        .await
        .map_err(db_error)?;
    let t = |x: Option<chrono::DateTime<chrono::Utc>>| x.map(to_timestamp);
    let n = |x: i32| u32::try_from(x).unwrap_or(0);
    Ok(pb::TicketEvaluation {
        ticket_id: f.ticket_id.to_string(),
        tenant: f.tenant.clone(),
        tracking_no: f.tracking_no.clone(),
        region_code: f.region_code().to_owned(),
        category: f.category.clone(),
        category_name: f.category_name.clone(),
        channel: f.channel.clone(),
        nature: f.nature.clone(),
        unit_id: f.unit_id.clone(),
        unit_name: f.unit_name.clone(),
        status: f.status.clone(),
        received_at: t(f.received_at),
        dispatched_at: t(f.dispatched_at),
        signed_at: t(f.signed_at),
        responded_at: t(f.responded_at),
        resolved_at: t(f.resolved_at),
        closed_at: t(f.closed_at),
        sign_due: t(f.sign_due),
        respond_due: t(f.respond_due),
        resolve_due: t(f.resolve_due),
        returns: n(f.returns),
        extensions: n(f.extensions),
        reopens: n(f.reopens),
        excluded: f.excluded_reason.is_some(),
        exclusion_reason: f.excluded_reason.clone().unwrap_or_default(),
        exclusion_note: f.excluded_note.clone(),
        rounds: rounds.iter().map(|r| task(r, f, &log)).collect(),
        counts: Some(counts(
            &contribution(&f.facts()).map(|(_, c)| c).unwrap_or_default(),
        )),
    })
}

pub fn formula(s: &formulas::Stored) -> pb::Formula {
    let f = &s.formula;
    pb::Formula {
        effective_from: if s.builtin {
            String::new()
        } else {
            s.effective_from.to_string()
        },
        satisfied_weight: f.satisfied_weight,
        basic_weight: f.basic_weight,
        response_weight: f.response_weight,
        resolution_weight: f.resolution_weight,
        satisfaction_weight: f.satisfaction_weight,
        resolution_basis: f.resolution_basis.clone(),
        response_basis: f.response_basis.clone(),
        note: s.note.clone(),
        created_by: s.created_by.clone(),
        created_at: s.created_at.map(to_timestamp),
        builtin: s.builtin,
    }
}

pub fn policy(p: &CallbackPolicy) -> pb::CallbackPolicy {
    pb::CallbackPolicy {
        natures: p.natures.clone(),
        skip_natures: p.skip_natures.clone(),
        due_hours: p.due_hours,
        max_attempts: p.max_attempts,
        max_reopens: p.max_reopens,
        sms_invite: Some(p.sms_invite),
    }
}

pub fn rule(r: &crate::warnings::StoredRule) -> pb::WarningRule {
    pb::WarningRule {
        id: r.id.to_string(),
        name: r.rule.name.clone(),
        metric: r.rule.metric.clone(),
        dimension: r.rule.dimension.clone(),
        window_days: r.rule.window_days,
        threshold: r.rule.threshold,
        min_tickets: r.rule.min_tickets,
        active: r.active,
    }
}

/// Page size (1..500, default 50) and offset from a request.
pub fn page(page_size: u32, token: &str) -> Result<(u64, u64), Status> {
    let size = match page_size {
        0 => 50,
        n @ 1..=500 => u64::from(n),
        _ => {
            return Err(status::invalid_field(
                "page_size",
                tr!("必须在 1 到 500 之间", "must be between 1 and 500"),
            ));
        }
    };
    let offset = match token.trim() {
        "" => 0,
        t => t.parse().map_err(|_| {
            status::invalid_field(
                "page_token",
                tr!("不是有效的翻页标记", "is not a page token"),
            )
        })?,
    };
    Ok((size, offset))
}

/// The token of the next page, empty after the last.
pub fn next_page(got: usize, size: u64, offset: u64) -> String {
    if got as u64 == size {
        (offset + size).to_string()
    } else {
        String::new()
    }
}

/// Callback rounds in the caller's scope, the earliest due first.
pub async fn list_callbacks(
    db: &impl ConnectionTrait,
    who: &Principal,
    req: &pb::ListCallbacksRequest,
) -> Result<pb::ListCallbacksResponse, Status> {
    let state = match req.status.trim() {
        "" => "open",
        s @ ("open" | "answered" | "unreachable" | "refused" | "all") => s,
        _ => {
            return Err(status::invalid_field(
                "status",
                tr!(
                    "必须是 open、answered、unreachable、refused 或 all",
                    "must be open, answered, unreachable, refused or all"
                ),
            ));
        }
    };
    let (size, offset) = page(req.page_size, &req.page_token)?;
    let cols = ROUND_COLUMNS
        .split(", ")
        .map(|c| format!("c.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut values = vec![
        format!("{}%", who.scope.prefix()).into(),
        state.to_owned().into(),
    ];
    let unit_filter = match super::own_unit(who) {
        Some(u) => {
            values.push(u.to_owned().into());
            " AND c.unit_id = $5"
        }
        None => "",
    };
    let sql = format!(
        "SELECT {cols} FROM callbacks c WHERE c.region_code LIKE $1 \
         AND ($2 = 'all' OR c.status = $2){unit_filter} \
         ORDER BY c.due_at, c.ticket_id, c.round LIMIT $3 OFFSET $4"
    );
    values.insert(2, i64::try_from(size).unwrap_or(50).into());
    values.insert(3, i64::try_from(offset).unwrap_or(0).into());
    let rows = db
        .query_all_raw(stmt(&sql, values))
        .await
        .map_err(db_error)?;
    let mut callbacks = Vec::with_capacity(rows.len());
    for r in &rows {
        let round = Round::from_row(r).map_err(db_error)?;
        let f = <facts::Entity as sea_orm::EntityTrait>::find_by_id(round.ticket_id)
            .one(db)
            .await
            .map_err(db_error)?;
        if let Some(f) = f {
            callbacks.push(task(&round, &f, &[]));
        }
    }
    let next_page_token = next_page(rows.len(), size, offset);
    Ok(pb::ListCallbacksResponse {
        callbacks,
        next_page_token,
    })
}
