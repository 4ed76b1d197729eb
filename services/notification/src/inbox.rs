//! The staff inbox and its live feed. A handler's inbox holds the notices
//! to its unit; a dispatcher's, supervisor's or admin's those to the
//! supervisors of their tenant. Every notice stored is announced with
//! PostgreSQL `NOTIFY` (on commit, to every replica's listener), naming
//! only its tenant, recipient and id; each watcher takes those of its
//! inbox and sends the notice. A watcher that falls behind, or a listener
//! that lost its connection, misses announcements: a console reloads the
//! list when its stream reconnects (decision 0032).

use std::time::Duration;

use jiesu_auth::{Principal, Role};
use sea_orm::DatabaseConnection;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::domain;

/// The `NOTIFY` channel announcing a stored notice.
pub const CHANNEL: &str = "jiesu_notification_new";

/// One announcement: `<tenant> <recipient kind> <recipient id> <id>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announced {
    pub tenant: String,
    pub recipient_kind: String,
    pub recipient_id: String,
    pub id: Uuid,
}

impl Announced {
    pub fn parse(payload: &str) -> Option<Self> {
        let mut it = payload.split(' ');
        let (tenant, kind, recipient, id) = (it.next()?, it.next()?, it.next()?, it.next()?);
        Some(Self {
            tenant: tenant.to_owned(),
            recipient_kind: kind.to_owned(),
            recipient_id: recipient.to_owned(),
            id: Uuid::parse_str(id).ok()?,
        })
    }
}

/// Whose notices make a caller's inbox: (tenant, recipient kind, id).
pub fn inbox_of(who: &Principal) -> Option<(String, &'static str, String)> {
    let tenant = who.tenant.code().to_owned();
    let staff = [
        Role::Dispatcher,
        Role::Supervisor,
        Role::TenantAdmin,
        Role::PlatformAdmin,
    ];
    if who.roles.iter().any(|r| staff.contains(r)) {
        return Some((tenant.clone(), domain::RECIPIENT_SUPERVISORS, tenant));
    }
    if who.has_role(Role::Handler) {
        return who.unit.clone().map(|u| (tenant, "unit", u));
    }
    None
}

/// Listens for announcements and hands them to every watcher of this
/// process.
#[derive(Clone)]
pub struct Feed {
    tx: broadcast::Sender<Announced>,
}

impl Feed {
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(4096).0,
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Announced> {
        self.tx.subscribe()
    }

    /// Runs the listener until `stop`; reconnects after a failure.
    pub async fn run(self, db: DatabaseConnection, stop: CancellationToken) {
        let pool = db.get_postgres_connection_pool().clone();
        loop {
            let listener = async {
                let mut l = sea_orm::sqlx::postgres::PgListener::connect_with(&pool).await?;
                l.listen(CHANNEL).await?;
                loop {
                    let n = l.recv().await?;
                    if let Some(a) = Announced::parse(n.payload()) {
                        // No watcher: nothing to do.
                        let _ = self.tx.send(a);
                    }
                }
                #[allow(unreachable_code)]
                Ok::<(), sea_orm::sqlx::Error>(())
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                r = listener => {
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "inbox listener lost its connection; listening again shortly");
                    }
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}

impl Default for Feed {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_announcement_names_tenant_recipient_and_id_only() {
        let id = Uuid::now_v7();
        let a = Announced::parse(&format!("370202 unit sn-gafj {id}")).unwrap();
        assert_eq!(
            (
                a.tenant.as_str(),
                a.recipient_kind.as_str(),
                a.recipient_id.as_str(),
                a.id
            ),
            ("370202", "unit", "sn-gafj", id)
        );
        assert!(Announced::parse("370202 unit").is_none());
        assert!(Announced::parse("370202 unit sn x").is_none());
    }
}
