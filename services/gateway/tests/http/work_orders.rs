//! Work orders through the public API: every action with the people allowed
//! to take it, its refusals (wrong role, wrong unit, wrong state, another
//! tenant, a policy cap), the queues, the tenant admin's SLA policy and
//! calendar, and a notice firing from a due timer.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body};

fn handler(s: &Stack, unit: &str) -> String {
    s.keys
        .unit_token("370202", &[Role::Handler], &format!("h-{unit}"), unit)
}

fn dispatcher(s: &Stack) -> String {
    s.keys.token("370202", &[Role::Dispatcher], "d-1")
}

fn supervisor(s: &Stack) -> String {
    s.keys.token("370202", &[Role::Supervisor], "sup-1")
}

/// A new ticket in `category` from `phone`; returns its work-order id once
/// dispatch has it.
async fn new_order(s: &Stack, phone: &str, category: &str) -> String {
    let mut b = ticket_body(phone);
    b["category"] = json!(category);
    b["content"] = json!(format!("{phone}反映的问题需要处理"));
    if category == "CG02" {
        b["attributes"] = json!({"blocking": "yes"});
    }
    let (status, v) = s.post(Some(&s.agent()), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await
}

async fn act(s: &Stack, token: &str, wo: &str, body: Value) -> (StatusCode, Value) {
    s.post_json(token, &format!("/api/v1/work-orders/{wo}/actions"), body)
        .await
}

/// The action succeeds; returns the order after it.
async fn ok(s: &Stack, token: &str, wo: &str, body: Value) -> Value {
    let (status, v) = act(s, token, wo, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body} → {v}");
    v
}

/// The action is refused with `status` and `code`.
async fn refused(s: &Stack, token: &str, wo: &str, body: Value, status: StatusCode, code: &str) {
    let (st, v) = act(s, token, wo, body.clone()).await;
    assert_eq!(
        (st, v["code"].as_str()),
        (status, Some(code)),
        "{body} → {v}"
    );
}

async fn order(s: &Stack, token: &str, wo: &str) -> Value {
    let (status, v) = s.get(token, &format!("/api/v1/work-orders/{wo}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn events(v: &Value) -> Vec<String> {
    v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

fn at(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn queue(s: &Stack, token: &str, q: &str) -> Vec<String> {
    let (status, v) = s
        .get(token, &format!("/api/v1/work-orders?queue={q}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v["work_orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_unit_signs_works_resolves_and_the_dispatcher_closes() {
    let s = stack().await;
    let wo = new_order(&s, "13900000101", "SH01").await;
    let h = handler(&s, "sn-gafj");
    assert!(queue(&s, &h, "mine").await.contains(&wo));
    let v = order(&s, &h, &wo).await;
    assert_eq!(v["status"], "dispatched");
    assert_eq!(v["unit"]["id"], "sn-gafj");
    assert_eq!(v["level"], 1);
    let (sign_due, resolve_due) = (
        at(&v["sign_due"]["due_at"]),
        at(&v["resolve_due"]["due_at"]),
    );
    assert!(sign_due < resolve_due, "{v}");
    assert!(v["sign_due"]["met_at"].is_null());

    let v = ok(&s, &h, &wo, json!({"action": "sign"})).await;
    assert_eq!(v["status"], "signed");
    assert!(v["sign_due"]["met_at"].is_string(), "{v}");
    let v = ok(
        &s,
        &h,
        &wo,
        json!({"action": "progress", "note": "已联系商户，约定今晚整改"}),
    )
    .await;
    assert_eq!(v["status"], "in_progress");
    assert!(v["respond_due"]["met_at"].is_string());
    let reply = "已督促烧烤店加装油烟净化器并于22点前停止营业，回访时请确认。";
    let v = ok(&s, &h, &wo, json!({"action": "resolve", "reply": reply})).await;
    assert_eq!(
        (v["status"].as_str(), v["reply"].as_str()),
        (Some("resolved"), Some(reply))
    );
    let v = ok(&s, &dispatcher(&s), &wo, json!({"action": "close"})).await;
    assert_eq!(v["status"], "closed");
    assert_eq!(
        events(&order(&s, &h, &wo).await),
        ["dispatched", "sign", "progress", "resolve", "close"]
    );
    assert!(
        !queue(&s, &h, "mine").await.contains(&wo),
        "closed orders leave the unit's queue"
    );
}

#[tokio::test]
async fn actions_are_refused_for_the_wrong_role_unit_state_or_tenant() {
    let s = stack().await;
    let wo = new_order(&s, "13900000102", "SH01").await;
    let sign = json!({"action": "sign"});
    refused(
        &s,
        &s.agent(),
        &wo,
        sign.clone(),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    let citizen = s.keys.token("370202", &[Role::Citizen], "wx-1");
    refused(
        &s,
        &citizen,
        &wo,
        sign.clone(),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    // A unit the order does not involve does not see it (decision 0026).
    let other_unit = handler(&s, "sn-zjj");
    refused(
        &s,
        &other_unit,
        &wo,
        sign.clone(),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let h = handler(&s, "sn-gafj");
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "resolve", "reply": "已处理"}),
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;
    let elsewhere = s.keys.token("370203", &[Role::Dispatcher], "d-9");
    refused(
        &s,
        &elsewhere,
        &wo,
        json!({"action": "close"}),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (status, v) = s
        .get(&elsewhere, &format!("/api/v1/work-orders/{wo}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    // Bad input names the field.
    let (status, v) = act(&s, &h, &wo, json!({"action": "return"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = act(&s, &h, &wo, json!({"action": "return", "note": " "})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("note")),
        "{v}"
    );
    let (status, v) = act(&s, &h, &wo, json!({"action": "fly"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = act(&s, &h, "not-an-id", sign.clone()).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("work_order_id")),
        "{v}"
    );
    let (status, v) = act(
        &s,
        &dispatcher(&s),
        &wo,
        json!({"action": "dispatch", "lead_unit_id": "sn-nobody"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("dispatch.lead_unit_id")
        ),
        "{v}"
    );
    let (status, v) = act(
        &s,
        &dispatcher(&s),
        &wo,
        json!({"action": "dispatch", "lead_unit_id": "sn-zjj", "co_unit_ids": ["sn-zjj"]}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("co_unit_ids")),
        "{v}"
    );

    // Queues: a handler sees its unit's work only; citizens none.
    let (status, v) = s.get(&h, "/api/v1/work-orders?queue=triage").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_role")),
        "{v}"
    );
    let (status, v) = s
        .get(&dispatcher(&s), "/api/v1/work-orders?queue=someday")
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("queue")),
        "{v}"
    );
    let (status, _) = s.get(&citizen, "/api/v1/work-orders").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nothing refused changed the order.
    let v = order(&s, &h, &wo).await;
    assert_eq!(
        (v["status"].as_str(), events(&v).len()),
        (Some("dispatched"), 1),
        "{v}"
    );
}

#[tokio::test]
async fn returns_are_arbitrated_and_the_second_return_lifts_the_level() {
    let s = stack().await;
    let wo = new_order(&s, "13900000103", "SH01").await;
    let (h, d) = (handler(&s, "sn-gafj"), dispatcher(&s));
    let ret = json!({"action": "return", "note": "属于住建部门职责"});
    let v = ok(&s, &h, &wo, ret.clone()).await;
    assert_eq!(
        (v["status"].as_str(), v["returns"].as_u64()),
        (Some("returned"), Some(1))
    );
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "arbitrate", "accept": false, "note": "x"}),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    let (status, v) = act(&s, &d, &wo, json!({"action": "arbitrate", "accept": true})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("redispatch.lead_unit_id")
        ),
        "{v}"
    );
    let v = ok(
        &s,
        &d,
        &wo,
        json!({"action": "arbitrate", "accept": false, "note": "噪声扰民由公安负责"}),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), v["unit"]["id"].as_str()),
        (Some("dispatched"), Some("sn-gafj"))
    );
    let v = ok(&s, &h, &wo, ret).await;
    assert_eq!(v["level"], 2, "the second return lifts the order: {v}");
    let v = ok(
        &s,
        &d,
        &wo,
        json!({"action": "arbitrate", "accept": true,
               "redispatch": {"lead_unit_id": "sn-zjj", "co_unit_ids": ["sn-scjg"]},
               "note": "改派住建局牵头，市场监管协办"}),
    )
    .await;
    assert_eq!(v["unit"]["id"], "sn-zjj");
    assert_eq!(v["co_handlers"][0]["unit"]["id"], "sn-scjg");
    // The former lead is no longer part of the order: it sees it no more.
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "sign"}),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let lead = handler(&s, "sn-zjj");
    ok(&s, &lead, &wo, json!({"action": "sign"})).await;
    let resolve = json!({"action": "resolve", "reply": "已协调整改完毕"});
    refused(
        &s,
        &lead,
        &wo,
        resolve.clone(),
        StatusCode::CONFLICT,
        "parts_missing",
    )
    .await;
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "submit_part", "note": "x"}),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let v = ok(
        &s,
        &handler(&s, "sn-scjg"),
        &wo,
        json!({"action": "submit_part", "note": "已对商户经营资质进行检查"}),
    )
    .await;
    assert_eq!(v["co_handlers"][0]["part_submitted"], true);
    assert!(
        queue(&s, &handler(&s, "sn-scjg"), "mine")
            .await
            .contains(&wo)
    );
    let v = ok(&s, &lead, &wo, resolve).await;
    assert_eq!(v["status"], "resolved");
    assert_eq!(
        events(&v),
        [
            "dispatched",
            "return",
            "arbitrate",
            "return",
            "dispatched",
            "sign",
            "submit_part",
            "resolve"
        ]
    );
}

async fn policy(s: &Stack) -> Value {
    let (status, v) = s.get(&s.admin(), "/api/v1/admin/sla-policy").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

async fn put_policy(s: &Stack, p: &Value) -> (StatusCode, Value) {
    s.put_json(&s.admin(), "/api/v1/admin/sla-policy", p.clone())
        .await
}

#[tokio::test]
async fn extensions_are_capped_and_move_the_resolve_deadline() {
    let s = stack().await;
    let mut p = policy(&s).await;
    p["max_extensions"] = json!(1);
    let (status, v) = put_policy(&s, &p).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let wo = new_order(&s, "13900000104", "SH01").await;
    let h = handler(&s, "sn-gafj");
    ok(&s, &h, &wo, json!({"action": "sign"})).await;
    let before = at(&order(&s, &h, &wo).await["resolve_due"]["due_at"]);
    let (status, v) = act(
        &s,
        &h,
        &wo,
        json!({"action": "request_extension", "days": 99, "note": "需要协调"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("request_extension.days")
        ),
        "{v}"
    );
    let ask = json!({"action": "request_extension", "days": 3, "note": "需协调产权单位，申请延期"});
    let v = ok(&s, &h, &wo, ask.clone()).await;
    assert_eq!(v["extension_pending"], true);
    refused(
        &s,
        &h,
        &wo,
        ask.clone(),
        StatusCode::CONFLICT,
        "extension_pending",
    )
    .await;
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "decide_extension", "approve": true}),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    let v = ok(
        &s,
        &supervisor(&s),
        &wo,
        json!({"action": "decide_extension", "approve": true}),
    )
    .await;
    assert_eq!(
        (v["extension_pending"].as_bool(), v["extensions"].as_u64()),
        (Some(false), Some(1))
    );
    let after = at(&v["resolve_due"]["due_at"]);
    assert!(
        after - before >= chrono::Duration::days(3),
        "3 working days: {before} → {after}"
    );
    refused(
        &s,
        &h,
        &wo,
        ask,
        StatusCode::CONFLICT,
        "extension_cap_reached",
    )
    .await;
    refused(
        &s,
        &supervisor(&s),
        &wo,
        json!({"action": "decide_extension", "approve": true}),
        StatusCode::CONFLICT,
        "no_extension_pending",
    )
    .await;

    // Waiting for the citizen pauses the clocks; nothing is resolved paused.
    let v = ok(
        &s,
        &h,
        &wo,
        json!({"action": "pause", "note": "等待群众提供照片"}),
    )
    .await;
    assert_eq!(v["paused"], true);
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "pause", "note": "再次"}),
        StatusCode::CONFLICT,
        "already_paused",
    )
    .await;
    refused(
        &s,
        &h,
        &wo,
        json!({"action": "resolve", "reply": "已处理"}),
        StatusCode::CONFLICT,
        "paused",
    )
    .await;
    let v = ok(&s, &h, &wo, json!({"action": "resume"})).await;
    assert_eq!(v["paused"], false);
    assert!(at(&v["resolve_due"]["due_at"]) >= after);
}

#[tokio::test]
async fn triage_review_reopen_and_instructions_follow_the_tenants_policy() {
    let s = stack().await;
    let mut p = policy(&s).await;
    p["review_required"] = json!(true);
    p["max_reopens"] = json!(1);
    assert_eq!(put_policy(&s, &p).await.0, StatusCode::OK);
    let wo = new_order(&s, "13900000105", "QT01").await;
    let d = dispatcher(&s);
    let v = order(&s, &d, &wo).await;
    assert_eq!(v["status"], "triage");
    assert!(
        v["unit"].is_null() && v["sign_due"].is_null(),
        "no clocks in triage: {v}"
    );
    assert!(queue(&s, &d, "triage").await.contains(&wo));
    let v = ok(
        &s,
        &d,
        &wo,
        json!({"action": "dispatch", "lead_unit_id": "sn-bdx", "note": "属地街道办理"}),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), v["unit"]["name"].as_str()),
        (Some("dispatched"), Some("八大峡街道办事处"))
    );
    assert!(
        v["sign_due"]["due_at"].is_string(),
        "clocks start at dispatch: {v}"
    );
    assert!(!queue(&s, &d, "triage").await.contains(&wo));

    let h = handler(&s, "sn-bdx");
    let (sup, reply) = (
        supervisor(&s),
        json!({"action": "resolve", "reply": "已清理楼道杂物"}),
    );
    ok(&s, &h, &wo, json!({"action": "sign"})).await;
    ok(&s, &h, &wo, reply.clone()).await;
    refused(
        &s,
        &d,
        &wo,
        json!({"action": "close"}),
        StatusCode::CONFLICT,
        "review_pending",
    )
    .await;
    refused(
        &s,
        &d,
        &wo,
        json!({"action": "review", "approve": true}),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    let v = ok(
        &s,
        &sup,
        &wo,
        json!({"action": "instruct", "note": "请街道举一反三，排查辖区类似问题"}),
    )
    .await;
    assert!(
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["note"].as_str().unwrap().contains("领导批示"))
    );
    let v = ok(
        &s,
        &sup,
        &wo,
        json!({"action": "review", "approve": false, "note": "缺少整改照片"}),
    )
    .await;
    assert_eq!(v["status"], "in_progress");
    assert!(
        v["resolve_due"]["met_at"].is_null(),
        "the resolve clock runs again: {v}"
    );
    ok(&s, &h, &wo, reply.clone()).await;
    ok(&s, &sup, &wo, json!({"action": "review", "approve": true})).await;
    let v = ok(&s, &d, &wo, json!({"action": "close"})).await;
    assert_eq!(v["status"], "closed");

    let v = ok(
        &s,
        &d,
        &wo,
        json!({"action": "reopen", "note": "群众不满意，问题未解决"}),
    )
    .await;
    assert_eq!(
        (v["status"].as_str(), v["reopens"].as_u64()),
        (Some("dispatched"), Some(1))
    );
    assert!(v["sign_due"]["met_at"].is_null(), "fresh clocks: {v}");
    ok(&s, &h, &wo, json!({"action": "sign"})).await;
    ok(&s, &h, &wo, reply).await;
    ok(&s, &sup, &wo, json!({"action": "review", "approve": true})).await;
    ok(&s, &d, &wo, json!({"action": "close"})).await;
    refused(
        &s,
        &d,
        &wo,
        json!({"action": "reopen", "note": "再次不满意"}),
        StatusCode::CONFLICT,
        "reopen_limit_reached",
    )
    .await;
}

#[tokio::test]
async fn a_whistle_summons_units_who_report_in() {
    let s = stack().await;
    let wo = new_order(&s, "13900000106", "SH01").await;
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let v = ok(
        &s,
        &grid,
        &wo,
        json!({"action": "whistle", "level": 3, "unit_ids": ["sn-bdx", "sn-zjj"],
               "note": "油烟噪声问题反复，需多部门联合处置"}),
    )
    .await;
    assert_eq!(v["level"], 3);
    let summons = v["summons"].as_array().unwrap();
    assert_eq!(summons.len(), 2, "{v}");
    assert!(
        summons
            .iter()
            .all(|x| x["due_at"].is_string() && x["reported_at"].is_null())
    );
    let street = handler(&s, "sn-bdx");
    assert!(queue(&s, &street, "mine").await.contains(&wo));
    let v = ok(
        &s,
        &street,
        &wo,
        json!({"action": "report_in", "note": "街道已到场"}),
    )
    .await;
    let bdx = v["summons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["unit"]["id"] == "sn-bdx")
        .unwrap()
        .clone();
    assert!(bdx["reported_at"].is_string(), "{v}");
    // The timeline names the unit that reported in, not the lead unit.
    let entry = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["event"] == "report_in")
        .unwrap_or_else(|| panic!("no report_in entry: {v}"))
        .clone();
    assert_eq!(entry["unit"]["id"], "sn-bdx", "{entry}");
    refused(
        &s,
        &street,
        &wo,
        json!({"action": "report_in"}),
        StatusCode::FORBIDDEN,
        "wrong_unit",
    )
    .await;
    refused(
        &s,
        &handler(&s, "sn-scjg"),
        &wo,
        json!({"action": "report_in"}),
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let (status, v) = act(
        &s,
        &grid,
        &wo,
        json!({"action": "whistle", "level": 2, "unit_ids": ["sn-bdx"], "note": "x"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("whistle.level")),
        "{v}"
    );
    let (status, v) = act(
        &s,
        &grid,
        &wo,
        json!({"action": "whistle", "level": 4, "unit_ids": ["sn-none"], "note": "x"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("whistle.unit_ids")),
        "{v}"
    );
    let (status, v) = s
        .get(
            &s.keys.token("370202", &[Role::Dispatcher], "d-1"),
            "/api/v1/work-orders?level=3",
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        v["work_orders"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["id"] == wo.as_str())
    );
}

#[tokio::test]
async fn tenant_admins_keep_the_sla_policy_and_the_calendar() {
    let s = stack().await;
    let p = policy(&s).await;
    assert_eq!(
        p["rules"].as_array().unwrap().len(),
        2,
        "built-in defaults: {p}"
    );
    assert_eq!(p["reminder_at"], 0.8);
    let (status, v) = s
        .put_json(&dispatcher(&s), "/api/v1/admin/sla-policy", p.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let rule = |cat: &str, resolve: &str| json!({"category": cat, "urgency": "normal", "sign_for": "1h", "first_response": "4h", "resolve": resolve});
    let mut bad = p.clone();
    bad["rules"] = json!([{"category": "CG", "urgency": "normal", "sign_for": "2x", "first_response": "1d", "resolve": "5d"}]);
    let (status, v) = put_policy(&s, &bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules.sign_for")),
        "{v}"
    );
    bad["rules"] = json!([rule("CG", "5d"), rule("CG", "3d")]);
    let (status, v) = put_policy(&s, &bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules")),
        "{v}"
    );
    bad = p.clone();
    bad["reminder_at"] = json!(0.99);
    let (status, v) = put_policy(&s, &bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("reminder_at")),
        "{v}"
    );
    let mut good = p.clone();
    good["rules"].as_array_mut().unwrap().push(rule("CG", "3d"));
    let (status, v) = put_policy(&s, &good).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(policy(&s).await["rules"].as_array().unwrap().len(), 3);

    // The tighter rule shows in the deadlines of new orders.
    let cg = new_order(&s, "13900000107", "CG02").await;
    let sh = new_order(&s, "13900000108", "SH01").await;
    let d = dispatcher(&s);
    let (cg, sh) = (order(&s, &d, &cg).await, order(&s, &d, &sh).await);
    assert!(
        at(&cg["resolve_due"]["due_at"]) < at(&sh["resolve_due"]["due_at"]),
        "{cg} {sh}"
    );
    assert!(at(&cg["sign_due"]["due_at"]) < at(&sh["sign_due"]["due_at"]));

    let (status, c) = s.get(&s.admin(), "/api/v1/admin/calendar?year=2026").await;
    assert_eq!(status, StatusCode::OK, "{c}");
    let days = c["days"].as_array().unwrap();
    assert!(
        days.iter()
            .any(|x| x["date"] == "2026-10-01" && x["kind"] == "holiday"),
        "{c}"
    );
    assert!(
        days.iter().any(|x| x["kind"] == "workday"),
        "调休 make-up days are listed: {c}"
    );
    assert_eq!(c["shifts"], json!(["09:00-12:00", "13:00-17:00"]));
    let change = json!({"days": [{"date": "2027-01-01", "kind": "holiday", "note": "元旦"}]});
    let (status, c) = s
        .put_json(&s.admin(), "/api/v1/admin/calendar", change.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["year"], 2027);
    assert!(
        c["days"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["date"] == "2027-01-01" && x["note"] == "元旦")
    );
    let (status, _) = s.put_json(&d, "/api/v1/admin/calendar", change).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (body, field) in [
        (
            json!({"days": [{"date": "2027-02-30", "kind": "holiday"}]}),
            "days.date",
        ),
        (
            json!({"days": [{"date": "2027-02-10", "kind": "party"}]}),
            "days.kind",
        ),
        (json!({"shifts": ["17:00-09:00"]}), "shifts"),
        (json!({"shifts": ["09:00-12:00", "11:00-13:00"]}), "shifts"),
        (json!({}), "days"),
    ] {
        let (status, v) = s
            .put_json(&s.admin(), "/api/v1/admin/calendar", body.clone())
            .await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{body} → {v}"
        );
    }
}

#[tokio::test]
async fn as_time_passes_notices_fall_due_once_and_supervision_lifts_the_order() {
    // Which notices exist and when each fires is dispatch's own test
    // (`due_timers_issue_notices_once_and_supervision_lifts_the_order`);
    // here time passes for the whole stack through its clock.
    let s = stack().await;
    let wo = new_order(&s, "13900000109", "SH01").await;
    let h = handler(&s, "sn-gafj");
    let v = order(&s, &h, &wo).await;
    let (sign_due, resolve_due) = (
        at(&v["sign_due"]["due_at"]),
        at(&v["resolve_due"]["due_at"]),
    );
    // A minute before the sign-for deadline: its reminder, nothing else.
    s.clock.advance_to(sign_due - chrono::TimeDelta::minutes(1));
    let v = wait_until(Duration::from_secs(10), "the reminder", || async {
        let v = order(&s, &h, &wo).await;
        events(&v).contains(&"reminder".to_owned()).then_some(v)
    })
    .await;
    let notes = |v: &Value| -> Vec<String> {
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["note"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert!(
        notes(&v).contains(&"提醒单：签收时限将至".to_owned()),
        "{v}"
    );
    assert_eq!(v["level"], 1, "{v}");
    // Signing meets that deadline: its urge never comes.
    ok(&s, &h, &wo, json!({"action": "sign"})).await;
    // Long past the resolve deadline: 督办 and a lift to level 2 at least.
    s.clock
        .advance_to(resolve_due + chrono::TimeDelta::days(30));
    let v = wait_until(Duration::from_secs(15), "the supervise order", || async {
        let v = order(&s, &h, &wo).await;
        (v["level"].as_u64() >= Some(2)).then_some(v)
    })
    .await;
    let ev = events(&v);
    assert!(
        ev.contains(&"supervise".to_owned()) && ev.contains(&"escalated".to_owned()),
        "{ev:?}"
    );
    let notes = notes(&v);
    assert_eq!(
        notes
            .iter()
            .filter(|n| n.as_str() == "提醒单：签收时限将至")
            .count(),
        1,
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("已到签收时限")),
        "{notes:?}"
    );
}

#[tokio::test]
async fn supervisors_lift_matters_into_the_leadership_queue() {
    let s = stack().await;
    let wo = new_order(&s, "13900000110", "SH01").await;
    let sup = supervisor(&s);
    assert!(!queue(&s, &sup, "leadership").await.contains(&wo));
    let lift = json!({"action": "leadership", "note": "同一烧烤店本月第五次被投诉，转领导督办"});
    refused(
        &s,
        &dispatcher(&s),
        &wo,
        lift.clone(),
        StatusCode::FORBIDDEN,
        "wrong_role",
    )
    .await;
    let v = ok(&s, &sup, &wo, lift.clone()).await;
    assert_eq!(v["leadership"], true);
    assert!(queue(&s, &sup, "leadership").await.contains(&wo));
    refused(
        &s,
        &sup,
        &wo,
        lift,
        StatusCode::CONFLICT,
        "already_in_leadership_queue",
    )
    .await;
}

#[tokio::test]
async fn a_merged_ticket_s_work_order_follows_its_master_until_unmerged() {
    let s = stack().await;
    let master_wo = new_order(&s, "13900000111", "SH01").await;
    let child_wo = new_order(&s, "13900000112", "SH01").await;
    let d = dispatcher(&s);
    let ticket_of = |v: &Value| v["ticket_id"].as_str().unwrap().to_owned();
    let (master, child) = (
        ticket_of(&order(&s, &d, &master_wo).await),
        ticket_of(&order(&s, &d, &child_wo).await),
    );
    let (status, v) = s
        .post_json(
            &s.agent(),
            &format!("/api/v1/tickets/{child}/merge"),
            json!({"master_id": master, "note": "同一地点同一问题"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v = wait_until(Duration::from_secs(15), "the work order merged", || async {
        let v = order(&s, &d, &child_wo).await;
        (v["status"] == "merged").then_some(v)
    })
    .await;
    assert_eq!(v["merged_into_ticket_id"], master.as_str());
    // Its clocks stop and start again: dispatch's own test
    // (`a_merged_ticket_s_clocks_stop_and_start_again_when_unmerged`).
    refused(
        &s,
        &handler(&s, "sn-gafj"),
        &child_wo,
        json!({"action": "sign"}),
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;

    let (status, v) = s
        .post_json(
            &s.agent(),
            &format!("/api/v1/tickets/{child}/unmerge"),
            json!({"reason": "实为两处不同的烧烤店"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let v = wait_until(
        Duration::from_secs(15),
        "the work order unmerged",
        || async {
            let v = order(&s, &d, &child_wo).await;
            (v["status"] == "dispatched").then_some(v)
        },
    )
    .await;
    assert!(v["merged_into_ticket_id"].is_null(), "{v}");
    assert_eq!(&events(&v)[1..], ["merge", "unmerge"]);
}

#[tokio::test]
async fn units_are_notified_of_notices_and_summons() {
    let s = stack().await;
    let wo = new_order(&s, "13900000113", "SH01").await;
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    ok(
        &s,
        &grid,
        &wo,
        json!({"action": "whistle", "level": 2, "unit_ids": ["sn-bdx"], "note": "需街道协同"}),
    )
    .await;
    // Time passes to the sign-for deadline: the lead unit is urged.
    let d = dispatcher(&s);
    s.clock
        .advance_to(at(&order(&s, &d, &wo).await["sign_due"]["due_at"]));
    let tracking = order(&s, &d, &wo).await["tracking_no"]
        .as_str()
        .unwrap()
        .to_owned();
    let bodies = |unit: &'static str| {
        let (s, d) = (&s, d.clone());
        async move {
            let (_, v) = s
                .get(&d, &format!("/api/v1/notifications?recipient_id={unit}"))
                .await;
            v["notifications"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|n| n["body"].as_str().unwrap_or_default().to_owned())
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        }
    };
    let street = wait_until(Duration::from_secs(15), "the summons", || async {
        let b = bodies("sn-bdx").await;
        b.iter().any(|x| x.contains("吹哨报到")).then_some(b)
    })
    .await;
    assert!(
        street[0].contains("八大峡街道办事处") && street[0].contains(&tracking),
        "{street:?}"
    );
    let lead = wait_until(Duration::from_secs(15), "the urge", || async {
        let b = bodies("sn-gafj").await;
        b.iter().any(|x| x.contains("催办单")).then_some(b)
    })
    .await;
    let urge = lead.iter().find(|x| x.contains("催办单")).unwrap();
    assert!(
        urge.contains("已到签收时限") && urge.contains(&tracking),
        "{urge}"
    );
}

#[tokio::test]
async fn the_citizen_sees_the_steps_and_the_reply_but_not_staff_notes() {
    let s = stack().await;
    let citizen = s.keys.token("370202", &[Role::Citizen], "wx-citizen-7");
    let mut b = ticket_body("13900000114");
    b["channel"] = json!("app");
    let (status, v) = s.post(Some(&citizen), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let wo = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let h = handler(&s, "sn-gafj");
    ok(
        &s,
        &h,
        &wo,
        json!({"action": "sign", "note": "内部：交治安中队"}),
    )
    .await;
    ok(
        &s,
        &h,
        &wo,
        json!({"action": "progress", "note": "内部：商户系辖区重点对象"}),
    )
    .await;
    ok(
        &s,
        &supervisor(&s),
        &wo,
        json!({"action": "instruct", "note": "内部批示：从严处理"}),
    )
    .await;
    let reply = "已责令商户整改，晚10点后停止营业。";
    ok(
        &s,
        &h,
        &wo,
        json!({"action": "resolve", "reply": reply, "note": "内部：已录入执法系统"}),
    )
    .await;
    let (status, v) = s.get(&citizen, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["reply"].as_str()),
        (Some("resolved"), Some(reply))
    );
    let text = v["timeline"].to_string();
    assert!(
        !text.contains("内部"),
        "no staff note reaches the citizen: {text}"
    );
    let events: Vec<&str> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["source"] == "dispatch")
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["dispatched", "sign", "resolve"]);
    // Staff still read everything.
    let (_, v) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
    assert!(v["timeline"].to_string().contains("内部批示"), "{v}");
}

#[tokio::test]
async fn the_tracking_page_and_open311_follow_the_ticket_to_the_end() {
    let s = stack().await;
    let (status, v) = s.post(Some(&s.agent()), ticket_body("13900000131")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (id, no) = (
        v["id"].as_str().unwrap().to_owned(),
        v["tracking_no"].as_str().unwrap().to_owned(),
    );
    let wo = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let h = handler(&s, "sn-gafj");
    ok(
        &s,
        &h,
        &wo,
        json!({"action": "sign", "note": "内部：交治安中队"}),
    )
    .await;
    let reply = "已责令商户整改，可拨13900001111反馈。";
    ok(&s, &h, &wo, json!({"action": "resolve", "reply": reply})).await;
    ok(&s, &dispatcher(&s), &wo, json!({"action": "close"})).await;

    let track = || async {
        let r = s
            .http
            .get(s.url(&format!("/api/v1/track?tracking_no={no}&phone_last4=0131")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()
    };
    let t = wait_until(Duration::from_secs(15), "tracked as closed", || async {
        let t = track().await;
        (t["status"] == "closed").then_some(t)
    })
    .await;
    let steps: Vec<&str> = t["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        ["received", "dispatched", "sign", "resolve", "close"],
        "{t}"
    );
    // The reply reaches the citizen (numbers in it redacted); staff notes
    // do not.
    assert_eq!(t["reply"], "已责令商户整改，可拨139****1111反馈。", "{t}");
    assert!(!t.to_string().contains("内部"), "{t}");
    assert!(
        t["timeline"][2]["note"]
            .as_str()
            .unwrap()
            .contains("青岛市公安局市南分局")
    );

    // Open311 lists it as closed, the reply as its status notes.
    let r = s
        .http
        .get(s.url("/open311/v2/370202/requests.json?status=closed"))
        .send()
        .await
        .unwrap();
    let list: Value = r.json().await.unwrap();
    let mine = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["service_request_id"] == no.as_str())
        .unwrap_or_else(|| panic!("not listed as closed: {list}"));
    assert_eq!(mine["status"], "closed");
    assert_eq!(
        mine["status_notes"],
        "已责令商户整改，可拨139****1111反馈。"
    );

    // A reopen (重办) takes it back to open and the old reply away.
    ok(
        &s,
        &dispatcher(&s),
        &wo,
        json!({"action": "reopen", "note": "诉求人反映仍未解决"}),
    )
    .await;
    let t = wait_until(Duration::from_secs(15), "tracked as reopened", || async {
        let t = track().await;
        (t["status"] != "closed").then_some(t)
    })
    .await;
    assert_eq!(t["reply"], "", "{t}");
    assert_eq!(
        t["timeline"].as_array().unwrap().last().unwrap()["event"],
        "reopen",
        "{t}"
    );
    // The unit is told it is a reopened order (重办) and why, not a new one.
    let d = dispatcher(&s);
    let notice = wait_until(Duration::from_secs(15), "the reopen notice", || async {
        let (_, v) = s
            .get(&d, &format!("/api/v1/notifications?ticket_id={id}"))
            .await;
        v["notifications"]
            .as_array()
            .and_then(|a| a.iter().find(|n| n["title"] == "重办工单待签收").cloned())
    })
    .await;
    let body = notice["body"].as_str().unwrap();
    assert!(
        body.contains("第1次重办") && body.contains("诉求人反映仍未解决"),
        "{body}"
    );
}
