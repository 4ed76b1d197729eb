//! Evaluation through the public API: tickets lived to the end with each
//! kind of callback verdict, the rates they give for a small set computed
//! by hand, an exclusion and its withdrawal, a formula added without
//! touching the past, the citizen's own rating (app, tracking page, the
//! SMS invitation's one-time link), and the wrong ways.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use jiesu_auth::Role;
use jiesu_proto::evaluation::CallbackInvited;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body};

const UNIT: &str = "sn-gafj";

fn handler(s: &Stack) -> String {
    s.keys
        .unit_token("370202", &[Role::Handler], "h-gafj", UNIT)
}

fn dispatcher(s: &Stack) -> String {
    s.keys.token("370202", &[Role::Dispatcher], "d-1")
}

fn supervisor(s: &Stack) -> String {
    s.keys.token("370202", &[Role::Supervisor], "sup-1")
}

/// A ticket from `phone` (by an agent, or `citizen`); its id, tracking
/// number and work-order id once dispatch has it.
async fn new_ticket(s: &Stack, phone: &str, citizen: Option<&str>) -> (String, String, String) {
    let mut b = ticket_body(phone);
    b["content"] = json!(format!("{phone}反映楼上装修噪音"));
    if citizen.is_some() {
        b["channel"] = json!("app");
    }
    let token = citizen.map_or_else(|| s.agent(), str::to_owned);
    let (status, v) = s.post(Some(&token), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let no = v["tracking_no"].as_str().unwrap().to_owned();
    let wo = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    (id, no, wo)
}

async fn act(s: &Stack, token: &str, wo: &str, body: Value) -> Value {
    let (status, v) = s
        .post_json(
            token,
            &format!("/api/v1/work-orders/{wo}/actions"),
            body.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body} → {v}");
    v
}

/// Sign, resolve, close.
async fn work_to_the_end(s: &Stack, wo: &str) {
    let h = handler(s);
    act(s, &h, wo, json!({"action": "sign"})).await;
    act(
        s,
        &h,
        wo,
        json!({"action": "resolve", "reply": "已协调物业处理，噪音已停止"}),
    )
    .await;
    act(s, &dispatcher(s), wo, json!({"action": "close"})).await;
}

/// The ticket as evaluation judges it, once `ready` holds.
async fn evaluation(s: &Stack, id: &str, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
    wait_until(Duration::from_secs(20), what, || async {
        let (status, v) = s
            .get(&s.agent(), &format!("/api/v1/tickets/{id}/evaluation"))
            .await;
        (status == StatusCode::OK && ready(&v)).then_some(v)
    })
    .await
}

fn open_round(n: u64) -> impl Fn(&Value) -> bool {
    move |v| {
        v["rounds"]
            .as_array()
            .and_then(|r| r.last())
            .is_some_and(|r| r["round"] == n && r["status"] == "open")
    }
}

async fn callback(s: &Stack, id: &str, body: Value) -> (StatusCode, Value) {
    s.post_json(&s.agent(), &format!("/api/v1/tickets/{id}/callbacks"), body)
        .await
}

async fn rates(s: &Stack, token: &str, query: &str) -> (StatusCode, Value) {
    s.get(token, &format!("/api/v1/evaluation/rates?{query}"))
        .await
}

/// Yesterday to tomorrow (China time): today's tickets, even if the test
/// runs across midnight.
fn around_today() -> String {
    let today = (Utc::now() + TimeDelta::hours(8)).date_naive();
    format!(
        "from={}&to={}",
        today - TimeDelta::days(1),
        today + TimeDelta::days(1)
    )
}

fn close_to(v: &Value, want: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - want).abs() < 1e-4)
}

#[tokio::test]
async fn verdicts_of_every_kind_give_the_hand_computed_rates() {
    let s = stack().await;
    let admin = s.admin();
    // Two failed calls make a round unreachable; one 重办 per ticket.
    let (status, v) = s
        .put_json(
            &admin,
            "/api/v1/evaluation/callback-policy",
            json!({"skip_natures": ["praise"], "due_hours": 48, "max_attempts": 2, "max_reopens": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let t1 = new_ticket(&s, "13900001001", None).await;
    let t2 = new_ticket(&s, "13900001002", None).await;
    let t3 = new_ticket(&s, "13900001003", None).await;
    let t4 = new_ticket(&s, "13900001004", None).await;
    let t5 = new_ticket(&s, "13900001005", None).await;
    let t6 = new_ticket(&s, "13900001006", None).await;
    for t in [&t1, &t2, &t3, &t4] {
        work_to_the_end(&s, &t.2).await;
    }
    for t in [&t1, &t2, &t3, &t4] {
        evaluation(&s, &t.0, "the first callback round", open_round(1)).await;
    }

    // T1: the agent reaches the citizen: satisfied, resolved.
    let (status, v) = callback(
        &s,
        &t1.0,
        json!({"verdict": {"resolved": true, "satisfaction": "satisfied", "comment": "处理很及时"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "answered");
    assert_eq!(v["verdict"]["method"], "phone");
    assert_eq!(v["verdict"]["reopen_requested"], false);
    // One verdict per round: a second is refused and the first stands.
    let (status, v) = callback(
        &s,
        &t1.0,
        json!({"verdict": {"resolved": false, "satisfaction": "unsatisfied"}}),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["code"], "verdict_given");
    assert!(v["message"].as_str().unwrap().contains("满意"), "{v}");

    // T2: the citizen on the tracking page: basically satisfied. Wrong
    // digits are refused as unknown.
    let rate = |no: &str, last4: &str| {
        json!({"tracking_no": no, "phone_last4": last4,
               "verdict": {"resolved": true, "satisfaction": "basic"}})
    };
    let public = |body: Value| {
        let req = s.http.post(s.url("/api/v1/track/rating")).json(&body);
        async move {
            let r = req.send().await.unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, v) = public(rate(&t2.1, "0000")).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = public(rate(&t2.1, "1002")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"]["method"], "tracking");
    assert_eq!(v["round"], 1);
    // The tracking page shows the verdict.
    wait_until(
        Duration::from_secs(20),
        "the verdict on the tracking page",
        || async {
            let r = s
                .http
                .get(s.url(&format!(
                    "/api/v1/track?tracking_no={}&phone_last4=1002",
                    t2.1
                )))
                .send()
                .await
                .unwrap();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            v["timeline"]
                .as_array()
                .and_then(|t| t.iter().find(|e| e["event"] == "callback"))
                .and_then(|e| e["note"].as_str())
                .map(|n| assert_eq!(n, "第 1 轮回访：评价“基本满意”，问题已解决"))
        },
    )
    .await;

    // T3: unsatisfied and unresolved: dispatch reopens it (重办); worked
    // again, round 2 says basically satisfied.
    let (status, v) = callback(
        &s,
        &t3.0,
        json!({"verdict": {"resolved": false, "satisfaction": "unsatisfied", "comment": "噪音还在，电话13912345678"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"]["reopen_requested"], true);
    assert!(
        !v["verdict"]["comment"]
            .as_str()
            .unwrap()
            .contains("13912345678"),
        "{v}"
    );
    let reopened = wait_until(Duration::from_secs(20), "the reopen (重办)", || async {
        let (_, w) = s
            .get(&dispatcher(&s), &format!("/api/v1/work-orders/{}", t3.2))
            .await;
        (w["reopens"] == 1 && w["status"] == "dispatched").then_some(w)
    })
    .await;
    let notes: Vec<&str> = reopened["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str())
        .collect();
    assert!(notes.iter().any(|n| n.contains("回访第 1 轮")), "{notes:?}");
    work_to_the_end(&s, &t3.2).await;
    evaluation(&s, &t3.0, "round 2", open_round(2)).await;
    let (status, v) = callback(
        &s,
        &t3.0,
        json!({"verdict": {"resolved": true, "satisfaction": "basic"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["round"], 2);

    // T4: nobody answers twice: unreachable; a third call is refused.
    for _ in 0..2 {
        let (status, v) = callback(&s, &t4.0, json!({"failed": {"outcome": "no_answer"}})).await;
        assert_eq!(status, StatusCode::OK, "{v}");
    }
    let (status, v) = callback(&s, &t4.0, json!({"failed": {"outcome": "busy"}})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("callback_closed")),
        "{v}"
    );

    // T5: a supervisor takes it out of assessment. T6 stays with the unit.
    let (status, v) = s
        .put_json(
            &supervisor(&s),
            &format!("/api/v1/tickets/{}/exclusion", t5.0),
            json!({"reason": "unreasonable", "note": "反复提出与本人无关的诉求"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["excluded"], true);
    let _ = &t6;

    // Evaluation has every verdict once the last one counts.
    evaluation(&s, &t3.0, "round 2's verdict", |v| {
        v["counts"]["basic"] == 1 && v["counts"]["reopened"] == 1
    })
    .await;
    evaluation(&s, &t4.0, "T4 unreachable", |v| {
        v["counts"]["unreachable"] == 1
    })
    .await;

    // By hand, the unit's row (default formula: 基本满意 = 0.9 满意;
    // composite 10% 响应 + 50% 解决 + 40% 满意):
    // received 6, excluded 1, assessed 5, dispatched 5;
    // responded on time 4 (T1-T4) → 响应率 4/5 = 0.8;
    // valid callbacks 3 (T1 满意, T2 基本满意, T3 基本满意 in round 2),
    // all resolved → 解决率 3/3 = 1; 满意率 (1 + 0.9 × 2) / 3 = 0.93333;
    // unreachable 1 (T4); reopened 1 (T3) → 0.2;
    // composite 100 × (0.08 + 0.5 + 0.37333) = 95.3333.
    let q = format!("dimension=unit&{}", around_today());
    let (status, v) = rates(&s, &supervisor(&s), &q).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let row = &v["rows"][0];
    assert_eq!(row["key"], UNIT, "{v}");
    assert_eq!(row["name"], "青岛市公安局市南分局");
    assert_eq!(row["rank"], 1);
    let c = &row["counts"];
    for (k, want) in [
        ("received", 6),
        ("excluded", 1),
        ("assessed", 5),
        ("dispatched", 5),
        ("signed_on_time", 4),
        ("responded_on_time", 4),
        ("resolved", 4),
        ("closed", 4),
        ("reopened", 1),
        ("callbacks_valid", 3),
        ("satisfied", 1),
        ("basic", 2),
        ("unsatisfied", 0),
        ("callback_resolved", 3),
        ("unreachable", 1),
    ] {
        assert_eq!(c[k], want, "{k}: {c}");
    }
    let r = &row["rates"];
    assert!(close_to(&r["response"], 0.8), "{r}");
    assert!(close_to(&r["resolution"], 1.0), "{r}");
    assert!(close_to(&r["satisfaction"], 2.8 / 3.0), "{r}");
    assert!(close_to(&r["composite"], 95.3333), "{r}");
    assert!(close_to(&r["reopen_rate"], 0.2), "{r}");
    assert!(close_to(&r["sign_on_time"], 0.8), "{r}");
    assert!(r["return_rate"].as_f64() == Some(0.0), "{r}");
    assert_eq!(v["formula"]["builtin"], true);

    // The exclusion withdrawn: T5 counts again, and 响应率 falls to 4/6:
    // composite 100 × (0.1 × 4/6 + 0.5 + 0.4 × 0.93333) = 94.
    let (status, v) = s
        .http
        .delete(s.url(&format!("/api/v1/tickets/{}/exclusion", t5.0)))
        .bearer_auth(supervisor(&s))
        .json(&json!({"note": "经复核属实"}))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::OK, "{:?}", v.text().await);
    let (_, v) = rates(&s, &supervisor(&s), &q).await;
    let row = &v["rows"][0];
    assert_eq!(row["counts"]["excluded"], 0, "{row}");
    assert_eq!(row["counts"]["assessed"], 6, "{row}");
    assert!(close_to(&row["rates"]["composite"], 94.0), "{row}");

    // A new formula (满意 only; 基本满意 0.5) from tomorrow leaves every
    // figure up to today as it was, and applies from its day.
    let tomorrow =
        ((Utc::now() + TimeDelta::hours(8)).date_naive() + TimeDelta::days(1)).to_string();
    let formula = json!({
        "effective_from": tomorrow, "satisfied_weight": 1.0, "basic_weight": 0.5,
        "response_weight": 0.2, "resolution_weight": 0.4, "satisfaction_weight": 0.4,
        "resolution_basis": "callback", "response_basis": "on_time", "note": "2027年考核办法"
    });
    let (status, v) = s
        .post_json(&admin, "/api/v1/evaluation/formulas", formula.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = s
        .post_json(&admin, "/api/v1/evaluation/formulas", formula)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("formula_exists")),
        "{v}"
    );
    let (_, v) = rates(&s, &supervisor(&s), &q).await;
    assert!(close_to(&v["rows"][0]["rates"]["composite"], 94.0), "{v}");
    assert_eq!(v["formula_changes_within"], json!([tomorrow]));
    let (_, v) = rates(
        &s,
        &supervisor(&s),
        &format!("dimension=unit&period={tomorrow}"),
    )
    .await;
    assert_eq!(v["formula"]["effective_from"], tomorrow.as_str(), "{v}");
    assert!(close_to(&v["formula"]["basic_weight"], 0.5), "{v}");

    // The tenant row and the channel row say the same of the same tickets.
    let (_, v) = rates(
        &s,
        &supervisor(&s),
        &format!("dimension=channel&{}", around_today()),
    )
    .await;
    assert_eq!(v["rows"][0]["key"], "hotline", "{v}");
    assert_eq!(v["total"]["counts"]["received"], 6, "{v}");
}

#[tokio::test]
async fn the_wrong_ways_change_nothing() {
    let s = stack().await;
    let me = s.keys.token("370202", &[Role::Citizen], "citizen-e1");
    let (id, _, wo) = new_ticket(&s, "13900002001", Some(&me)).await;
    let verdict = json!({"resolved": true, "satisfaction": "satisfied"});
    // Before closing there is no round to answer (once evaluation has the
    // ticket from its events: until then it does not know it, 404).
    let (status, v) = wait_until(
        Duration::from_secs(15),
        "evaluation knows the ticket",
        || async {
            let answer = s
                .post_json(
                    &me,
                    &format!("/api/v1/tickets/{id}/rating"),
                    verdict.clone(),
                )
                .await;
            (answer.0 != StatusCode::NOT_FOUND).then_some(answer)
        },
    )
    .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("no_callback")),
        "{v}"
    );
    work_to_the_end(&s, &wo).await;
    evaluation(&s, &id, "the round", open_round(1)).await;

    // Bad fields are named, in Chinese.
    let (status, v) = s
        .post_json(
            &me,
            &format!("/api/v1/tickets/{id}/rating"),
            json!({"resolved": true, "satisfaction": "great"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "verdict.satisfaction");
    assert!(v["message"].as_str().unwrap().contains("满意"), "{v}");
    let (status, v) = callback(&s, &id, json!({"failed": {"outcome": "asleep"}})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("failed.outcome")),
        "{v}"
    );
    let (status, v) = callback(&s, &id, json!({})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("verdict")),
        "{v}"
    );
    let (status, v) = rates(&s, &supervisor(&s), "dimension=planet&period=2026-11").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("dimension")),
        "{v}"
    );
    let (status, v) = rates(&s, &supervisor(&s), "dimension=unit&period=2026-13").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("period")),
        "{v}"
    );
    let (status, v) = s
        .put_json(
            &s.admin(),
            "/api/v1/evaluation/callback-policy",
            json!({"natures": ["anger"], "due_hours": 48, "max_attempts": 2, "max_reopens": 1}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("natures")),
        "{v}"
    );
    let yesterday =
        ((Utc::now() + TimeDelta::hours(8)).date_naive() - TimeDelta::days(1)).to_string();
    let (status, v) = s
        .post_json(
            &s.admin(),
            "/api/v1/evaluation/formulas",
            json!({
            "effective_from": yesterday, "satisfied_weight": 1.0, "basic_weight": 0.8,
            "response_weight": 0.1, "resolution_weight": 0.5, "satisfaction_weight": 0.4,
            "resolution_basis": "callback", "response_basis": "on_time"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("effective_from")),
        "{v}"
    );
    // Another citizen's rating of this ticket: not theirs.
    let other = s.keys.token("370202", &[Role::Citizen], "citizen-e2");
    let (status, _) = s
        .post_json(
            &other,
            &format!("/api/v1/tickets/{id}/rating"),
            verdict.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A handler may not call back, nor read another unit's figures.
    let (status, _) = s
        .post_json(
            &handler(&s),
            &format!("/api/v1/tickets/{id}/callbacks"),
            json!({"verdict": verdict}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = rates(&s, &handler(&s), "dimension=street&period=2026-11").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nor with a grid worker's role beside the handler's.
    let both = s
        .keys
        .unit_token("370202", &[Role::Handler, Role::GridWorker], "h-gw", UNIT);
    let (status, _) = rates(&s, &both, "dimension=street&period=2026-11").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A staff token that also says citizen does not rate as the citizen.
    let agent_citizen = s
        .keys
        .token("370202", &[Role::Agent, Role::Citizen], "citizen-e1");
    let (status, _) = s
        .post_json(
            &agent_citizen,
            &format!("/api/v1/tickets/{id}/rating"),
            verdict.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // `within` is a region code at a level: a city's, a district's; not five digits.
    for ok in ["3702", "370202", "370202000000"] {
        let (status, v) = rates(
            &s,
            &supervisor(&s),
            &format!("dimension=street&period=2026-11&within={ok}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{ok}: {v}");
    }
    let (status, v) = rates(
        &s,
        &supervisor(&s),
        "dimension=street&period=2026-11&within=37020",
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("within")),
        "{v}"
    );
    let (status, v) = rates(
        &s,
        &supervisor(&s),
        "dimension=unit&from=-262144-01-01&to=2026-01-01",
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("from")),
        "{v}"
    );

    // Nothing above left a mark: the round is still open; the citizen's
    // own rating is taken, once.
    let (status, v) = s
        .post_json(
            &me,
            &format!("/api/v1/tickets/{id}/rating"),
            verdict.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"]["method"], "app");
    assert_eq!(v["attempts"], 0);
    let (status, _) = s
        .post_json(&me, &format!("/api/v1/tickets/{id}/rating"), verdict)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // The handler sees its own unit's row.
    let (status, v) = rates(
        &s,
        &handler(&s),
        &format!("dimension=unit&{}", around_today()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{v}");
    assert_eq!(rows[0]["key"], UNIT);
}

async fn warnings(s: &Stack, status: &str) -> Vec<Value> {
    let (st, v) = s
        .get(
            &supervisor(s),
            &format!("/api/v1/evaluation/warnings?status={status}"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["warnings"].as_array().unwrap().clone()
}

async fn notices_to(s: &Stack, recipient: &str, title: &str) -> Vec<Value> {
    let (st, v) = s
        .get(
            &dispatcher(s),
            &format!("/api/v1/notifications?recipient_id={recipient}"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["title"].as_str().is_some_and(|t| t.starts_with(title)))
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_unit_under_75_percent_is_warned_once_and_the_warning_clears_when_it_recovers() {
    let s = stack().await;
    let admin = s.admin();
    let (status, v) = s
        .put_json(
            &admin,
            "/api/v1/evaluation/callback-policy",
            json!({"due_hours": 48, "max_attempts": 2, "max_reopens": 0}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, rule) = s
        .post_json(
            &admin,
            "/api/v1/evaluation/warning-rules",
            json!({"name": "解决率低于75%预警", "metric": "resolution", "dimension": "unit",
                   "window_days": 30, "threshold": 0.75, "min_tickets": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{rule}");
    assert_eq!(rule["active"], true);

    let a = new_ticket(&s, "13900003001", None).await;
    let b = new_ticket(&s, "13900003002", None).await;
    for t in [&a, &b] {
        work_to_the_end(&s, &t.2).await;
        evaluation(&s, &t.0, "the round", open_round(1)).await;
    }
    let (status, _) = callback(
        &s,
        &a.0,
        json!({"verdict": {"resolved": true, "satisfaction": "satisfied"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = callback(
        &s,
        &b.0,
        json!({"verdict": {"resolved": false, "satisfaction": "unsatisfied"}}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // The policy allows no 重办: the order stays closed.
    assert_eq!(v["verdict"]["reopen_requested"], false);

    // 解决率 1/2 = 50% < 75%: one warning for the unit.
    let open = wait_until(Duration::from_secs(20), "the warning", || async {
        let w = warnings(&s, "open").await;
        (!w.is_empty()).then_some(w)
    })
    .await;
    assert_eq!(open.len(), 1, "{open:?}");
    let w = &open[0];
    assert_eq!(w["key"], UNIT);
    assert_eq!(w["name"], "青岛市公安局市南分局");
    assert_eq!(w["metric"], "resolution");
    assert!(close_to(&w["figure"], 0.5), "{w}");
    assert!(close_to(&w["threshold"], 0.75), "{w}");
    assert_eq!(w["base"], 2);
    // The unit and the supervisors are told.
    let told = wait_until(Duration::from_secs(20), "the unit told", || async {
        let n = notices_to(&s, UNIT, "【预警】").await;
        (!n.is_empty()).then_some(n)
    })
    .await;
    let body = told[0]["body"].as_str().unwrap();
    assert!(body.contains("50.0%") && body.contains("75.0%"), "{body}");
    assert_eq!(told[0]["title"], "【预警】青岛市公安局市南分局解决率");
    wait_until(Duration::from_secs(20), "the supervisors told", || async {
        (!notices_to(&s, "370202", "【预警】").await.is_empty()).then_some(())
    })
    .await;

    // Judged again and again (every 200 ms): still one warning, told once.
    let seen = std::cell::RefCell::new(vec![w["checked_at"].clone()]);
    wait_until(Duration::from_secs(20), "three more checks", || async {
        let now = warnings(&s, "all").await;
        assert_eq!(now.len(), 1, "{now:?}");
        let at = now[0]["checked_at"].clone();
        let mut seen = seen.borrow_mut();
        if !seen.contains(&at) {
            seen.push(at);
        }
        (seen.len() > 3).then_some(())
    })
    .await;
    assert_eq!(notices_to(&s, UNIT, "【预警】").await.len(), 1);

    // B was out of scope: excluded, 解决率 is 1/1 and the warning clears.
    let (status, v) = s
        .put_json(
            &supervisor(&s),
            &format!("/api/v1/tickets/{}/exclusion", b.0),
            json!({"reason": "out_of_scope", "note": "属于司法程序，不在受理范围"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let cleared = wait_until(Duration::from_secs(20), "the warning cleared", || async {
        let w = warnings(&s, "cleared").await;
        (!w.is_empty()).then_some(w)
    })
    .await;
    assert_eq!(cleared[0]["id"], w["id"]);
    assert!(close_to(&cleared[0]["cleared_figure"], 1.0), "{cleared:?}");
    assert!(warnings(&s, "open").await.is_empty());
    wait_until(
        Duration::from_secs(20),
        "the unit told of the clearing",
        || async { (!notices_to(&s, UNIT, "【预警解除】").await.is_empty()).then_some(()) },
    )
    .await;
    // The history keeps it.
    assert_eq!(warnings(&s, "all").await.len(), 1);
}

/// A ticket of `category` in community `region` from `phone`.
async fn ticket_at(s: &Stack, phone: &str, category: &str, region: &str) -> (String, String) {
    let mut b = ticket_body(phone);
    b["category"] = json!(category);
    b["location"] = json!({"address": "南京路88号", "region_code": region});
    b["content"] = json!(format!("{phone}：小区门口夜间施工噪音"));
    let (status, v) = s.post(Some(&s.agent()), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let wo = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    (id, wo)
}

async fn items(s: &Stack, token: &str, query: &str) -> Vec<Value> {
    let (st, v) = s
        .get(
            token,
            &format!("/api/v1/evaluation/proactive-items?{query}"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v["items"].as_array().unwrap().clone()
}

async fn patch(s: &Stack, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let r = s
        .http
        .patch(s.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let st = r.status();
    (st, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_same_request_at_the_same_place_is_lifted_once_and_becomes_a_proactive_item() {
    let s = stack().await;
    let (status, v) = s
        .put_json(
            &s.admin(),
            "/api/v1/evaluation/frequency-policy",
            json!({"level": "community", "window_days": 7, "threshold": 3, "season_weeks": 4,
                   "season_years": 3, "season_min_count": 10, "season_ratio": 1.5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    const PLACE: &str = "370202006001";
    let mut tickets = Vec::new();
    for i in 0..4 {
        tickets.push(ticket_at(&s, &format!("1390000400{i}"), "SH01", PLACE).await);
    }
    // Elsewhere, and another category here: not part of it.
    ticket_at(&s, "13900004010", "SH01", "370202006002").await;
    ticket_at(&s, "13900004011", "SC01", PLACE).await;

    // The third made the matter; the fourth joined it.
    let list = wait_until(
        Duration::from_secs(20),
        "the matter with four requests",
        || async {
            let l = items(&s, &supervisor(&s), "level=community").await;
            l.first().is_some_and(|i| i["requests"] == 4).then_some(l)
        },
    )
    .await;
    assert_eq!(list.len(), 1, "{list:?}");
    let item = &list[0];
    assert_eq!(item["source"], "frequency");
    assert_eq!(item["category"], "SH01");
    assert_eq!(item["place_code"], PLACE);
    assert_eq!(item["owner_unit_id"], UNIT);
    assert_eq!(item["owner_unit_name"], "青岛市公安局市南分局");
    assert!(
        item["title"].as_str().unwrap().contains("噪声扰民"),
        "{item}"
    );

    // 提级: each of the four orders is in the leadership queue, lifted once.
    for (_, wo) in &tickets {
        let w = wait_until(Duration::from_secs(20), "the order lifted", || async {
            let (_, w) = s
                .get(&supervisor(&s), &format!("/api/v1/work-orders/{wo}"))
                .await;
            (w["leadership"] == true).then_some(w)
        })
        .await;
        let lifts = w["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["event"] == "leadership")
            .count();
        assert_eq!(lifts, 1, "{w}");
    }
    let (_, q) = s
        .get(&supervisor(&s), "/api/v1/work-orders?queue=leadership")
        .await;
    assert_eq!(q["work_orders"].as_array().unwrap().len(), 4, "{q}");

    // The owner reports and closes it; done needs a result.
    let h = handler(&s);
    let path = format!(
        "/api/v1/evaluation/proactive-items/{}",
        item["id"].as_str().unwrap()
    );
    let (status, v) = patch(
        &s,
        &h,
        &path,
        json!({"status": "in_progress", "progress_note": "已约谈施工方，调整夜间作业时间"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["progress"][0]["by_role"], "handler");
    let (status, v) = patch(&s, &h, &path, json!({"due_date": "2030-01-01"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::FORBIDDEN, Some("due_date")),
        "{v}"
    );
    let (status, v) = patch(&s, &h, &path, json!({"status": "done"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("result")),
        "{v}"
    );
    let (status, v) = patch(
        &s,
        &h,
        &path,
        json!({"status": "done", "result": "工地夜间22点后停止施工，设置隔音屏障"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "done");
    assert_eq!(v["effect"]["measured"], true);
    assert_eq!(v["effect"]["days"], 30);
    assert_eq!(v["effect"]["complete"], false);
    let (status, v) = patch(&s, &supervisor(&s), &path, json!({"status": "in_progress"})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("item_closed")),
        "{v}"
    );

    // Closed, the matter counts afresh: one more request is not a new one.
    let (fifth, _) = ticket_at(&s, "13900004020", "SH01", PLACE).await;
    evaluation(&s, &fifth, "the fifth request", |v| {
        v["received_at"].is_string()
    })
    .await;
    assert!(
        items(&s, &supervisor(&s), "level=community")
            .await
            .is_empty()
    );
    assert_eq!(items(&s, &supervisor(&s), "status=all").await.len(), 1);

    // A street's supervisor reads its street's communities.
    let street = s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "sup-street".into(),
        tenant: "370202".into(),
        scope: Some("370202006".into()),
        roles: vec![Role::Supervisor],
        unit: None,
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    let (status, v) = rates(
        &s,
        &street,
        &format!("dimension=community&{}", around_today()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let got: Vec<(String, i64)> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["key"].as_str().unwrap().to_owned(),
                r["counts"]["received"].as_i64().unwrap(),
            )
        })
        .collect();
    assert!(got.contains(&(PLACE.to_owned(), 6)), "{got:?}");
    assert!(got.contains(&("370202006002".to_owned(), 1)), "{got:?}");
    assert!(
        got.iter().all(|(k, _)| k.starts_with("370202006")),
        "{got:?}"
    );
}

#[tokio::test]
async fn earlier_years_rising_in_the_weeks_ahead_make_a_seasonal_item_once() {
    use chrono::Months;
    let s = stack().await;
    let admin = s.admin();
    let today = (Utc::now() + TimeDelta::hours(8)).date_naive();
    // Two earlier years: 违章停车 (CG02) in street 370202006 twice a day in
    // the four weeks ahead, once a week otherwise; 预付卡 (SC01) once a
    // week all year.
    let mut csv = String::from("day,category,region_code,count,category_name\n");
    for back in 1..=2u32 {
        let start = today.checked_sub_months(Months::new(12 * back)).unwrap();
        for d in -300..60i64 {
            let day = start + TimeDelta::days(d);
            if (0..28).contains(&d) {
                csv += &format!("{day},CG02,370202006,2,违章停车\n");
            } else if d.rem_euclid(7) == 0 {
                csv += &format!("{day},CG02,370202006,1,违章停车\n");
            }
            if d.rem_euclid(7) == 3 {
                csv += &format!("{day},SC01,370202006,1,预付卡消费\n");
            }
        }
    }
    let put = |query: &str, body: String| {
        let req = s
            .http
            .put(s.url(&format!("/api/v1/admin/evaluation/history{query}")))
            .bearer_auth(&admin)
            .header("content-type", "text/csv")
            .body(body);
        async move {
            let r = req.send().await.unwrap();
            let st = r.status();
            (st, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let scan = || async {
        let (st, v) = s
            .post_json(
                &supervisor(&s),
                "/api/v1/evaluation/seasons/scan",
                json!({}),
            )
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        v
    };
    // A bad file is refused whole, naming its rows; a dry run writes nothing.
    let bad = format!("{csv}2020-02-30,CG02,370202006,1,违章停车\n2020-03-01,CG02,370203001,1,x\n");
    let (status, v) = put("", bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")),
        "{v}"
    );
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("day") && msg.contains("region_code"), "{msg}");
    let (status, v) = put("?dry_run=true", csv.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["dry_run"], true);
    let rows = v["rows"].as_u64().unwrap();
    assert!(rows > 150, "{v}");
    assert_eq!(scan().await["created"], json!([]));

    let (status, v) = put("", csv).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["rows"].as_u64(), Some(rows));
    let v = scan().await;
    let created = v["created"].as_array().unwrap();
    assert_eq!(created.len(), 1, "{v}");
    let it = &created[0];
    assert_eq!(it["source"], "seasonal");
    assert_eq!(it["category"], "CG02");
    assert_eq!(it["category_name"], "违章停车");
    assert_eq!(it["place_code"], "370202006000");
    assert_eq!(it["place_level"], "street");
    assert!(it["title"].as_str().unwrap().contains("季节性高发"), "{it}");
    // Once per season.
    assert_eq!(scan().await["created"], json!([]));
    let listed = items(&s, &supervisor(&s), "level=street&source=seasonal").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], it["id"]);
}

#[tokio::test]
async fn a_category_rising_over_last_year_is_a_hot_spot_and_its_phrases_say_why() {
    let s = stack().await;
    let today = (Utc::now() + TimeDelta::hours(8)).date_naive();
    let (from, to) = (today - TimeDelta::days(1), today + TimeDelta::days(1));
    // Last year the same three days had 3 parking requests.
    let ly = |d: chrono::NaiveDate| d.checked_sub_months(chrono::Months::new(12)).unwrap();
    let mut csv = String::from("day,category,region_code,count\n");
    let mut d = ly(from);
    while d <= ly(to) {
        csv += &format!("{d},CG02,370202006,1\n");
        d += TimeDelta::days(1);
    }
    let r = s
        .http
        .put(s.url("/api/v1/admin/evaluation/history"))
        .bearer_auth(s.admin())
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // This year 15, all about cars blocking the fire lane; 3 noise requests.
    for i in 0..15 {
        let mut b = ticket_body(&format!("1390000{:04}", 5000 + i));
        b["category"] = json!("CG02");
        b["attributes"] = json!({"blocking": "yes"});
        b["content"] = json!(format!(
            "第{i}次：小区门口违章停车堵住消防通道，晚上尤其严重"
        ));
        let (status, v) = s.post(Some(&s.agent()), b).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    for i in 0..3 {
        let (status, v) = s
            .post(
                Some(&s.agent()),
                ticket_body(&format!("1390000{:04}", 5100 + i)),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let q = format!("dimension=category&from={from}&to={to}");
    let v = wait_until(Duration::from_secs(20), "every request counted", || async {
        let (st, v) = s
            .get(&supervisor(&s), &format!("/api/v1/evaluation/hotspots?{q}"))
            .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        let total: i64 = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["count"].as_i64().unwrap())
            .sum();
        (total == 18).then_some(v)
    })
    .await;
    assert_eq!(v["buckets"].as_array().unwrap().len(), 3, "{v}");
    let top = &v["rows"][0];
    assert_eq!(top["key"], "CG02", "{v}");
    assert_eq!(top["name"], "违章停车");
    assert_eq!(top["count"], 15);
    assert_eq!(top["last_year"], 3);
    assert!(close_to(&top["change_last_year"], 4.0), "{top}");
    assert_eq!(top["rising"], true, "{top}");
    let series: i64 = top["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().unwrap())
        .sum();
    assert_eq!(series, 15);
    // Three are not a trend.
    let noise = &v["rows"][1];
    assert_eq!(
        (noise["key"].as_str(), noise["rising"].as_bool()),
        (Some("SH01"), Some(false)),
        "{v}"
    );

    let (st, p) = s
        .get(
            &supervisor(&s),
            &format!("/api/v1/evaluation/hotspots/phrases?category=CG02&from={from}&to={to}"),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["examined"], 15);
    let first = p["phrases"][0]["text"].as_str().unwrap();
    assert!(
        first.contains("违章停车") || first.contains("消防通道"),
        "{p}"
    );
    assert_eq!(p["phrases"][0]["tickets"], 15);
}

#[tokio::test]
async fn the_monthly_report_ranks_units_and_downloads_with_chinese_headers() {
    use std::io::Read;
    let s = stack().await;
    let t1 = new_ticket(&s, "13900006001", None).await;
    let t2 = new_ticket(&s, "13900006002", None).await;
    for t in [&t1, &t2] {
        work_to_the_end(&s, &t.2).await;
        evaluation(&s, &t.0, "the round", open_round(1)).await;
    }
    for (t, sat) in [(&t1, "satisfied"), (&t2, "basic")] {
        let (st, v) = callback(
            &s,
            &t.0,
            json!({"verdict": {"resolved": true, "satisfaction": sat}}),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
    }
    evaluation(&s, &t2.0, "the verdict counted", |v| {
        v["counts"]["basic"] == 1
    })
    .await;
    let month = (Utc::now() + TimeDelta::hours(8))
        .format("%Y-%m")
        .to_string();
    let path =
        |format: &str| format!("/api/v1/evaluation/reports/monthly?month={month}&format={format}");
    let (st, v) = s.get(&supervisor(&s), &path("json")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["month"], month.as_str());
    assert!(
        v["total"]["counts"]["received"].as_i64().unwrap() >= 2,
        "{v}"
    );
    assert_eq!(v["units"][0]["key"], UNIT);
    assert_eq!(v["best_units"][0]["name"], "青岛市公安局市南分局");
    assert_eq!(v["top_problems"][0]["key"], "SH01");
    assert_eq!(v["top_problems"][0]["name"], "噪声扰民");
    assert_eq!(v["tenants"].as_array().unwrap().len(), 1, "{v}");
    // The same as files.
    let get = |format: &'static str| {
        let req = s.http.get(s.url(&path(format))).bearer_auth(supervisor(&s));
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            let ct = r.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .to_owned();
            (ct, r.bytes().await.unwrap().to_vec())
        }
    };
    let (ct, csv) = get("csv").await;
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(&csv[..3], &[0xEF, 0xBB, 0xBF], "a BOM for Excel");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    for h in [
        "接诉即办月度报告",
        "单位排名",
        "排名,名称,编码,受理量",
        "综合得分",
        "青岛市公安局市南分局",
    ] {
        assert!(text.contains(h), "{h} missing:\n{text}");
    }
    let (ct, xlsx) = get("xlsx").await;
    assert!(ct.contains("spreadsheetml"), "{ct}");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(xlsx)).unwrap();
    let mut read = |name: &str| {
        let mut s = String::new();
        zip.by_name(name).unwrap().read_to_string(&mut s).unwrap();
        s
    };
    let book = read("xl/workbook.xml");
    for sheet in ["总体情况", "突出问题", "街道排名", "单位排名", "预警"] {
        assert!(book.contains(sheet), "{sheet} sheet missing");
    }
    let strings = read("xl/sharedStrings.xml");
    assert!(strings.contains("满意率") && strings.contains("青岛市公安局市南分局"));
    // The wrong ways.
    let (st, v) = s.get(&supervisor(&s), &path("pdf")).await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("format")),
        "{v}"
    );
    let (st, v) = s
        .get(
            &supervisor(&s),
            "/api/v1/evaluation/reports/monthly?month=2026-Q1",
        )
        .await;
    assert_eq!(
        (st, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("month")),
        "{v}"
    );
}

/// The one-time tokens evaluation sent notification for `ticket_id`, by
/// round, read off the bus.
async fn invitations(s: &Stack, ticket_id: &str) -> Vec<CallbackInvited> {
    s.bus
        .published("evaluation", "370202", "callback.invited")
        .await
        .iter()
        .filter_map(|p| <CallbackInvited as prost::Message>::decode(p.as_slice()).ok())
        .filter(|ev| ev.ticket_id == ticket_id)
        .collect()
}

/// The HTML page of an SMS link: status and body.
async fn page(s: &Stack, token: &str, form: Option<&[(&str, &str)]>) -> (StatusCode, String) {
    let url = s.url(&format!("/r/{token}"));
    let req = match form {
        None => s.http.get(url),
        Some(f) => s.http.post(url).form(f),
    };
    let r = req.send().await.unwrap();
    let status = r.status();
    let html = r
        .headers()
        .get("content-type")
        .is_some_and(|c| c.to_str().unwrap_or("").starts_with("text/html"));
    assert!(html, "the link answers with a page");
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn the_sms_invitation_links_to_a_page_that_takes_one_verdict_per_round() {
    let s = stack().await;
    let phone = "13900002001";
    let (id, no, wo) = new_ticket(&s, phone, None).await;
    work_to_the_end(&s, &wo).await;
    evaluation(&s, &id, "the first callback round", open_round(1)).await;

    // Evaluation asks notification to invite the caller, once, with a token.
    let inv = wait_until(Duration::from_secs(20), "the invitation", || async {
        invitations(&s, &id).await.into_iter().next()
    })
    .await;
    assert_eq!((inv.round, inv.tracking_no.as_str()), (1, no.as_str()));
    let token = inv.token.clone();
    assert!(token.len() >= 32, "a token nobody guesses: {token}");

    // The SMS to the caller went out; the API shows it without the link.
    let sms = wait_until(Duration::from_secs(20), "the SMS sent", || async {
        notices_to(&s, &id, "办理结果评价邀请")
            .await
            .into_iter()
            .find(|n| n["status"] == "sent")
    })
    .await;
    let body = sms["body"].as_str().unwrap();
    assert!(
        body.contains(&no) && body.contains("〔评价链接〕"),
        "{body}"
    );
    let (_, all) = s
        .get(
            &dispatcher(&s),
            &format!("/api/v1/notifications?recipient_id={id}"),
        )
        .await;
    assert!(
        !all.to_string().contains(&token),
        "the API never shows the token: {all}"
    );
    assert_eq!(sms["recipient_kind"], "citizen");

    // The page shows what is asked, nothing personal.
    let (status, html) = page(&s, &token, None).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(&no) && html.contains("提交评价"), "{html}");
    assert!(!html.contains(&phone[7..]), "no phone digits on the page");
    let json = |path: String| {
        let req = s.http.get(s.url(&path));
        async move {
            let r = req.send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, v) = json(format!("/api/v1/track/invitations/{token}")).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("open")),
        "{v}"
    );

    // Half a form is shown again and records nothing.
    let (status, html) = page(&s, &token, Some(&[("resolved", "no")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(html.contains("请选择"), "{html}");
    evaluation(&s, &id, "still open", open_round(1)).await;

    // Unsatisfied and unresolved through the page: recorded as an SMS
    // verdict, the phone in the comment redacted, and 重办 asked for.
    let comment = format!("还是很吵，请打{phone}");
    let form = [
        ("resolved", "no"),
        ("satisfaction", "unsatisfied"),
        ("comment", comment.as_str()),
    ];
    let (status, html) = page(&s, &token, Some(&form)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("感谢") && html.contains("重新办理"), "{html}");
    let v = evaluation(&s, &id, "the SMS verdict", |v| {
        v["rounds"][0]["status"] == "answered"
    })
    .await;
    let verdict = &v["rounds"][0]["verdict"];
    assert_eq!(verdict["method"], "sms", "{v}");
    assert_eq!(verdict["satisfaction"], "unsatisfied");
    assert!(!verdict["comment"].as_str().unwrap().contains(phone), "{v}");

    // The link works once: the page and the API both refuse a second use.
    let (status, html) = page(&s, &token, Some(&form)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("已有评价"), "{html}");
    let r = s
        .http
        .post(s.url(&format!("/api/v1/track/invitations/{token}/rating")))
        .json(&json!({"resolved": true, "satisfaction": "satisfied"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["code"], "verdict_given", "{v}");
    let v = evaluation(&s, &id, "the first verdict stands", |_| true).await;
    assert_eq!(v["rounds"][0]["verdict"]["satisfaction"], "unsatisfied");

    // A made-up link is not found, on the page and in the API.
    let (status, html) = page(&s, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    let (status, _) = json("/api/v1/track/invitations/nope".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Reopened and closed again: round 2 gets its own link; round 1's
    // link says it was answered.
    wait_until(Duration::from_secs(20), "the reopen (重办)", || async {
        let (_, w) = s
            .get(&dispatcher(&s), &format!("/api/v1/work-orders/{wo}"))
            .await;
        (w["reopens"] == 1 && w["status"] == "dispatched").then_some(())
    })
    .await;
    work_to_the_end(&s, &wo).await;
    let second = wait_until(Duration::from_secs(20), "round 2's invitation", || async {
        invitations(&s, &id)
            .await
            .into_iter()
            .find(|i| i.round == 2)
    })
    .await;
    assert_ne!(second.token, token);
    assert_eq!(
        invitations(&s, &id).await.len(),
        2,
        "one invitation per round"
    );
    let (_, v) = json(format!("/api/v1/track/invitations/{token}")).await;
    assert_eq!(v["status"], "answered", "{v}");
    let (status, v) = json(format!("/api/v1/track/invitations/{}", second.token)).await;
    assert_eq!(
        (status, v["round"].as_u64()),
        (StatusCode::OK, Some(2)),
        "{v}"
    );
}
