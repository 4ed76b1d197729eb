//! The units directory and the responsibility list through the public API:
//! CSV export and import with every bad line and conflict reported, routing
//! by category and street, gaps, and who may act for a unit.

use std::time::Duration;

use jiesu_auth::Role;
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body};

const HEADER: &str = "category,region_code,lead_unit_id,co_unit_ids,valid_from,valid_to,note";

async fn import(s: &Stack, token: &str, csv: String) -> (StatusCode, Value) {
    let resp = s
        .http
        .put(s.url("/api/v1/admin/responsibilities"))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn export(s: &Stack) -> String {
    let resp = s
        .http
        .get(s.url("/api/v1/admin/responsibilities"))
        .bearer_auth(s.admin())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    resp.text().await.unwrap()
}

/// A ticket in `category` (at `region` if given); its work order once routed.
async fn routed(s: &Stack, phone: &str, category: &str, region: Option<&str>) -> Value {
    let mut b = ticket_body(phone);
    b["category"] = json!(category);
    b["content"] = json!(format!("{phone}：车辆占用消防通道"));
    if category == "CG02" {
        b["attributes"] = json!({"blocking": "yes"});
    }
    if let Some(r) = region {
        b["location"]["region_code"] = json!(r);
    }
    let (status, v) = s.post(Some(&s.agent()), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let wo = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, v) = s.get(&d, &format!("/api/v1/work-orders/{wo}")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    v
}

#[tokio::test]
async fn the_responsibility_list_routes_by_category_and_street_and_shows_its_gaps() {
    let s = stack().await;
    let seeded = export(&s).await;
    assert!(seeded.starts_with(HEADER), "{seeded}");
    assert_eq!(seeded.lines().count(), 4, "SH01, CG02, SC01: {seeded}");
    // The tenant's tree gets a second 市场监管 leaf (SC02) for the list below.
    let r = s
        .http
        .get(s.url("/api/v1/admin/categories/export?format=csv"))
        .bearer_auth(s.admin())
        .send()
        .await
        .unwrap();
    let tree = r.text().await.unwrap() + "SC02,其他消费纠纷,SC,,,\n";
    let r = s
        .http
        .post(s.url("/api/v1/admin/categories/import"))
        .bearer_auth(s.admin())
        .header("content-type", "text/csv")
        .body(tree)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let list = format!(
        "{HEADER}\n\
         SH01,370202,sn-gafj,,2025-01-01,,噪声扰民由公安分局牵头\n\
         CG,370202,sn-zjj,,2025-01-01,,\n\
         CG02,370202006,sn-bdx,sn-zjj,2025-01-01,,八大峡街道违停由街道牵头\n\
         SC02,370202,sn-scjg,,2025-01-01,,\n"
    );
    let (status, v) = import(&s, &s.admin(), list.clone()).await;
    assert_eq!(
        (status, v["entries"].as_u64()),
        (StatusCode::OK, Some(4)),
        "{v}"
    );
    // The export reads back what was imported.
    assert_eq!(export(&s).await.lines().count(), 5);
    assert!(
        export(&s)
            .await
            .contains("CG02,370202006,sn-bdx,sn-zjj,2025-01-01,,八大峡街道违停由街道牵头")
    );

    let street = routed(&s, "13900000201", "CG02", Some("370202006001")).await;
    assert_eq!(street["unit"]["id"], "sn-bdx", "{street}");
    assert_eq!(street["co_handlers"][0]["unit"]["id"], "sn-zjj");
    assert_eq!(street["region_code"], "370202006001");
    let elsewhere = routed(&s, "13900000202", "CG02", None).await;
    assert_eq!(
        elsewhere["unit"]["id"], "sn-zjj",
        "the group entry covers the rest: {elsewhere}"
    );
    let nobody = routed(&s, "13900000203", "SC01", None).await;
    assert_eq!(nobody["status"], "triage", "{nobody}");
    // 研判: the unit responsible for the same category group is offered.
    assert_eq!(
        nobody["suggested_units"],
        json!([{"id": "sn-scjg", "name": "市南区市场监督管理局"}])
    );

    let (status, g) = s
        .get(&s.admin(), "/api/v1/admin/responsibilities/gaps")
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    assert_eq!(g["regions"], json!(["370202006"]));
    let gaps: Vec<(&str, &str)> = g["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["category"].as_str().unwrap(),
                x["region_name"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        gaps,
        [("SC01", "八大峡街道办事处"), ("QT01", "八大峡街道办事处")],
        "{g}"
    );
}

#[tokio::test]
async fn a_bad_list_is_refused_whole_with_every_line_named() {
    let s = stack().await;
    let before = export(&s).await;
    let bad = format!(
        "{HEADER}\n\
         SH01,370202,sn-gafj,,2025-01-01,,\n\
         SH01,370202,sn-zjj,,2026-01-01,2026-12-31,\n\
         CG02,370203,sn-bdx,,2025-01-01,,\n\
         SC01,370202,sn-nobody,,2025-01-01,,\n"
    );
    let (status, v) = import(&s, &s.admin(), bad).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("csv")),
        "{v}"
    );
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("第 4 行：region_code"), "{msg}");
    assert!(
        msg.contains("第 2 行和第 3 行"),
        "the conflict is named: {msg}"
    );
    let unknown = format!("{HEADER}\nSC01,370202,sn-nobody,,2025-01-01,,\n");
    let (status, v) = import(&s, &s.admin(), unknown).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["message"].as_str().unwrap().contains("sn-nobody"), "{v}");
    // Categories the tenant does not have are refused, and every kind of
    // problem is named in the same answer (a bad line, an unknown category,
    // an unknown unit).
    let mixed = format!(
        "{HEADER}\n\
         XX99,370202,sn-gafj,,2025-01-01,,\n\
         CG02,370202,sn-nobody,,2025-01-01,,\n\
         SH01,370202,sn-gafj,,someday,,\n"
    );
    let (status, v) = import(&s, &s.admin(), mixed).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("第 2 行：category：`XX99`")
            && msg.contains("第 3 行：`sn-nobody`")
            && msg.contains("第 4 行：valid_from"),
        "{msg}"
    );
    // A dry run checks a good list and changes nothing.
    let good = format!("{HEADER}\nSH01,370202,sn-zjj,,2025-01-01,,\n");
    let r = s
        .http
        .put(s.url("/api/v1/admin/responsibilities?dry_run=true"))
        .bearer_auth(s.admin())
        .header("content-type", "text/csv")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, json!({"entries": 1, "dry_run": true}));
    assert_eq!(
        export(&s).await,
        before,
        "nothing of a refused list is kept"
    );
    let (status, _) = import(
        &s,
        &s.keys.token("370202", &[Role::Dispatcher], "d-1"),
        before.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let resp = s
        .http
        .put(s.url("/api/v1/admin/responsibilities"))
        .bearer_auth(s.admin())
        .json(&json!({"csv": before}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn the_units_directory_is_kept_by_the_tenant_admin() {
    let s = stack().await;
    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, v) = s.get(&d, "/api/v1/units").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["units"].as_array().unwrap().len(), 4);
    let (_, v) = s.get(&d, "/api/v1/units?kind=street").await;
    assert_eq!(v["units"][0]["id"], "sn-bdx");

    let unit = json!({"name": "八大峡街道团岛社区", "kind": "community", "region_code": "370202006003",
                      "parent_id": "sn-bdx", "duty_phone": "0532-8286 0000"});
    let (status, v) = s
        .put_json(&s.admin(), "/api/v1/admin/units/sn-bdx-td", unit.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["parent_id"].as_str(), v["active"].as_bool()),
        (Some("sn-bdx"), Some(true))
    );
    let (status, _) = s
        .put_json(&d, "/api/v1/admin/units/sn-x", unit.clone())
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for (id, patch, field) in [
        ("sn-x", json!({"kind": "club"}), "kind"),
        ("sn-x", json!({"region_code": "370203001"}), "region_code"),
        ("sn-x", json!({"parent_id": "sn-none"}), "parent_id"),
        ("SN X", json!({}), "id"),
        // sn-bdx under its own community would be a cycle.
        (
            "sn-bdx",
            json!({"kind": "street", "region_code": "370202006", "parent_id": "sn-bdx-td"}),
            "parent_id",
        ),
    ] {
        let mut body = unit.clone();
        for (k, val) in patch.as_object().unwrap() {
            body[k] = val.clone();
        }
        let (status, v) = s
            .put_json(
                &s.admin(),
                &format!("/api/v1/admin/units/{}", id.replace(' ', "%20")),
                body,
            )
            .await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{id} {patch} → {v}"
        );
    }
    // The list still names sn-gafj: it cannot be switched off.
    let gafj = json!({"name": "青岛市公安局市南分局", "kind": "department", "region_code": "370202", "active": false});
    let (status, v) = s
        .put_json(&s.admin(), "/api/v1/admin/units/sn-gafj", gafj)
        .await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::CONFLICT, Some("unit_in_use")),
        "{v}"
    );
}

#[tokio::test]
async fn only_a_units_members_act_for_it_once_it_lists_them() {
    let s = stack().await;
    let wo = routed(&s, "13900000204", "SH01", None).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let members = json!({"name": "青岛市公安局市南分局", "kind": "department", "region_code": "370202",
                         "members": ["officer-2"]});
    let (status, v) = s
        .put_json(&s.admin(), "/api/v1/admin/units/sn-gafj", members)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let sign = json!({"action": "sign"});
    let path = format!("/api/v1/work-orders/{wo}/actions");
    let outsider = s
        .keys
        .unit_token("370202", &[Role::Handler], "officer-9", "sn-gafj");
    let (status, v) = s.post_json(&outsider, &path, sign.clone()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("wrong_unit")),
        "{v}"
    );
    let member = s
        .keys
        .unit_token("370202", &[Role::Handler], "officer-2", "sn-gafj");
    let (status, v) = s.post_json(&member, &path, sign).await;
    assert_eq!(
        (status, v["status"].as_str()),
        (StatusCode::OK, Some("signed")),
        "{v}"
    );
}

#[tokio::test]
async fn a_ticket_outside_the_tenant_region_is_refused() {
    let s = stack().await;
    let mut b = ticket_body("13900000205");
    b["location"]["region_code"] = json!("370203001");
    let (status, v) = s.post(Some(&s.agent()), b.clone()).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("location.region_code")
        ),
        "{v}"
    );
    b["location"]["region_code"] = json!("37020A");
    let (status, v) = s.post(Some(&s.agent()), b).await;
    assert_eq!(
        (status, v["field"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("location.region_code")
        ),
        "{v}"
    );
}

#[tokio::test]
async fn a_ticket_with_coordinates_is_routed_by_the_grid_it_lies_in() {
    let s = stack().await;
    // 八大峡's community grid around the ticket's point (36.06, 120.38).
    let layer = json!({"type": "FeatureCollection", "features": [{
        "type": "Feature",
        "properties": {"code": "BDX-01", "name": "团岛第一网格", "kind": "basic", "community_code": "370202006003"},
        "geometry": {"type": "Polygon", "coordinates": [[[120.37, 36.05], [120.39, 36.05], [120.39, 36.07], [120.37, 36.07], [120.37, 36.05]]]}
    }]});
    let resp = s
        .http
        .put(s.url("/api/v1/admin/grids"))
        .bearer_auth(s.admin())
        .header("content-type", "application/geo+json")
        .body(layer.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let list = format!(
        "{HEADER}\n\
         CG,370202,sn-zjj,,2025-01-01,,\n\
         CG02,370202006,sn-bdx,,2025-01-01,,八大峡街道违停由街道牵头\n"
    );
    let (status, v) = import(&s, &s.admin(), list).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // No region code given: grid places it in 370202006003, the street leads.
    let located = routed(&s, "13900000206", "CG02", None).await;
    assert_eq!(located["region_code"], "370202006003", "{located}");
    assert_eq!(located["unit"]["id"], "sn-bdx", "{located}");
}
