//! Delivery through real channels (decision 0032), end to end through the
//! service's event input and gRPC interface: each provider is an HTTP
//! endpoint of the test that checks the request as the provider does (the
//! signature, recomputed here from the provider's documentation) and
//! answers as the provider does; email goes to a real SMTP server.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_nats::HeaderMap as NatsHeaders;
use axum::{
    Json, Router,
    extract::{Query, State},
    http::{HeaderMap, StatusCode},
    routing::post,
};
use hmac::{Hmac, Mac};
use jiesu_auth::Role;
use jiesu_bus::{Bus, H_MSG_ID, H_TENANT};
use jiesu_notification::{
    NotificationConfig, NotificationTarget,
    channels::{ChannelConfig, ChannelKind, Secret},
};
use jiesu_proto::{
    Event,
    dispatch::TicketDispatched,
    grid::BroadcastRequested,
    notification::{
        ListNotificationsRequest, Notification, RetryNotificationRequest,
        SetRecipientAddressesRequest, notification_service_client::NotificationServiceClient,
    },
};
use jiesu_testkit::{SmtpSink, Spawned, TestEnv};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tonic::{Request, transport::Channel};
use uuid::Uuid;

const TENANT: &str = "370202";
const ALIYUN_ID: &str = "testId";
const ALIYUN_SECRET: &str = "testSecret";
const TENCENT_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
const TENCENT_SECRET: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
const HOOK_SECRET: &str = "county-hook-secret";

// ---------------------------------------------------------------------------
// The providers, as the test plays them.

/// What the providers saw. `taken` lists the messages a provider accepted
/// (the ones a person would receive); `calls` every call per number.
#[derive(Default)]
struct Seen {
    aliyun_taken: Vec<BTreeMap<String, String>>,
    tencent_taken: Vec<Value>,
    robot_taken: Vec<(String, String)>,
    hook_taken: Vec<(String, Value)>,
    calls: HashMap<String, usize>,
    bad_signatures: usize,
    /// How many more calls the webhook answers 500 to.
    hook_failures: usize,
    /// Whether the robot refuses (errcode -1, busy) the next second part of
    /// a long message.
    robot_busy_on_part_two: bool,
}

type Shared = Arc<Mutex<Seen>>;

/// Percent-encoding the way Aliyun's documentation does it in Java:
/// URL-encode, then `+`→`%20`, `*`→`%2A`, `%7E`→`~`.
fn aliyun_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

fn aliyun_answer(code: &str, biz: &str) -> (StatusCode, Json<Value>) {
    (
        StatusCode::OK,
        Json(json!({"Code": code, "Message": code, "BizId": biz, "RequestId": Uuid::new_v4()})),
    )
}

/// Aliyun `SendSms`: checks the RPC signature v1, then answers by number.
async fn aliyun(
    State(seen): State<Shared>,
    axum::Form(params): axum::Form<Vec<(String, String)>>,
) -> (StatusCode, Json<Value>) {
    let mut p: BTreeMap<String, String> = params.into_iter().collect();
    let Some(signature) = p.remove("Signature") else {
        return aliyun_answer("MissingSignature", "");
    };
    let canonical = p
        .iter()
        .map(|(k, v)| format!("{}={}", aliyun_encode(k), aliyun_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("POST&{}&{}", aliyun_encode("/"), aliyun_encode(&canonical));
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(format!("{ALIYUN_SECRET}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let mut s = seen.lock().unwrap();
    if expected != signature || p.get("AccessKeyId").map(String::as_str) != Some(ALIYUN_ID) {
        s.bad_signatures += 1;
        return aliyun_answer("SignatureDoesNotMatch", "");
    }
    let phone = p.get("PhoneNumbers").cloned().unwrap_or_default();
    let n = {
        let c = s.calls.entry(phone.clone()).or_default();
        *c += 1;
        *c
    };
    match (phone.as_str(), n) {
        ("13800000002", _) => aliyun_answer("isv.MOBILE_NUMBER_ILLEGAL", ""),
        ("13800000003", 1 | 2) => aliyun_answer("isv.BUSINESS_LIMIT_CONTROL", ""),
        ("13800000003", 3) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"Code": "ServiceUnavailable", "Message": "服务暂不可用"})),
        ),
        _ => {
            let biz = format!("{}^0", 900_000 + s.aliyun_taken.len());
            s.aliyun_taken.push(p);
            aliyun_answer("OK", &biz)
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hmac256(key: &[u8], msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

/// Tencent Cloud `SendSms`: checks TC3-HMAC-SHA256 as its documentation
/// describes, then answers by number inside `SendStatusSet`.
async fn tencent(State(seen): State<Shared>, headers: HeaderMap, body: String) -> Json<Value> {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let auth = h("authorization");
    let timestamp: i64 = h("x-tc-timestamp").parse().unwrap_or(0);
    let date = chrono::DateTime::from_timestamp(timestamp, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let signed = auth
        .split("SignedHeaders=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .to_owned();
    let canonical_headers: String = signed
        .split(';')
        .map(|k| format!("{k}:{}\n", h(k).to_lowercase().trim()))
        .collect();
    let canonical = format!(
        "POST\n/\n\n{canonical_headers}\n{signed}\n{}",
        hex(&Sha256::digest(body.as_bytes()))
    );
    let to_sign = format!(
        "TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac256(format!("TC3{TENCENT_SECRET}").as_bytes(), &date);
    let k = hmac256(&k, "sms");
    let k = hmac256(&k, "tc3_request");
    let expected = format!(
        "TC3-HMAC-SHA256 Credential={TENCENT_ID}/{date}/sms/tc3_request, SignedHeaders={signed}, Signature={}",
        hex(&hmac256(&k, &to_sign))
    );
    let mut s = seen.lock().unwrap();
    if auth != expected || h("x-tc-action") != "SendSms" {
        s.bad_signatures += 1;
        return Json(json!({"Response": {
            "Error": {"Code": "AuthFailure.SignatureFailure", "Message": "签名验证失败"},
            "RequestId": Uuid::new_v4()}}));
    }
    let req: Value = serde_json::from_str(&body).unwrap();
    let phone = req["PhoneNumberSet"][0]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    *s.calls.entry(phone.clone()).or_default() += 1;
    let code = if phone == "+8613800000009" {
        "InvalidParameterValue.IncorrectPhoneNumber"
    } else {
        "Ok"
    };
    if code == "Ok" {
        s.tencent_taken.push(req.clone());
    }
    Json(json!({"Response": {
        "SendStatusSet": [{
            "SerialNo": format!("5000:{}", s.tencent_taken.len()),
            "PhoneNumber": phone, "Fee": 1,
            "SessionContext": req["SessionContext"], "Code": code,
            // As the provider does, the answer names the number.
            "Message": if code == "Ok" { "send success".to_owned() } else { format!("incorrect phone number {phone}") },
            "IsoCode": "CN"}],
        "RequestId": Uuid::new_v4()}}))
}

/// A WeCom group robot: 20 messages a minute per robot (45009 past
/// that), markdown up to 4,096 bytes.
async fn robot(
    State(seen): State<Shared>,
    Query(q): Query<HashMap<String, String>>,
    Json(body): Json<Value>,
) -> Json<Value> {
    let key = q.get("key").cloned().unwrap_or_default();
    let content = body["markdown"]["content"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut s = seen.lock().unwrap();
    if content.len() > 4096 {
        return Json(
            json!({"errcode": 40058, "errmsg": "markdown.content exceed max length 4096"}),
        );
    }
    if s.robot_taken.iter().filter(|(k, _)| *k == key).count() >= 20 {
        return Json(json!({"errcode": 45009, "errmsg": "api freq out of limit"}));
    }
    if s.robot_busy_on_part_two && content.contains("\n(2/") {
        s.robot_busy_on_part_two = false;
        return Json(json!({"errcode": -1, "errmsg": "system busy"}));
    }
    s.robot_taken.push((key, content));
    Json(json!({"errcode": 0, "errmsg": "ok"}))
}

/// A county's system: checks the signature, fails as told, then takes.
async fn hook(State(seen): State<Shared>, headers: HeaderMap, body: String) -> StatusCode {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let expected = format!(
        "sha256={}",
        hex(&hmac256(
            HOOK_SECRET.as_bytes(),
            &format!("{}.{body}", h("x-jiesu-timestamp"))
        ))
    );
    let mut s = seen.lock().unwrap();
    if h("x-jiesu-signature") != expected {
        s.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    if s.hook_failures > 0 {
        s.hook_failures -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.hook_taken
        .push((h("x-jiesu-id"), serde_json::from_str(&body).unwrap()));
    StatusCode::NO_CONTENT
}

/// Starts the providers on a free port; returns their base URL.
async fn providers(seen: Shared) -> String {
    let app = Router::new()
        .route("/aliyun/", post(aliyun))
        .route("/tencent/", post(tencent))
        .route("/robot/send", post(robot))
        .route("/hook", post(hook))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

// ---------------------------------------------------------------------------
// The service.

struct Env {
    kit: TestEnv,
    bus: Bus,
    client: NotificationServiceClient<Channel>,
    seen: Shared,
    _notification: Spawned,
    admin: String,
}

fn channel(kind: ChannelKind) -> ChannelConfig {
    serde_json::from_value(json!({ "kind": kind_name(kind) })).unwrap()
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::AliyunSms => "aliyun_sms",
        ChannelKind::TencentSms => "tencent_sms",
        ChannelKind::HttpSms => "http_sms",
        ChannelKind::Smtp => "smtp",
        ChannelKind::WecomRobot => "wecom_robot",
        ChannelKind::Webhook => "webhook",
    }
}

/// Notification with every channel pointed at the test's providers (and
/// `smtp` at `smtp_port`), and `routes` for tenant 370202.
async fn start(
    routes: &[(&str, &[&str])],
    smtp_port: u16,
    tweak: impl FnOnce(&mut NotificationConfig),
) -> Env {
    let kit = TestEnv::new().await;
    let bus = kit.bus.connect().await;
    bus.ensure_stream("dispatch").await.unwrap();
    bus.ensure_stream("grid").await.unwrap();
    let seen: Shared = Arc::default();
    let base = providers(seen.clone()).await;
    let mut aliyun = channel(ChannelKind::AliyunSms);
    aliyun.endpoint = format!("{base}/aliyun/");
    aliyun.access_key_id = ALIYUN_ID.into();
    aliyun.access_key_secret = Secret::new(ALIYUN_SECRET);
    aliyun.sign_name = "青岛市南区12345".into();
    aliyun.template_code = "SMS_71390007".into();
    let mut tencent = channel(ChannelKind::TencentSms);
    tencent.endpoint = format!("{base}/tencent/");
    tencent.access_key_id = TENCENT_ID.into();
    tencent.access_key_secret = Secret::new(TENCENT_SECRET);
    tencent.sdk_app_id = "1400006666".into();
    tencent.sign_name = "市南区12345".into();
    tencent.template_code = "1110".into();
    let mut smtp = channel(ChannelKind::Smtp);
    smtp.host = "127.0.0.1".into();
    smtp.port = smtp_port;
    smtp.security = "none".into();
    smtp.from = "市南区12345热线 <noreply@shinan.example.gov.cn>".into();
    let mut robot = channel(ChannelKind::WecomRobot);
    robot.endpoint = format!("{base}/robot/send");
    let mut county = channel(ChannelKind::Webhook);
    county.endpoint = format!("{base}/hook");
    county.secret = Secret::new(HOOK_SECRET);
    let route_table: HashMap<String, Vec<String>> = routes
        .iter()
        .map(|(k, chain)| {
            (
                (*k).to_owned(),
                chain.iter().map(|c| (*c).to_owned()).collect(),
            )
        })
        .collect();
    let notification = kit
        .spawn::<NotificationTarget>(|c| {
            c.channels = HashMap::from([
                ("aliyun".to_owned(), aliyun),
                ("tencent".to_owned(), tencent),
                ("smtp".to_owned(), smtp),
                ("wecom".to_owned(), robot),
                ("county".to_owned(), county),
            ]);
            c.routes = HashMap::from([(TENANT.to_owned(), route_table)]);
            c.retry_base = Duration::from_millis(50);
            tweak(c);
        })
        .await;
    let client = NotificationServiceClient::connect(notification.url())
        .await
        .unwrap();
    let admin = kit.keys.token(TENANT, &[Role::TenantAdmin], "admin-1");
    Env {
        kit,
        bus,
        client,
        seen,
        _notification: notification,
        admin,
    }
}

fn authed<T>(token: &str, msg: T) -> Request<T> {
    let mut r = Request::new(msg);
    jiesu_auth::bearer_metadata(&mut r, token).unwrap();
    r
}

impl Env {
    async fn addresses(
        &mut self,
        kind: &str,
        id: &str,
        sms: Option<&str>,
        email: Option<&str>,
        robot: Option<&str>,
    ) {
        self.client
            .set_recipient_addresses(authed(
                &self.admin,
                SetRecipientAddressesRequest {
                    recipient_kind: kind.into(),
                    recipient_id: id.into(),
                    sms: sms.map(str::to_owned),
                    email: email.map(str::to_owned),
                    wecom_robot: robot.map(str::to_owned),
                },
            ))
            .await
            .unwrap();
    }

    async fn publish<E: Event + prost::Message>(&self, context: &str, ev: &E) {
        let mut h = NatsHeaders::new();
        h.insert(H_MSG_ID, Uuid::now_v7().to_string().as_str());
        h.insert(H_TENANT, TENANT);
        self.bus
            .js
            .publish_with_headers(
                self.bus.subject(context, TENANT, E::NAME),
                h,
                ev.encode_to_vec().into(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
    }

    async fn notifications(&mut self, status: &str) -> Vec<Notification> {
        let dispatcher = self.kit.keys.token(TENANT, &[Role::Supervisor], "s-1");
        self.client
            .list_notifications(authed(
                &dispatcher,
                ListNotificationsRequest {
                    status: status.into(),
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await
            .unwrap()
            .into_inner()
            .notifications
    }

    /// Waits until `n` notifications are in `status`.
    async fn until(&mut self, status: &str, n: usize) -> Vec<Notification> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.notifications(status).await;
            if found.len() >= n {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{n} notification(s) {status} within 30 s; now: {:?}",
                self.notifications("").await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn dispatched(unit: &str, tracking_no: &str) -> TicketDispatched {
    TicketDispatched {
        ticket_id: Uuid::now_v7().to_string(),
        work_order_id: Uuid::now_v7().to_string(),
        tenant: TENANT.into(),
        region_code: TENANT.into(),
        tracking_no: tracking_no.into(),
        category: "SC01".into(),
        category_name: "预付卡消费".into(),
        unit_id: unit.into(),
        unit_name: "市南区市场监督管理局".into(),
        ..Default::default()
    }
}

// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_new_work_order_reaches_the_unit_by_aliyun_sms_signed_as_aliyun_checks() {
    let mut env = start(&[("unit", &["aliyun"])], 0, |_| {}).await;
    env.addresses("unit", "sn-scjgj", Some("13800000001"), None, None)
        .await;
    env.publish("dispatch", &dispatched("sn-scjgj", "370202-20261207-00001"))
        .await;
    let sent = env.until("sent", 1).await;
    let n = &sent[0];
    assert_eq!(n.via, "aliyun");
    assert_eq!(n.attempts, 1);
    let s = env.seen.lock().unwrap();
    assert_eq!(s.bad_signatures, 0);
    assert_eq!(s.aliyun_taken.len(), 1, "one message, taken once");
    let m = &s.aliyun_taken[0];
    assert_eq!(m["PhoneNumbers"], "13800000001");
    assert_eq!(m["SignName"], "青岛市南区12345");
    assert_eq!(m["TemplateCode"], "SMS_71390007");
    // The notification id is the provider's OutId; its BizId is kept.
    assert_eq!(
        m["OutId"],
        Uuid::parse_str(&n.id).unwrap().simple().to_string()
    );
    assert_eq!(n.provider_id, "900000^0");
    let param: Value = serde_json::from_str(&m["TemplateParam"]).unwrap();
    let content = param["content"].as_str().unwrap();
    assert!(
        content.contains("370202-20261207-00001") && content.contains("预付卡消费"),
        "{content}"
    );
}

#[tokio::test]
async fn an_invalid_number_is_not_retried_and_email_takes_the_message() {
    let smtp = SmtpSink::start();
    let mut env = start(&[("unit", &["aliyun", "smtp"])], smtp.port, |_| {}).await;
    env.addresses(
        "unit",
        "sn-zjj",
        Some("13800000002"),
        Some("zjj-duty@shinan.example.gov.cn"),
        None,
    )
    .await;
    let ev = dispatched("sn-zjj", "370202-20261207-00002");
    env.publish("dispatch", &ev).await;
    let sent = env.until("sent", 1).await;
    let n = &sent[0];
    assert_eq!(n.via, "smtp");
    assert_eq!(n.fallbacks.len(), 1);
    assert!(
        n.fallbacks[0].starts_with("aliyun: 阿里云短信 isv.MOBILE_NUMBER_ILLEGAL"),
        "{:?}",
        n.fallbacks
    );
    assert_eq!(
        env.seen.lock().unwrap().calls["13800000002"],
        1,
        "an invalid number is asked once"
    );
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.to, vec!["zjj-duty@shinan.example.gov.cn".to_owned()]);
    assert_eq!(mail.subject, "新工单待签收");
    assert!(
        mail.body
            .contains("工单编号 370202-20261207-00002，诉求类别：预付卡消费"),
        "{}",
        mail.body
    );
    assert!(
        mail.body
            .contains(&format!("/console/tickets/{}", ev.ticket_id)),
        "the email links to the ticket: {}",
        mail.body
    );
    assert!(
        mail.message_id
            .contains(&Uuid::parse_str(&n.id).unwrap().simple().to_string())
    );
    // The directory shows the addresses masked.
    let shown = env
        .client
        .get_recipient_addresses(authed(
            &env.admin,
            jiesu_proto::notification::GetRecipientAddressesRequest {
                recipient_kind: "unit".into(),
                recipient_id: "sn-zjj".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.sms, "138****0002");
    assert_eq!(shown.email, "zj***@shinan.example.gov.cn");
}

#[tokio::test]
async fn throttling_and_an_outage_are_retried_until_the_provider_takes_it_once() {
    let mut env = start(&[("unit", &["aliyun", "smtp"])], 0, |_| {}).await;
    env.addresses("unit", "sn-jtj", Some("13800000003"), None, None)
        .await;
    env.publish("dispatch", &dispatched("sn-jtj", "370202-20261207-00003"))
        .await;
    let sent = env.until("sent", 1).await;
    let n = &sent[0];
    // Throttled twice, 503 once, taken on the fourth call: on the same
    // channel, never the fallback.
    assert_eq!((n.via.as_str(), n.attempts), ("aliyun", 4));
    assert!(n.fallbacks.is_empty());
    let s = env.seen.lock().unwrap();
    assert_eq!(s.calls["13800000003"], 4);
    assert_eq!(s.aliyun_taken.len(), 1);
}

#[tokio::test]
async fn tencent_sms_signed_with_tc3_and_a_dead_message_sent_again_once_fixed() {
    let mut env = start(&[("unit", &["tencent"])], 0, |_| {}).await;
    env.addresses("unit", "sn-fgw", Some("13800000009"), None, None)
        .await;
    env.publish("dispatch", &dispatched("sn-fgw", "370202-20261207-00004"))
        .await;
    // The provider refuses the number: no fallback configured, so failed
    // at once, and listed among the dead messages.
    let failed = env.until("failed", 1).await;
    let n = failed[0].clone();
    assert_eq!(n.attempts, 1);
    assert!(
        n.last_error
            .contains("InvalidParameterValue.IncorrectPhoneNumber"),
        "{}",
        n.last_error
    );
    assert!(
        !n.last_error.contains("13800000009"),
        "no number in the record"
    );
    // The admin corrects the number; a supervisor sends it again.
    env.addresses("unit", "sn-fgw", Some("13800000010"), None, None)
        .await;
    let supervisor = env.kit.keys.token(TENANT, &[Role::Supervisor], "s-1");
    let again = env
        .client
        .retry_notification(authed(
            &supervisor,
            RetryNotificationRequest { id: n.id.clone() },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.status, "queued");
    let sent = env.until("sent", 1).await;
    assert_eq!(sent[0].id, n.id);
    assert_eq!(sent[0].via, "tencent");
    {
        let s = env.seen.lock().unwrap();
        assert_eq!(s.bad_signatures, 0);
        assert_eq!(s.tencent_taken.len(), 1);
        let m = &s.tencent_taken[0];
        assert_eq!(m["PhoneNumberSet"][0], "+8613800000010");
        assert_eq!(m["SmsSdkAppId"], "1400006666");
        assert_eq!(m["TemplateId"], "1110");
        assert_eq!(
            m["SessionContext"],
            Uuid::parse_str(&n.id).unwrap().simple().to_string()
        );
        assert_eq!(sent[0].provider_id, "5000:1");
    }
    // A sent one is not sent again.
    let err = env
        .client
        .retry_notification(authed(
            &supervisor,
            RetryNotificationRequest { id: n.id.clone() },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    // A bad address is refused with the field named, and changes nothing.
    let err = env
        .client
        .set_recipient_addresses(authed(
            &env.admin,
            SetRecipientAddressesRequest {
                recipient_kind: "unit".into(),
                recipient_id: "sn-fgw".into(),
                sms: Some("0532-12345".into()),
                email: Some("duty@example.gov.cn".into()),
                wecom_robot: None,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().starts_with("sms"), "{}", err.message());
    let shown = env
        .client
        .get_recipient_addresses(authed(
            &env.admin,
            jiesu_proto::notification::GetRecipientAddressesRequest {
                recipient_kind: "unit".into(),
                recipient_id: "sn-fgw".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (shown.sms.as_str(), shown.email.as_str()),
        ("138****0010", "")
    );
}

#[tokio::test]
async fn a_wecom_robot_gets_no_more_than_its_minute_allows_and_long_text_in_parts() {
    let mut env = start(&[("grid_group", &["wecom"])], 0, |c| {
        c.channels.get_mut("wecom").unwrap().per_minute = 3;
    })
    .await;
    let grids = ["G1", "G2", "G3", "G4", "G5"];
    for g in grids {
        env.addresses("grid_group", g, None, None, Some("robot-shared-0001"))
            .await;
    }
    env.publish(
        "grid",
        &BroadcastRequested {
            tenant: TENANT.into(),
            id: Uuid::now_v7().to_string(),
            kind: "notice".into(),
            title: "停水通知".into(),
            body: "明日9:00至17:00停水检修，请提前储水。".into(),
            grid_codes: grids.iter().map(|g| (*g).to_owned()).collect(),
            at: None,
        },
    )
    .await;
    // Three go out; two wait for the robot's minute, not failed and with
    // no attempt spent.
    env.until("sent", 3).await;
    let waiting = env.until("queued", 2).await;
    assert!(
        waiting.iter().all(|n| n.via == "wecom" && n.attempts == 0),
        "{waiting:?}"
    );
    assert_eq!(env.seen.lock().unwrap().robot_taken.len(), 3);

    // A long message to another robot goes in numbered parts that fit.
    env.addresses("grid_group", "G9", None, None, Some("robot-long-0002"))
        .await;
    let long =
        "网格内各居民楼：明日上午九点起进行二次供水设施清洗消毒，届时暂停供水。\n".repeat(80);
    env.publish(
        "grid",
        &BroadcastRequested {
            tenant: TENANT.into(),
            id: Uuid::now_v7().to_string(),
            kind: "notice".into(),
            title: "供水设施清洗".into(),
            body: long.clone(),
            grid_codes: vec!["G9".into()],
            at: None,
        },
    )
    .await;
    env.until("sent", 4).await;
    let s = env.seen.lock().unwrap();
    let parts: Vec<&String> = s
        .robot_taken
        .iter()
        .filter(|(k, _)| k == "robot-long-0002")
        .map(|(_, c)| c)
        .collect();
    assert!(parts.len() >= 2, "{} part(s)", parts.len());
    assert!(!s.robot_busy_on_part_two, "the robot was busy once");
    for (i, p) in parts.iter().enumerate() {
        assert!(
            p.ends_with(&format!("({}/{})", i + 1, parts.len())),
            "part {i} once, in order"
        );
    }
    assert!(parts.iter().all(|p| p.len() <= 4096));
    assert!(
        parts[0].starts_with("**【工作通知】供水设施清洗**\n"),
        "{}",
        parts[0]
    );
    assert!(
        parts
            .last()
            .unwrap()
            .ends_with(&format!("({n}/{n})", n = parts.len()))
    );
}

#[tokio::test]
async fn a_county_webhook_gets_signed_messages_and_a_failing_one_is_retried() {
    let mut env = start(&[("unit", &["county"])], 0, |_| {}).await;
    env.seen.lock().unwrap().hook_failures = 2;
    let ev = dispatched("sn-county", "370202-20261207-00005");
    env.publish("dispatch", &ev).await;
    let sent = env.until("sent", 1).await;
    assert_eq!((sent[0].via.as_str(), sent[0].attempts), ("county", 3));
    let s = env.seen.lock().unwrap();
    assert_eq!(s.bad_signatures, 0);
    assert_eq!(s.hook_taken.len(), 1);
    let (id, body) = &s.hook_taken[0];
    assert_eq!(*id, sent[0].id);
    assert_eq!(body["kind"], "ticket.dispatched");
    assert_eq!(body["ticket_id"], ev.ticket_id);
    assert_eq!(body["recipient_id"], "sn-county");
}

#[tokio::test]
async fn a_unit_with_no_address_for_its_only_channel_fails_saying_so() {
    let mut env = start(&[("unit", &["aliyun"])], 0, |_| {}).await;
    env.publish(
        "dispatch",
        &dispatched("sn-nobody", "370202-20261207-00006"),
    )
    .await;
    let failed = env.until("failed", 1).await;
    assert!(
        failed[0].last_error.contains("未登记 sms 地址"),
        "{}",
        failed[0].last_error
    );
    assert_eq!(env.seen.lock().unwrap().calls.len(), 0);
}

#[tokio::test]
async fn a_template_edit_takes_effect_for_the_next_message() {
    let mut env = start(&[("unit", &["aliyun"])], 0, |_| {}).await;
    env.addresses("unit", "sn-tpl", Some("13800000001"), None, None)
        .await;
    let put = |body: &str| jiesu_proto::notification::PutTemplateRequest {
        kind: "ticket.dispatched".into(),
        channel: "sms".into(),
        title: "新工单".into(),
        body: body.into(),
        sms_template_code: "SMS_20261207".into(),
        sign_name: "市南区政务服务".into(),
    };
    let saved = env
        .client
        .put_template(authed(
            &env.admin,
            put("{{ unit_name }}请签收工单{{ tracking_no }}（{{ category }}）"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.version, 1);
    env.publish("dispatch", &dispatched("sn-tpl", "370202-20261207-00011"))
        .await;
    env.until("sent", 1).await;
    // Edited again: the next message says it the new way.
    let saved = env
        .client
        .put_template(authed(
            &env.admin,
            put("工单{{ tracking_no }}待签收，{{ unit_name }}"),
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.version, 2);
    env.publish("dispatch", &dispatched("sn-tpl", "370202-20261207-00012"))
        .await;
    env.until("sent", 2).await;
    let s = env.seen.lock().unwrap();
    let contents: Vec<(String, String, String)> = s
        .aliyun_taken
        .iter()
        .map(|m| {
            let p: Value = serde_json::from_str(&m["TemplateParam"]).unwrap();
            (
                m["TemplateCode"].clone(),
                m["SignName"].clone(),
                p["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        contents,
        vec![
            (
                "SMS_20261207".to_owned(),
                "市南区政务服务".to_owned(),
                "市南区市场监督管理局请签收工单370202-20261207-00011（预付卡消费）".to_owned()
            ),
            (
                "SMS_20261207".to_owned(),
                "市南区政务服务".to_owned(),
                "工单370202-20261207-00012待签收，市南区市场监督管理局".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_citizens_notice_waits_out_the_quiet_hours_then_goes() {
    // Quiet hours that began an hour ago and end a few seconds from now,
    // in China time.
    let now = jiesu_common::time::in_china(chrono::Utc::now());
    let end = now + chrono::TimeDelta::seconds(6);
    let window = format!(
        "{}-{}",
        (now - chrono::TimeDelta::hours(1)).format("%H:%M:%S"),
        end.format("%H:%M:%S")
    );
    let mut env = start(&[], 0, |c| c.quiet_hours = window).await;
    env.bus.ensure_stream("intake").await.unwrap();
    let merged = jiesu_proto::intake::TicketMerged {
        ticket_id: Uuid::now_v7().to_string(),
        tenant: TENANT.into(),
        tracking_no: "370202-20261207-00021".into(),
        master_tracking_no: "370202-20261207-00020".into(),
        ..Default::default()
    };
    env.publish("intake", &merged).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let held = loop {
        let q = env.notifications("queued").await;
        if q.first().is_some_and(|n| n.via == "log") {
            break q;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "held within 5 s: {q:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let until = held[0]
        .next_attempt_at
        .as_ref()
        .and_then(jiesu_proto::time::from_timestamp)
        .unwrap();
    assert_eq!(held[0].attempts, 0);
    assert!(
        (until - end.with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            <= 1,
        "held until the window ends: {until} vs {end}"
    );
    assert!(env.notifications("sent").await.is_empty());
    let sent = env.until("sent", 1).await;
    let at = sent[0]
        .sent_at
        .as_ref()
        .and_then(jiesu_proto::time::from_timestamp)
        .unwrap();
    assert!(at >= until, "sent at {at}, not before {until}");
}
