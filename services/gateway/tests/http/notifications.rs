//! The recipient directory and dead notifications through the public API:
//! addresses checked field by field (nothing written when one is bad),
//! shown masked, and a failed notification listed and sent again. The
//! stack routes nothing, so a unit's notice goes to the log and is sent.

use std::time::Duration;

use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::json;

use crate::stack::{stack, ticket_body};

const PATH: &str = "/api/v1/admin/notification-recipients/unit/sn-gafj";

#[tokio::test]
async fn a_units_addresses_are_checked_whole_shown_masked_and_refused_to_handlers() {
    let s = stack().await;
    let admin = s.admin();
    // One bad field: 422 naming it, in Chinese, and nothing saved.
    let (status, v) = s
        .put_json(
            &admin,
            PATH,
            json!({"sms": "13800138000", "email": "不是邮箱"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "email");
    assert!(v["message"].as_str().unwrap().contains("电子邮箱"), "{v}");
    let (status, v) = s.get(&admin, PATH).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (v["sms"].as_str(), v["email"].as_str()),
        (Some(""), Some("")),
        "{v}"
    );

    let (status, v) = s
        .put_json(
            &admin,
            PATH,
            json!({"sms": "13800138000", "email": "gafj-duty@shinan.example.gov.cn",
                   "wecom_robot": "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["sms"], "138****8000");
    assert_eq!(v["email"], "ga***@shinan.example.gov.cn");
    assert_eq!(v["wecom_robot"], "693a***5aaa");
    assert!(!v.to_string().contains("13800138000"));
    // Absent leaves a field, empty removes it.
    let (_, v) = s.put_json(&admin, PATH, json!({"email": ""})).await;
    assert_eq!(
        (v["sms"].as_str(), v["email"].as_str()),
        (Some("138****8000"), Some(""))
    );

    let (status, v) = s
        .put_json(
            &admin,
            "/api/v1/admin/notification-recipients/citizen/x",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("recipient_kind"))
    );
    let handler = s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "h-1".into(),
        tenant: "370202".into(),
        scope: None,
        roles: vec![Role::Handler],
        unit: Some("sn-gafj".into()),
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    let (status, _) = s.get(&handler, PATH).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn notifications_filter_by_status_and_only_a_failed_one_is_sent_again() {
    let s = stack().await;
    let (status, v) = s.post(Some(&s.agent()), ticket_body("13900001234")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "s-1");
    let sent = wait_until(
        Duration::from_secs(30),
        "the unit's notice sent",
        || async {
            let (_, v) = s
                .get(&supervisor, "/api/v1/notifications?status=sent")
                .await;
            let list = v["notifications"].as_array().cloned().unwrap_or_default();
            (!list.is_empty()).then_some(list)
        },
    )
    .await;
    let n = &sent[0];
    assert_eq!(
        (n["via"].as_str(), n["kind"].as_str()),
        (Some("log"), Some("ticket.dispatched"))
    );
    let (_, v) = s
        .get(&supervisor, "/api/v1/notifications?status=failed")
        .await;
    assert_eq!(v["notifications"], json!([]));
    let (status, v) = s
        .get(&supervisor, "/api/v1/notifications?status=lost")
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("status"))
    );
    let id = n["id"].as_str().unwrap();
    let (status, v) = s
        .post_json(
            &supervisor,
            &format!("/api/v1/notifications/{id}/retry"),
            json!({}),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_failed")),
        "{v}"
    );
}

const TEMPLATE: &str = "/api/v1/admin/notification-templates/ticket.dispatched/sms";

#[tokio::test]
async fn templates_are_checked_previewed_saved_and_removed() {
    let s = stack().await;
    let admin = s.admin();
    let (status, v) = s.get(&admin, "/api/v1/admin/notification-templates").await;
    assert_eq!(status, StatusCode::OK);
    let dispatched = v["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "ticket.dispatched")
        .unwrap()
        .clone();
    assert!(
        dispatched["variables"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "tracking_no")
    );
    assert_eq!(dispatched["built_in"]["built_in"], true);

    // An unknown variable (a citizen's phone) is refused, naming it.
    let body = json!({"title": "新工单", "body": "{{ tracking_no }} {{ citizen_phone }}",
                      "sms_template_code": "SMS_1", "sign_name": "市南区12345"});
    let (status, v) = s.put_json(&admin, TEMPLATE, body).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("citizen_phone"),
        "{v}"
    );
    // SMS without its approved template code.
    let body = json!({"title": "新工单", "body": "{{ tracking_no }}待签收"});
    let (status, v) = s.put_json(&admin, TEMPLATE, body).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("sms_template_code")),
        "{v}"
    );
    // Too long for an SMS once rendered.
    let long = format!("{}{{{{ tracking_no }}}}", "请尽快签收。".repeat(90));
    let (status, v) = s
        .put_json(
            &admin,
            TEMPLATE,
            json!({"title": "新工单", "body": long,
            "sms_template_code": "SMS_1", "sign_name": "市南区12345"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("body")),
        "{v}"
    );
    let (_, v) = s.get(&admin, "/api/v1/admin/notification-templates").await;
    assert!(
        v.to_string().find("\"tenant\":[{").is_none(),
        "nothing saved: {v}"
    );

    let good = json!({"title": "新工单", "body": "{{ unit_name }}：工单{{ tracking_no }}待签收",
                      "sms_template_code": "SMS_20261207", "sign_name": "市南区12345"});
    let (status, v) = s
        .post_json(&admin, &format!("{TEMPLATE}/preview"), good.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["body"],
        "市南区市场监督管理局：工单370202-20261207-00001待签收"
    );
    let (status, v) = s.put_json(&admin, TEMPLATE, good).await;
    assert_eq!(
        (status, v["version"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{v}"
    );
    let resp = s
        .http
        .delete(s.url(TEMPLATE))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["deleted"], true);
}

fn handler_token(s: &crate::stack::Stack) -> String {
    s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "h-gafj".into(),
        tenant: "370202".into(),
        scope: None,
        roles: vec![Role::Handler],
        unit: Some("sn-gafj".into()),
        grids: vec![],
        ttl: Duration::from_secs(600),
    })
}

#[tokio::test]
async fn a_handler_sees_a_new_order_live_in_the_inbox_and_marks_it_read() {
    use futures::StreamExt;
    let s = stack().await;
    let handler = handler_token(&s);
    // Refused as the API refuses: no token, and a role with no inbox.
    let resp = s
        .http
        .get(s.url("/api/v1/inbox/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let resp = s
        .http
        .get(s.url("/api/v1/inbox/stream"))
        .bearer_auth(s.agent())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let resp = s
        .http
        .get(s.url("/api/v1/inbox/stream"))
        .bearer_auth(&handler)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut events = resp.bytes_stream();
    let (status, v) = s.post(Some(&s.agent()), ticket_body("13900004321")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let tracking_no = v["tracking_no"].as_str().unwrap().to_owned();
    // The new order's notice arrives on the open stream.
    let mut text = String::new();
    let got = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(chunk) = events.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            if text.contains("event: notification") && text.contains(&tracking_no) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(got, Ok(true), "the notice on the stream: {text}");
    assert!(text.contains("新工单待签收"), "{text}");

    let (status, v) = s.get(&handler, "/api/v1/inbox").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["unread_count"], 1, "{v}");
    assert_eq!(v["items"][0]["read"], false);
    let id = v["items"][0]["notification"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, v) = s
        .post_json(&handler, "/api/v1/inbox/read", json!({"ids": ["nope"]}))
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("ids[0]")),
        "{v}"
    );
    let (status, v) = s
        .post_json(&handler, "/api/v1/inbox/read", json!({"ids": [id]}))
        .await;
    assert_eq!(
        (status, v["unread_count"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    let (_, v) = s.get(&handler, "/api/v1/inbox?unread_only=true").await;
    assert_eq!(v["items"], json!([]));
    // Another member of the unit has not read it.
    let other = s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "h-gafj-2".into(),
        tenant: "370202".into(),
        scope: None,
        roles: vec![Role::Handler],
        unit: Some("sn-gafj".into()),
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    let (_, v) = s.get(&other, "/api/v1/inbox").await;
    assert_eq!(v["unread_count"], 1, "{v}");
}
