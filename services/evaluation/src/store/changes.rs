//! The facts rows of the tickets a transaction touches, locked at once (in
//! ticket order, so two transactions never wait for each other in a
//! circle), edited in memory event by event, and written once at the end:
//! the rows in one upsert, what they move in the rollups summed into one
//! upsert per tenant, the names and the steps in one insert each. A pull of
//! events costs a handful of statements instead of nine per event.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait,
    IntoActiveModel, Iterable, QueryFilter, QueryOrder, QuerySelect, sea_query::OnConflict,
};
use uuid::Uuid;

use super::{facts, stmt};
use crate::domain::counts::{Counts, RollupKey, delta, with_months};

/// One applied event's line in the ticket's step log.
struct Step {
    event_id: Uuid,
    ticket_id: Uuid,
    step: String,
    at: DateTime<Utc>,
    unit_id: String,
}

pub struct Changes {
    /// As locked.
    loaded: HashMap<Uuid, facts::Model>,
    /// As edited so far.
    rows: HashMap<Uuid, facts::Model>,
    steps: Vec<Step>,
}

impl Changes {
    /// Locks the rows of `tickets` (ticket id, tenant), making empty ones
    /// for tickets not seen before.
    pub async fn lock(
        txn: &DatabaseTransaction,
        tickets: &[(Uuid, String)],
    ) -> Result<Self, DbErr> {
        let mut wanted: BTreeMap<Uuid, String> = BTreeMap::new();
        for (id, tenant) in tickets {
            wanted.entry(*id).or_insert_with(|| tenant.clone());
        }
        let ids: Vec<Uuid> = wanted.keys().copied().collect();
        let tenants: Vec<String> = wanted.values().cloned().collect();
        txn.execute_raw(stmt(
            "INSERT INTO ticket_facts (ticket_id, tenant) \
             SELECT i, t FROM unnest($1::uuid[], $2::text[]) AS u(i, t) ORDER BY i \
             ON CONFLICT (ticket_id) DO NOTHING",
            vec![ids.clone().into(), tenants.into()],
        ))
        .await?;
        let found = facts::Entity::find()
            .filter(facts::Column::TicketId.is_in(ids.clone()))
            .order_by_asc(facts::Column::TicketId)
            .lock_exclusive()
            .all(txn)
            .await?;
        if found.len() != ids.len() {
            return Err(DbErr::RecordNotFound(format!(
                "ticket_facts: {} of {} rows",
                found.len(),
                ids.len()
            )));
        }
        let loaded: HashMap<Uuid, facts::Model> =
            found.into_iter().map(|m| (m.ticket_id, m)).collect();
        Ok(Self {
            rows: loaded.clone(),
            loaded,
            steps: Vec::new(),
        })
    }

    /// Applies `edit` to a locked ticket's row; answers it before and after.
    pub fn edit(
        &mut self,
        ticket_id: Uuid,
        edit: impl FnOnce(&mut facts::Model),
    ) -> Result<(facts::Model, facts::Model), DbErr> {
        let row = self
            .rows
            .get_mut(&ticket_id)
            .ok_or_else(|| DbErr::RecordNotFound(format!("ticket_facts {ticket_id} not locked")))?;
        let before = row.clone();
        edit(row);
        Ok((before, row.clone()))
    }

    /// Logs an applied event as one step of the ticket.
    pub fn step(
        &mut self,
        event_id: Uuid,
        ticket_id: Uuid,
        step: &str,
        at: DateTime<Utc>,
        unit_id: &str,
    ) {
        self.steps.push(Step {
            event_id,
            ticket_id,
            step: step.to_owned(),
            at,
            unit_id: unit_id.to_owned(),
        });
    }

    /// Writes the rows, names and steps that changed; answers what they
    /// move in the rollups, for [`Rollups::apply`] last.
    pub async fn save(self, txn: &DatabaseTransaction) -> Result<Rollups, DbErr> {
        let now = Utc::now();
        let mut changed = Vec::new();
        let mut moved: BTreeMap<String, BTreeMap<RollupKey, Counts>> = BTreeMap::new();
        let mut names: BTreeMap<(String, &'static str, String), String> = BTreeMap::new();
        for (id, mut after) in self.rows {
            let Some(before) = self.loaded.get(&id) else {
                continue;
            };
            if &after == before {
                continue;
            }
            after.updated_at = now;
            let rows = moved.entry(after.tenant.clone()).or_default();
            for (k, c) in with_months(delta(Some(&before.facts()), &after.facts())) {
                rows.entry(k).or_default().add(&c);
            }
            for (dim, key, name) in super::names_to_keep(before, &after) {
                names.insert((after.tenant.clone(), dim, key), name);
            }
            changed.push(after);
        }
        if !changed.is_empty() {
            changed.sort_by_key(|m| m.ticket_id);
            let columns = facts::Column::iter().filter(|c| !matches!(c, facts::Column::TicketId));
            facts::Entity::insert_many(
                changed
                    .into_iter()
                    .map(|m| m.into_active_model().reset_all()),
            )
            .on_conflict(
                OnConflict::column(facts::Column::TicketId)
                    .update_columns(columns)
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
        }
        if !names.is_empty() {
            let mut cols: [Vec<String>; 4] = Default::default();
            for ((tenant, dim, key), name) in names {
                cols[0].push(tenant);
                cols[1].push(dim.to_owned());
                cols[2].push(key);
                cols[3].push(name);
            }
            let [t, d, k, n] = cols;
            txn.execute_raw(stmt(
                "INSERT INTO key_names (tenant, dim, key, name) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
                 ON CONFLICT (tenant, dim, key) DO UPDATE SET name = EXCLUDED.name \
                 WHERE key_names.name <> EXCLUDED.name",
                vec![t.into(), d.into(), k.into(), n.into()],
            ))
            .await?;
        }
        if !self.steps.is_empty() {
            let mut events = Vec::new();
            let mut tickets = Vec::new();
            let mut steps = Vec::new();
            let mut ats = Vec::new();
            let mut units = Vec::new();
            for s in self.steps {
                events.push(s.event_id);
                tickets.push(s.ticket_id);
                steps.push(s.step);
                ats.push(s.at);
                units.push(s.unit_id);
            }
            txn.execute_raw(stmt(
                "INSERT INTO ticket_steps (event_id, ticket_id, step, at, unit_id) \
                 SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[], $5::text[]) \
                 ON CONFLICT (event_id) DO NOTHING",
                vec![
                    events.into(),
                    tickets.into(),
                    steps.into(),
                    ats.into(),
                    units.into(),
                ],
            ))
            .await?;
        }
        Ok(Rollups(moved))
    }
}

/// What saved rows move in the rollups, per tenant.
#[must_use = "the rollups must be applied before the commit"]
pub struct Rollups(BTreeMap<String, BTreeMap<RollupKey, Counts>>);

impl Rollups {
    /// Tenants and keys in order (so two transactions never wait for each
    /// other in a circle), as the transaction's last statement: every event
    /// of a tenant and day moves that tenant's rows, so they are held as
    /// short a time as can be.
    pub async fn apply(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        // One statement per tenant: measured faster here than one for all.
        for (tenant, rows) in &self.0 {
            let rows: Vec<(&str, &RollupKey, &Counts)> =
                rows.iter().map(|(k, c)| (tenant.as_str(), k, c)).collect();
            super::apply_rollups_of(txn, &rows).await?;
        }
        Ok(())
    }
}
