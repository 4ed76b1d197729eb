//! The knowledge base for direct answers (直接答复), and intake's counts.

use std::collections::HashSet;

use chrono::{NaiveDate, Utc};
use jiesu_auth::{Principal, Role};
use jiesu_common::tr;
use jiesu_proto::{
    intake::{
        DirectAnswer, IntakeStats, IntakeStatsRequest, KbEntry, KbHit, Phrase,
        RetireKbEntryRequest, SearchKbRequest, SearchKbResponse, TopPhrasesRequest,
        TopPhrasesResponse,
    },
    time::from_timestamp,
};
use sea_orm::{ConnectionTrait, QueryResult};
use uuid::Uuid;

use super::{Core, IntakeError, accept::Answer};
use crate::{
    domain::{self, Nature, ValidTicket, bad, check_text, parse_id, says, suggest::features},
    store::stmt,
};

const EDITORS: &[Role] = &[Role::TenantAdmin];
const SEARCHERS: &[Role] = &[Role::Agent, Role::TenantAdmin];
const STATS_READERS: &[Role] = &[
    Role::Agent,
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
];
pub const MAX_TITLE_CHARS: usize = 100;
pub const MAX_BODY_CHARS: usize = 4000;
pub const MAX_REPLY_CHARS: usize = 2000;
const HITS: usize = 5;

fn entry(r: &QueryResult) -> Result<KbEntry, sea_orm::DbErr> {
    let valid_to: Option<NaiveDate> = r.try_get("", "valid_to")?;
    let valid_from: NaiveDate = r.try_get("", "valid_from")?;
    Ok(KbEntry {
        id: r.try_get::<Uuid>("", "id")?.to_string(),
        title: r.try_get("", "title")?,
        body: r.try_get("", "body")?,
        categories: r.try_get("", "categories")?,
        valid_from: valid_from.to_string(),
        valid_to: valid_to.map(|d| d.to_string()).unwrap_or_default(),
        active: r.try_get("", "active")?,
    })
}

fn date(field: &str, raw: &str) -> Result<Option<NaiveDate>, IntakeError> {
    match raw.trim() {
        "" => Ok(None),
        d => NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| {
                bad(
                    field,
                    tr!("必须是 YYYY-MM-DD 格式的日期", "must be a date YYYY-MM-DD"),
                )
                .into()
            }),
    }
}

/// Dice coefficient of the two texts' character n-gram sets.
fn similarity(a: &HashSet<u64>, b: &HashSet<u64>) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    2.0 * a.intersection(b).count() as f64 / (a.len() + b.len()) as f64
}

impl Core {
    pub async fn save_kb_entry(
        &self,
        who: &Principal,
        req: &KbEntry,
    ) -> Result<KbEntry, IntakeError> {
        who.require_any(EDITORS)?;
        let title = check_text("title", &req.title, MAX_TITLE_CHARS, true)?;
        let body = check_text("body", &req.body, MAX_BODY_CHARS, true)?;
        let valid_from =
            date("valid_from", &req.valid_from)?.unwrap_or_else(|| domain::china_day(Utc::now()));
        let valid_to = date("valid_to", &req.valid_to)?;
        if valid_to.is_some_and(|t| t < valid_from) {
            return Err(bad(
                "valid_to",
                tr!("不能早于 valid_from", "must not be before valid_from"),
            )
            .into());
        }
        let tenant = who.tenant.code();
        let known: HashSet<String> = crate::store::categories_of(&self.db, tenant)
            .await?
            .into_iter()
            .map(|c| c.code)
            .collect();
        if let Some(c) = req.categories.iter().find(|c| !known.contains(c.trim())) {
            let c: String = c.chars().take(32).collect();
            return Err(bad(
                "categories",
                tr!(
                    "{c} 不是本辖区的分类",
                    "{c} is not a category of this tenant"
                ),
            )
            .into());
        }
        let categories: Vec<String> = req.categories.iter().map(|c| c.trim().to_owned()).collect();
        let row = if req.id.trim().is_empty() {
            self.db
                .query_one_raw(stmt(
                    "INSERT INTO kb_entries (id, tenant, title, body, categories, valid_from, valid_to, created_by) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING *",
                    vec![
                        Uuid::now_v7().into(),
                        tenant.into(),
                        title.into(),
                        body.into(),
                        categories.into(),
                        valid_from.into(),
                        valid_to.into(),
                        who.sub.clone().into(),
                    ],
                ))
                .await?
        } else {
            let id = parse_id("id", &req.id, &tr!("知识库条目", "an entry"))?;
            self.db
                .query_one_raw(stmt(
                    "UPDATE kb_entries SET title = $3, body = $4, categories = $5, valid_from = $6, \
                     valid_to = $7, updated_at = now() WHERE id = $1 AND tenant = $2 RETURNING *",
                    vec![
                        id.into(),
                        tenant.into(),
                        title.into(),
                        body.into(),
                        categories.into(),
                        valid_from.into(),
                        valid_to.into(),
                    ],
                ))
                .await?
        };
        Ok(entry(&row.ok_or_else(|| {
            IntakeError::NotFound(tr!("知识库条目", "knowledge-base entry"))
        })?)?)
    }

    pub async fn retire_kb_entry(
        &self,
        who: &Principal,
        req: &RetireKbEntryRequest,
    ) -> Result<KbEntry, IntakeError> {
        who.require_any(EDITORS)?;
        let id = parse_id("id", &req.id, &tr!("知识库条目", "an entry"))?;
        let row = self
            .db
            .query_one_raw(stmt(
                "UPDATE kb_entries SET active = FALSE, updated_at = now() WHERE id = $1 AND tenant = $2 RETURNING *",
                vec![id.into(), who.tenant.code().into()],
            ))
            .await?
            .ok_or_else(|| IntakeError::NotFound(tr!("知识库条目", "knowledge-base entry")))?;
        Ok(entry(&row)?)
    }

    /// Active entries valid today (China day) for the tenant.
    async fn valid_entries(&self, tenant: &str) -> Result<Vec<KbEntry>, IntakeError> {
        let today = domain::china_day(Utc::now());
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT * FROM kb_entries WHERE tenant = $1 AND active AND valid_from <= $2 \
                 AND (valid_to IS NULL OR valid_to >= $2)",
                vec![tenant.into(), today.into()],
            ))
            .await?;
        Ok(rows.iter().map(entry).collect::<Result<_, _>>()?)
    }

    pub async fn search_kb(
        &self,
        who: &Principal,
        req: &SearchKbRequest,
    ) -> Result<SearchKbResponse, IntakeError> {
        who.require_any(SEARCHERS)?;
        let query = check_text("text", &req.text, MAX_BODY_CHARS, true)?;
        let q: HashSet<u64> = features(&query).into_iter().collect();
        let category = req.category.trim();
        let mut hits: Vec<KbHit> = self
            .valid_entries(who.tenant.code())
            .await?
            .into_iter()
            .filter_map(|e| {
                let doc: HashSet<u64> = features(&format!("{} {}", e.title, e.body))
                    .into_iter()
                    .collect();
                let title: HashSet<u64> = features(&e.title).into_iter().collect();
                let mut score = 0.6 * similarity(&q, &doc) + 0.4 * similarity(&q, &title);
                if !category.is_empty()
                    && e.categories
                        .iter()
                        .any(|c| category.starts_with(c.as_str()))
                {
                    score += 0.1;
                }
                (score > 0.02).then(|| KbHit {
                    score: (score * 1000.0).round() / 1000.0,
                    entry: Some(e),
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(HITS);
        Ok(SearchKbResponse { hits })
    }

    /// A direct answer is for consultations, by agents, from an entry that
    /// is valid today in the caller's tenant.
    pub(crate) async fn check_direct_answer(
        &self,
        who: &Principal,
        t: &ValidTicket,
        a: &DirectAnswer,
    ) -> Result<Answer, IntakeError> {
        if !who.has_role(Role::Agent) {
            return Err(IntakeError::Forbidden(tr!(
                "只有话务员可以在受理时直接答复",
                "only agents answer at intake"
            )));
        }
        if t.nature != Nature::Consultation {
            return Err(bad(
                "direct_answer",
                tr!(
                    "只有咨询类诉求（nature 为 consultation）可以在受理时直接答复",
                    "only consultations (nature consultation) are answered at intake"
                ),
            )
            .into());
        }
        let id = parse_id(
            "direct_answer.kb_entry_id",
            &a.kb_entry_id,
            &tr!("知识库条目", "an entry"),
        )?;
        let e = self
            .valid_entries(who.tenant.code())
            .await?
            .into_iter()
            .find(|e| e.id == id.to_string())
            .ok_or_else(|| {
                bad(
                    "direct_answer.kb_entry_id",
                    tr!(
                        "不是本辖区今天有效的知识库条目",
                        "is not an entry of this tenant valid today"
                    ),
                )
            })?;
        let reply = match a.reply.trim() {
            "" => e.body.clone(),
            r => check_text("direct_answer.reply", r, MAX_REPLY_CHARS, true)?,
        };
        Ok(Answer {
            kb_entry_id: id,
            title: e.title,
            reply,
        })
    }

    pub async fn intake_stats(
        &self,
        who: &Principal,
        req: &IntakeStatsRequest,
    ) -> Result<IntakeStats, IntakeError> {
        who.require_any(STATS_READERS)?;
        let to = req
            .to
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        let from = req
            .from
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or(to - chrono::TimeDelta::days(30));
        if from > to {
            return Err(bad("from", says::not_after("to")).into());
        }
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT channel, status, count(*) AS n FROM tickets WHERE region_code LIKE $1 || '%' \
                 AND created_at >= $2 AND created_at < $3 GROUP BY channel, status",
                vec![who.scope.prefix().into(), from.into(), to.into()],
            ))
            .await?;
        let mut stats = IntakeStats::default();
        for r in &rows {
            let channel: String = r.try_get("", "channel")?;
            let status: String = r.try_get("", "status")?;
            let n: i64 = r.try_get("", "n")?;
            stats.total += n;
            *stats.by_channel.entry(channel).or_default() += n;
            match status.as_str() {
                domain::STATUS_ANSWERED => stats.answered_directly += n,
                domain::STATUS_WITHDRAWN => stats.withdrawn += n,
                _ => {}
            }
        }
        stats.passed_on = stats.total - stats.answered_directly;
        Ok(stats)
    }

    /// The phrases that recur in a category's requests over days (China
    /// time), read from the redacted text of the latest 5,000.
    pub async fn top_phrases(
        &self,
        who: &Principal,
        req: &TopPhrasesRequest,
    ) -> Result<TopPhrasesResponse, IntakeError> {
        who.require_any(STATS_READERS)?;
        let day = |field: &str, raw: &str| {
            NaiveDate::parse_from_str(raw.trim(), "%Y-%m-%d")
                .ok()
                .filter(|d| (2000..=2100).contains(&chrono::Datelike::year(d)))
                .ok_or_else(|| {
                    bad(
                        field,
                        tr!(
                            "格式应为 YYYY-MM-DD（2000 至 2100 年）",
                            "must be YYYY-MM-DD (years 2000 to 2100)"
                        ),
                    )
                })
        };
        let (from, to) = (day("from", &req.from)?, day("to", &req.to)?);
        if from > to {
            return Err(bad("from", says::not_after("to")).into());
        }
        if req.category.trim().is_empty() {
            return Err(bad("category", tr!("不能为空", "must not be empty")).into());
        }
        let limit = match req.limit {
            0 => 10,
            n @ 1..=50 => n as usize,
            _ => {
                return Err(bad(
                    "limit",
                    tr!("必须在 1 到 50 之间", "must be between 1 and 50"),
                )
                .into());
            }
        };
        let start = jiesu_common::time::china_midnight(from);
        let end = jiesu_common::time::china_midnight(to + chrono::TimeDelta::days(1));
        let rows = self
            .db
            .query_all_raw(stmt(
                "SELECT content FROM tickets WHERE region_code LIKE $1 || '%' AND category = $2 \
                 AND created_at >= $3 AND created_at < $4 AND status <> $5 \
                 ORDER BY created_at DESC LIMIT 5000",
                vec![
                    who.scope.prefix().into(),
                    req.category.trim().into(),
                    start.into(),
                    end.into(),
                    domain::STATUS_MERGED.into(),
                ],
            ))
            .await?;
        let texts: Vec<String> = rows
            .iter()
            .map(|r| r.try_get::<String>("", "content"))
            .collect::<Result<_, _>>()?;
        let (top, examined) = domain::phrases::top_phrases(texts.iter().map(String::as_str), limit);
        Ok(TopPhrasesResponse {
            phrases: top
                .into_iter()
                .map(|(text, tickets)| Phrase { text, tickets })
                .collect(),
            examined,
        })
    }
}
