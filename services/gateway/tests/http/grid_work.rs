//! The grid beyond its layer, through the public API: history (split,
//! merge, "as of"), pairs and the building registry, workers, key persons,
//! duties and check-ins, grid events closed or whistled up, broadcasts.

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

async fn published(s: &Stack, event: &str) -> i64 {
    let sql = format!(
        "SELECT count(*) FROM bus_outbox WHERE event = 'grid.{event}' AND published_at IS NOT NULL"
    );
    wait_until(Duration::from_secs(20), event, || async {
        let n: i64 = s.grid_scalar(&sql).await;
        (n > 0).then_some(n)
    })
    .await
}

#[tokio::test]
async fn a_split_keeps_history_and_as_of_lookups_answer_with_the_old_grid() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    worker(&s, "gw-1", "王海燕", "G1").await;
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let split = |parts: String| {
        send(
            &s,
            reqwest::Method::POST,
            &admin,
            "/api/v1/admin/grids/G1/split",
            "application/geo+json",
            parts,
        )
    };

    // Parts that leave a gap, reach outside, or reuse a grid's code.
    let (status, v) = split(layer(vec![
        square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G1-B", "", ZS, 120.391, 36.06, 120.40, 36.07),
    ]))
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("parts_geojson"))
    );
    assert!(
        v["message"].as_str().unwrap().contains("must cover all"),
        "{v}"
    );
    let (status, v) = split(layer(vec![
        square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G2", "", ZS, 120.39, 36.06, 120.41, 36.07),
    ]))
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("reaches outside") && msg.contains("already a grid"),
        "{v}"
    );
    let (status, _) = send(
        &s,
        reqwest::Method::POST,
        &gw,
        "/api/v1/admin/grids/G1/split",
        "application/geo+json",
        layer(vec![]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let (status, change) = split(layer(vec![
        square("G1-A", "", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G1-B", "", ZS, 120.39, 36.06, 120.40, 36.07),
    ]))
    .await;
    assert_eq!(status, StatusCode::OK, "{change}");
    assert_eq!(
        (change["ended"].clone(), change["created"].clone()),
        (json!(["G1"]), json!(["G1-A", "G1-B"]))
    );
    let at: DateTime<Utc> = change["at"].as_str().unwrap().parse().unwrap();

    let (_, now) = s.get(&gw, "/api/v1/locate?lat=36.065&lon=120.385").await;
    assert_eq!(now["grid"]["code"], "G1-A", "{now}");
    assert_eq!(
        now["staff"][0]["name"], "王海燕",
        "the worker serves the parts"
    );
    assert_eq!(now["staff"][0]["phone"], "138****8000");
    let before = q(at - chrono::Duration::milliseconds(1));
    let (status, then) = s
        .get(
            &gw,
            &format!("/api/v1/locate?lat=36.065&lon=120.385&as_of={before}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{then}");
    assert_eq!(then["grid"]["code"], "G1", "as of before the split: {then}");
    assert_eq!(then["community_code"], ZS);
    let (_, at_split) = s
        .get(
            &gw,
            &format!("/api/v1/locate?lat=36.065&lon=120.395&as_of={}", q(at)),
        )
        .await;
    assert_eq!(at_split["grid"]["code"], "G1-B");
    let long_ago = q(at - chrono::Duration::days(365));
    let (_, nothing) = s
        .get(
            &gw,
            &format!("/api/v1/locate?lat=36.065&lon=120.385&as_of={long_ago}"),
        )
        .await;
    assert!(nothing["grid"].is_null(), "no grid a year ago: {nothing}");

    let (status, old) = s.get(&gw, "/api/v1/grids/G1").await;
    assert_eq!(status, StatusCode::OK, "{old}");
    let last = &old["history"][0];
    assert_eq!(
        (last["ended_by"].as_str(), last["successors"].clone()),
        (Some("split"), json!(["G1-A", "G1-B"]))
    );
    assert!(old["geometry"].is_null(), "G1 no longer exists");
    let (_, b) = s.get(&gw, "/api/v1/grids/G1-B").await;
    assert_eq!(b["history"][0]["predecessors"], json!(["G1"]));

    // Merge the parts back under a new code; grids of another community refuse.
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
    // Merged back under one of the parts' codes: the code goes on, with a
    // new version, and keeps its worker.
    let (status, merged) = s
        .post_json(
            &admin,
            "/api/v1/admin/grids/merge",
            json!({"codes": ["G1-A", "G1-B"], "code": "G1-A", "name": "燕儿岛合并网格"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{merged}");
    let (_, now) = s.get(&gw, "/api/v1/locate?lat=36.065&lon=120.395").await;
    assert_eq!(now["grid"]["code"], "G1-A");
    assert_eq!(now["grid"]["name"], "燕儿岛合并网格");
    assert_eq!(
        now["staff"][0]["name"], "王海燕",
        "the kept code keeps its worker"
    );
    let (_, m) = s.get(&gw, "/api/v1/grids/G1-A").await;
    let versions = m["history"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{m}");
    assert_eq!(
        (
            versions[0]["ended_by"].as_str(),
            versions[1]["cause"].as_str()
        ),
        (Some("merged"), Some("merge"))
    );
    assert_eq!(versions[1]["predecessors"], json!(["G1-A", "G1-B"]));
    let (_, between) = s
        .get(
            &gw,
            &format!("/api/v1/locate?lat=36.065&lon=120.395&as_of={}", q(at)),
        )
        .await;
    assert_eq!(
        between["grid"]["code"], "G1-B",
        "as of the split, before the merge"
    );

    assert_eq!(published(&s, "grid.split").await, 1);
    assert_eq!(published(&s, "grid.merged").await, 1);
    assert!(published(&s, "worker.assigned").await >= 1);
}

#[tokio::test]
async fn pairs_and_the_building_registry_locate_without_coordinates() {
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
        "professional_code,basic_code\nJG-1,G1\nG2,JG-1\nJG-1,NOPE\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("line 3: G2 is not a professional grid") && msg.contains("NOPE"),
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
    let (_, g1) = s.get(&dispatcher, "/api/v1/grids/G1").await;
    assert_eq!(g1["paired"], json!(["JG-1"]));
    let (_, jg) = s.get(&dispatcher, "/api/v1/grids/JG-1").await;
    assert_eq!(jg["paired"], json!(["G1", "G2", "G3"]));

    let (status, v) = put_csv(
        "/api/v1/admin/buildings",
        "code,address,lat,lon\nB-8,市南区燕儿岛路8号,36.0611,120.3801\nB-FAR,崂山区某路1号,36.2,120.6\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["outside"],
        json!(["B-FAR"]),
        "a building outside every grid is named"
    );
    let (status, bad) = put_csv("/api/v1/admin/buildings", "code,address\nB-1,x\n").await;
    assert_eq!(
        (status, bad["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv"))
    );
    let addr = "市南区 燕儿岛路８号3单元502";
    let (status, at) = s
        .get(
            &dispatcher,
            &format!("/api/v1/locate?address={}", urlencode(addr)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["grid"]["code"], "G1", "{at}");
    assert_eq!(at["building"]["code"], "B-8");
    assert_eq!(at["professional"][0]["code"], "JG-1");
    let (status, v) = s
        .get(
            &dispatcher,
            &format!("/api/v1/locate?address={}", urlencode("火星路1号")),
        )
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("address_unknown"))
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
async fn key_persons_are_sealed_masked_audited_and_hidden_from_other_roles() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    let worker_id = worker(&s, "gw-1", "王海燕", "G1").await;
    worker(&s, "gw-3", "李强", "G3").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let gw3 = s.keys.token("370202", &[Role::GridWorker], "gw-3");
    let supervisor = s.keys.token("370202", &[Role::Supervisor], "sup-1");

    // Stars: supervisors rate, workers do not.
    let (status, _) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-workers/{worker_id}/rating"),
            json!({"stars": 5, "reason": "自评"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = s
        .post_json(
            &supervisor,
            &format!("/api/v1/grid-workers/{worker_id}/rating"),
            json!({"stars": 6, "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("stars"))
    );
    let (status, w) = s
        .post_json(
            &supervisor,
            &format!("/api/v1/grid-workers/{worker_id}/rating"),
            json!({"stars": 4, "reason": "走访到位，台账完整"}),
        )
        .await;
    assert_eq!((status, w["stars"].as_i64()), (StatusCode::OK, Some(4)));
    let (_, list) = s
        .get(&supervisor, "/api/v1/grid-workers?grid_code=G1")
        .await;
    assert_eq!(list["workers"].as_array().unwrap().len(), 1);

    // The grid's worker registers a household and an elderly resident.
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

    // Sealed at rest: the plaintext is nowhere in grid's tables.
    let leaked: i64 = s
        .grid_scalar(
            "SELECT count(*) FROM key_persons WHERE name_enc LIKE '%张秀兰%' \
             OR id_number_enc LIKE '%370202194501011234%' OR phone_enc LIKE '%13912345678%'",
        )
        .await;
    assert_eq!(leaked, 0);
    let leaked: i64 = s
        .grid_scalar("SELECT count(*) FROM households WHERE head_name_enc LIKE '%张秀兰%'")
        .await;
    assert_eq!(leaked, 0);
    let leaked: i64 = s
        .grid_scalar(
            "SELECT count(*) FROM households WHERE residents_enc LIKE '%370202194501011234%'",
        )
        .await;
    assert_eq!(leaked, 0);
    let (status, homes) = s.get(&gw1, "/api/v1/households?grid_code=G1").await;
    assert_eq!(status, StatusCode::OK, "{homes}");
    assert_eq!(
        homes["households"][0]["residents"][0],
        json!({"name": "张**", "relation": "户主", "id_number": "370202********1234", "birth_year": 1945})
    );
    let (status, _) = s.get(&gw3, "/api/v1/households?grid_code=G1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // The list is masked; the whole record needs a purpose and is recorded.
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

    // Roles that do not need key persons never see them.
    for role in [Role::Agent, Role::Dispatcher, Role::Handler, Role::Citizen] {
        let token = s.keys.token("370202", &[role], "someone");
        let (status, v) = s
            .get(&token, &format!("/api/v1/key-persons/{id}?purpose=看看"))
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}: {v}");
        let (status, _) = s.get(&token, "/api/v1/key-persons").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
    }
    // Another grid's worker: not in their list, not readable.
    let (status, _) = s.get(&gw3, "/api/v1/key-persons?grid_code=G1").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, theirs) = s.get(&gw3, "/api/v1/key-persons").await;
    assert_eq!(theirs["persons"], json!([]));
    let (status, _) = s
        .get(&gw3, &format!("/api/v1/key-persons/{id}?purpose=走访"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Nor may they move the person into their own grid.
    let mut takeover = json!({"grid_code": "G3", "category": "elderly_alone", "name": "张秀兰"});
    let (status, _) = s
        .put_json(&gw3, &format!("/api/v1/key-persons/{id}"), takeover.clone())
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    takeover["grid_code"] = json!("G1");
    let (status, moved) = s
        .put_json(&admin, &format!("/api/v1/key-persons/{id}"), takeover)
        .await;
    assert_eq!(
        (status, moved["grid_code"].as_str()),
        (StatusCode::OK, Some("G1")),
        "{moved}"
    );
    // A supervisor of the next community sees only its grids.
    let next_door = s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "sup-2".into(),
        tenant: "370202".into(),
        scope: Some(OTHER.into()),
        roles: vec![Role::Supervisor],
        unit: None,
        grids: vec![],
        ttl: Duration::from_secs(600),
    });
    let (status, _) = s
        .get(
            &next_door,
            &format!("/api/v1/key-persons/{id}?purpose=核查"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, theirs) = s.get(&next_door, "/api/v1/key-persons").await;
    assert_eq!(theirs["persons"], json!([]));
    // Another tenant sees nothing either.
    let laoshan = s.keys.token("370212", &[Role::TenantAdmin], "admin-ls");
    let (status, _) = s
        .get(&laoshan, &format!("/api/v1/key-persons/{id}?purpose=x"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Every read is on record, with who and why; refusals read nothing.
    let (status, reads) = s
        .get(
            &admin,
            &format!("/api/v1/admin/personal-data-reads?subject_id={id}"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{reads}");
    let reads = reads["reads"].as_array().unwrap();
    let whats: Vec<(&str, &str, &str)> = reads
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
async fn duties_are_generated_and_a_check_in_outside_the_grid_is_refused() {
    let s = stack().await;
    two_grids(&s).await;
    let admin = s.admin();
    let school = layer(vec![square(
        "XX-1",
        "dedicated",
        ZS,
        120.385,
        36.062,
        120.386,
        36.063,
    )]);
    send(
        &s,
        reqwest::Method::PUT,
        &admin,
        "/api/v1/admin/grids",
        "application/geo+json",
        school,
    )
    .await;
    let worker_id = worker(&s, "gw-1", "王海燕", "G1").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, h) = s
        .post_json(
            &gw1,
            "/api/v1/households",
            json!({"grid_code": "G1", "room": "101", "head_name": "赵一", "phone": "13700000001", "members": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    let (status, _) = s
        .post_json(
            &gw1,
            "/api/v1/key-persons",
            json!({"grid_code": "G1", "category": "disabled", "name": "钱二"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);

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
    // G1: its household (monthly), its key person (四必访, weekly), the
    // school inside it (daily), its patrol (weekly); G2, G3: patrols.
    assert_eq!(g["created"], 6, "{g}");
    let (_, again) = s
        .post_json(&admin, "/api/v1/admin/duties/generate", json!({}))
        .await;
    assert_eq!(again["created"], 0, "generating twice creates nothing more");

    let (status, tasks) = s.get(&gw1, "/api/v1/duty-tasks").await;
    assert_eq!(status, StatusCode::OK, "{tasks}");
    let tasks = tasks["tasks"].as_array().unwrap().clone();
    let mut kinds: Vec<&str> = tasks
        .iter()
        .map(|t| t["target_kind"].as_str().unwrap())
        .collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        vec!["household", "key_person", "key_place", "patrol"]
    );
    let labels: Vec<&str> = tasks
        .iter()
        .map(|t| t["target_label"].as_str().unwrap())
        .collect();
    assert!(labels.contains(&"重点人员走访（残疾人）"), "{labels:?}");
    assert!(labels.contains(&"重点场所巡查（XX-1网格）"), "{labels:?}");
    let household = tasks
        .iter()
        .find(|t| t["target_kind"] == "household")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let check_in = |id: String, body: Value| {
        let token = gw1.clone();
        let s = &s;
        async move {
            s.post_json(&token, &format!("/api/v1/duty-tasks/{id}/check-in"), body)
                .await
        }
    };

    // 1 km east of the grid: refused, naming the distance.
    let (status, v) = check_in(
        household.clone(),
        json!({"lat": 36.065, "lon": 120.411, "note": "已走访"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("position")),
        "{v}"
    );
    assert!(
        v["message"].as_str().unwrap().contains("outside grid G1"),
        "{v}"
    );
    // Not an image.
    let (status, v) = check_in(
        household.clone(),
        json!({"lat": 36.065, "lon": 120.385, "photo_base64": "R0lGODlh"}),
    )
    .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("photo"))
    );
    // Another grid's worker may not.
    worker(&s, "gw-3", "李强", "G3").await;
    let gw3 = s.keys.token("370202", &[Role::GridWorker], "gw-3");
    let (status, _) = s
        .post_json(
            &gw3,
            &format!("/api/v1/duty-tasks/{household}/check-in"),
            json!({"lat": 36.065, "lon": 120.385}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // 20 m north of the edge, with a PNG: within the tolerance.
    let png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let (status, done) = check_in(
        household.clone(),
        json!({"lat": 36.07018, "lon": 120.385, "note": "已入户走访，家中无异常", "photo_base64": png}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["done_at"].is_string() && done["has_photo"] == true);
    let d = done["distance_m"].as_f64().unwrap();
    assert!((15.0..25.0).contains(&d), "{d}");
    let (status, v) = check_in(household, json!({"lat": 36.065, "lon": 120.385})).await;
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
    let (_, by_worker) = s
        .get(
            &supervisor,
            &format!("/api/v1/duties/compliance?period={period}&by=worker"),
        )
        .await;
    let me = by_worker["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key"] == worker_id.as_str())
        .cloned()
        .unwrap();
    assert_eq!(
        (me["name"].as_str(), me["done"].as_u64()),
        (Some("王海燕"), Some(1))
    );
    let (status, v) = s
        .get(&supervisor, "/api/v1/duties/compliance?period=last-month")
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("period"))
    );
    let (status, _) = s
        .get(&gw1, &format!("/api/v1/duties/compliance?period={period}"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn grid_events_close_in_the_grid_or_whistle_up_to_a_ticket() {
    let s = stack().await;
    two_grids(&s).await;
    worker(&s, "gw-1", "王海燕", "G1").await;
    worker(&s, "gw-3", "李强", "G3").await;
    let gw1 = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let gw3 = s.keys.token("370202", &[Role::GridWorker], "gw-3");
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
    let (status, v) = report(gw3.clone(), "k0", "不在我的网格").await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("not_your_grid"))
    );
    let (status, first) = report(gw1.clone(), "k1", "3号楼东侧消防通道被杂物堵塞").await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(
        (first["grid_code"].as_str(), first["status"].as_str()),
        (Some("G1"), Some("reported"))
    );
    let (_, again) = report(gw1.clone(), "k1", "3号楼东侧消防通道被杂物堵塞").await;
    assert_eq!(again["id"], first["id"], "a retry is the same event");
    let id1 = first["id"].as_str().unwrap().to_owned();

    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    for token in [&gw3, &dispatcher] {
        let (status, _) = s
            .post_json(
                token,
                &format!("/api/v1/grid-events/{id1}/close"),
                json!({"result": "x"}),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "only the grid's people close its matters"
        );
    }
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
            json!({"level": "L2", "category": "SH01", "reason": "x"}),
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
            json!({"level": "L9", "category": "SH01", "reason": "x"}),
        )
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("level"))
    );
    let (status, v) = s
        .post_json(
            &gw1,
            &format!("/api/v1/grid-events/{id2}/whistle"),
            json!({"level": "L3", "reason": "涉及多部门"}),
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
                json!({"level": "L3", "category": group_or_detailed, "reason": "涉及多部门"}),
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
            json!({"level": "L3", "category": "SH", "reason": "涉及多部门"}),
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
            json!({"level": "L3", "category": "SH01", "reason": "涉及多部门，网格内无法解决"}),
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
    // Dispatch starts its work order at the chosen level.
    let level = wait_until(Duration::from_secs(30), "the work order", || async {
        let n = s
            .dispatch_count(&format!(
                "SELECT count(*) FROM work_orders WHERE ticket_id = '{ticket_id}' AND level = 3"
            ))
            .await;
        (n == 1).then_some(n)
    })
    .await;
    assert_eq!(level, 1);

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
    assert_eq!(published(&s, "grid_event.whistled").await, 1);
    assert_eq!(published(&s, "grid_event.closed").await, 1);
}

#[tokio::test]
async fn a_broadcast_names_the_grids_it_reaches() {
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
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, _) = s.post_json(&gw, "/api/v1/broadcasts", body.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let mut unknown = body.clone();
    unknown["grid_codes"] = json!(["NOPE"]);
    let (status, v) = s
        .post_json(&supervisor, "/api/v1/broadcasts", unknown)
        .await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("grid_codes[0]"))
    );
    assert_eq!(published(&s, "broadcast.requested").await, 1);
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
async fn a_large_layer_streams_in_with_its_progress_visible() {
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
    assert!(v["message"].as_str().unwrap().contains("overlap"), "{v}");
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
    let total: i64 = s.grid_scalar("SELECT count(*) FROM grids").await;
    assert_eq!(total, 3000);
}
