//! The claims of DESIGN.md and the verified identity built from them.

use std::fmt;

use jiesu_common::Text;
use serde::{Deserialize, Serialize};

use crate::{AuthError, Region};

/// Roles fixed by DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Citizen,
    Agent,
    Dispatcher,
    Handler,
    GridWorker,
    Mediator,
    Supervisor,
    TenantAdmin,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Citizen,
        Role::Agent,
        Role::Dispatcher,
        Role::Handler,
        Role::GridWorker,
        Role::Mediator,
        Role::Supervisor,
        Role::TenantAdmin,
        Role::PlatformAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Citizen => "citizen",
            Role::Agent => "agent",
            Role::Dispatcher => "dispatcher",
            Role::Handler => "handler",
            Role::GridWorker => "grid_worker",
            Role::Mediator => "mediator",
            Role::Supervisor => "supervisor",
            Role::TenantAdmin => "tenant_admin",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    /// The role's Chinese name, as people call it.
    pub fn zh(self) -> &'static str {
        match self {
            Role::Citizen => "市民",
            Role::Agent => "话务员",
            Role::Dispatcher => "派单员",
            Role::Handler => "承办人员",
            Role::GridWorker => "网格员",
            Role::Mediator => "调解员",
            Role::Supervisor => "督办人员",
            Role::TenantAdmin => "本级管理员",
            Role::PlatformAdmin => "平台管理员",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// The refusal of a caller who holds none of `roles`: the Chinese names
/// them as people call them, the English by their machine names.
pub fn needs_role(roles: &[Role]) -> Text {
    let zh: Vec<&str> = roles.iter().map(|r| r.zh()).collect();
    let en: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    Text::new(
        format!("此操作需要以下角色之一：{}", zh.join("、")),
        format!("this action needs one of the roles: {}", en.join(", ")),
    )
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JWT body as it travels. `aud` and `iss` are checked by the verifier.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WireClaims {
    pub sub: String,
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grids: Vec<String>,
    pub iss: String,
    /// A string or an array of strings (RFC 7519).
    pub aud: serde_json::Value,
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
}

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub sub: String,
    /// The tenant the caller acts for.
    pub tenant: Region,
    /// Region whose subtree the caller may see (the tenant unless narrowed).
    pub scope: Region,
    pub roles: Vec<Role>,
    /// Handling unit the caller acts for, if any.
    pub unit: Option<String>,
    pub grids: Vec<String>,
}

impl Principal {
    pub(crate) fn from_wire(w: WireClaims) -> Result<Self, AuthError> {
        if w.sub.is_empty() {
            return Err(AuthError::BadClaim("sub".into()));
        }
        let tenant = Region::parse(&w.tenant).map_err(|_| AuthError::BadClaim("tenant".into()))?;
        let scope = match w.scope.as_deref() {
            None | Some("") => tenant.clone(),
            Some(s) => Region::parse(s).map_err(|_| AuthError::BadClaim("scope".into()))?,
        };
        if !tenant.contains(&scope) {
            return Err(AuthError::BadClaim("scope".into()));
        }
        let mut roles: Vec<Role> = w.roles.iter().filter_map(|r| Role::parse(r)).collect();
        roles.sort();
        roles.dedup();
        Ok(Self {
            sub: w.sub,
            tenant,
            scope,
            roles,
            unit: w.unit.filter(|u| !u.is_empty()),
            grids: w.grids,
        })
    }

    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Allows the call when the caller holds any of `roles`.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), AuthError> {
        if roles.iter().any(|r| self.has_role(*r)) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(needs_role(roles)))
        }
    }

    /// A citizen without any staff role: sees only what they submitted.
    pub fn is_citizen_only(&self) -> bool {
        self.roles.iter().all(|r| *r == Role::Citizen) && self.has_role(Role::Citizen)
    }

    /// The unit a caller reads for: a handler with no wider role sees only
    /// the work orders (and their tickets) its unit leads, co-handles or was
    /// summoned to; a handler token without a unit sees none (`""`). `None`:
    /// the caller reads by scope.
    pub fn reads_as_unit(&self) -> Option<&str> {
        const WIDER: [Role; 7] = [
            Role::Agent,
            Role::Dispatcher,
            Role::Supervisor,
            Role::TenantAdmin,
            Role::PlatformAdmin,
            Role::GridWorker,
            Role::Mediator,
        ];
        (self.has_role(Role::Handler) && !WIDER.iter().any(|r| self.has_role(*r)))
            .then(|| self.unit.as_deref().unwrap_or(""))
    }

    /// True when `region_code` lies in the caller's visible subtree.
    pub fn can_see(&self, region_code: &str) -> bool {
        self.scope.covers(region_code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(tenant: &str, scope: Option<&str>, roles: &[&str]) -> WireClaims {
        WireClaims {
            sub: "u1".into(),
            tenant: tenant.into(),
            scope: scope.map(Into::into),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            unit: None,
            grids: vec![],
            iss: "i".into(),
            aud: "a".into(),
            exp: 0,
            iat: None,
        }
    }

    #[test]
    fn scope_defaults_to_tenant_and_must_stay_inside_it() {
        let p = Principal::from_wire(wire("370202", None, &["agent"])).unwrap();
        assert_eq!(p.scope.code(), "370202");
        assert!(Principal::from_wire(wire("370202", Some("370202001"), &["agent"])).is_ok());
        assert_eq!(
            Principal::from_wire(wire("370202", Some("370203"), &["agent"])).unwrap_err(),
            AuthError::BadClaim("scope".into())
        );
    }

    #[test]
    fn unknown_roles_are_ignored_and_checks_name_the_roles() {
        let p = Principal::from_wire(wire("370202", None, &["citizen", "wizard"])).unwrap();
        assert_eq!(p.roles, vec![Role::Citizen]);
        assert!(p.is_citizen_only());
        let err = p.require_any(&[Role::Agent, Role::Dispatcher]).unwrap_err();
        assert!(err.to_string().contains("agent, dispatcher"));
    }
}
