//! The grid beyond its layer as the gateway serves it: the routes, the
//! JSON a caller reads (masked where grid masks), base64 photos, streamed
//! uploads with their progress, and how grid's refusals become HTTP
//! answers. Grid's rules are tested in `services/grid/tests/api`; what
//! stays here needs the whole stack (a whistle that intake makes a ticket
//! and dispatch routes, a broadcast notification sends) or is the
//! gateway's own (categories checked against intake's tree).

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack};

const ZS: &str = "370202006001";
const OTHER: &str = "370202006002";

fn square(code: &str, kind: &str, community: &str, x0: f64, y0: f64, x1: f64, y1: f64) -> Value {
    json!({
        "type": "Feature",
        "properties": {"code": code, "name": format!("{code}网格"), "kind": kind, "community_code": community},
        "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}
    })
}

fn layer(features: Vec<Value>) -> String {
    json!({"type": "FeatureCollection", "features": features}).to_string()
}

async fn send(
    s: &Stack,
    method: reqwest::Method,
    token: &str,
    path: &str,
    content_type: &str,
    body: String,
) -> (StatusCode, Value) {
    let resp = s
        .http
        .request(method, s.url(path))
        .bearer_auth(token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// G1 and G2 side by side in 燕儿岛 community, G3 in the next community.
async fn two_grids(s: &Stack) {
    let l = layer(vec![
        square("G1", "basic", ZS, 120.38, 36.06, 120.40, 36.07),
        square("G2", "basic", ZS, 120.40, 36.06, 120.42, 36.07),
        square("G3", "basic", OTHER, 120.38, 36.07, 120.40, 36.08),
    ]);
    let (status, v) = send(
        s,
        reqwest::Method::PUT,
        &s.admin(),
        "/api/v1/admin/grids",
        "application/geo+json",
        l,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// A worker with account `account`, assigned to `grid`; returns its id.
async fn worker(s: &Stack, account: &str, name: &str, grid: &str) -> String {
    let (status, w) = s
        .post_json(
            &s.admin(),
            "/api/v1/admin/grid-workers",
            json!({"account": account, "name": name, "phone": "13800138000", "kind": "full_time"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{w}");
    assert_eq!(w["phone"], "138****8000", "phones are masked");
    let id = w["id"].as_str().unwrap().to_owned();
    let (status, w) = s
        .post_json(
            &s.admin(),
            &format!("/api/v1/admin/grid-workers/{id}/assignments"),
            json!({"grid_code": grid}),
        )
        .await;
    assert_eq!(
        (status, w["grids"].clone()),
        (StatusCode::OK, json!([grid]))
    );
    id
}

fn q(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[tokio::test]
async fn a_split_merge_and_the_grid_page_over_http() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    worker(&s, "gw-1", "王海燕", "G1").await;
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let split = |token: String, parts: String| {
        let s = &s;
        async move {
            send(
                s,
                reqwest::Method::POST,
                &token,
                "/api/v1/admin/grids/G1/split",
                "application/geo+json",
                parts,
            )
            .await
        }
    };
    let (status, v) = split(
        admin.clone(),
        layer(vec![
            square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
            square("G1-B", "", ZS, 120.391, 36.06, 120.40, 36.07),
        ]),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("parts_geojson"))
    );
    assert!(
        v["message"].as_str().unwrap().contains("必须完整覆盖"),
        "{v}"
    );
    let (status, _) = split(gw.clone(), layer(vec![])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, change) = split(
        admin.clone(),
        layer(vec![
            square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
            square("G1-B", "", ZS, 120.39, 36.06, 120.40, 36.07),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(
        (change["ended"].clone(), change["created"].clone()),
        (json!(["G1"]), json!(["G1-A", "G1-B"]))
    );
    let at: DateTime<Utc> = change["at"].as_str().unwrap().parse().unwrap();

    let (_, now) = s.get(&gw, "/api/v1/locate?lat=36.065&lon=120.385").await;
    assert_eq!(now["grid"]["code"], "G1-A", "{now}");
    assert_eq!(now["staff"][0]["name"], "王海燕");
    assert_eq!(now["staff"][0]["phone"], "138****8000");
    // `as_of` travels as RFC 3339.
    let before = q(at - chrono::Duration::milliseconds(1));
    let (status, then) = s
        .get(
            &gw,
            &format!("/api/v1/locate?lat=36.065&lon=120.385&as_of={before}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["grid"]["code"], "G1", "as of before the split: {then}");
    let (status, _) = s
        .get(&gw, "/api/v1/locate?lat=36.065&lon=120.385&as_of=yesterday")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    let (status, old) = s.get(&gw, "/api/v1/grids/G1").await;
    assert_eq!(status, StatusCode::OK, "{old}");
    let last = &old["history"][0];
    assert_eq!(
        (last["ended_by"].as_str(), last["successors"].clone()),
        (Some("split"), json!(["G1-A", "G1-B"]))
    );
    assert!(old["geometry"].is_null(), "G1 no longer exists");
    let (status, _) = s.get(&gw, "/api/v1/grids/NOPE").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, v) = s
        .post_json(
            &admin,
            "/api/v1/admin/grids/merge",
            json!({"codes": ["G1-A", "G3"], "code": "M"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("codes")),
        "{v}"
    );
    let (status, merged) = s
        .post_json(
            &admin,
            "/api/v1/admin/grids/merge",
            json!({"codes": ["G1-A", "G1-B"], "code": "G1-A", "name": "燕儿岛合并网格"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    assert_eq!(merged["created"], json!(["G1-A"]));
}

#[tokio::test]
async fn pairs_and_buildings_go_in_as_csv_and_an_address_locates() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    let police = layer(vec![square(
        "JG-1",
        "professional",
        ZS,
        120.38,
        36.06,
        120.42,
        36.08,
    )]);
    let (status, _) = send(
        &s,
        reqwest::Method::PUT,
        &admin,
        "/api/v1/admin/grids",
        "application/geo+json",
        police,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let put_csv = |path: &'static str, csv: &'static str| {
        send(
            &s,
            reqwest::Method::PUT,
            &admin,
            path,
            "text/csv",
            csv.to_owned(),
        )
    };
    let (status, v) = put_csv(
        "/api/v1/admin/grid-pairs",
        "professional_code,basic_code\nJG-1,G1\nG2,JG-1\n",
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")),
        "{v}"
    );
    let (status, v) = put_csv(
        "/api/v1/admin/grid-pairs",
        "professional_code,basic_code\nJG-1,G1\nJG-1,G2\nJG-1,G3\n",
    )
    .await;
    assert_eq!(
        (status, v["pairs"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{v}"
    );
    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (_, jg) = s.get(&dispatcher, "/api/v1/grids/JG-1").await;
    assert_eq!(jg["paired"], json!(["G1", "G2", "G3"]));

    let (status, v) = put_csv(
        "/api/v1/admin/buildings",
        "code,address,lat,lon\nB-8,市南区燕儿岛路8号,36.0611,120.3801\nB-FAR,崂山区某路1号,36.2,120.6\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"buildings": 2, "outside": ["B-FAR"]}));
    let addr = "市南区 燕儿岛路８号3单元502";
    let (status, at) = s
        .get(
            &dispatcher,
            &format!("/api/v1/locate?address={}", urlencode(addr)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["grid"]["code"], "G1", "{at}");
    assert_eq!(
        at["building"],
        json!({"code": "B-8", "address": "市南区燕儿岛路8号"})
    );
    let (status, v) = s
        .get(
            &dispatcher,
            &format!("/api/v1/locate?address={}", urlencode("火星路1号")),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str(), v["field"].as_str()),
        (
            StatusCode::NOT_FOUND,
            Some("address_unknown"),
            Some("address")
        )
    );
    let (status, v) = s.get(&dispatcher, "/api/v1/locate").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("lat"))
    );
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn people_are_masked_over_http_and_whole_only_with_a_purpose() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    let worker_id = worker(&s, "gw-1", "王海燕", "G1").await;
    worker(&s, "gw-3", "李强", "G3").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let gw3 = s.keys.token("370202", &[Role::GridWorker], "gw-3");
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "sup-1");

    let rate = |token: String, body: Value| {
        let s = &s;
        let path = format!("/api/v1/grid-workers/{worker_id}/rating");
        async move { s.post_json(&token, &path, body).await }
    };
    let (status, _) = rate(gw1.clone(), json!({"stars": 5, "reason": "自评"})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = rate(supervisor.clone(), json!({"stars": 6, "reason": "x"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stars"))
    );
    let (status, w) = rate(
        supervisor.clone(),
        json!({"stars": 4, "reason": "走访到位，台账完整"}),
    )
    .await;
    assert_eq!((status, w["stars"].as_i64()), (StatusCode::OK, Some(4)));

    let (status, h) = s
        .post_json(
            &gw1,
            "/api/v1/households",
            json!({"grid_code": "G1", "room": "3单元502", "head_name": "张秀兰", "phone": "13912345678", "members": 1,
                "residents": [{"name": "张秀兰", "relation": "户主", "id_number": "370202194501011234", "birth_year": 1945}]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    assert_eq!(
        (h["head_name"].as_str(), h["phone"].as_str()),
        (Some("张**"), Some("139****5678"))
    );
    let person = json!({
        "grid_code": "G1", "household_id": h["id"], "category": "elderly_alone",
        "name": "张秀兰", "id_number": "370202194501011234", "phone": "13912345678",
        "address": "燕儿岛路8号3单元502", "note": "独居，患高血压"
    });
    let (status, v) = s
        .post_json(&gw3, "/api/v1/key-persons", person.clone())
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_your_grid")),
        "{v}"
    );
    let mut bad = person.clone();
    bad["id_number"] = json!("12345");
    let (status, v) = s.post_json(&gw1, "/api/v1/key-persons", bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("id_number"))
    );
    let (status, saved) = s.post_json(&gw1, "/api/v1/key-persons", person).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    assert_eq!(saved["name"], "张**");
    assert_eq!(saved["id_number"], "370202********1234");
    let id = saved["id"].as_str().unwrap().to_owned();

    let (status, homes) = s.get(&gw1, "/api/v1/households?grid_code=G1").await;
    assert_eq!(status, StatusCode::OK, "{homes}");
    assert_eq!(
        homes["households"][0]["residents"][0],
        json!({"name": "张**", "relation": "户主", "id_number": "370202********1234", "birth_year": 1945})
    );
    let (status, list) = s.get(&gw1, "/api/v1/key-persons").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["persons"][0]["phone"], "139****5678");
    let (status, v) = s.get(&gw1, &format!("/api/v1/key-persons/{id}")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, whole) = s
        .get(
            &gw1,
            &format!("/api/v1/key-persons/{id}?purpose=四必访走访"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{whole}");
    assert_eq!(
        (
            whole["name"].as_str(),
            whole["id_number"].as_str(),
            whole["note"].as_str()
        ),
        (
            Some("张秀兰"),
            Some("370202194501011234"),
            Some("独居，患高血压")
        )
    );
    let agent = s.agent();
    let (status, _) = s
        .get(&agent, &format!("/api/v1/key-persons/{id}?purpose=看看"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = s
        .get(&gw3, &format!("/api/v1/key-persons/{id}?purpose=走访"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let takeover = json!({"grid_code": "G3", "category": "elderly_alone", "name": "张秀兰"});
    let (status, _) = s
        .put_json(&gw3, &format!("/api/v1/key-persons/{id}"), takeover)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, reads) = s
        .get(
            &admin,
            &format!("/api/v1/admin/personal-data-reads?subject_id={id}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reads}");
    let whats: Vec<(&str, &str, &str)> = reads["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["reader"].as_str().unwrap(),
                r["what"].as_str().unwrap(),
                r["purpose"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        whats,
        vec![
            ("gw-1", "key_person", "四必访走访"),
            ("gw-1", "key_persons", "list")
        ]
    );
    let (status, _) = s.get(&gw1, "/api/v1/admin/personal-data-reads").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_check_in_sends_its_photo_as_base64() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    worker(&s, "gw-1", "王海燕", "G1").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, h) = s
        .post_json(
            &gw1,
            "/api/v1/households",
            json!({"grid_code": "G1", "room": "101", "head_name": "赵一", "phone": "13700000001", "members": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");

    let (status, rules) = s.get(&admin, "/api/v1/admin/duty-rules").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(rules["rules"].as_array().unwrap().len(), 5, "{rules}");
    let (status, v) = s
        .put_json(
            &admin,
            "/api/v1/admin/duty-rules",
            json!({"rules": [{"code": "x", "name": "x", "target": "household", "every": "fortnight"}]}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rules[0].every"))
    );
    let (status, g) = s
        .post_json(&admin, "/api/v1/admin/duties/generate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    // G1: its household and its patrol; G2, G3: patrols.
    assert_eq!(g["created"], 4, "{g}");

    let (status, tasks) = s.get(&gw1, "/api/v1/duty-tasks").await;
    assert_eq!(status, StatusCode::OK, "{tasks}");
    let household = tasks["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target_kind"] == "household")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let check_in = |body: Value| {
        let s = &s;
        let (token, path) = (
            gw1.clone(),
            format!("/api/v1/duty-tasks/{household}/check-in"),
        );
        async move { s.post_json(&token, &path, body).await }
    };
    let (status, v) = check_in(json!({"lat": 36.065, "lon": 120.411, "note": "已走访"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("position")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("在网格 G1 之外"),
        "{v}"
    );
    // A GIF: grid takes JPEG and PNG only.
    let (status, v) =
        check_in(json!({"lat": 36.065, "lon": 120.385, "photo_base64": "R0lGODlh"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("photo"))
    );
    let (status, v) =
        check_in(json!({"lat": 36.065, "lon": 120.385, "photo_base64": "not base64!"})).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("photo_base64"))
    );
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let (status, done) = check_in(
        json!({"lat": 36.07018, "lon": 120.385, "note": "已入户走访，家中无异常", "photo_base64": png}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["done_at"].is_string() && done["has_photo"] == true);
    let d = done["distance_m"].as_f64().unwrap();
    assert!((15.0..25.0).contains(&d), "{d}");
    let (status, v) = check_in(json!({"lat": 36.065, "lon": 120.385})).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_done"))
    );

    let period = chrono::Utc::now()
        .with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap())
        .format("%Y-%m")
        .to_string();
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "sup-1");
    let (status, by_grid) = s
        .get(
            &supervisor,
            &format!("/api/v1/duties/compliance?period={period}&by=grid"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_grid}");
    let g1 = by_grid["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == "G1")
        .cloned()
        .unwrap();
    assert_eq!(
        (g1["done"].as_u64(), g1["on_time"].as_u64()),
        (Some(1), Some(1)),
        "{by_grid}"
    );
    let (status, _) = s
        .get(&gw1, &format!("/api/v1/duties/compliance?period={period}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_whistled_event_becomes_a_ticket_that_dispatch_routes() {
    let s = stack().await;
    two_grids(&s).await;
    worker(&s, "gw-1", "王海燕", "G1").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let report = |token: String, key: &'static str, content: &'static str| {
        let s = &s;
        async move {
            s.post_json(
                &token,
                "/api/v1/grid-events",
                json!({"lat": 36.065, "lon": 120.385, "content": content, "idempotency_key": key}),
            )
            .await
        }
    };
    let (status, first) = report(gw1.clone(), "k1", "3号楼东侧消防通道被杂物堵塞").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["grid_code"].as_str(), first["status"].as_str()),
        (Some("G1"), Some("reported"))
    );
    let id1 = first["id"].as_str().unwrap().to_owned();

    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, _) = s
        .post_json(
            &dispatcher,
            &format!("/api/v1/grid-events/{id1}/close"),
            json!({"result": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, closed) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id1}/close"),
            json!({"result": "已联系物业清理，通道恢复畅通"}),
        )
        .await;
    assert_eq!(
        (status, closed["status"].as_str()),
        (StatusCode::OK, Some("closed")),
        "{closed}"
    );
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id1}/whistle"),
            json!({"level": 2, "category": "SH01", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("illegal_transition"))
    );

    // A matter the grid cannot settle: whistled up to the street (L3).
    let (_, second) = report(
        gw1.clone(),
        "k2",
        "小区门口路面塌陷约两平方米，需住建部门处置",
    )
    .await;
    let id2 = second["id"].as_str().unwrap().to_owned();
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": 3, "reason": "涉及多部门"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("category"))
    );
    for group_or_detailed in ["SH", "CG02"] {
        let (status, v) = s
            .post_json(
                &gw1,
                &format!("/api/v1/grid-events/{id2}/whistle"),
                json!({"level": 3, "category": group_or_detailed, "reason": "涉及多部门"}),
            )
            .await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("category")),
            "{group_or_detailed}: {v}"
        );
    }
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": 3, "category": "SH", "reason": "涉及多部门"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("category")),
        "a group is no category for a ticket: {v}"
    );
    let (status, w) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": 3, "category": "SH01", "reason": "涉及多部门，网格内无法解决"}),
        )
        .await;
    assert_eq!(
        (status, w["status"].as_str()),
        (StatusCode::OK, Some("whistled")),
        "{w}"
    );

    // Intake makes it a ticket (channel grid); grid learns its number.
    let event = wait_until(Duration::from_secs(30), "the whistle's ticket", || async {
        let (_, e) = s.get(&gw1, &format!("/api/v1/grid-events/{id2}")).await;
        (e["tracking_no"].as_str().is_some_and(|t| !t.is_empty())).then_some(e)
    })
    .await;
    let ticket_id = event["ticket_id"].as_str().unwrap().to_owned();
    let (_, ticket) = s
        .get(&s.agent(), &format!("/api/v1/tickets/{ticket_id}"))
        .await;
    assert_eq!(ticket["channel"], "grid", "{ticket}");
    assert_eq!(ticket["tracking_no"], event["tracking_no"]);
    assert!(
        ticket["content"].as_str().unwrap().contains("路面塌陷"),
        "{ticket}"
    );
    // One number means one level: the event and its work order both say 3.
    assert_eq!(event["level"], 3, "{event}");
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": "L3", "category": "SH01", "reason": "x"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": 5, "category": "SH01", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("level")),
        "{v}"
    );
    // Dispatch starts its work order at the chosen level.
    let wo = wait_until(Duration::from_secs(30), "the work order", || async {
        let (_, t) = s
            .get(&s.agent(), &format!("/api/v1/tickets/{ticket_id}"))
            .await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let (status, order) = s
        .get(&dispatcher, &format!("/api/v1/work-orders/{wo}"))
        .await;
    assert_eq!(
        (status, order["level"].as_u64()),
        (StatusCode::OK, Some(3)),
        "{order}"
    );

    // One open, one closed in the grid, one whistled: half closed in the grid.
    report(gw1.clone(), "k3", "楼道灯不亮").await;
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "sup-1");
    let from = q(Utc::now() - chrono::Duration::hours(1));
    let to = q(Utc::now() + chrono::Duration::hours(1));
    let (status, stats) = s
        .get(
            &supervisor,
            &format!("/api/v1/grid-events/stats?from={from}&to={to}&by=street"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{stats}");
    assert_eq!(
        stats["rows"],
        json!([{"key": "370202006", "reported": 3, "closed_in_grid": 1, "whistled": 1, "open": 1, "share_closed_in_grid": 0.5}])
    );
    let (status, _) = s
        .get(
            &gw1,
            &format!("/api/v1/grid-events/stats?from={from}&to={to}"),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, mine) = s.get(&gw1, "/api/v1/grid-events?status=reported").await;
    assert_eq!(mine["events"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_broadcast_reaches_each_grids_residents_through_notification() {
    let s = stack().await;
    two_grids(&s).await;
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "sup-1");
    let body = json!({"region_codes": [ZS], "grid_codes": ["G3"], "kind": "emergency",
        "title": "台风预警", "body": "今晚有台风，请居民关好门窗，非必要不外出。"});
    let (status, v) = s
        .post_json(&supervisor, "/api/v1/broadcasts", body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["grid_codes"], json!(["G1", "G2", "G3"]));
    // Notification turns it into a message to each grid's residents' group.
    for grid in ["G1", "G2", "G3"] {
        let n = wait_until(Duration::from_secs(20), "the broadcast notice", || async {
            let (_, v) = s
                .get(
                    &supervisor,
                    &format!("/api/v1/notifications?recipient_id={grid}"),
                )
                .await;
            v["notifications"]
                .as_array()
                .and_then(|a| a.first().cloned())
        })
        .await;
        assert_eq!(n["title"], "【紧急通知】台风预警", "{n}");
        assert_eq!(n["recipient_kind"], "grid_group", "{n}");
    }
    // Its progress, as the supervisor follows it: three groups, all sent.
    let path = format!("/api/v1/broadcasts/{}/delivery", v["id"].as_str().unwrap());
    let progress = wait_until(Duration::from_secs(20), "the broadcast sent", || async {
        let (_, p) = s.get(&supervisor, &path).await;
        (p["sent"] == 3).then_some(p)
    })
    .await;
    assert_eq!(
        (progress["total"].as_i64(), progress["failed"].as_i64()),
        (Some(3), Some(0))
    );
    let (status, _) = s.get(&supervisor, "/api/v1/broadcasts/nope/delivery").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

/// A layer of `n` basic grids in rows of 50 (0.001° squares).
fn many(n: usize) -> String {
    let features: Vec<Value> = (0..n)
        .map(|i| {
            let (x0, y0) = (
                120.30 + (i % 50) as f64 * 0.001,
                36.04 + (i / 50) as f64 * 0.001,
            );
            square(
                &format!("S{i:05}"),
                "basic",
                ZS,
                x0,
                y0,
                x0 + 0.001,
                y0 + 0.001,
            )
        })
        .collect();
    layer(features)
}

#[tokio::test]
async fn a_large_layer_streams_in_over_http_with_its_progress() {
    let s = stack().await;
    let admin = s.admin();
    let text = many(3000);
    let half = text.len() / 2;
    let id = uuid::Uuid::new_v4().to_string();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let upload = {
        let req = s
            .http
            .put(s.url(&format!("/api/v1/admin/grid-imports/{id}")))
            .bearer_auth(&admin)
            .header("content-type", "application/geo+json")
            .header("content-length", text.len().to_string())
            .body(body);
        tokio::spawn(async move { req.send().await })
    };
    for c in text.as_bytes()[..half].chunks(16 * 1024) {
        tx.send(Ok(c.to_vec())).await.unwrap();
    }
    // Half sent: the import is under way, its features counted as they come.
    let during = wait_until(Duration::from_secs(20), "progress", || async {
        let (status, v) = s
            .get(&admin, &format!("/api/v1/admin/grid-imports/{id}"))
            .await;
        (status == StatusCode::OK && v["features_read"].as_u64().unwrap_or(0) > 100).then_some(v)
    })
    .await;
    assert_eq!(during["status"], "receiving", "{during}");
    let progress = during["progress"].as_f64().unwrap();
    assert!(progress > 0.2 && progress <= 0.5 + 1e-9, "{during}");
    assert!(during["features_read"].as_u64().unwrap() < 3000);
    for c in text.as_bytes()[half..].chunks(16 * 1024) {
        tx.send(Ok(c.to_vec())).await.unwrap();
    }
    drop(tx);
    let resp = upload.await.unwrap().unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let done: Value = resp.json().await.unwrap();
    assert_eq!(
        (
            done["status"].as_str(),
            done["created"].as_u64(),
            done["features_read"].as_u64()
        ),
        (Some("done"), Some(3000), Some(3000)),
        "{done}"
    );
    assert_eq!(done["progress"], 1.0);
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (_, at) = s.get(&gw, "/api/v1/locate?lat=36.0405&lon=120.3005").await;
    assert_eq!(at["grid"]["code"], "S00000");

    // The export streams back a page at a time: the same 3,000 grids.
    let exported: Value = s
        .http
        .get(s.url("/api/v1/admin/grids"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let features = exported["features"].as_array().unwrap();
    assert_eq!(features.len(), 3000);
    assert_eq!(features[2999]["properties"]["code"], "S02999");

    // The same id again, and a layer that breaks the rules: refused, nothing stored.
    let put = |id: String, body: String| {
        let s = &s;
        let admin = admin.clone();
        async move {
            send(
                s,
                reqwest::Method::PUT,
                &admin,
                &format!("/api/v1/admin/grid-imports/{id}"),
                "application/geo+json",
                body,
            )
            .await
        }
    };
    let (status, v) = put(id.clone(), many(1)).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("import_exists"))
    );
    let overlapping = layer(vec![square(
        "X1", "basic", ZS, 120.3005, 36.0405, 120.3015, 36.0415,
    )]);
    let bad = uuid::Uuid::new_v4().to_string();
    let (status, v) = put(bad.clone(), overlapping).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["message"].as_str().unwrap().contains("相互重叠"), "{v}");
    let (_, job) = s
        .get(&admin, &format!("/api/v1/admin/grid-imports/{bad}"))
        .await;
    assert_eq!(job["status"], "failed");
    let (status, v) = put(
        uuid::Uuid::new_v4().to_string(),
        "{\"type\":\"FeatureCollection\",\"features\":[".into(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Nothing refused was stored.
    let (_, x1) = s.get(&admin, "/api/v1/grids/X1").await;
    assert_eq!(x1["code"], "not_found", "{x1}");
}
