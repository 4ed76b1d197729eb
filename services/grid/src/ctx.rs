//! What every grid handler shares: the database, the indexes, the outbox,
//! the personal-data keys and the settings; and the checks they repeat.

use std::{collections::HashSet, sync::Arc};

use jiesu_auth::{Principal, Role};
use jiesu_pii::Keyring;
use jiesu_proto::status;
use sea_orm::{DatabaseConnection, DbErr};
use tonic::Status;
use uuid::Uuid;

use crate::{
    domain::layer::Grid,
    store::{Layers, stmt},
};

#[derive(Clone)]
pub struct Ctx {
    pub db: DatabaseConnection,
    pub layers: Layers,
    pub outbox: jiesu_bus::Outbox,
    pub keyring: Arc<Keyring>,
    /// How far outside its grid a check-in may be, in meters.
    pub checkin_tolerance_m: f64,
    pub max_photo_bytes: usize,
    pub max_stream_bytes: u64,
}

pub fn db_error(e: DbErr) -> Status {
    tracing::error!(error = %e, "grid database error");
    status::internal()
}

pub fn pii_error(e: jiesu_pii::PiiError) -> Status {
    tracing::error!(error = %e, "grid personal-data key error");
    status::internal()
}

/// Lists problems in one InvalidArgument on `field`, at most 20 shown.
pub fn refuse(field: &str, problems: &[String]) -> Status {
    let shown: Vec<&str> = problems.iter().take(20).map(String::as_str).collect();
    let more = problems.len().saturating_sub(shown.len());
    let tail = if more > 0 {
        format!(" (and {more} more)")
    } else {
        String::new()
    };
    status::invalid_field(field, format!("{}{tail}", shown.join("; ")))
}

pub fn parse_id(field: &str, s: &str) -> Result<Uuid, Status> {
    Uuid::parse_str(s.trim()).map_err(|_| status::invalid_field(field, "must be a UUID"))
}

pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Staff who administer grids and their people.
pub const ADMINS: [Role; 2] = [Role::TenantAdmin, Role::Supervisor];

impl Ctx {
    /// A current grid of the tenant by code.
    pub fn grid(&self, tenant: &str, code: &str) -> Result<Grid, Status> {
        self.layers
            .get(tenant)
            .and_then(|idx| idx.get(code).cloned())
            .ok_or_else(|| status::not_found("grid"))
    }

    /// The grids a grid worker serves: those in the token's `grids` claim
    /// and those the worker's account is assigned to.
    pub async fn my_grids(&self, who: &Principal) -> Result<HashSet<String>, Status> {
        let mut mine: HashSet<String> = who.grids.iter().cloned().collect();
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT a.grid_code FROM assignments a JOIN workers w \
                   ON w.tenant = a.tenant AND w.id = a.worker_id \
                 WHERE a.tenant = $1 AND w.account = $2 AND w.active",
                vec![who.tenant.code().into(), who.sub.clone().into()],
            ))
            .await
            .map_err(db_error)?;
        for r in rows {
            mine.insert(r.try_get("", "grid_code").map_err(db_error)?);
        }
        Ok(mine)
    }

    /// For admins and supervisors: the grids inside their scope, `None`
    /// when their scope is the whole tenant.
    pub fn scoped_grids(&self, who: &Principal) -> Option<Vec<String>> {
        let scope = who.scope.prefix();
        if scope == who.tenant.code() {
            return None;
        }
        Some(
            self.layers
                .get(who.tenant.code())
                .map(|idx| {
                    idx.grids()
                        .iter()
                        .filter(|g| g.community.starts_with(scope))
                        .map(|g| g.code.clone())
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// The grids a listing covers: `grid` if given (and the caller may
    /// work on it), else every grid the caller may see (`None`: the whole
    /// tenant, for admins and supervisors scoped to it).
    pub async fn listed_grids(
        &self,
        who: &Principal,
        grid: &str,
    ) -> Result<Option<Vec<String>>, Status> {
        if !grid.is_empty() {
            self.may_work_on(who, grid).await?;
            return Ok(Some(vec![grid.to_owned()]));
        }
        if ADMINS.iter().any(|r| who.has_role(*r)) {
            return Ok(self.scoped_grids(who));
        }
        who.require_any(&[Role::GridWorker])?;
        Ok(Some(self.my_grids(who).await?.into_iter().collect()))
    }

    /// Whether `who` may work on `grid_code`: admins and supervisors on the
    /// grids inside their scope, grid workers on theirs.
    pub async fn may_work_on(&self, who: &Principal, grid_code: &str) -> Result<(), Status> {
        let allowed = if ADMINS.iter().any(|r| who.has_role(*r)) {
            self.scoped_grids(who)
                .is_none_or(|inside| inside.iter().any(|g| g == grid_code))
        } else {
            who.require_any(&[Role::GridWorker])?;
            self.my_grids(who).await?.contains(grid_code)
        };
        if allowed {
            Ok(())
        } else {
            Err(status::coded(
                tonic::Code::PermissionDenied,
                "not_your_grid",
                format!("grid {grid_code} is not one of your grids"),
                Some("grid_code"),
            ))
        }
    }

    pub fn seal(&self, value: &str, aad: &str) -> Result<String, Status> {
        self.keyring.encrypt(value, aad).map_err(pii_error)
    }

    pub fn open(&self, sealed: &str, aad: &str) -> Result<String, Status> {
        self.keyring.decrypt(sealed, aad).map_err(pii_error)
    }
}

use sea_orm::ConnectionTrait;
