//! The consumer's rows in its service's database: the inbox row written
//! with the effect, the attempt counter that decides dead-lettering, and
//! their periodic clean-up.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, TransactionTrait};
use uuid::Uuid;

use super::{Delivery, HandleError, Handler, Outcome, Runner};

impl<H: Handler> Runner<H> {
    /// Records one more attempt; returns the attempt number (2 for the first
    /// recorded, the first delivery being attempt 1).
    pub(super) async fn count_attempt(&self, event_id: Uuid) -> Result<i64, DbErr> {
        let row = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_attempts (consumer, event_id, attempts) VALUES ($1, $2, 2) \
                 ON CONFLICT (consumer, event_id) DO UPDATE \
                 SET attempts = bus_attempts.attempts + 1, last_at = now() \
                 RETURNING attempts",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("attempt counter returned no row".into()))?;
        Ok(i64::from(row.try_get::<i32>("", "attempts")?))
    }

    pub(super) async fn uncount_attempt(&self, event_id: Uuid) -> Result<(), DbErr> {
        self.db
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE bus_attempts SET attempts = attempts - 1 \
                 WHERE consumer = $1 AND event_id = $2 AND attempts > 1",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await
            .map(|_| ())
    }

    pub(super) async fn already_applied(&self, event_id: Uuid) -> Result<bool, DbErr> {
        Ok(self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM bus_inbox WHERE consumer = $1 AND event_id = $2",
                [self.spec.durable.clone().into(), event_id.into()],
            ))
            .await?
            .is_some())
    }

    pub(super) async fn apply(
        &self,
        event: H::Event,
        delivery: &Delivery,
    ) -> Result<Outcome, HandleError> {
        let txn = self.db.begin().await?;
        let inserted = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "INSERT INTO bus_inbox (consumer, event_id, subject) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
                [
                    self.spec.durable.clone().into(),
                    delivery.event_id.into(),
                    delivery.subject.clone().into(),
                ],
            ))
            .await?
            .rows_affected();
        if inserted == 0 {
            txn.rollback().await?;
            return Ok(Outcome::Duplicate);
        }
        self.handler.handle(&txn, event, delivery).await?;
        if delivery.delivered > 1 {
            txn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "DELETE FROM bus_attempts WHERE consumer = $1 AND event_id = $2",
                [self.spec.durable.clone().into(), delivery.event_id.into()],
            ))
            .await?;
        }
        txn.commit().await?;
        self.handler.after_commit();
        Ok(Outcome::Applied)
    }

    pub(super) async fn housekeeping(&self) {
        let retention = self.bus.cfg.inbox_retention.as_secs() as i64;
        for sql in [
            "DELETE FROM bus_inbox WHERE consumer = $1 AND handled_at < now() - make_interval(secs => $2)",
            "DELETE FROM bus_attempts WHERE consumer = $1 AND last_at < now() - make_interval(secs => $2)",
        ] {
            if let Err(e) = self
                .db
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [self.spec.durable.clone().into(), retention.into()],
                ))
                .await
            {
                tracing::warn!(consumer = %self.spec.durable, error = %e, "inbox housekeeping failed");
            }
        }
    }
}
