//! gRPC handlers of notification.

use jiesu_auth::{AuthError, Role, principal};
use jiesu_common::tr;
use std::sync::Arc;

use jiesu_pii::Keyring;
use jiesu_proto::{
    notification::{
        BroadcastDelivery, DeleteTemplateRequest, DeleteTemplateResponse,
        GetBroadcastDeliveryRequest, GetRecipientAddressesRequest, InboxItem, ListInboxRequest,
        ListInboxResponse, ListNotificationsRequest, ListNotificationsResponse,
        ListTemplatesRequest, ListTemplatesResponse, MarkInboxReadRequest, MarkInboxReadResponse,
        Notification, PutTemplateRequest, RecipientAddresses, RetryNotificationRequest,
        SetRecipientAddressesRequest, Template, TemplateKind, TemplatePreview, TemplateVariable,
        WatchInboxRequest, notification_service_server::NotificationService,
    },
    status,
    time::to_timestamp,
};
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::{
    store::{self, ListFilter, addresses, notifications},
    templates,
};

/// Recipient kinds the directory keeps addresses for.
const DIRECTORY_KINDS: &[&str] = &[
    "unit",
    crate::domain::RECIPIENT_SUPERVISORS,
    crate::domain::RECIPIENT_GRID_GROUP,
];

const STAFF: &[Role] = &[
    Role::Dispatcher,
    Role::Supervisor,
    Role::TenantAdmin,
    Role::PlatformAdmin,
];

pub struct NotificationApi {
    db: DatabaseConnection,
    keyring: Arc<Keyring>,
    /// Wakes the deliverer when an operator queues a message again.
    wake: Arc<Notify>,
    /// New notices, for inbox watchers.
    feed: crate::inbox::Feed,
    /// The deliverer's templates, forgotten when one is saved or removed.
    templates: Arc<templates::Cache>,
}

impl NotificationApi {
    pub fn new(
        db: DatabaseConnection,
        keyring: Arc<Keyring>,
        wake: Arc<Notify>,
        feed: crate::inbox::Feed,
        templates: Arc<templates::Cache>,
    ) -> Self {
        Self {
            db,
            keyring,
            wake,
            feed,
            templates,
        }
    }
}

/// The caller's inbox, and the reader key of their reads.
fn inbox_of(
    who: &jiesu_auth::Principal,
) -> Result<((String, &'static str, String), String), Status> {
    let inbox = crate::inbox::inbox_of(who).ok_or_else(|| {
        Status::from(AuthError::Forbidden(tr!(
            "只有承办人员（须指明所属单位）、调度、督办和管理人员有站内消息",
            "only handlers (naming their unit), dispatchers, supervisors and admins have an inbox"
        )))
    })?;
    Ok((inbox, format!("{}:{}", who.tenant.code(), who.sub)))
}

fn db_error(e: &DbErr) -> Status {
    if jiesu_db::unreachable(e) {
        tracing::warn!(error = %e, "notification database unreachable");
        return status::database_unavailable();
    }
    tracing::error!(error = %e, "notification database error");
    status::internal()
}

/// A notification as the API shows it: the one-time link never.
fn view(n: notifications::Model, fallbacks: Vec<String>) -> Notification {
    let next_attempt_at = (n.status == "queued").then(|| to_timestamp(n.next_attempt_at));
    Notification {
        id: n.id.to_string(),
        tenant: n.tenant,
        recipient_kind: n.recipient_kind,
        recipient_id: n.recipient_id,
        recipient_name: n.recipient_name,
        channel: n.channel,
        title: n.title,
        body: n
            .body
            .replace(crate::domain::LINK, crate::domain::LINK_SHOWN),
        ticket_id: n.ticket_id.map(|t| t.to_string()).unwrap_or_default(),
        status: n.status,
        created_at: Some(to_timestamp(n.created_at)),
        sent_at: n.sent_at.map(to_timestamp),
        via: n.via.unwrap_or_default(),
        attempts: n.attempts,
        last_error: n.last_error.unwrap_or_default(),
        fallbacks,
        provider_id: n.provider_id.unwrap_or_default(),
        next_attempt_at,
        kind: n.kind,
    }
}

/// A recipient kind the directory keeps, and a non-empty id.
fn recipient(kind: &str, id: &str) -> Result<(String, String), Status> {
    let kind = kind.trim();
    if !DIRECTORY_KINDS.contains(&kind) {
        return Err(status::invalid_field(
            "recipient_kind",
            tr!(
                "必须是 unit、supervisors 或 grid_group",
                "must be unit, supervisors or grid_group"
            ),
        ));
    }
    let id = id.trim();
    if id.is_empty() || id.len() > 64 || id.chars().any(char::is_control) {
        return Err(status::invalid_field(
            "recipient_id",
            tr!("不能为空，最长 64 个字符", "must be 1 to 64 characters"),
        ));
    }
    Ok((kind.to_owned(), id.to_owned()))
}

/// Checks one directory field; returns the value to store and its mask.
fn address_field(field: &'static str, raw: &str) -> Result<(String, String), Status> {
    let v = raw.trim();
    if v.is_empty() {
        return Ok((String::new(), String::new()));
    }
    match field {
        "sms" => {
            let ok = v.len() == 11
                && v.starts_with('1')
                && v.bytes().all(|b| b.is_ascii_digit())
                && v.as_bytes()[1] >= b'3';
            if !ok {
                return Err(status::invalid_field(
                    field,
                    tr!(
                        "必须是 11 位中国大陆手机号码",
                        "must be an 11-digit mainland mobile number"
                    ),
                ));
            }
            Ok((v.to_owned(), jiesu_pii::mask_phone(v)))
        }
        "email" => {
            let parsed: Result<lettre::Address, _> = v.parse();
            match parsed {
                Ok(a) if v.len() <= 254 => {
                    let user = a.user();
                    let shown: String = user.chars().take(2).collect();
                    Ok((v.to_owned(), format!("{shown}***@{}", a.domain())))
                }
                _ => Err(status::invalid_field(
                    field,
                    tr!("不是有效的电子邮箱地址", "is not an email address"),
                )),
            }
        }
        _ => {
            let ok = (8..=64).contains(&v.len())
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if !ok {
                return Err(status::invalid_field(
                    field,
                    tr!(
                        "必须是企业微信群机器人 webhook 地址中的 key（8 到 64 位字母、数字或连字符）",
                        "must be the key of a WeCom group robot's webhook (8 to 64 letters, digits or hyphens)"
                    ),
                ));
            }
            Ok((v.to_owned(), format!("{}***{}", &v[..4], &v[v.len() - 4..])))
        }
    }
}

fn template_view(t: store::templates::Stored) -> Template {
    Template {
        kind: t.kind,
        channel: t.channel,
        title: t.title,
        body: t.body,
        sms_template_code: t.sms_template_code,
        sign_name: t.sign_name,
        built_in: false,
        version: t.version,
        updated_by: t.updated_by,
        updated_at: Some(to_timestamp(t.updated_at)),
    }
}

/// A known kind of notice and a channel a template can be written for.
fn known_kind_and_channel(kind: &str, channel: &str) -> Result<&'static templates::Kind, Status> {
    let kind = templates::kind(kind.trim()).ok_or_else(|| {
        status::invalid_field(
            "kind",
            tr!(
                "未知的通知类型，可选：{}",
                "unknown kind of notice; one of: {}",
                templates::KINDS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join("、")
            ),
        )
    })?;
    if !templates::CHANNELS.contains(&channel.trim()) {
        return Err(status::invalid_field(
            "channel",
            tr!(
                "必须是 *、sms、email、wecom 或 webhook",
                "must be *, sms, email, wecom or webhook"
            ),
        ));
    }
    Ok(kind)
}

/// Checks a template as `PutTemplate` and `PreviewTemplate` take it:
/// known kind and channel, only the kind's variables (never the one-time
/// link in a title, which logs and lists show), SMS bound to a template
/// code and sign, and, rendered with the kind's sample, within the limits
/// of its channel (of the strictest, SMS, for every channel `*`). Returns
/// the kind and the rendered sample.
fn checked(req: &PutTemplateRequest) -> Result<(&'static templates::Kind, String, String), Status> {
    let kind = known_kind_and_channel(&req.kind, &req.channel)?;
    let channel = req.channel.trim();
    let sample = (kind.sample)();
    let mut rendered = Vec::new();
    for (field, source) in [("title", &req.title), ("body", &req.body)] {
        if source.trim().is_empty() {
            return Err(status::invalid_field(field, tr!("不能为空", "is required")));
        }
        let unknown = templates::unknown_variables(kind, source)
            .map_err(|e| status::invalid_field(field, tr!("{}", "{}", e)))?;
        if field == "title"
            && templates::unknown_variables(&templates::NO_VARIABLES, source)
                .is_ok_and(|used| used.iter().any(|v| v == "link"))
        {
            return Err(status::invalid_field(
                field,
                tr!(
                    "标题不能包含一次性链接 link",
                    "a title may not carry the one-time link"
                ),
            ));
        }
        if !unknown.is_empty() {
            return Err(status::invalid_field(
                field,
                tr!(
                    "使用了该类通知没有的变量：{}（可用：{}）",
                    "uses variables this kind of notice does not have: {} (available: {})",
                    unknown.join("、"),
                    kind.vars
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join("、")
                ),
            ));
        }
        let out = templates::render(source, &sample)
            .map_err(|e| status::invalid_field(field, tr!("{}", "{}", e)))?;
        rendered.push(out);
    }
    let body = rendered.pop().unwrap_or_default();
    let title = rendered.pop().unwrap_or_default();
    if title.chars().count() > templates::TITLE_MAX {
        return Err(status::invalid_field(
            "title",
            tr!(
                "标题不能超过 100 个字",
                "the title must be at most 100 characters"
            ),
        ));
    }
    // A template for every channel must fit the strictest of them.
    let limit_of = if channel == "*" { "sms" } else { channel };
    templates::body_fits(limit_of, &body)
        .map_err(|e| status::invalid_field("body", tr!("{}", "{}", e)))?;
    let code = req.sms_template_code.trim();
    let sign = req.sign_name.trim();
    if channel == "sms" {
        if code.is_empty()
            || code.len() > 40
            || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            return Err(status::invalid_field(
                "sms_template_code",
                tr!(
                    "短信模板必须绑定服务商审核通过的模板编号（字母、数字或下划线，最长 40 位）",
                    "an SMS template must name the provider's approved template code (letters, digits or underscores, at most 40)"
                ),
            ));
        }
        let n = sign.chars().count();
        if !(2..=20).contains(&n) || sign.contains(['【', '】']) {
            return Err(status::invalid_field(
                "sign_name",
                tr!(
                    "短信模板必须绑定审核通过的签名（2 到 20 个字，不含【】）",
                    "an SMS template must name the approved sign (2 to 20 characters, without 【】)"
                ),
            ));
        }
    } else {
        for (field, v) in [("sms_template_code", code), ("sign_name", sign)] {
            if !v.is_empty() {
                return Err(status::invalid_field(
                    field,
                    tr!("只适用于短信模板", "applies to SMS templates only"),
                ));
            }
        }
    }
    Ok((kind, title, body))
}

fn addresses_view(kind: &str, id: &str, rows: Vec<(String, String)>) -> RecipientAddresses {
    let mut out = RecipientAddresses {
        recipient_kind: kind.to_owned(),
        recipient_id: id.to_owned(),
        ..Default::default()
    };
    for (field, masked) in rows {
        match field.as_str() {
            "sms" => out.sms = masked,
            "email" => out.email = masked,
            "wecom_robot" => out.wecom_robot = masked,
            _ => {}
        }
    }
    out
}

fn parse_uuid(field: &'static str, raw: &str) -> Result<Option<Uuid>, Status> {
    jiesu_common::ids::parse_optional_id(field, raw)
        .map_err(|e| status::invalid_field(&e.field, tr!("必须是 UUID", "must be a UUID")))
}

#[tonic::async_trait]
impl NotificationService for NotificationApi {
    async fn list_notifications(
        &self,
        request: Request<ListNotificationsRequest>,
    ) -> Result<Response<ListNotificationsResponse>, Status> {
        let who = principal(&request)?;
        let req = request.get_ref();
        let mut allowed = STAFF.to_vec();
        allowed.push(Role::Handler);
        who.require_any(&allowed)?;
        // Staff see the notifications of their scope; a handler only its unit's.
        let own_unit_only = !who.roles.iter().any(|r| STAFF.contains(r));
        if own_unit_only && who.unit.is_none() {
            return Err(AuthError::Forbidden(tr!(
                "承办人员的令牌必须指明所属单位（声明 `unit`）",
                "a handler token must name its unit (claim `unit`)"
            ))
            .into());
        }
        let page_size = match req.page_size {
            0 => 50,
            n if (1..=500).contains(&n) => n,
            _ => {
                return Err(status::invalid_field(
                    "page_size",
                    tr!("必须在 1 到 500 之间", "must be between 1 and 500"),
                ));
            }
        };
        let filter = ListFilter {
            ticket_id: parse_uuid("ticket_id", &req.ticket_id)?,
            recipient_id: (!req.recipient_id.trim().is_empty())
                .then(|| req.recipient_id.trim().to_owned()),
            after: parse_uuid("page_token", &req.page_token)?,
            status: match req.status.trim() {
                "" => None,
                s @ ("queued" | "sending" | "sent" | "delivered" | "failed") => Some(s.to_owned()),
                _ => {
                    return Err(status::invalid_field(
                        "status",
                        tr!(
                            "必须是 queued、sending、sent、delivered 或 failed",
                            "must be queued, sending, sent, delivered or failed"
                        ),
                    ));
                }
            },
            limit: page_size as u64,
        };
        let rows = store::list_visible(&self.db, &who, &filter, own_unit_only)
            .await
            .map_err(|e| db_error(&e))?;
        let next_page_token = if rows.len() as i32 == page_size {
            rows.last().map(|n| n.id.to_string()).unwrap_or_default()
        } else {
            String::new()
        };
        let ids: Vec<Uuid> = rows.iter().map(|n| n.id).collect();
        let mut fallbacks = store::fallbacks(&self.db, &ids)
            .await
            .map_err(|e| db_error(&e))?;
        let notifications = rows
            .into_iter()
            .map(|n| {
                let f = fallbacks.remove(&n.id).unwrap_or_default();
                view(n, f)
            })
            .collect();
        Ok(Response::new(ListNotificationsResponse {
            notifications,
            next_page_token,
        }))
    }

    async fn retry_notification(
        &self,
        request: Request<RetryNotificationRequest>,
    ) -> Result<Response<Notification>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::Supervisor, Role::TenantAdmin, Role::PlatformAdmin])?;
        let id = parse_uuid("id", &request.get_ref().id)?
            .ok_or_else(|| status::invalid_field("id", tr!("不能为空", "is required")))?;
        let n = store::requeue(&self.db, &who, id)
            .await
            .map_err(|e| db_error(&e))?;
        let n = match n {
            store::Requeued::Done(n) => n,
            store::Requeued::NotFound => {
                return Err(status::not_found(tr!("通知", "notification")));
            }
            store::Requeued::LinkGone => {
                return Err(status::coded(
                    tonic::Code::FailedPrecondition,
                    "link_gone",
                    tr!(
                        "这条通知的一次性链接已在发送失败时清除，不能重新发送",
                        "this notification's one-time link was cleared when it failed; it cannot be sent again"
                    ),
                    None,
                ));
            }
            store::Requeued::NotFailed(s) => {
                return Err(status::coded(
                    tonic::Code::FailedPrecondition,
                    "not_failed",
                    tr!(
                        "只有发送失败的通知可以重新发送，这条通知的状态是 {}",
                        "only a failed notification can be sent again; this one is {}",
                        s
                    ),
                    None,
                ));
            }
        };
        self.wake.notify_one();
        Ok(Response::new(view(*n, Vec::new())))
    }

    async fn get_recipient_addresses(
        &self,
        request: Request<GetRecipientAddressesRequest>,
    ) -> Result<Response<RecipientAddresses>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::PlatformAdmin])?;
        let req = request.get_ref();
        let (kind, id) = recipient(&req.recipient_kind, &req.recipient_id)?;
        let rows = addresses::masked(&self.db, who.tenant.code(), &kind, &id)
            .await
            .map_err(|e| db_error(&e))?;
        Ok(Response::new(addresses_view(&kind, &id, rows)))
    }

    async fn set_recipient_addresses(
        &self,
        request: Request<SetRecipientAddressesRequest>,
    ) -> Result<Response<RecipientAddresses>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::PlatformAdmin])?;
        let req = request.get_ref();
        let (kind, id) = recipient(&req.recipient_kind, &req.recipient_id)?;
        // Every field is checked before anything is written.
        let mut changes = Vec::new();
        for (field, value) in [
            ("sms", &req.sms),
            ("email", &req.email),
            ("wecom_robot", &req.wecom_robot),
        ] {
            if let Some(v) = value {
                let (value, masked) = address_field(field, v)?;
                changes.push((field, value, masked));
            }
        }
        let txn = self.db.begin().await.map_err(|e| db_error(&e))?;
        for (field, value, masked) in &changes {
            addresses::set(
                &txn,
                &self.keyring,
                who.tenant.code(),
                &kind,
                &id,
                field,
                value,
                masked,
                &who.sub,
            )
            .await
            .map_err(|e| db_error(&e))?;
        }
        let rows = addresses::masked(&txn, who.tenant.code(), &kind, &id)
            .await
            .map_err(|e| db_error(&e))?;
        txn.commit().await.map_err(|e| db_error(&e))?;
        Ok(Response::new(addresses_view(&kind, &id, rows)))
    }

    async fn list_templates(
        &self,
        request: Request<ListTemplatesRequest>,
    ) -> Result<Response<ListTemplatesResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::Supervisor, Role::PlatformAdmin])?;
        let mut own = store::templates::all(&self.db, who.tenant.code())
            .await
            .map_err(|e| db_error(&e))?;
        let kinds = templates::KINDS
            .iter()
            .map(|k| TemplateKind {
                kind: k.name.to_owned(),
                name: k.zh.to_owned(),
                variables: k
                    .vars
                    .iter()
                    .map(|(name, description)| TemplateVariable {
                        name: (*name).to_owned(),
                        description: (*description).to_owned(),
                    })
                    .collect(),
                built_in: Some(Template {
                    kind: k.name.to_owned(),
                    channel: "*".to_owned(),
                    title: k.title.to_owned(),
                    body: k.body.to_owned(),
                    built_in: true,
                    ..Default::default()
                }),
                tenant: own
                    .extract_if(.., |t| t.kind == k.name)
                    .map(template_view)
                    .collect(),
            })
            .collect();
        Ok(Response::new(ListTemplatesResponse { kinds }))
    }

    async fn put_template(
        &self,
        request: Request<PutTemplateRequest>,
    ) -> Result<Response<Template>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::PlatformAdmin])?;
        let req = request.get_ref();
        let (kind, _, _) = checked(req)?;
        let saved = store::templates::put(
            &self.db,
            who.tenant.code(),
            &store::templates::Stored {
                kind: kind.name.to_owned(),
                channel: req.channel.trim().to_owned(),
                title: req.title.clone(),
                body: req.body.clone(),
                sms_template_code: req.sms_template_code.trim().to_owned(),
                sign_name: req.sign_name.trim().to_owned(),
                version: 0,
                updated_by: who.sub.clone(),
                updated_at: chrono::Utc::now(),
            },
        )
        .await
        .map_err(|e| db_error(&e))?;
        self.templates.clear();
        tracing::info!(kind = %saved.kind, channel = %saved.channel, version = saved.version, by = %who.sub, "notification template saved");
        Ok(Response::new(template_view(saved)))
    }

    async fn delete_template(
        &self,
        request: Request<DeleteTemplateRequest>,
    ) -> Result<Response<DeleteTemplateResponse>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::PlatformAdmin])?;
        let req = request.get_ref();
        known_kind_and_channel(&req.kind, &req.channel)?;
        let deleted = store::templates::delete(
            &self.db,
            who.tenant.code(),
            req.kind.trim(),
            req.channel.trim(),
        )
        .await
        .map_err(|e| db_error(&e))?;
        self.templates.clear();
        Ok(Response::new(DeleteTemplateResponse { deleted }))
    }

    async fn preview_template(
        &self,
        request: Request<PutTemplateRequest>,
    ) -> Result<Response<TemplatePreview>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::TenantAdmin, Role::PlatformAdmin])?;
        let (_, title, body) = checked(request.get_ref())?;
        Ok(Response::new(TemplatePreview {
            body_chars: i32::try_from(body.chars().count()).unwrap_or(i32::MAX),
            body_bytes: i32::try_from(body.len()).unwrap_or(i32::MAX),
            title,
            body,
        }))
    }

    async fn list_inbox(
        &self,
        request: Request<ListInboxRequest>,
    ) -> Result<Response<ListInboxResponse>, Status> {
        let who = principal(&request)?;
        let ((tenant, kind, id), reader) = inbox_of(&who)?;
        let req = request.get_ref();
        let page_size = match req.page_size {
            0 => 50,
            n if (1..=200).contains(&n) => n,
            _ => {
                return Err(status::invalid_field(
                    "page_size",
                    tr!("必须在 1 到 200 之间", "must be between 1 and 200"),
                ));
            }
        };
        let before = parse_uuid("page_token", &req.page_token)?;
        let key = (tenant.as_str(), kind, id.as_str());
        let rows = store::inbox(
            &self.db,
            key,
            &reader,
            before,
            req.unread_only,
            page_size as u64,
        )
        .await
        .map_err(|e| db_error(&e))?;
        let unread = store::unread(&self.db, key, &reader)
            .await
            .map_err(|e| db_error(&e))?;
        let next_page_token = if rows.len() as i32 == page_size {
            rows.last()
                .map(|(n, _)| n.id.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(ListInboxResponse {
            items: rows
                .into_iter()
                .map(|(n, read)| InboxItem {
                    notification: Some(view(n, Vec::new())),
                    read,
                })
                .collect(),
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
            next_page_token,
        }))
    }

    async fn mark_inbox_read(
        &self,
        request: Request<MarkInboxReadRequest>,
    ) -> Result<Response<MarkInboxReadResponse>, Status> {
        let who = principal(&request)?;
        let ((tenant, kind, id), reader) = inbox_of(&who)?;
        let req = request.get_ref();
        if req.all != req.ids.is_empty() {
            return Err(status::invalid_field(
                "ids",
                tr!(
                    "请给出要标为已读的消息，或 all",
                    "name the notices to mark read, or all"
                ),
            ));
        }
        if req.ids.len() > 500 {
            return Err(status::invalid_field(
                "ids",
                tr!("一次最多 500 条", "at most 500 at once"),
            ));
        }
        let mut ids = Vec::with_capacity(req.ids.len());
        for (i, raw) in req.ids.iter().enumerate() {
            ids.push(Uuid::parse_str(raw.trim()).map_err(|_| {
                status::invalid_field(&format!("ids[{i}]"), tr!("必须是 UUID", "must be a UUID"))
            })?);
        }
        let key = (tenant.as_str(), kind, id.as_str());
        store::mark_read(&self.db, key, &reader, (!req.all).then_some(ids.as_slice()))
            .await
            .map_err(|e| db_error(&e))?;
        let unread = store::unread(&self.db, key, &reader)
            .await
            .map_err(|e| db_error(&e))?;
        Ok(Response::new(MarkInboxReadResponse {
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        }))
    }

    type WatchInboxStream = std::pin::Pin<
        Box<dyn futures::Stream<Item = Result<Notification, Status>> + Send + 'static>,
    >;

    async fn watch_inbox(
        &self,
        request: Request<WatchInboxRequest>,
    ) -> Result<Response<Self::WatchInboxStream>, Status> {
        let who = principal(&request)?;
        let ((tenant, kind, id), _) = inbox_of(&who)?;
        let id = id.replace(' ', "_");
        let mut rx = self.feed.subscribe();
        let db = self.db.clone();
        let (tx, out) = tokio::sync::mpsc::channel::<Result<Notification, Status>>(64);
        tokio::spawn(async move {
            loop {
                // Ends as soon as the caller hangs up, not at the next notice.
                let received = tokio::select! {
                    _ = tx.closed() => return,
                    r = rx.recv() => r,
                };
                let a = match received {
                    Ok(a) => a,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        // Notices were missed: end the stream, so the console
                        // reconnects and reloads its list.
                        tracing::warn!(
                            missed = n,
                            "an inbox watcher fell behind; ending its stream"
                        );
                        let _ = tx
                            .send(Err(status::coded(
                                tonic::Code::Aborted,
                                "stream_behind",
                                tr!(
                                    "消息推送跟不上，请重新连接并刷新列表",
                                    "the stream fell behind; reconnect and reload the list"
                                ),
                                None,
                            )))
                            .await;
                        return;
                    }
                    Err(_) => return,
                };
                if a.tenant != tenant || a.recipient_kind != kind || a.recipient_id != id {
                    continue;
                }
                let found = notifications::Entity::find_by_id(a.id).one(&db).await;
                let item = match found {
                    Ok(Some(n)) => Ok(view(n, Vec::new())),
                    Ok(None) => continue,
                    Err(e) => Err(db_error(&e)),
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(out),
        )))
    }

    async fn get_broadcast_delivery(
        &self,
        request: Request<GetBroadcastDeliveryRequest>,
    ) -> Result<Response<BroadcastDelivery>, Status> {
        let who = principal(&request)?;
        who.require_any(&[Role::Supervisor, Role::TenantAdmin, Role::PlatformAdmin])?;
        let id = parse_uuid("broadcast_id", &request.get_ref().broadcast_id)?
            .ok_or_else(|| status::invalid_field("broadcast_id", tr!("不能为空", "is required")))?;
        let counts = store::broadcast_counts(&self.db, who.tenant.code(), id)
            .await
            .map_err(|e| db_error(&e))?;
        let n = |s: &str| counts.get(s).copied().unwrap_or(0);
        Ok(Response::new(BroadcastDelivery {
            broadcast_id: id.to_string(),
            total: counts.values().sum(),
            queued: n("queued"),
            sending: n("sending"),
            sent: n("sent"),
            delivered: n("delivered"),
            failed: n("failed"),
        }))
    }
}
