//! 并件: candidates at creation, the clear case merged automatically,
//! agents merging and unmerging, a merged ticket following its master, the
//! caller told, and a withdrawn master handing over to its merged tickets.

use std::time::Duration;

use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, stack_with_notification, ticket_body, timeline_events};

const NOISE: &str = "燕儿岛路10号楼下烧烤店晚上吵到十二点，油烟很大";

fn body(phone: &str, content: &str) -> Value {
    let mut b = ticket_body(phone);
    b["content"] = json!(content);
    b
}

async fn create(s: &Stack, token: &str, b: Value) -> Value {
    let (status, v) = s.post(Some(token), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    v
}

async fn view(s: &Stack, token: &str, id: &str) -> Value {
    let (status, v) = s.get(token, &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

fn id(v: &Value) -> String {
    v["id"].as_str().unwrap().to_owned()
}

async fn wait_status(s: &Stack, token: &str, id: &str, status: &str) -> Value {
    wait_until(Duration::from_secs(15), status, || async {
        let v = view(s, token, id).await;
        (v["status"] == status).then_some(v)
    })
    .await
}

#[tokio::test]
async fn the_same_callers_repeat_is_merged_at_once_and_follows_its_master() {
    // Citizens' notices go to an SMS gateway (this test's endpoint), which
    // notes the numbers it is asked to text.
    let texted = sms_gateway().await;
    let endpoint = texted.0.clone();
    let s = stack_with_notification(|cfg| {
        let mut sms: jiesu_notification::channels::ChannelConfig =
            serde_json::from_value(json!({"kind": "http_sms"})).unwrap();
        sms.endpoint = endpoint;
        sms.fields = [("mobile", "{phone}"), ("content", "{content}")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        cfg.channels.insert("sms".into(), sms);
        cfg.routes.insert(
            "370202".into(),
            [("citizen".to_owned(), vec!["sms".to_owned()])].into(),
        );
    })
    .await;
    let agent = s.agent();
    let first = create(&s, &agent, body("13800000011", NOISE)).await;
    assert_eq!(first["status"], "received");
    assert_eq!(first["duplicates"], json!([]));
    let master = id(&first);
    wait_status(&s, &agent, &master, "dispatched").await;

    // The same caller about the same problem an hour later: merged at once.
    let again = create(
        &s,
        &agent,
        body(
            "13800000011",
            "燕儿岛路10号楼下的烧烤店还是吵到十二点，油烟很大",
        ),
    )
    .await;
    assert_eq!(again["status"], "merged", "{again}");
    assert_eq!(again["merged_into"]["id"], master.as_str());
    assert_eq!(again["merged_into"]["tracking_no"], first["tracking_no"]);
    assert_eq!(again["duplicates"][0]["ticket_id"], master.as_str());
    assert_eq!(again["duplicates"][0]["clear_case"], true);
    let merged = id(&again);

    // It reads with its master's status and never gets a work order of its own.
    let v = view(&s, &agent, &merged).await;
    assert_eq!(v["status"], "dispatched", "follows the master: {v}");
    assert_eq!(v["merged_into"]["id"], master.as_str());
    assert_eq!(timeline_events(&v), ["received", "merged"]);
    assert!(v["unit"].is_null(), "{v}");
    let m = view(&s, &agent, &master).await;
    assert_eq!(m["merged"][0]["id"], merged.as_str(), "{m}");
    assert!(timeline_events(&m).contains(&"merged_in".to_owned()));

    // The caller is told, by ticket reference only.
    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let page = wait_until(Duration::from_secs(15), "the merge notice", || async {
        let (_, v) = s
            .get(
                &dispatcher,
                &format!("/api/v1/notifications?ticket_id={merged}"),
            )
            .await;
        (v["notifications"].as_array().map(Vec::len) == Some(1)).then_some(v)
    })
    .await;
    let n = &page["notifications"][0];
    assert_eq!(n["recipient_kind"], "citizen");
    assert_eq!(n["recipient_id"], merged.as_str());
    assert!(
        n["body"]
            .as_str()
            .unwrap()
            .contains(first["tracking_no"].as_str().unwrap())
    );
    assert!(!page.to_string().contains("13800000011"));
    // It is sent with the contact intake hands over at that moment (and
    // records); notification never stores it.
    wait_until(Duration::from_secs(15), "the merge notice sent", || async {
        let (_, v) = s
            .get(
                &dispatcher,
                &format!("/api/v1/notifications?ticket_id={merged}"),
            )
            .await;
        (v["notifications"][0]["status"] == "sent").then_some(())
    })
    .await;
    // The caller's phone got it, from intake's hand-over at that moment.
    let asked = texted.1.lock().unwrap().clone();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0]["mobile"], "13800000011");
    assert!(
        asked[0]["content"]
            .as_str()
            .unwrap()
            .contains(first["tracking_no"].as_str().unwrap())
    );
    // Intake recorded the one hand-over; the tenant admin reads the audit.
    let (status, reads) = s
        .get(
            &s.admin(),
            &format!("/api/v1/tickets/{merged}/contact-reads"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reads}");
    let reads = reads["reads"].as_array().unwrap();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert!(
        reads[0]["purpose"]
            .as_str()
            .unwrap()
            .starts_with("notification:"),
        "{reads:?}"
    );
    assert!(!reads[0].to_string().contains("13800000011"));
    let (status, _) = s
        .get(
            &dispatcher,
            &format!("/api/v1/tickets/{merged}/contact-reads"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The public tracking answer follows the master too.
    let track = |no: Value| {
        let s = &s;
        async move {
            let url = format!(
                "/api/v1/track?tracking_no={}&phone_last4=0011",
                no.as_str().unwrap()
            );
            let t: Value = s
                .http
                .get(s.url(&url))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            t
        }
    };
    let of_merged = track(again["tracking_no"].clone()).await;
    let of_master = track(first["tracking_no"].clone()).await;
    assert_eq!(of_merged["status"], of_master["status"], "{of_merged}");
    assert_eq!(of_merged["tracking_no"], again["tracking_no"]);

    // Another caller's similar report is only a candidate.
    let neighbour = create(
        &s,
        &agent,
        body("13800000012", "楼下烧烤店晚上吵到十二点，油烟大"),
    )
    .await;
    assert_eq!(neighbour["status"], "received");
    assert!(neighbour.get("merged_into").is_none(), "{neighbour}");
    assert_eq!(neighbour["duplicates"][0]["ticket_id"], master.as_str());
    assert_eq!(neighbour["duplicates"][0]["clear_case"], false);
    // A citizen submitting never sees other people's tickets.
    let citizen = s.keys.token("370202", &[Role::Citizen], "c-77");
    let mut b = body("13800000013", "楼下烧烤店晚上吵到十二点，油烟大");
    b["channel"] = json!("app");
    let own = create(&s, &citizen, b).await;
    assert_eq!(own["duplicates"], json!([]), "{own}");
}

#[tokio::test]
async fn agents_merge_and_unmerge_with_every_refusal_named() {
    let s = stack().await;
    let agent = s.agent();
    let master = id(&create(&s, &agent, body("13800000021", NOISE)).await);
    let other = id(&create(&s, &agent, body("13800000022", "楼下烧烤店晚上吵到十二点")).await);
    let third = id(&create(&s, &agent, body("13800000023", "小区门口路灯不亮")).await);
    wait_status(&s, &agent, &other, "dispatched").await;

    let merge = |ticket: String, master: String, token: String| {
        let s = &s;
        async move {
            s.post_json(
                &token,
                &format!("/api/v1/tickets/{ticket}/merge"),
                json!({"master_id": master, "note": "同一烧烤店"}),
            )
            .await
        }
    };
    let (status, v) = merge(other.clone(), master.clone(), agent.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "merged");
    let o = view(&s, &agent, &other).await;
    assert_eq!(o["merged_into"]["id"], master.as_str());
    assert!(timeline_events(&o).contains(&"merged".to_owned()));
    assert!(o.to_string().contains("人工并件：同一烧烤店"), "{o}");

    // Refusals, each named.
    let code = |v: &Value| v["code"].as_str().unwrap_or_default().to_owned();
    let (status, v) = merge(other.clone(), master.clone(), agent.clone()).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "already_merged".into()),
        "{v}"
    );
    let (status, v) = merge(master.clone(), third.clone(), agent.clone()).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "has_merged_tickets".into()),
        "{v}"
    );
    let (status, v) = merge(third.clone(), other.clone(), agent.clone()).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "master_merged".into()),
        "{v}"
    );
    let (status, v) = merge(third.clone(), third.clone(), agent.clone()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "master_id");
    let (status, v) = merge(third.clone(), "not-an-id".into(), agent.clone()).await;
    assert_eq!(
        (status, v["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("master_id"))
    );
    let citizen = s.keys.token("370202", &[Role::Citizen], "c-1");
    let (status, _) = merge(third.clone(), master.clone(), citizen).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let elsewhere = s.keys.token("370203", &[Role::Agent], "a-9");
    let (status, _) = merge(third.clone(), master.clone(), elsewhere).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = s
        .post_json(
            &agent,
            &format!("/api/v1/tickets/{third}/merge"),
            json!({"master_id": master, "colour": "red"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // Unmerge: a reason is required; only merged tickets.
    let unmerge = |ticket: String, reason: &'static str| {
        let s = &s;
        let agent = agent.clone();
        async move {
            s.post_json(
                &agent,
                &format!("/api/v1/tickets/{ticket}/unmerge"),
                json!({"reason": reason}),
            )
            .await
        }
    };
    let (status, v) = unmerge(other.clone(), "").await;
    assert_eq!(
        (status, v["field"].clone()),
        (StatusCode::UNPROCESSABLE_ENTITY, json!("reason"))
    );
    let (status, v) = unmerge(third.clone(), "不是同一问题").await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "not_merged".into()),
        "{v}"
    );
    let (status, v) = unmerge(other.clone(), "不是同一家店").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // It had a work order before the merge: it reads with its own again.
    let o = wait_status(&s, &agent, &other, "dispatched").await;
    assert!(o.get("merged_into").is_none(), "{o}");
    assert!(timeline_events(&o).contains(&"unmerged".to_owned()));
    let m = view(&s, &agent, &master).await;
    assert!(m.get("merged").is_none(), "{m}");

    // A merged ticket cannot be merged into a closed master.
    let (status, _) = s
        .post_json(
            &agent,
            &format!("/api/v1/tickets/{master}/withdraw"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = merge(third.clone(), master.clone(), agent.clone()).await;
    assert_eq!(
        (status, code(&v)),
        (StatusCode::CONFLICT, "master_closed".into()),
        "{v}"
    );
}

#[tokio::test]
async fn an_unmerged_ticket_dispatch_never_had_is_dispatched_then() {
    let s = stack().await;
    let agent = s.agent();
    let master = id(&create(&s, &agent, body("13800000031", NOISE)).await);
    let again = create(&s, &agent, body("13800000031", NOISE)).await;
    assert_eq!(again["status"], "merged");
    let merged = id(&again);
    let (status, v) = s
        .post_json(
            &agent,
            &format!("/api/v1/tickets/{merged}/unmerge"),
            json!({"reason": "来电人反映的是另一家店"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // Intake now hands it to dispatch, which routes it to its own unit.
    let v = wait_status(&s, &agent, &merged, "dispatched").await;
    assert_eq!(v["unit"]["id"], "sn-gafj");
    assert_ne!(v["id"], master.as_str());
}

#[tokio::test]
async fn a_withdrawn_master_hands_over_to_the_oldest_merged_ticket() {
    let s = stack().await;
    let agent = s.agent();
    let master = id(&create(&s, &agent, body("13800000041", NOISE)).await);
    let second = create(&s, &agent, body("13800000041", NOISE)).await;
    assert_eq!(second["status"], "merged");
    let second = id(&second);
    let third = id(&create(&s, &agent, body("13800000042", "楼下烧烤店晚上吵到十二点")).await);
    let (status, v) = s
        .post_json(
            &agent,
            &format!("/api/v1/tickets/{third}/merge"),
            json!({"master_id": master}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");

    let (status, _) = s
        .post_json(
            &agent,
            &format!("/api/v1/tickets/{master}/withdraw"),
            json!({"reason": "已自行解决"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    // The second caller's problem still stands: it is handled on its own
    // (dispatch hears of it now), and the third follows it.
    let v = wait_status(&s, &agent, &second, "dispatched").await;
    assert!(v.get("merged_into").is_none(), "{v}");
    assert_eq!(v["merged"][0]["id"], third.as_str(), "{v}");
    let t = view(&s, &agent, &third).await;
    assert_eq!(t["merged_into"]["id"], second.as_str(), "{t}");
    assert_eq!(t["status"], "dispatched", "follows the new master: {t}");
}

type Texted = std::sync::Arc<std::sync::Mutex<Vec<Value>>>;

/// An HTTP SMS gateway on a free port: (its URL, what it was asked).
async fn sms_gateway() -> (String, Texted) {
    use axum::{Json, Router, extract::State, routing::post};
    let texted: Texted = Texted::default();
    let app = Router::new()
        .route(
            "/sms",
            post(|State(t): State<Texted>, Json(v): Json<Value>| async move {
                t.lock().unwrap().push(v);
                "ok"
            }),
        )
        .with_state(texted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/sms"), texted)
}
