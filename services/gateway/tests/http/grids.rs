//! Grid layers and locating a point, through the public API.

use jiesu_auth::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack};

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

async fn import(s: &Stack, token: &str, body: String) -> (StatusCode, Value) {
    let resp = s
        .http
        .put(s.url("/api/v1/admin/grids"))
        .bearer_auth(token)
        .header("content-type", "application/geo+json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const ZS: &str = "370202006001";

#[tokio::test]
async fn a_layer_is_imported_exported_and_locates_points() {
    let s = stack().await;
    let l = layer(vec![
        square("G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G2", "basic", ZS, 120.39, 36.06, 120.40, 36.07),
        square("M1", "micro", ZS, 120.381, 36.061, 120.382, 36.062),
        square("P1", "professional", ZS, 120.37, 36.05, 120.41, 36.08),
    ]);
    let (status, v) = import(&s, &s.admin(), l).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"created": 4, "updated": 0, "total": 4}));
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, at) = s
        .get(&grid, "/api/v1/locate?lat=36.0615&lon=120.3815")
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(at["grid"]["code"], "G1");
    assert_eq!(at["grid"]["name"], "G1网格");
    assert_eq!(at["micro"]["code"], "M1");
    assert_eq!(at["professional"][0]["code"], "P1");
    assert_eq!(
        (
            at["community_code"].as_str(),
            at["street_code"].as_str(),
            at["county_code"].as_str()
        ),
        (Some(ZS), Some("370202006"), Some("370202"))
    );
    let (_, at) = s.get(&grid, "/api/v1/locate?lat=36.065&lon=120.395").await;
    assert_eq!(at["grid"]["code"], "G2");
    let (_, nowhere) = s.get(&grid, "/api/v1/locate?lat=36.2&lon=120.9").await;
    assert!(
        nowhere["grid"].is_null() && nowhere["community_code"] == "",
        "{nowhere}"
    );

    // Re-importing one grid with a new shape updates it.
    let moved = layer(vec![square(
        "G2", "basic", ZS, 120.39, 36.06, 120.41, 36.07,
    )]);
    let (status, v) = import(&s, &s.admin(), moved).await;
    assert_eq!(
        (status, v["updated"].as_u64(), v["total"].as_u64()),
        (StatusCode::OK, Some(1), Some(4)),
        "{v}"
    );
    let (_, at) = s.get(&grid, "/api/v1/locate?lat=36.065&lon=120.405").await;
    assert_eq!(at["grid"]["code"], "G2");

    let resp = s
        .http
        .get(s.url("/api/v1/admin/grids?kind=basic"))
        .bearer_auth(s.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/geo+json")
    );
    let fc: Value = resp.json().await.unwrap();
    let codes: Vec<&str> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["G1", "G2"]);
    // The export is the import format.
    let (status, v) = import(&s, &s.admin(), fc.to_string()).await;
    assert_eq!(
        (status, v["created"].as_u64()),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
}

#[tokio::test]
async fn bad_layers_are_refused_whole_with_each_problem_named() {
    let s = stack().await;
    let (status, v) = import(
        &s,
        &s.admin(),
        layer(vec![square(
            "G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07,
        )]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let mut open = square("G3", "basic", ZS, 120.0, 36.0, 120.1, 36.1);
    open["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap()
        .pop();
    let bowtie = json!({"type": "Feature", "properties": {"code": "G4", "community_code": ZS},
        "geometry": {"type": "Polygon", "coordinates": [[[120.0, 36.0], [120.1, 36.1], [120.1, 36.0], [120.0, 36.1], [120.0, 36.0]]]}});
    let (status, v) = import(&s, &s.admin(), layer(vec![open, bowtie])).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("geojson")),
        "{v}"
    );
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("features[0].geometry.coordinates[0]: the ring is not closed"),
        "{msg}"
    );
    assert!(
        msg.contains("features[1].geometry: invalid geometry"),
        "{msg}"
    );
    // Overlapping an existing basic grid of the same community.
    let (status, v) = import(
        &s,
        &s.admin(),
        layer(vec![square(
            "G5", "basic", ZS, 120.385, 36.065, 120.395, 36.075,
        )]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("basic grids G1 and G5 of one community overlap"),
        "{v}"
    );
    // Another tenant's community.
    let (status, v) = import(
        &s,
        &s.admin(),
        layer(vec![square(
            "G6",
            "basic",
            "370203001001",
            120.5,
            36.0,
            120.6,
            36.1,
        )]),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("not in the tenant's region"),
        "{v}"
    );
    let (status, _) = import(
        &s,
        &s.keys.token("370202", &[Role::Dispatcher], "d-1"),
        layer(vec![]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = import(&s, &s.admin(), "{not json".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // Nothing refused was kept.
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (_, at) = s.get(&grid, "/api/v1/locate?lat=36.05&lon=120.05").await;
    assert!(at["grid"].is_null(), "{at}");
    for q in ["lat=91&lon=120", "lat=36&lon=181", "lat=36", "lat=x&lon=1"] {
        let (status, v) = s.get(&grid, &format!("/api/v1/locate?{q}")).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q} → {v}");
    }
    let citizen = s.keys.token("370202", &[Role::Citizen], "wx-1");
    let (status, _) = s.get(&citizen, "/api/v1/locate?lat=36.06&lon=120.38").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_division_tree_is_imported_and_read_inside_the_scope() {
    let s = stack().await;
    let put = |token: String, csv: &'static str| {
        let s = &s;
        async move {
            let resp = s
                .http
                .put(s.url("/api/v1/admin/regions"))
                .bearer_auth(token)
                .header("content-type", "text/csv")
                .body(csv)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let csv = "code,name\n370202,市南区\n370202006,湛山街道\n370202006001,湛山社区\n370202007,香港中路街道\n";
    let (status, v) = put(s.admin(), csv).await;
    assert_eq!(
        (status, v["regions"].as_u64()),
        (StatusCode::OK, Some(4)),
        "{v}"
    );
    let (status, v) = put(s.admin(), "code,name\n370202008001,孤儿社区\n370203,别区\n").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")),
        "{v}"
    );
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("not in the tenant") && msg.contains("parent is not listed"),
        "{msg}"
    );
    let (status, _) = put(s.keys.token("370202", &[Role::Dispatcher], "d-1"), csv).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, v) = s.get(&d, "/api/v1/regions?under=370202006").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let codes: Vec<&str> = v["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["370202006", "370202006001"]);
    assert_eq!(v["regions"][1]["parent_code"], "370202006");
    assert_eq!(v["regions"][1]["level"], "community");
    // A street-scoped token sees its own subtree only.
    let street = s.keys.token_with(jiesu_auth::TokenSpec {
        sub: "w-1".into(),
        tenant: "370202".into(),
        scope: Some("370202007".into()),
        roles: vec![Role::GridWorker],
        unit: None,
        grids: vec![],
        ttl: std::time::Duration::from_secs(600),
    });
    let (_, v) = s.get(&street, "/api/v1/regions").await;
    assert_eq!(v["regions"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = s.get(&street, "/api/v1/regions?under=370202006").await;
    assert!(v["regions"].as_array().unwrap().is_empty(), "{v}");
}
