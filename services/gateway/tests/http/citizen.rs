//! The citizen's side: adding information, withdrawing, and the public
//! tracking look-up.

use std::time::Duration;

use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, stack_with, timeline_events};

async fn citizen_ticket(s: &Stack, citizen: &str) -> (String, String) {
    let body = json!({
        "channel": "app",
        "nature": "complaint",
        "category": "SH01",
        "content": "夜里楼下烧烤店噪音很大",
        "location": {"address": "云南路12号"},
        "citizen": {"name": "赵女士", "phone": "13800001234"}
    });
    let (status, v) = s.post(Some(citizen), body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (
        v["id"].as_str().unwrap().to_owned(),
        v["tracking_no"].as_str().unwrap().to_owned(),
    )
}

async fn track(s: &Stack, query: &str) -> (StatusCode, Value) {
    let r = s
        .http
        .get(s.url(&format!("/api/v1/track?{query}")))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_citizen_adds_information_withdraws_and_anyone_with_the_digits_tracks() {
    let s = stack().await;
    let me = s.keys.token("370202", &[Role::Citizen], "citizen-1");
    let (id, no) = citizen_ticket(&s, &me).await;

    let info = format!("/api/v1/tickets/{id}/information");
    let (status, v) = s
        .post_json(
            &me,
            &info,
            json!({"text": "补充：周五周六最严重，可拨13900009999联系我"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // Still open: received, or dispatched already.
    assert!(
        v["status"] == "received" || v["status"] == "dispatched",
        "{v}"
    );
    // An agent may add for the caller; another citizen may not see it at all.
    let (status, _) = s
        .post_json(
            &s.agent(),
            &info,
            json!({"text": "电话补充：店名为老王烧烤"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let other = s.keys.token("370202", &[Role::Citizen], "citizen-2");
    let (status, _) = s
        .post_json(&other, &info, json!({"text": "不是我的"}))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let handler = s.keys.token("370202", &[Role::Handler], "h-1");
    let (status, _) = s.post_json(&handler, &info, json!({"text": "x"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (json!({"text": "  "}), "text"),
        (json!({"text": "长".repeat(2001)}), "text"),
        (json!({"text": 5}), "text"),
        (json!({}), "text"),
    ] {
        let (status, v) = s.post_json(&me, &info, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], field);
    }
    // Both additions are kept (the timeline below shows them); that they
    // are stored redacted and sealed is intake's own test
    // (`added_information_and_id_numbers_are_stored_sealed`).

    // Tracking: number + last four digits; nothing personal in the answer.
    let (status, t) = track(&s, &format!("tracking_no={no}&phone_last4=1234")).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    // Intake learns of the work order from dispatch's event.
    let t = wait_until(Duration::from_secs(15), "tracked as dispatched", || async {
        let (_, t) = track(&s, &format!("tracking_no={no}&phone_last4=1234")).await;
        (t["status"] == "dispatched").then_some(t)
    })
    .await;
    assert_eq!(t["category_name"], "噪声扰民");
    // Intake's own entries, and the work order's public step (whenever it
    // came between them).
    let events = timeline_events(&t);
    let own: Vec<&String> = events.iter().filter(|e| *e != "dispatched").collect();
    assert_eq!(own, ["received", "information_added", "information_added"]);
    assert!(events.contains(&"dispatched".to_owned()), "{events:?}");
    for secret in ["13800001234", "13900009999", "云南路12号", "赵"] {
        assert!(!t.to_string().contains(secret), "{secret} in {t}");
    }
    let (status, v) = track(&s, &format!("tracking_no={no}&phone_last4=4321")).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "wrong digits look like no ticket: {v}"
    );
    let (status, _) = track(&s, "tracking_no=370202-19990101-00001&phone_last4=1234").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = track(&s, &format!("tracking_no={no}&phone_last4=12a4")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["field"], "phone_last4");
    let (status, _) = track(&s, &format!("tracking_no={no}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Withdraw: once; afterwards the ticket no longer changes.
    let withdraw = format!("/api/v1/tickets/{id}/withdraw");
    let (status, _) = s.post_json(&other, &withdraw, json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = s
        .post_json(&me, &withdraw, json!({"reason": "问题已自行协商解决"}))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "withdrawn");
    let (status, v) = s.post_json(&me, &withdraw, json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "ticket_closed");
    let (status, v) = s.post_json(&me, &info, json!({"text": "再补充"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(v["code"], "ticket_closed");
    let (_, t) = track(&s, &format!("tracking_no={no}&phone_last4=1234")).await;
    assert_eq!(t["status"], "withdrawn");
    assert_eq!(
        t["timeline"].as_array().unwrap().last().unwrap()["note"],
        "诉求人撤回诉求：问题已自行协商解决"
    );

    // Both kinds of event left intake through the bus.
    wait_until(Duration::from_secs(10), "events published", || async {
        let n = s.intake_events("ticket.information_added").await.len()
            + s.intake_events("ticket.withdrawn").await.len();
        (n == 3).then_some(())
    })
    .await;
}

#[tokio::test]
async fn tracking_look_ups_are_rate_limited_per_address() {
    let s = stack_with(|cfg| {
        cfg.rate_limit.lookup_per_minute = 3;
        cfg.rate_limit.burst = 3;
    })
    .await;
    let mut last = StatusCode::OK;
    let mut retry_after = None;
    for i in 0..5 {
        let r = s
            .http
            .get(s.url(&format!(
                "/api/v1/track?tracking_no=370202-20261122-0000{i}&phone_last4=0000"
            )))
            .send()
            .await
            .unwrap();
        last = r.status();
        retry_after = r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        if i < 3 {
            assert_eq!(last, StatusCode::NOT_FOUND);
        }
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.unwrap().parse::<u64>().unwrap() >= 1);
}
