//! The tenants' callback and high-frequency policies, read once per
//! transaction however many events of the tenant it applies.

use std::collections::HashMap;

use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement};

use crate::{callbacks, domain::CallbackPolicy, domain::frequency::FrequencyPolicy, proactive};

#[derive(Default)]
pub struct Policies {
    callbacks: HashMap<String, CallbackPolicy>,
    frequency: HashMap<String, FrequencyPolicy>,
}

impl Policies {
    /// Both policies of each of `tenants` (the default where a tenant has
    /// none), two statements whatever their number.
    pub async fn load(conn: &impl ConnectionTrait, tenants: Vec<String>) -> Result<Self, DbErr> {
        let mut me = Self::default();
        if tenants.is_empty() {
            return Ok(me);
        }
        for table in ["callback_policies", "frequency_policies"] {
            let rows = conn
                .query_all_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    format!("SELECT tenant, definition FROM {table} WHERE tenant = ANY($1)"),
                    [tenants.clone().into()],
                ))
                .await?;
            for r in rows {
                let tenant: String = r.try_get("", "tenant")?;
                let definition: serde_json::Value = r.try_get("", "definition")?;
                if table == "callback_policies" {
                    me.callbacks.insert(
                        tenant,
                        serde_json::from_value(definition).unwrap_or_default(),
                    );
                } else {
                    me.frequency.insert(
                        tenant,
                        serde_json::from_value(definition).unwrap_or_default(),
                    );
                }
            }
        }
        for t in tenants {
            me.callbacks.entry(t.clone()).or_default();
            me.frequency.entry(t).or_default();
        }
        Ok(me)
    }

    pub async fn callbacks(
        &mut self,
        conn: &impl ConnectionTrait,
        tenant: &str,
    ) -> Result<&CallbackPolicy, DbErr> {
        if !self.callbacks.contains_key(tenant) {
            let p = callbacks::policy(conn, tenant).await?;
            self.callbacks.insert(tenant.to_owned(), p);
        }
        self.callbacks
            .get(tenant)
            .ok_or_else(|| DbErr::Custom("callback policy not kept".into()))
    }

    pub async fn frequency(
        &mut self,
        conn: &impl ConnectionTrait,
        tenant: &str,
    ) -> Result<&FrequencyPolicy, DbErr> {
        if !self.frequency.contains_key(tenant) {
            let p = proactive::policy(conn, tenant).await?;
            self.frequency.insert(tenant.to_owned(), p);
        }
        self.frequency
            .get(tenant)
            .ok_or_else(|| DbErr::Custom("frequency policy not kept".into()))
    }
}
