//! The tenant admin's import and export of the category tree.

use jiesu_auth::{Principal, Role};
use jiesu_proto::intake::{
    ExportCategoriesRequest, ExportCategoriesResponse, ImportCategoriesRequest,
    ImportCategoriesResponse,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement, TransactionTrait};

use super::{Core, IntakeError};
use crate::{
    domain::{
        bad,
        categories::{self, Format},
        tr,
    },
    seed::{CategorySeed, upsert_categories},
    store,
};

const ADMINS: &[Role] = &[Role::TenantAdmin];

fn format(raw: &str) -> Result<Format, IntakeError> {
    Format::parse(raw)
        .ok_or_else(|| bad("format", tr!("必须是 json 或 csv", "must be json or csv")).into())
}

impl Core {
    pub async fn import_categories(
        &self,
        who: &Principal,
        req: &ImportCategoriesRequest,
    ) -> Result<ImportCategoriesResponse, IntakeError> {
        who.require_any(ADMINS)?;
        let cats = categories::parse(format(&req.format)?, &req.data)?;
        let tenant = who.tenant.code();
        let parents: std::collections::HashSet<&str> =
            cats.iter().map(|c| c.parent.as_str()).collect();
        let leaves = cats
            .iter()
            .filter(|c| !parents.contains(c.code.as_str()))
            .count();
        let txn = self.db.begin().await?;
        // One import at a time per tenant.
        txn.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_advisory_xact_lock(hashtext('categories:' || $1))",
            [tenant.into()],
        ))
        .await?;
        let before: std::collections::HashSet<String> = txn
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT code FROM categories WHERE tenant = $1",
                [tenant.into()],
            ))
            .await?
            .iter()
            .filter_map(|r| r.try_get::<String>("", "code").ok())
            .collect();
        upsert_categories(&txn, tenant, &cats).await?;
        let codes: Vec<String> = cats.iter().map(|c| c.code.clone()).collect();
        let deactivated = txn
            .execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "UPDATE categories SET active = FALSE WHERE tenant = $1 AND active AND NOT (code = ANY($2))",
                [tenant.into(), codes.into()],
            ))
            .await?
            .rows_affected();
        // A dry run computed the same changes inside the transaction and
        // takes them back.
        if req.dry_run {
            txn.rollback().await?;
        } else {
            txn.commit().await?;
        }
        let created = cats.iter().filter(|c| !before.contains(&c.code)).count();
        if !req.dry_run {
            tracing::info!(tenant, created, deactivated, "category tree imported");
        }
        Ok(ImportCategoriesResponse {
            created: created as i32,
            updated: (cats.len() - created) as i32,
            deactivated: deactivated as i32,
            leaves: leaves as i32,
            dry_run: req.dry_run,
        })
    }

    pub async fn export_categories(
        &self,
        who: &Principal,
        req: &ExportCategoriesRequest,
    ) -> Result<ExportCategoriesResponse, IntakeError> {
        who.require_any(ADMINS)?;
        let format = format(&req.format)?;
        let cats: Vec<CategorySeed> = store::categories_of(&self.db, who.tenant.code())
            .await?
            .into_iter()
            .map(|c| CategorySeed {
                attributes: c.attribute_defs(),
                code: c.code,
                name: c.name,
                parent: c.parent_code.unwrap_or_default(),
                description: c.description,
                keywords: c.keywords,
            })
            .collect();
        let data = categories::export(format, &cats)
            .map_err(|e| IntakeError::Db(sea_orm::DbErr::Custom(e)))?;
        Ok(ExportCategoriesResponse {
            data,
            content_type: format.content_type().into(),
        })
    }
}
