//! Grid layers and locating a point as the gateway serves them: the
//! routes, GeoJSON in and out, the JSON a caller reads, and how grid's
//! refusals become HTTP answers. Grid's rules themselves are tested in
//! `services/grid/tests/api`.

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

async fn import(s: &Stack, token: Option<&str>, body: String) -> (StatusCode, Value) {
    let mut req = s
        .http
        .put(s.url("/api/v1/admin/grids"))
        .header("content-type", "application/geo+json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const ZS: &str = "370202006001";

#[tokio::test]
async fn a_layer_goes_in_and_out_as_geojson_and_locates_as_json() {
    let s = stack().await;
    let l = layer(vec![
        square("G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G2", "basic", ZS, 120.39, 36.06, 120.40, 36.07),
        square("M1", "micro", ZS, 120.381, 36.061, 120.382, 36.062),
        square("P1", "professional", ZS, 120.37, 36.05, 120.41, 36.08),
    ]);
    let (status, v) = import(&s, Some(&s.admin()), l).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v, json!({"created": 4, "updated": 0, "total": 4}));
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, at) = s
        .get(&grid, "/api/v1/locate?lat=36.0615&lon=120.3815")
        .await;
    assert_eq!(status, StatusCode::OK, "{at}");
    assert_eq!(
        at["grid"],
        json!({"code": "G1", "name": "G1网格", "kind": "basic"})
    );
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
    assert!(
        at.get("building").is_none(),
        "no address, no building: {at}"
    );
    let (_, nowhere) = s.get(&grid, "/api/v1/locate?lat=36.2&lon=120.9").await;
    assert!(
        nowhere["grid"].is_null() && nowhere["community_code"] == "",
        "{nowhere}"
    );

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
    let (status, v) = import(&s, Some(&s.admin()), fc.to_string()).await;
    assert_eq!(
        (status, v["created"].as_u64(), v["updated"].as_u64()),
        (StatusCode::OK, Some(0), Some(2)),
        "{v}"
    );
}

#[tokio::test]
async fn grid_refusals_become_http_answers() {
    let s = stack().await;
    let mut open = square("G3", "basic", ZS, 120.0, 36.0, 120.1, 36.1);
    open["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap()
        .pop();
    let (status, v) = import(&s, Some(&s.admin()), layer(vec![open])).await;
    assert_eq!(
        (status, v["code"].as_str(), v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("invalid_field"),
            Some("geojson")
        ),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("features[0].geometry.coordinates[0]：环未闭合"),
        "{v}"
    );
    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, v) = import(&s, Some(&dispatcher), layer(vec![])).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("forbidden"))
    );
    let (status, _) = import(&s, None, layer(vec![])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, v) = import(&s, Some(&s.admin()), "{not json".into()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");

    // The query is read by the gateway; the range is grid's check.
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    for (q, field) in [
        ("lat=91&lon=120", "lat"),
        ("lat=36&lon=181", "lon"),
        ("lat=36", "lon"),
        ("lon=120", "lat"),
    ] {
        let (status, v) = s.get(&grid, &format!("/api/v1/locate?{q}")).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{q} → {v}"
        );
    }
    let (status, v) = s.get(&grid, "/api/v1/locate?lat=x&lon=1").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let citizen = s.keys.token("370202", &[Role::Citizen], "wx-1");
    let (status, _) = s.get(&citizen, "/api/v1/locate?lat=36.06&lon=120.38").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_division_tree_goes_in_as_csv_and_out_as_json() {
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
    let csv = "code,name\n370202,市南区\n370202006,湛山街道\n370202006001,湛山社区\n";
    let (status, v) = put(s.admin(), csv).await;
    assert_eq!((status, v), (StatusCode::OK, json!({"regions": 3})));
    let (status, v) = put(s.admin(), "code,name\n370203,别区\n").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")),
        "{v}"
    );
    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, v) = s.get(&d, "/api/v1/regions?under=370202006").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v["regions"][1],
        json!({"code": "370202006001", "name": "湛山社区", "level": "community", "parent_code": "370202006"})
    );
}

#[tokio::test]
async fn a_ticket_outside_the_territory_waits_for_a_dispatcher_saying_so() {
    let s = stack().await;
    let l = layer(vec![
        square("G1", "basic", ZS, 120.38, 36.06, 120.39, 36.07),
        square("G2", "basic", ZS, 120.39, 36.06, 120.40, 36.07),
    ]);
    let (status, v) = import(&s, Some(&s.admin()), l).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let order_of = |phone: &'static str, lat: f64, lon: f64| {
        let s = &s;
        async move {
            let mut b = crate::stack::ticket_body(phone);
            b["location"] = json!({"lat": lat, "lon": lon, "address": "某路1号"});
            let (status, v) = s.post(Some(&s.agent()), b).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            let id = v["id"].as_str().unwrap().to_owned();
            let d = s
                .keys
                .token("370202", &[jiesu_auth::Role::Dispatcher], "d-1");
            let wo = jiesu_testkit::wait_until(
                std::time::Duration::from_secs(15),
                "the work order",
                || async {
                    let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
                    t["work_order_id"].as_str().map(str::to_owned)
                },
            )
            .await;
            s.get(&d, &format!("/api/v1/work-orders/{wo}")).await.1
        }
    };
    // Beijing, given to 市南区: not dispatched without a word.
    let far = order_of("13900000301", 39.9, 116.4).await;
    assert_eq!(far["status"], "triage", "{far}");
    assert!(far["unit"].is_null(), "{far}");
    assert!(
        far["timeline"][0]["note"]
            .as_str()
            .unwrap()
            .contains("不在本辖区"),
        "{far}"
    );
    // Inside the grids the same category is dispatched as before.
    let near = order_of("13900000302", 36.065, 120.385).await;
    assert_eq!(near["status"], "dispatched", "{near}");
}
