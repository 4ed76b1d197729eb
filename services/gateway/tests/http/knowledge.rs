//! Direct answers (直接答复): the knowledge base, answering and closing a
//! consultation at intake, and counting those apart.

use jiesu_auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body, timeline_events};

async fn put(s: &Stack, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .http
        .put(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn consultation(entry: &str) -> Value {
    let mut b = ticket_body("13800138000");
    b["nature"] = json!("consultation");
    b["content"] = json!("咨询：灵活就业人员怎么交养老保险");
    b["direct_answer"] =
        json!({"kb_entry_id": entry, "reply": "已告知可在社保App办理灵活就业参保登记"});
    b
}

#[tokio::test]
async fn an_agent_answers_a_consultation_from_the_knowledge_base_and_closes_it() {
    let s = stack().await;
    let admin = s.admin();
    let agent = s.agent();
    let (status, a) = s
        .post_json(
            &admin,
            "/api/v1/admin/kb",
            json!({
                "title": "灵活就业人员参加养老保险",
                "body": "灵活就业人员可通过社保App或社区服务中心办理参保登记，按月或按年缴费。",
                "categories": ["SH"],
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{a}");
    let entry = a["id"].as_str().unwrap().to_owned();
    assert_eq!(a["active"], true);
    let (status, expired) = s
        .post_json(
            &admin,
            "/api/v1/admin/kb",
            json!({
                "title": "2020年灵活就业养老保险缴费补贴",
                "body": "已结束。",
                "valid_from": "2020-01-01",
                "valid_to": "2020-12-31",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{expired}");
    let expired = expired["id"].as_str().unwrap().to_owned();
    let (_, unrelated) = s
        .post_json(
            &admin,
            "/api/v1/admin/kb",
            json!({"title": "犬只登记办理", "body": "携带疫苗证明到派出所办理。"}),
        )
        .await;

    // Search: the valid entry first, the expired one never.
    let (status, hits) = s
        .post_json(
            &agent,
            "/api/v1/kb/search",
            json!({"text": "灵活就业怎么交养老保险", "category": "SH01"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    let hits = hits["hits"].as_array().unwrap();
    assert_eq!(hits[0]["entry"]["id"], entry.as_str());
    assert!(hits[0]["score"].as_f64().unwrap() > 0.1, "{hits:?}");
    assert!(
        hits.iter()
            .all(|h| h["entry"]["id"] != expired.as_str() && h["entry"]["id"] != unrelated["id"])
    );

    // Answer and close at intake.
    let (status, v) = s.post(Some(&agent), consultation(&entry)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["status"], "answered");
    let id = v["id"].as_str().unwrap().to_owned();
    let no = v["tracking_no"].as_str().unwrap().to_owned();
    let (_, view) = s.get(&agent, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(view["status"], "answered");
    assert_eq!(view["unit"], Value::Null);
    let events = timeline_events(&view);
    assert_eq!(events, ["received", "answered"]);
    assert!(
        view["timeline"][1]["note"]
            .as_str()
            .unwrap()
            .contains("灵活就业人员参加养老保险")
    );
    // Open311 sees it closed.
    let o: Value = s
        .http
        .get(s.url(&format!("/open311/v2/370202/requests/{no}.json")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o[0]["status"], "closed");

    // Refusals.
    let mut complaint = consultation(&entry);
    complaint["nature"] = json!("complaint");
    let (status, v) = s.post(Some(&agent), complaint).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("direct_answer")),
        "{v}"
    );
    let (status, v) = s.post(Some(&agent), consultation(&expired)).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("direct_answer.kb_entry_id")
        ),
        "{v}"
    );
    let (status, v) = s.post(Some(&agent), consultation("not-a-uuid")).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("direct_answer.kb_entry_id")
        ),
        "{v}"
    );
    let citizen = s.keys.token("370202", &[Role::Citizen], "c-1");
    let mut own = consultation(&entry);
    own["channel"] = json!("app");
    let (status, _) = s.post(Some(&citizen), own).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let other_tenant = s.keys.token("370203", &[Role::Agent], "agent-9");
    let (status, v) = s.post(Some(&other_tenant), consultation(&entry)).await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "another tenant's entry: {v}"
    );

    // A normal ticket too; then the counts keep direct answers apart.
    let (status, normal) = s.post(Some(&agent), ticket_body("13800138001")).await;
    assert_eq!(status, StatusCode::CREATED);
    // Dispatch was never told of the answered one: one answered_directly on
    // the bus and no ticket.received for it (once the normal ticket, stored
    // after it, is announced, everything stored before has been published).
    s.received(normal["tracking_no"].as_str().unwrap()).await;
    assert_eq!(s.intake_events("ticket.answered_directly").await.len(), 1);
    let received = s.intake_events("ticket.received").await;
    assert_eq!(received.len(), 1);
    assert!(!String::from_utf8_lossy(&received[0]).contains(&id));
    let (status, stats) = s.get(&agent, "/api/v1/intake/stats").await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(stats["total"], 2);
    assert_eq!(stats["answered_directly"], 1);
    assert_eq!(stats["passed_on"], 1);
    assert_eq!(stats["by_channel"]["hotline"], 2);
    let (status, _) = s.get(&agent, "/api/v1/intake/stats?from=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = s
        .get(
            &s.keys.token("370202", &[Role::Handler], "h"),
            "/api/v1/intake/stats",
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Editing and retiring.
    let (status, v) = put(
        &s,
        &admin,
        &format!("/api/v1/admin/kb/{entry}"),
        json!({"title": "灵活就业人员参保登记（更新）", "body": "可线上办理。"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["title"], "灵活就业人员参保登记（更新）");
    let (status, v) = s
        .post_json(
            &admin,
            &format!("/api/v1/admin/kb/{entry}/retire"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["active"], false);
    let (_, hits) = s
        .post_json(
            &agent,
            "/api/v1/kb/search",
            json!({"text": "灵活就业参保登记"}),
        )
        .await;
    assert!(
        hits["hits"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h["entry"]["id"] != entry.as_str()),
        "{hits}"
    );
    let (status, _) = s.post(Some(&agent), consultation(&entry)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    for (body, field) in [
        (json!({"title": "", "body": "x"}), "title"),
        (json!({"title": "x", "body": ""}), "body"),
        (
            json!({"title": "x", "body": "y", "valid_from": "2026-13-01"}),
            "valid_from",
        ),
        (
            json!({"title": "x", "body": "y", "valid_from": "2026-02-01", "valid_to": "2026-01-01"}),
            "valid_to",
        ),
        (
            json!({"title": "x", "body": "y", "categories": ["NOPE"]}),
            "categories",
        ),
        (json!({"title": "x".repeat(101), "body": "y"}), "title"),
    ] {
        let (status, v) = s.post_json(&admin, "/api/v1/admin/kb", body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], field);
    }
    let (status, _) = s
        .post_json(
            &agent,
            "/api/v1/admin/kb",
            json!({"title": "x", "body": "y"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = put(
        &s,
        &admin,
        "/api/v1/admin/kb/0195f0c2-7d2a-7c3e-9a61-3f2b6f1c8e10",
        json!({"title": "x", "body": "y"}),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
