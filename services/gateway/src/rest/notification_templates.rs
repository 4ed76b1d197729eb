//! `/api/v1/admin/notification-templates`: what each kind of notice says
//! on each channel. Every kind lists its variables and its built-in
//! default; a tenant admin replaces one per channel (checked first:
//! unknown variables, channel length limits, SMS bound to an approved
//! template code and sign) and previews it with sample data.

use jiesu_proto::{
    notification::{
        DeleteTemplateRequest, ListTemplatesRequest, PutTemplateRequest, Template, TemplateKind,
    },
    time::from_timestamp,
};

use super::prelude::*;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(put_template, delete_template))
        .routes(routes!(preview_template))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateView {
    pub kind: String,
    /// `sms`, `email`, `wecom`, `webhook` or `*` (every channel).
    pub channel: String,
    /// minijinja source, e.g. `【接诉即办】{{ unit_name }}：…`.
    pub title: String,
    pub body: String,
    pub sms_template_code: String,
    pub sign_name: String,
    /// The default shipped with Jiesu.
    pub built_in: bool,
    pub version: i32,
    pub updated_by: String,
    pub updated_at: Option<DateTime<Utc>>,
}

impl From<Template> for TemplateView {
    fn from(t: Template) -> Self {
        Self {
            kind: t.kind,
            channel: t.channel,
            title: t.title,
            body: t.body,
            sms_template_code: t.sms_template_code,
            sign_name: t.sign_name,
            built_in: t.built_in,
            version: t.version,
            updated_by: t.updated_by,
            updated_at: t.updated_at.as_ref().and_then(from_timestamp),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateVariableView {
    pub name: String,
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateKindView {
    /// e.g. `ticket.dispatched`.
    pub kind: String,
    pub name: String,
    pub variables: Vec<TemplateVariableView>,
    pub built_in: Option<TemplateView>,
    /// The tenant's own, per channel.
    pub tenant: Vec<TemplateView>,
}

impl From<TemplateKind> for TemplateKindView {
    fn from(k: TemplateKind) -> Self {
        Self {
            kind: k.kind,
            name: k.name,
            variables: k
                .variables
                .into_iter()
                .map(|v| TemplateVariableView {
                    name: v.name,
                    description: v.description,
                })
                .collect(),
            built_in: k.built_in.map(Into::into),
            tenant: k.tenant.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateKindList {
    pub kinds: Vec<TemplateKindView>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateBody {
    /// minijinja source; only the kind's variables.
    #[schema(example = "新工单：{{ tracking_no }}")]
    pub title: String,
    #[schema(example = "{{ unit_name }}：工单 {{ tracking_no }}（{{ category }}）待签收。")]
    pub body: String,
    /// SMS only: the provider's approved template code.
    #[serde(default)]
    pub sms_template_code: String,
    /// SMS only: the approved sign (签名).
    #[serde(default)]
    pub sign_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplatePreviewView {
    pub title: String,
    pub body: String,
    pub body_chars: i32,
    pub body_bytes: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateDeleted {
    /// Whether the tenant had one (the default applies either way).
    pub deleted: bool,
}

/// Every kind of notice with its variables, default and the tenant's own.
#[utoipa::path(
    get,
    path = "/api/v1/admin/notification-templates",
    tag = "notifications",
    responses(
        (status = 200, description = "Kinds of notice", body = TemplateKindList),
        Authenticated,
        (status = 403, response = SupervisorsAndAdmins),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn list_templates(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<TemplateKindList>, ApiError> {
    let resp = state
        .notification(&caller)
        .retried(ListTemplatesRequest {}, async |mut c, r| {
            c.list_templates(r).await
        })
        .await?;
    Ok(Json(TemplateKindList {
        kinds: resp.kinds.into_iter().map(Into::into).collect(),
    }))
}

fn request(kind: String, channel: String, b: TemplateBody) -> PutTemplateRequest {
    PutTemplateRequest {
        kind,
        channel,
        title: b.title,
        body: b.body,
        sms_template_code: b.sms_template_code,
        sign_name: b.sign_name,
    }
}

/// Replace the template of a kind on a channel (tenant admin). Applies to
/// every message sent from now on, queued ones included.
#[utoipa::path(
    put,
    path = "/api/v1/admin/notification-templates/{kind}/{channel}",
    tag = "notifications",
    params(
        ("kind" = String, Path, description = "e.g. `ticket.dispatched`"),
        ("channel" = String, Path, description = "`sms`, `email`, `wecom`, `webhook` or `*`"),
    ),
    request_body = TemplateBody,
    responses(
        (status = 200, description = "Saved", body = TemplateView),
        TenantAdmin,
        JsonInput,
        (status = 422, description = "A field is invalid: unknown kind or channel, a syntax error, an unknown variable, too long, SMS without template code or sign", body = Problem),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn put_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, channel)): Path<(String, String)>,
    JsonBody(b): JsonBody<TemplateBody>,
) -> Result<Json<TemplateView>, ApiError> {
    let t = state
        .notification(&caller)
        .retried(request(kind, channel, b), async |mut c, r| {
            c.put_template(r).await
        })
        .await?;
    Ok(Json(t.into()))
}

/// Remove the tenant's template of a kind on a channel: the default
/// applies again (tenant admin).
#[utoipa::path(
    delete,
    path = "/api/v1/admin/notification-templates/{kind}/{channel}",
    tag = "notifications",
    params(
        ("kind" = String, Path, description = "e.g. `ticket.dispatched`"),
        ("channel" = String, Path, description = "`sms`, `email`, `wecom`, `webhook` or `*`"),
    ),
    responses(
        (status = 200, description = "Removed, or there was none", body = TemplateDeleted),
        TenantAdmin,
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn delete_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, channel)): Path<(String, String)>,
) -> Result<Json<TemplateDeleted>, ApiError> {
    let r = state
        .notification(&caller)
        .retried(DeleteTemplateRequest { kind, channel }, async |mut c, r| {
            c.delete_template(r).await
        })
        .await?;
    Ok(Json(TemplateDeleted { deleted: r.deleted }))
}

/// Check a template and render it with the kind's sample, saving nothing
/// (tenant admin).
#[utoipa::path(
    post,
    path = "/api/v1/admin/notification-templates/{kind}/{channel}/preview",
    tag = "notifications",
    params(
        ("kind" = String, Path, description = "e.g. `ticket.dispatched`"),
        ("channel" = String, Path, description = "`sms`, `email`, `wecom`, `webhook` or `*`"),
    ),
    request_body = TemplateBody,
    responses(
        (status = 200, description = "Rendered with sample data", body = TemplatePreviewView),
        TenantAdmin,
        JsonInput,
        (status = 422, description = "A field is invalid, as for saving", body = Problem),
        (status = 503, description = "Notification unavailable", body = Problem),
    ),
)]
pub async fn preview_template(
    State(state): State<AppState>,
    caller: Caller,
    Path((kind, channel)): Path<(String, String)>,
    JsonBody(b): JsonBody<TemplateBody>,
) -> Result<Json<TemplatePreviewView>, ApiError> {
    let p = state
        .notification(&caller)
        .retried(request(kind, channel, b), async |mut c, r| {
            c.preview_template(r).await
        })
        .await?;
    Ok(Json(TemplatePreviewView {
        title: p.title,
        body: p.body,
        body_chars: p.body_chars,
        body_bytes: p.body_bytes,
    }))
}
