//! Serving category suggestions: one model per tenant, trained from its
//! latest tickets and rebuilt when older than the refresh interval.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use jiesu_auth::{Principal, Role};
use jiesu_proto::intake::{
    CategorySuggestion, SuggestCategoriesRequest, SuggestCategoriesResponse,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use super::{Core, IntakeError};
use crate::{
    domain::{
        bad, says,
        suggest::{Candidate, Model},
    },
    store,
};

const SUGGESTERS: &[Role] = &[
    Role::Agent,
    Role::Dispatcher,
    Role::Citizen,
    Role::GridWorker,
];
pub const MAX_TEXT_CHARS: usize = 4000;

/// Trained models by tenant.
#[derive(Default)]
pub struct Suggesters {
    models: Mutex<HashMap<String, (Instant, Arc<Model>)>>,
}

impl Core {
    async fn model_for(&self, tenant: &str) -> Result<Arc<Model>, IntakeError> {
        if let Some((built, m)) = self
            .suggesters
            .models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(tenant)
            && built.elapsed() < self.suggest_refresh
        {
            return Ok(m.clone());
        }
        let started = Instant::now();
        let all = store::categories_of(&self.db, tenant).await?;
        let parents: std::collections::HashSet<&str> = all
            .iter()
            .filter_map(|c| c.parent_code.as_deref())
            .collect();
        let candidates: Vec<Candidate> = all
            .iter()
            .filter(|c| !parents.contains(c.code.as_str()))
            .map(|c| Candidate {
                code: c.code.clone(),
                name: c.name.clone(),
                keywords: c.keywords.clone(),
            })
            .collect();
        let rows = self
            .db
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT category, content FROM tickets WHERE tenant = $1 AND status <> 'withdrawn' \
                 ORDER BY created_at DESC LIMIT $2",
                [tenant.into(), i64::from(self.suggest_training_limit).into()],
            ))
            .await?;
        let examples: Vec<(String, String)> = rows
            .iter()
            .filter_map(|r| {
                Some((
                    r.try_get("", "category").ok()?,
                    r.try_get("", "content").ok()?,
                ))
            })
            .collect();
        let model = Arc::new(Model::train(
            candidates,
            examples.iter().map(|(c, t)| (c.as_str(), t.as_str())),
        ));
        tracing::debug!(
            tenant,
            tickets = examples.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "category suggester trained"
        );
        self.suggesters
            .models
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(tenant.to_owned(), (Instant::now(), model.clone()));
        Ok(model)
    }

    pub async fn suggest(
        &self,
        who: &Principal,
        req: &SuggestCategoriesRequest,
    ) -> Result<SuggestCategoriesResponse, IntakeError> {
        who.require_any(SUGGESTERS)?;
        let text = req.text.trim();
        if text.is_empty() {
            return Err(bad("text", says::required()).into());
        }
        if text.chars().count() > MAX_TEXT_CHARS {
            return Err(bad("text", says::at_most_chars(MAX_TEXT_CHARS)).into());
        }
        let model = self.model_for(who.tenant.code()).await?;
        Ok(SuggestCategoriesResponse {
            suggestions: model
                .suggest(&jiesu_pii::redact_text(text), 3)
                .into_iter()
                .map(|s| CategorySuggestion {
                    code: s.code,
                    name: s.name,
                    score: s.score,
                    source: s.source.into(),
                })
                .collect(),
            training_tickets: model.training_docs() as i64,
        })
    }
}

/// How often a tenant's model is rebuilt at most, by default.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(600);
