//! Channels registered by a tenant admin, and the signed webhook of a
//! tenant's own platform: acceptance, redelivery, every refusal, rotation,
//! rate limits.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jiesu_auth::Role;
use jiesu_testkit::{unique_tag, wait_until};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::stack::{Stack, now, stack, stack_with};

/// The signature as the documentation tells a platform to compute it,
/// written here independently of intake's code.
fn signature(secret: &str, ts: &str, nonce: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{nonce}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

fn nonce() -> String {
    format!("n-{}{}", unique_tag(), unique_tag())
}

fn delivery(external_id: &str, phone: &str) -> Value {
    json!({
        "external_id": external_id,
        "nature": "complaint",
        "category": "SH01",
        "content": "小区广场舞音响声音太大，晚上十点还在跳",
        "location": {"lat": 36.07, "lon": 120.39, "address": "东海西路15号小区广场"},
        "citizen": {"name": "王女士", "phone": phone, "id_number": "11010519491231002X"},
        "urgency": "normal",
        "confidential": false
    })
}

struct Send<'a> {
    ts: String,
    nonce: String,
    signature: Option<String>,
    body: Vec<u8>,
    channel: &'a str,
}

impl<'a> Send<'a> {
    fn signed(channel: &'a str, secret: &str, body: &Value) -> Self {
        let body = serde_json::to_vec(body).unwrap();
        let ts = now().to_string();
        let nonce = nonce();
        Self {
            signature: Some(signature(secret, &ts, &nonce, &body)),
            ts,
            nonce,
            body,
            channel,
        }
    }

    async fn to(&self, s: &Stack) -> Response {
        let mut req = s
            .http
            .post(s.url(&format!("/api/v1/channels/{}/tickets", self.channel)))
            .header("content-type", "application/json")
            .header("x-jiesu-timestamp", &self.ts)
            .header("x-jiesu-nonce", &self.nonce)
            .body(self.body.clone());
        if let Some(sig) = &self.signature {
            req = req.header("x-jiesu-signature", sig);
        }
        req.send().await.unwrap()
    }
}

async fn status_and_body(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_registered_platform_delivers_signed_tickets_once() {
    let s = stack().await;
    let reg = s.register("暖南诉办", "tenant_platform", "webhook").await;
    let channel = reg["channel"]["id"].as_str().unwrap().to_owned();
    let secret = reg["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{reg}");
    assert!(reg.get("api_key").is_none());
    assert_eq!(reg["channel"]["valid_credentials"], 1);

    // The list shows the channel but never its secret.
    let (status, list) = s.get(&s.admin(), "/api/v1/admin/channels").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["channels"][0]["name"], "暖南诉办");
    assert!(!list.to_string().contains(&secret));

    let body = delivery("NN-2026-000123", "13912345678");
    let (status, first) =
        status_and_body(Send::signed(&channel, &secret, &body).to(&s).await).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();

    // The platform did not hear back and redelivers with a new nonce: the
    // same ticket, 200 instead of 201.
    let (status, again) =
        status_and_body(Send::signed(&channel, &secret, &body).to(&s).await).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["tracking_no"], first["tracking_no"]);

    // The ticket records where it came from and goes on to dispatch.
    let agent = s.agent();
    let view = wait_until(Duration::from_secs(15), "dispatched", || async {
        let (_, v) = s.get(&agent, &format!("/api/v1/tickets/{id}")).await;
        (v["status"] == "dispatched").then_some(v)
    })
    .await;
    assert_eq!(view["channel"], "tenant_platform");
    assert_eq!(view["channel_id"], channel.as_str());
    assert_eq!(view["external_id"], "NN-2026-000123");
    assert_eq!(view["citizen"]["phone"], "139****5678");
    assert_eq!(view["citizen"]["id_number"], "110105********002X");
    assert!(!view.to_string().contains("13912345678"));
    assert!(!view.to_string().contains("19491231"));
    assert_eq!(view["timeline"][0]["actor_role"], "channel");

    // The same external id with different content is a conflict, not a
    // silent overwrite or a second ticket.
    let mut changed = body.clone();
    changed["content"] = json!("内容被改动了");
    let (status, err) =
        status_and_body(Send::signed(&channel, &secret, &changed).to(&s).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    assert_eq!(err["code"], "external_id_reused");
    assert_eq!(err["field"], "external_id");

    // Exactly one ticket (that ID numbers are sealed on every path is
    // intake's own test, `..._and_id_numbers_are_stored_sealed`).
    assert_eq!(s.tickets_accepted_so_far().await, 1);
}

#[tokio::test]
async fn every_webhook_refusal_has_its_own_code() {
    let s = stack().await;
    let reg = s.register("崂先办", "tenant_platform", "webhook").await;
    let channel = reg["channel"]["id"].as_str().unwrap().to_owned();
    let secret = reg["secret"].as_str().unwrap().to_owned();
    let body = delivery("LXB-1", "13912345679");

    let expect = |want: &'static str| {
        move |(status, v): (StatusCode, Value)| {
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{want}: {v}");
            assert_eq!(v["code"], want, "{v}");
        }
    };

    let mut wrong_key = Send::signed(&channel, "whsec_not-the-secret", &body);
    expect("signature_invalid")(status_and_body(wrong_key.to(&s).await).await);
    wrong_key.signature = Some("v1=zz".into());
    wrong_key.nonce = nonce();
    expect("signature_invalid")(status_and_body(wrong_key.to(&s).await).await);

    let mut unsigned = Send::signed(&channel, &secret, &body);
    unsigned.signature = None;
    expect("signature_missing")(status_and_body(unsigned.to(&s).await).await);

    // A body changed after signing.
    let mut tampered = Send::signed(&channel, &secret, &body);
    tampered.body = serde_json::to_vec(&delivery("LXB-1", "13900000000")).unwrap();
    expect("signature_invalid")(status_and_body(tampered.to(&s).await).await);

    // Ten minutes old, signed correctly for that time.
    let mut stale = Send::signed(&channel, &secret, &body);
    stale.ts = (now() - 600).to_string();
    stale.signature = Some(signature(&secret, &stale.ts, &stale.nonce, &stale.body));
    expect("timestamp_stale")(status_and_body(stale.to(&s).await).await);

    let mut no_ts = Send::signed(&channel, &secret, &body);
    no_ts.ts = "yesterday".into();
    expect("timestamp_missing")(status_and_body(no_ts.to(&s).await).await);

    let mut short_nonce = Send::signed(&channel, &secret, &body);
    short_nonce.nonce = "abc".into();
    short_nonce.signature = Some(signature(
        &secret,
        &short_nonce.ts,
        "abc",
        &short_nonce.body,
    ));
    expect("nonce_invalid")(status_and_body(short_nonce.to(&s).await).await);

    // An exact replay of an accepted delivery.
    let good = Send::signed(&channel, &secret, &body);
    assert_eq!(good.to(&s).await.status(), StatusCode::CREATED);
    expect("nonce_replayed")(status_and_body(good.to(&s).await).await);

    let unknown = Send::signed("0195f0c2-7d2a-7c3e-9a61-3f2b6f1c8e10", &secret, &body);
    expect("channel_unknown")(status_and_body(unknown.to(&s).await).await);
    let garbage = Send::signed("not-a-uuid", &secret, &body);
    expect("channel_unknown")(status_and_body(garbage.to(&s).await).await);

    // Authentic but invalid content names the field.
    let mut bad_phone = delivery("LXB-2", "12345");
    let (status, v) =
        status_and_body(Send::signed(&channel, &secret, &bad_phone).to(&s).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "citizen.phone");
    bad_phone["citizen"]["phone"] = json!("13912345679");
    bad_phone["citizen"]["id_number"] = json!("110105194912310021");
    let (status, v) =
        status_and_body(Send::signed(&channel, &secret, &bad_phone).to(&s).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "citizen.id_number");
    let mut unknown_field = delivery("LXB-3", "13912345679");
    unknown_field["fax"] = json!("1");
    let (status, v) =
        status_and_body(Send::signed(&channel, &secret, &unknown_field).to(&s).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "fax");
    let mut not_json = Send::signed(&channel, &secret, &json!({}));
    not_json.body = b"{\"external_id\": ".to_vec();
    not_json.signature = Some(signature(
        &secret,
        &not_json.ts,
        &not_json.nonce,
        &not_json.body,
    ));
    let (status, v) = status_and_body(not_json.to(&s).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "body");

    // A disabled channel is unknown to the webhook.
    let (status, v) = s
        .post_json(
            &s.admin(),
            &format!("/api/v1/admin/channels/{channel}/disable"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    let later = Send::signed(&channel, &secret, &delivery("LXB-9", "13912345679"));
    expect("channel_unknown")(status_and_body(later.to(&s).await).await);
}

#[tokio::test]
async fn a_rotation_keeps_the_previous_key_for_the_overlap_only() {
    let s = stack().await;
    let reg = s.register("数字城管", "city_management", "webhook").await;
    let channel = reg["channel"]["id"].as_str().unwrap().to_owned();
    let first = reg["secret"].as_str().unwrap().to_owned();
    let rotate = |overlap: i64| {
        let s = &s;
        let channel = channel.clone();
        async move {
            let (status, v) = s
                .post_json(
                    &s.admin(),
                    &format!("/api/v1/admin/channels/{channel}/rotate"),
                    json!({"overlap_seconds": overlap}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{v}");
            v
        }
    };
    let send = |secret: String, ext: &'static str| {
        let s = &s;
        let channel = channel.clone();
        async move {
            Send::signed(&channel, &secret, &delivery(ext, "13812340000"))
                .to(s)
                .await
                .status()
        }
    };

    let r2 = rotate(3600).await;
    let second = r2["secret"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(r2["previous_expires_at"].is_string(), "{r2}");
    assert_eq!(r2["channel"]["valid_credentials"], 2);
    // During the overlap both keys are accepted.
    assert_eq!(send(first.clone(), "CM-1").await, StatusCode::CREATED);
    assert_eq!(send(second.clone(), "CM-2").await, StatusCode::CREATED);

    // Rotating again keeps only the newest previous key: the first stops now.
    let r3 = rotate(1).await;
    let third = r3["secret"].as_str().unwrap().to_owned();
    assert_eq!(send(first.clone(), "CM-3").await, StatusCode::UNAUTHORIZED);
    assert_eq!(send(third.clone(), "CM-4").await, StatusCode::CREATED);
    // The second lasts one more second, then only the third works.
    wait_until(Duration::from_secs(10), "the overlap to end", || {
        let second = second.clone();
        async move { (send(second, "CM-5").await == StatusCode::UNAUTHORIZED).then_some(()) }
    })
    .await;
    assert_eq!(send(third, "CM-6").await, StatusCode::CREATED);
    let (_, list) = s.get(&s.admin(), "/api/v1/admin/channels").await;
    assert_eq!(list["channels"][0]["valid_credentials"], 1);
}

#[tokio::test]
async fn only_tenant_admins_manage_channels_and_fields_are_checked() {
    let s = stack().await;
    let agent = s.agent();
    let (status, v) = s
        .post_json(
            &agent,
            "/api/v1/admin/channels",
            json!({"name": "x", "channel": "app", "auth": "open311"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, _) = s.get(&agent, "/api/v1/admin/channels").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let admin = s.admin();
    for (body, field) in [
        (
            json!({"name": "", "channel": "app", "auth": "open311"}),
            "name",
        ),
        (
            json!({"name": "x", "channel": "fax", "auth": "open311"}),
            "channel",
        ),
        (
            json!({"name": "x", "channel": "hotline", "auth": "webhook"}),
            "channel",
        ),
        (
            json!({"name": "x", "channel": "app", "auth": "basic"}),
            "auth",
        ),
        (
            json!({"name": "x".repeat(65), "channel": "app", "auth": "open311"}),
            "name",
        ),
        (json!({"name": "x", "channel": "app"}), "auth"),
    ] {
        let (status, v) = s.post_json(&admin, "/api/v1/admin/channels", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], field, "{v}");
    }
    s.register("市民App", "app", "open311").await;
    let (status, v) = s
        .post_json(
            &admin,
            "/api/v1/admin/channels",
            json!({"name": "市民App", "channel": "app", "auth": "open311"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    // Another tenant's admin neither sees nor rotates it.
    let other = s.keys.token("370203", &[Role::TenantAdmin], "admin-2");
    let (_, list) = s.get(&other, "/api/v1/admin/channels").await;
    assert_eq!(list["channels"].as_array().unwrap().len(), 0);
    let (_, mine) = s.get(&admin, "/api/v1/admin/channels").await;
    let id = mine["channels"][0]["id"].as_str().unwrap();
    let (status, _) = s
        .post_json(
            &other,
            &format!("/api/v1/admin/channels/{id}/rotate"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = s
        .post_json(
            &admin,
            &format!("/api/v1/admin/channels/{id}/rotate"),
            json!({"overlap_seconds": -5}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "overlap_seconds");
}

#[tokio::test]
async fn per_channel_and_per_ip_limits_answer_429_with_retry_after() {
    let s = stack_with(|cfg| {
        cfg.rate_limit.per_channel_per_minute = 6;
        cfg.rate_limit.per_ip_per_minute = 0;
        cfg.rate_limit.burst = 2;
    })
    .await;
    let reg = s.register("限流测试", "tenant_platform", "webhook").await;
    let channel = reg["channel"]["id"].as_str().unwrap().to_owned();
    let secret = reg["secret"].as_str().unwrap().to_owned();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for i in 0..4 {
        let r = Send::signed(
            &channel,
            &secret,
            &delivery(&format!("RL-{i}"), "13812340001"),
        )
        .to(&s)
        .await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let (_, v) = status_and_body(r).await;
            assert_eq!(v["code"], "rate_limited");
            statuses.push(StatusCode::TOO_MANY_REQUESTS);
        } else {
            statuses.push(r.status());
        }
    }
    assert_eq!(&statuses[..2], [StatusCode::CREATED, StatusCode::CREATED]);
    assert_eq!(statuses[2], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let secs: u64 = retry_after.unwrap().parse().unwrap();
    assert!((1..=10).contains(&secs), "{secs}");

    // Per IP on the public Open311 reads.
    let s = stack_with(|cfg| {
        cfg.rate_limit.per_ip_per_minute = 6;
        cfg.rate_limit.burst = 3;
    })
    .await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(
            s.http
                .get(s.url("/open311/v2/370202/services.json"))
                .send()
                .await
                .unwrap(),
        );
    }
    let last = codes.pop().unwrap();
    assert_eq!(codes[0].status(), StatusCode::OK);
    assert_eq!(last.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(last.headers().contains_key("retry-after"));
    let v: Value = last.json().await.unwrap();
    assert_eq!(v[0]["code"], 429, "Open311 error format: {v}");
}
