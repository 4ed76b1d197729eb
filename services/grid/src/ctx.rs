//! What every grid handler shares: the database, the indexes, the outbox,
//! the personal-data keys and the settings; and who may work on which
//! grids (admins and supervisors inside their scope, grid workers on the
//! grids they are assigned to or that their token names).

use std::{collections::HashSet, sync::Arc};

use jiesu_auth::{Principal, Role};
use jiesu_pii::Keyring;
use sea_orm::DatabaseConnection;

use crate::{
    domain::layer::Grid,
    error::{GridError, noun},
    store::{Layers, workers},
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

/// Staff who administer grids and their people.
pub const ADMINS: [Role; 2] = [Role::TenantAdmin, Role::Supervisor];

pub fn is_admin(who: &Principal) -> bool {
    ADMINS.iter().any(|r| who.has_role(*r))
}

pub fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Ctx {
    /// A current grid of the tenant by code.
    pub fn grid(&self, tenant: &str, code: &str) -> Result<Grid, GridError> {
        self.layers
            .get(tenant)
            .and_then(|idx| idx.get(code).cloned())
            .ok_or(GridError::NotFound(noun::GRID))
    }

    /// The grids a grid worker serves: those in the token's `grids` claim
    /// and those the worker's account is assigned to.
    pub async fn my_grids(&self, who: &Principal) -> Result<HashSet<String>, GridError> {
        let mut mine: HashSet<String> = who.grids.iter().cloned().collect();
        mine.extend(workers::assigned_grids(&self.db, who.tenant.code(), &who.sub).await?);
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

    /// The grids whose people `who` may see: `None` = all of the tenant's
    /// (admins and supervisors scoped to it), else theirs. Grid workers
    /// only; other roles are refused.
    pub async fn visible_grids(&self, who: &Principal) -> Result<Option<Vec<String>>, GridError> {
        if is_admin(who) {
            return Ok(self.scoped_grids(who));
        }
        who.require_any(&[Role::GridWorker])?;
        Ok(Some(self.my_grids(who).await?.into_iter().collect()))
    }

    /// The grids a listing covers: `grid` if given (and the caller may
    /// work on it), else every grid the caller may see.
    pub async fn listed_grids(
        &self,
        who: &Principal,
        grid: &str,
    ) -> Result<Option<Vec<String>>, GridError> {
        if !grid.is_empty() {
            self.may_work_on(who, grid).await?;
            return Ok(Some(vec![grid.to_owned()]));
        }
        self.visible_grids(who).await
    }

    /// Whether `who` may work on `grid_code`: admins and supervisors on the
    /// grids inside their scope, grid workers on theirs.
    pub async fn may_work_on(&self, who: &Principal, grid_code: &str) -> Result<(), GridError> {
        let allowed = if is_admin(who) {
            self.scoped_grids(who)
                .is_none_or(|inside| inside.iter().any(|g| g == grid_code))
        } else {
            who.require_any(&[Role::GridWorker])?;
            self.my_grids(who).await?.contains(grid_code)
        };
        if allowed {
            Ok(())
        } else {
            Err(GridError::NotYourGrid(grid_code.to_owned()))
        }
    }
}
