//! The SMS invitation's one-time link (回访短信): the caller of a closed
//! request opens `/r/{token}` on a phone, sees what is asked (tracking
//! number, category, unit; nothing personal) and gives the round's verdict
//! once. The same as JSON under `/api/v1/track/invitations/{token}` for
//! apps and the console. The token is the only proof; lookups are rate
//! limited per address like the tracking page's.

use axum::{
    Form,
    response::Html,
    routing::{MethodRouter, get},
};
use jiesu_proto::evaluation::{GetInvitationRequest, Invitation, RateByInvitationRequest};

use super::{
    at,
    callbacks::{PublicVerdictView, VerdictBody},
    prelude::*,
};
use crate::{open311::render::escape, ratelimit::Peer};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_invitation))
        .routes(routes!(rate_by_invitation))
}

/// The page a phone opens from the SMS (outside the API document).
pub fn page() -> MethodRouter<AppState> {
    get(show_page).post(submit_page)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationView {
    /// 受理编号.
    pub tracking_no: String,
    pub round: u32,
    pub category_name: String,
    pub unit_name: String,
    pub closed_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    /// `open`, `answered`, `expired`, `superseded` (the request was
    /// reopened; a later round asks again) or `closed` (the round ended
    /// otherwise, e.g. the caller was unreachable).
    pub status: String,
}

impl From<Invitation> for InvitationView {
    fn from(i: Invitation) -> Self {
        Self {
            tracking_no: i.tracking_no,
            round: i.round,
            category_name: i.category_name,
            unit_name: i.unit_name,
            closed_at: at(i.closed_at),
            expires_at: at(i.expires_at),
            status: i.status,
        }
    }
}

async fn fetch(state: &AppState, token: String) -> Result<Invitation, ApiError> {
    Ok(state
        .public_evaluation()
        .retried(GetInvitationRequest { token }, async |mut c, r| {
            c.get_invitation(r).await
        })
        .await?)
}

async fn rate(
    state: &AppState,
    token: String,
    verdict: VerdictBody,
) -> Result<PublicVerdictView, ApiError> {
    let v = state
        .public_evaluation()
        .once(
            RateByInvitationRequest {
                token,
                verdict: Some(verdict.into()),
            },
            async |mut c, r| c.rate_by_invitation(r).await,
        )
        .await?;
    Ok(PublicVerdictView {
        tracking_no: v.tracking_no,
        round: v.round,
        verdict: v.verdict.map(Into::into),
    })
}

/// What a link asks: no login, the token is the proof.
#[utoipa::path(
    get,
    path = "/api/v1/track/invitations/{token}",
    tag = "evaluation",
    params(("token" = String, Path, description = "The token of the SMS link")),
    responses(
        (status = 200, description = "The round the link rates", body = InvitationView),
        (status = 401, description = "Never: no token needed", body = Problem),
        (status = 404, description = "No such link", body = Problem),
        (status = 429, response = RateLimited),
    ),
    security(()),
)]
pub async fn get_invitation(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Result<Json<InvitationView>, ApiError> {
    state.limits.check_lookup(&headers, peer)?;
    Ok(Json(fetch(&state, token).await?.into()))
}

/// The verdict through the link, once: a second use, or a round answered by
/// phone meanwhile, is 409 `verdict_given`; after it expired 409
/// `invitation_expired`.
#[utoipa::path(
    post,
    path = "/api/v1/track/invitations/{token}/rating",
    tag = "evaluation",
    params(("token" = String, Path, description = "The token of the SMS link")),
    request_body = VerdictBody,
    responses(
        (status = 200, description = "The verdict recorded", body = PublicVerdictView),
        JsonInput,
        (status = 401, description = "Never: no token needed", body = Problem),
        (status = 404, description = "No such link", body = Problem),
        (status = 409, description = "Already rated, expired or no longer open (`verdict_given`, `invitation_expired`, `callback_closed`)", body = Problem),
        (status = 429, response = RateLimited),
    ),
    security(()),
)]
pub async fn rate_by_invitation(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    JsonBody(body): JsonBody<VerdictBody>,
) -> Result<Json<PublicVerdictView>, ApiError> {
    state.limits.check_lookup(&headers, peer)?;
    Ok(Json(rate(&state, token, body).await?))
}

/// The form as posted from the page.
#[derive(Debug, Deserialize)]
pub struct PageForm {
    #[serde(default)]
    resolved: String,
    #[serde(default)]
    satisfaction: String,
    #[serde(default)]
    comment: String,
}

async fn show_page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    if let Err(e) = state.limits.check_lookup(&headers, peer) {
        return error_page(&e);
    }
    match fetch(&state, token).await {
        Ok(i) => html(StatusCode::OK, &form_page(&i, None)),
        Err(e) => error_page(&e),
    }
}

async fn submit_page(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    Form(form): Form<PageForm>,
) -> Response {
    if let Err(e) = state.limits.check_lookup(&headers, peer) {
        return error_page(&e);
    }
    let resolved = match form.resolved.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    };
    let (Some(resolved), true) = (
        resolved,
        ["satisfied", "basic", "unsatisfied"].contains(&form.satisfaction.as_str()),
    ) else {
        // Shown again with what is missing; nothing recorded.
        return match fetch(&state, token).await {
            Ok(i) => html(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form_page(&i, Some("请选择问题是否解决，并选择满意程度后再提交。")),
            ),
            Err(e) => error_page(&e),
        };
    };
    let verdict = VerdictBody {
        resolved,
        satisfaction: form.satisfaction,
        comment: form.comment,
    };
    match rate(&state, token, verdict).await {
        Ok(v) => html(
            StatusCode::OK,
            &shell(
                "评价已提交",
                &format!(
                    "<p>感谢您的评价！受理编号 <b>{}</b> 第 {} 轮回访已记录。</p>{}",
                    escape(&v.tracking_no),
                    v.round,
                    if v.verdict.as_ref().is_some_and(|x| x.reopen_requested) {
                        "<p>您反映问题未解决，我们已安排重新办理，办理结果将再次告知您。</p>"
                    } else {
                        ""
                    }
                ),
            ),
        ),
        Err(e) => error_page(&e),
    }
}

fn html(status: StatusCode, body: &str) -> Response {
    let mut resp = (status, Html(body.to_owned())).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp.headers_mut().insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    resp
}

fn error_page(e: &ApiError) -> Response {
    html(
        e.status,
        &shell(
            "无法评价",
            &format!("<p>{}</p>", escape(e.message.get(Lang::Zh))),
        ),
    )
}

fn form_page(i: &Invitation, problem: Option<&str>) -> String {
    let facts = format!(
        "<p>受理编号：<b>{}</b></p><p>诉求类别：{}</p><p>承办单位：{}</p>",
        escape(&i.tracking_no),
        escape(&i.category_name),
        escape(&i.unit_name)
    );
    let state = match i.status.as_str() {
        "open" => None,
        "answered" => Some("本轮回访已有评价，感谢您的反馈。"),
        "expired" => Some("评价链接已过期，工作人员将电话回访。"),
        "superseded" => Some("该诉求已重新办理，本链接已失效。"),
        _ => Some("本轮回访已结束，本链接已失效。"),
    };
    if let Some(s) = state {
        return shell("办理结果评价", &format!("{facts}<p>{s}</p>"));
    }
    let problem = problem
        .map(|p| format!("<p class=\"err\">{}</p>", escape(p)))
        .unwrap_or_default();
    let expires = at(i.expires_at)
        .map(|t| {
            format!(
                "<p class=\"muted\">请于 {} 前评价。</p>",
                jiesu_common::time::in_china(t).format("%Y年%m月%d日 %H:%M")
            )
        })
        .unwrap_or_default();
    shell(
        "办理结果评价",
        &format!(
            "{facts}{expires}{problem}<form method=\"post\">\
             <fieldset><legend>您反映的问题是否已解决？</legend>\
             <label><input type=\"radio\" name=\"resolved\" value=\"yes\" required> 已解决</label>\
             <label><input type=\"radio\" name=\"resolved\" value=\"no\"> 未解决</label></fieldset>\
             <fieldset><legend>您对办理结果是否满意？</legend>\
             <label><input type=\"radio\" name=\"satisfaction\" value=\"satisfied\" required> 满意</label>\
             <label><input type=\"radio\" name=\"satisfaction\" value=\"basic\"> 基本满意</label>\
             <label><input type=\"radio\" name=\"satisfaction\" value=\"unsatisfied\"> 不满意</label></fieldset>\
             <label>意见建议（选填，500字以内）<textarea name=\"comment\" maxlength=\"500\" rows=\"4\"></textarea></label>\
             <button type=\"submit\">提交评价</button></form>"
        ),
    )
}

fn shell(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - 12345接诉即办</title><style>\
         body{{font-family:sans-serif;max-width:32rem;margin:0 auto;padding:1rem;line-height:1.6}}\
         fieldset{{border:1px solid #ccc;margin:1rem 0}}label{{display:block;margin:.3rem 0}}\
         textarea{{width:100%}}button{{font-size:1.1rem;padding:.5rem 1.5rem}}\
         .err{{color:#b00}}.muted{{color:#666}}</style></head>\
         <body><h1>{title}</h1>{body}</body></html>"
    )
}
