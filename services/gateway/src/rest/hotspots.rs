//! Hot spots: rising categories and places with series for charts and
//! maps (evaluation), and the phrases that recur in a category's requests
//! (intake, which holds the text).

use jiesu_proto::{evaluation::GetHotspotsRequest, intake::TopPhrasesRequest};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(hotspots))
        .routes(routes!(phrases))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HotspotQuery {
    /// `category1`, `category2`, `category`, `district`, `street` or
    /// `community`.
    pub dimension: String,
    /// `YYYY-MM-DD`, `YYYY-MM`, `YYYY-Qn` or `YYYY`; or give `from` and `to`.
    pub period: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    /// Fewest requests a rise needs (default 10).
    pub min_count: Option<u32>,
    /// Rows (default 20, at most 200).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// Place dimensions: only places under this region code.
    pub within: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HotspotView {
    /// Category code or region code (for the map).
    pub key: String,
    /// The category's name; empty for places.
    pub name: String,
    pub count: i64,
    /// The previous period, scaled to this one's length.
    pub previous: i64,
    /// The same period a year before (with the imported history).
    pub last_year: i64,
    /// count / previous - 1; null without a base.
    pub change_previous: Option<f64>,
    pub change_last_year: Option<f64>,
    /// At least `min_count`, above both bases, and p < 0.01.
    pub rising: bool,
    pub p_value: f64,
    /// Requests per bucket.
    pub series: Vec<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Hotspots {
    pub dimension: String,
    pub from: String,
    pub to: String,
    pub previous_from: String,
    pub previous_to: String,
    pub last_year_from: String,
    pub last_year_to: String,
    /// Days, or months for a period over 62 days: the series' x-axis.
    pub buckets: Vec<String>,
    /// Rising first, then by count.
    pub rows: Vec<HotspotView>,
}

/// Rising categories and places (热点): this period against the previous
/// one and the same period a year before, with a floor and a Poisson test
/// so that a handful is not a trend.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/hotspots",
    tag = "evaluation",
    params(HotspotQuery),
    responses(
        (status = 200, description = "Hot spots with series", body = Hotspots),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn hotspots(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<HotspotQuery>, QueryRejection>,
) -> Result<Json<Hotspots>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = GetHotspotsRequest {
        dimension: q.dimension,
        period: q.period.unwrap_or_default(),
        from: q.from.unwrap_or_default(),
        to: q.to.unwrap_or_default(),
        min_count: q.min_count.unwrap_or(0),
        limit: q.limit.unwrap_or(0),
        within: q.within.unwrap_or_default(),
    };
    let r = state
        .evaluation(&caller)
        .retried(msg, async |mut c, r| c.get_hotspots(r).await)
        .await?;
    Ok(Json(Hotspots {
        dimension: r.dimension,
        from: r.from,
        to: r.to,
        previous_from: r.previous_from,
        previous_to: r.previous_to,
        last_year_from: r.last_year_from,
        last_year_to: r.last_year_to,
        buckets: r.buckets,
        rows: r.rows.into_iter().map(Into::into).collect(),
    }))
}

impl From<jiesu_proto::evaluation::Hotspot> for HotspotView {
    fn from(h: jiesu_proto::evaluation::Hotspot) -> Self {
        Self {
            key: h.key,
            name: h.name,
            count: h.count,
            previous: h.previous,
            last_year: h.last_year,
            change_previous: h.change_previous,
            change_last_year: h.change_last_year,
            rising: h.rising,
            p_value: h.p_value,
            series: h.series,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PhraseQuery {
    /// A category code.
    pub category: String,
    /// First day, `YYYY-MM-DD` (China time).
    pub from: String,
    /// Last day, included.
    pub to: String,
    /// Default 10, at most 50.
    #[param(minimum = 1, maximum = 50)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PhraseView {
    pub text: String,
    /// Requests it appears in.
    pub tickets: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Phrases {
    pub phrases: Vec<PhraseView>,
    /// Requests read (the latest 5,000 at most).
    pub examined: i64,
}

/// What a category's requests keep saying: the phrases found in the most of
/// them (at least 3 and 5%), from the redacted text.
#[utoipa::path(
    get,
    path = "/api/v1/evaluation/hotspots/phrases",
    tag = "evaluation",
    params(PhraseQuery),
    responses(
        (status = 200, description = "Recurring phrases", body = Phrases),
        Authenticated,
        (status = 403, response = StaffOnly),
        (status = 422, response = InvalidQuery),
    ),
)]
pub async fn phrases(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<PhraseQuery>, QueryRejection>,
) -> Result<Json<Phrases>, ApiError> {
    let Query(q) = query.map_err(|e| invalid_query(&e))?;
    let msg = TopPhrasesRequest {
        category: q.category,
        from: q.from,
        to: q.to,
        limit: q.limit.unwrap_or(0),
    };
    let r = state
        .intake(&caller)
        .retried(msg, async |mut c, r| c.top_phrases(r).await)
        .await?;
    Ok(Json(Phrases {
        phrases: r
            .phrases
            .into_iter()
            .map(|p| PhraseView {
                text: p.text,
                tickets: p.tickets,
            })
            .collect(),
        examined: r.examined,
    }))
}
