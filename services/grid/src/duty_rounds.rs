//! Creating the duty tasks of the periods holding a moment: on an admin's
//! request and, every `duty_interval`, on every replica for every tenant.
//! Safe to run by every replica at once (a task is unique per rule,
//! period and target).

use chrono::{DateTime, Utc};

use crate::{
    ctx::Ctx,
    domain::duties::{Every, or_default, plan},
    store::duties,
};

/// Creates the tasks of the periods holding `at` that do not exist yet;
/// returns how many were new.
pub async fn generate(ctx: &Ctx, tenant: &str, at: DateTime<Utc>) -> Result<u32, sea_orm::DbErr> {
    let Some(index) = ctx.layers.get(tenant) else {
        return Ok(0);
    };
    let mut created = 0;
    for rule in or_default(duties::rules(&ctx.db, tenant).await?) {
        let Some(every) = Every::parse(&rule.every).filter(|_| rule.active) else {
            continue;
        };
        let people = duties::visitables(&ctx.db, tenant, &rule.target, &rule.categories).await?;
        let tasks = plan(&rule.target, &index, people);
        created +=
            duties::insert_tasks(&ctx.db, tenant, &rule.code, every.period(at), tasks).await?;
    }
    Ok(created)
}

/// Generates every tenant's tasks for the current periods, every `every`,
/// until `shutdown`.
pub async fn generate_loop(
    ctx: Ctx,
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
) {
    loop {
        for tenant in ctx.layers.tenants() {
            match generate(&ctx, &tenant, Utc::now()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(tenant = %tenant, created = n, "duty tasks generated"),
                Err(e) => {
                    tracing::warn!(tenant = %tenant, error = %e, "generating duty tasks failed; retrying")
                }
            }
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
    }
}
