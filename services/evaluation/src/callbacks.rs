//! 回访: a round per closing of a ticket, one verdict per round, and the
//! 重办 it may ask of dispatch. Also the tenant's callback policy.

use std::collections::BTreeMap;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, TimeDelta, Utc};
use jiesu_bus::Outbox;
use jiesu_proto::{
    evaluation::{CallbackInvited, CallbackVerdictGiven},
    time::to_timestamp,
};
use sea_orm::{ConnectionTrait, DatabaseTransaction, DbErr, QueryResult};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{
    domain::{CallbackPolicy, after_failed_attempt, satisfaction_zh},
    policies::Policies,
    store::{self, facts, stmt},
};

/// The tenant's policy, or the default.
pub async fn policy(conn: &impl ConnectionTrait, tenant: &str) -> Result<CallbackPolicy, DbErr> {
    let row = conn
        .query_one_raw(stmt(
            "SELECT definition FROM callback_policies WHERE tenant = $1",
            vec![tenant.into()],
        ))
        .await?;
    Ok(match row {
        Some(r) => serde_json::from_value(r.try_get("", "definition")?).unwrap_or_default(),
        None => CallbackPolicy::default(),
    })
}

pub async fn put_policy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    p: &CallbackPolicy,
    by: &str,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "INSERT INTO callback_policies (tenant, definition, updated_by) VALUES ($1, $2, $3) \
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

/// A closed ticket whose nature the policy calls back gets round
/// `reopens + 1` (once); rounds of earlier closings still open end as
/// `superseded`. A round opened with the policy's `sms_invite` and a due
/// time ahead gets its one-time link, which notification sends. For all the
/// tickets of a pull at once: a few statements, however many closed.
pub async fn open_rounds(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    policies: &mut Policies,
    tickets: &[&facts::Model],
) -> Result<(), DbErr> {
    // (ticket, round) → (facts, due, invite)
    let mut due_rounds: BTreeMap<(Uuid, i32), (&facts::Model, DateTime<Utc>, bool)> =
        BTreeMap::new();
    for f in tickets {
        let (Some(closed_at), Some(_)) = (f.closed_at, f.received_at) else {
            continue;
        };
        if f.status != "closed" || f.merged || f.withdrawn {
            continue;
        }
        let p = policies.callbacks(txn, &f.tenant).await?;
        if !p.wants(&f.nature) {
            continue;
        }
        let due = closed_at + TimeDelta::hours(i64::from(p.due_hours));
        due_rounds.insert((f.ticket_id, f.reopens + 1), (f, due, p.sms_invite));
    }
    if due_rounds.is_empty() {
        return Ok(());
    }
    let mut cols = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut opened_at, mut dues) = (Vec::new(), Vec::new());
    for ((ticket, round), (f, due, _)) in &due_rounds {
        cols.0.push(*ticket);
        cols.1.push(*round);
        cols.2.push(f.tenant.clone());
        cols.3.push(f.region_code().to_owned());
        cols.4.push(f.unit_id.clone());
        opened_at.push(f.closed_at.unwrap_or(*due));
        dues.push(*due);
    }
    let (ids, rounds, tenants, regions, units) = cols;
    let opened = txn
        .query_all_raw(stmt(
            "INSERT INTO callbacks (ticket_id, round, tenant, region_code, unit_id, opened_at, due_at) \
             SELECT * FROM unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::text[], \
               $6::timestamptz[], $7::timestamptz[]) \
             ON CONFLICT (ticket_id, round) DO NOTHING RETURNING ticket_id, round",
            vec![
                ids.clone().into(),
                rounds.clone().into(),
                tenants.into(),
                regions.into(),
                units.into(),
                opened_at.into(),
                dues.into(),
            ],
        ))
        .await?;
    // After the inserts: a ticket closed twice in one pull keeps only its
    // latest round open.
    txn.execute_raw(stmt(
        "UPDATE callbacks c SET status = 'superseded' \
         WHERE c.ticket_id = ANY($1::uuid[]) AND c.status = 'open' \
           AND c.round < (SELECT max(u.r) FROM unnest($1::uuid[], $2::int[]) AS u(t, r) \
                          WHERE u.t = c.ticket_id)",
        vec![ids.clone().into(), rounds.clone().into()],
    ))
    .await?;
    // Invited once, when the round opens; a round already past its due
    // time (facts arriving late), or superseded in this same pull, gets no
    // link that could not be used.
    let now = Utc::now();
    let mut invites = Vec::new();
    for r in &opened {
        let key: (Uuid, i32) = (r.try_get("", "ticket_id")?, r.try_get("", "round")?);
        let latest = due_rounds
            .range((key.0, key.1 + 1)..=(key.0, i32::MAX))
            .next()
            .is_none();
        if let Some((f, due, invite)) = due_rounds.get(&key)
            && *invite
            && *due > now
            && latest
        {
            invites.push((*f, key.1, *due));
        }
    }
    invite(txn, outbox, &invites).await
}

/// The SHA-256 of a link's token: what is stored and looked up.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Makes each round's one-time link and asks notification to send it.
async fn invite(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    rounds: &[(&facts::Model, i32, DateTime<Utc>)],
) -> Result<(), DbErr> {
    if rounds.is_empty() {
        return Ok(());
    }
    let mut tokens = Vec::with_capacity(rounds.len());
    for _ in rounds {
        let mut raw = [0u8; 24];
        getrandom::getrandom(&mut raw).map_err(|e| DbErr::Custom(format!("no randomness: {e}")))?;
        tokens.push(URL_SAFE_NO_PAD.encode(raw));
    }
    let made = txn
        .query_all_raw(stmt(
            "INSERT INTO callback_invitations (token_hash, ticket_id, round, tenant, expires_at) \
             SELECT * FROM unnest($1::bytea[], $2::uuid[], $3::int[], $4::text[], $5::timestamptz[]) \
             ON CONFLICT (ticket_id, round) DO NOTHING RETURNING ticket_id, round",
            vec![
                tokens.iter().map(|t| token_hash(t)).collect::<Vec<_>>().into(),
                rounds.iter().map(|(f, _, _)| f.ticket_id).collect::<Vec<_>>().into(),
                rounds.iter().map(|(_, r, _)| *r).collect::<Vec<_>>().into(),
                rounds.iter().map(|(f, _, _)| f.tenant.clone()).collect::<Vec<_>>().into(),
                rounds.iter().map(|(_, _, d)| *d).collect::<Vec<_>>().into(),
            ],
        ))
        .await?;
    let made: Vec<(Uuid, i32)> = made
        .iter()
        .map(|r| Ok((r.try_get("", "ticket_id")?, r.try_get("", "round")?)))
        .collect::<Result<_, DbErr>>()?;
    let events: Vec<CallbackInvited> = rounds
        .iter()
        .zip(tokens)
        .filter(|((f, round, _), _)| made.contains(&(f.ticket_id, *round)))
        .map(|((f, round, expires_at), token)| CallbackInvited {
            ticket_id: f.ticket_id.to_string(),
            tenant: f.tenant.clone(),
            tracking_no: f.tracking_no.clone(),
            round: u32::try_from(*round).unwrap_or(0),
            token,
            expires_at: Some(to_timestamp(*expires_at)),
            region_code: f.region_code().to_owned(),
        })
        .collect();
    outbox.enqueue_all(txn, &events).await?;
    Ok(())
}

/// A round's invitation as the link finds it.
pub struct InvitationRow {
    pub ticket_id: Uuid,
    pub round: i32,
    pub expires_at: DateTime<Utc>,
}

/// The invitation a link's token opens, if any.
pub async fn find_invitation(
    conn: &impl ConnectionTrait,
    token: &str,
) -> Result<Option<InvitationRow>, DbErr> {
    let Some(r) = conn
        .query_one_raw(stmt(
            "SELECT ticket_id, round, expires_at FROM callback_invitations WHERE token_hash = $1",
            vec![token_hash(token).into()],
        ))
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(InvitationRow {
        ticket_id: r.try_get("", "ticket_id")?,
        round: r.try_get("", "round")?,
        expires_at: r.try_get("", "expires_at")?,
    }))
}

/// Marks the invitation used (after its verdict was recorded).
pub async fn invitation_used(
    conn: &impl ConnectionTrait,
    ticket_id: Uuid,
    round: i32,
) -> Result<(), DbErr> {
    conn.execute_raw(stmt(
        "UPDATE callback_invitations SET used_at = now() \
         WHERE ticket_id = $1 AND round = $2 AND used_at IS NULL",
        vec![ticket_id.into(), round.into()],
    ))
    .await?;
    Ok(())
}

/// One callback round as stored.
#[derive(Debug, Clone)]
pub struct Round {
    pub ticket_id: Uuid,
    pub round: i32,
    pub tenant: String,
    pub region_code: String,
    pub unit_id: String,
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
    pub resolved: Option<bool>,
    pub satisfaction: Option<String>,
    pub comment: String,
    pub method: Option<String>,
    pub by_role: Option<String>,
    pub answered_at: Option<DateTime<Utc>>,
    pub reopen_requested: bool,
}

pub const ROUND_COLUMNS: &str = "ticket_id, round, tenant, region_code, unit_id, status, \
    opened_at, due_at, attempts, resolved, satisfaction, comment, method, by_role, \
    answered_at, reopen_requested";

impl Round {
    pub fn from_row(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            ticket_id: r.try_get("", "ticket_id")?,
            round: r.try_get("", "round")?,
            tenant: r.try_get("", "tenant")?,
            region_code: r.try_get("", "region_code")?,
            unit_id: r.try_get("", "unit_id")?,
            status: r.try_get("", "status")?,
            opened_at: r.try_get("", "opened_at")?,
            due_at: r.try_get("", "due_at")?,
            attempts: r.try_get("", "attempts")?,
            resolved: r.try_get("", "resolved")?,
            satisfaction: r.try_get("", "satisfaction")?,
            comment: r.try_get("", "comment")?,
            method: r.try_get("", "method")?,
            by_role: r.try_get("", "by_role")?,
            answered_at: r.try_get("", "answered_at")?,
            reopen_requested: r.try_get("", "reopen_requested")?,
        })
    }
}

/// The ticket's rounds, oldest first.
pub async fn rounds(conn: &impl ConnectionTrait, ticket_id: Uuid) -> Result<Vec<Round>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            &format!("SELECT {ROUND_COLUMNS} FROM callbacks WHERE ticket_id = $1 ORDER BY round"),
            vec![ticket_id.into()],
        ))
        .await?;
    rows.iter().map(Round::from_row).collect()
}

/// Locks round `round` of the ticket, or its latest round when 0.
pub async fn lock_round(
    txn: &DatabaseTransaction,
    ticket_id: Uuid,
    round: u32,
) -> Result<Option<Round>, DbErr> {
    let sql = if round == 0 {
        format!(
            "SELECT {ROUND_COLUMNS} FROM callbacks WHERE ticket_id = $1 \
             ORDER BY round DESC LIMIT 1 FOR UPDATE"
        )
    } else {
        format!(
            "SELECT {ROUND_COLUMNS} FROM callbacks WHERE ticket_id = $1 AND round = $2 FOR UPDATE"
        )
    };
    let mut values = vec![ticket_id.into()];
    if round != 0 {
        values.push(i32::try_from(round).unwrap_or(i32::MAX).into());
    }
    txn.query_one_raw(stmt(&sql, values))
        .await?
        .as_ref()
        .map(Round::from_row)
        .transpose()
}

/// Who answered and how.
pub struct Answerer<'a> {
    pub sub: &'a str,
    pub role: &'a str,
    /// phone | tracking | app | sms
    pub method: &'a str,
}

/// A verdict as given.
pub struct VerdictIn {
    pub resolved: bool,
    pub satisfaction: String,
    /// Already redacted.
    pub comment: String,
}

/// Records the verdict of an open round, moves the facts, and tells
/// dispatch (with `reopen_requested` when unsatisfied, unresolved and the
/// policy allows another 重办). The caller has checked the round is open.
pub async fn give_verdict(
    txn: &DatabaseTransaction,
    outbox: &Outbox,
    r: &Round,
    v: &VerdictIn,
    who: &Answerer<'_>,
    tracking_no: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let p = policy(txn, &r.tenant).await?;
    let reopen = !v.resolved
        && v.satisfaction == "unsatisfied"
        && u32::try_from(r.round).unwrap_or(0) <= p.max_reopens;
    txn.execute_raw(stmt(
        "UPDATE callbacks SET status = 'answered', resolved = $3, satisfaction = $4, \
         comment = $5, method = $6, by_sub = $7, by_role = $8, answered_at = $9, \
         reopen_requested = $10 WHERE ticket_id = $1 AND round = $2",
        vec![
            r.ticket_id.into(),
            r.round.into(),
            v.resolved.into(),
            v.satisfaction.clone().into(),
            v.comment.clone().into(),
            who.method.into(),
            who.sub.into(),
            who.role.into(),
            now.into(),
            reopen.into(),
        ],
    ))
    .await?;
    store::change_facts(txn, r.ticket_id, &r.tenant, |m| {
        m.verdict_resolved = Some(v.resolved);
        m.verdict_satisfaction = Some(v.satisfaction.clone());
        m.unreachable = false;
    })
    .await?;
    // The citizen's own words stay here: the event says only the verdict.
    let reason = format!(
        "市民评价“{}”，表示问题{}",
        satisfaction_zh(&v.satisfaction),
        if v.resolved { "已解决" } else { "未解决" }
    );
    outbox
        .enqueue(
            txn,
            &CallbackVerdictGiven {
                ticket_id: r.ticket_id.to_string(),
                tenant: r.tenant.clone(),
                tracking_no: tracking_no.to_owned(),
                round: u32::try_from(r.round).unwrap_or(0),
                resolved: v.resolved,
                satisfaction: v.satisfaction.clone(),
                method: who.method.to_owned(),
                reopen_requested: reopen,
                reason,
                at: Some(to_timestamp(now)),
            },
        )
        .await?;
    Ok(reopen)
}

/// Records an attempt that reached nobody; the round ends as the policy
/// says (unreachable after `max_attempts`, at once for a wrong number or
/// a refusal). Answers the round's new status.
pub async fn failed_attempt(
    txn: &DatabaseTransaction,
    r: &Round,
    outcome: &str,
    note: &str,
    who: &Answerer<'_>,
    now: DateTime<Utc>,
) -> Result<String, DbErr> {
    let p = policy(txn, &r.tenant).await?;
    let attempts = r.attempts + 1;
    txn.execute_raw(stmt(
        "INSERT INTO callback_attempts (ticket_id, round, at, outcome, note, by_sub, by_role) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            r.ticket_id.into(),
            r.round.into(),
            now.into(),
            outcome.into(),
            note.into(),
            who.sub.into(),
            who.role.into(),
        ],
    ))
    .await?;
    let ends = after_failed_attempt(
        outcome,
        u32::try_from(attempts).unwrap_or(0),
        p.max_attempts,
    );
    let status = ends.unwrap_or("open").to_owned();
    txn.execute_raw(stmt(
        "UPDATE callbacks SET attempts = $3, status = $4 WHERE ticket_id = $1 AND round = $2",
        vec![
            r.ticket_id.into(),
            r.round.into(),
            attempts.into(),
            status.clone().into(),
        ],
    ))
    .await?;
    if ends.is_some() {
        // Counted unreachable only while no earlier round gave a verdict.
        store::change_facts(txn, r.ticket_id, &r.tenant, |m| {
            if m.verdict_satisfaction.is_none() {
                m.unreachable = true;
            }
        })
        .await?;
    }
    Ok(status)
}

/// An attempt as logged.
pub struct Attempt {
    pub round: i32,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub note: String,
    pub by_role: String,
}

pub async fn attempts(conn: &impl ConnectionTrait, ticket_id: Uuid) -> Result<Vec<Attempt>, DbErr> {
    let rows = conn
        .query_all_raw(stmt(
            "SELECT round, at, outcome, note, by_role FROM callback_attempts \
             WHERE ticket_id = $1 ORDER BY id",
            vec![ticket_id.into()],
        ))
        .await?;
    rows.iter()
        .map(|r| {
            Ok(Attempt {
                round: r.try_get("", "round")?,
                at: r.try_get("", "at")?,
                outcome: r.try_get("", "outcome")?,
                note: r.try_get("", "note")?,
                by_role: r.try_get("", "by_role")?,
            })
        })
        .collect()
}
