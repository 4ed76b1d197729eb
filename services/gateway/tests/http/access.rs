//! The access matrix (docs/access-matrix.csv), row by row, over HTTP
//! against the whole stack: who may read a work order and its ticket.

use std::time::Duration;

use jiesu_auth::{Role, TokenSpec};
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body};

const MATRIX: &str = include_str!("../../../../docs/access-matrix.csv");

fn token(s: &Stack, role: Role, tenant: &str, scope: Option<&str>, unit: Option<&str>) -> String {
    s.keys.token_with(TokenSpec {
        sub: format!("{role}-{}", unit.unwrap_or("x")),
        tenant: tenant.into(),
        scope: scope.map(str::to_owned),
        roles: vec![role],
        unit: unit.map(str::to_owned),
        grids: vec![],
        ttl: Duration::from_secs(600),
    })
}

/// The token a row's caller and relation name.
fn caller(s: &Stack, who: &str, relation: &str) -> String {
    let unit = relation
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .filter(|u| u.starts_with("sn-"));
    match (who, relation) {
        ("handler", r) if r.starts_with("no unit") => token(s, Role::Handler, "370202", None, None),
        ("handler", _) => token(s, Role::Handler, "370202", None, unit),
        ("citizen", "own ticket") => s.keys.token("370202", &[Role::Citizen], "citizen-1"),
        ("citizen", _) => s.keys.token("370202", &[Role::Citizen], "citizen-2"),
        (role, r) => {
            let role = Role::parse(role).unwrap_or_else(|| panic!("unknown role {role}"));
            let tenant = if r.contains("370203") {
                "370203"
            } else {
                "370202"
            };
            let scope = r.contains("out of scope").then_some("370202001");
            token(s, role, tenant, scope, None)
        }
    }
}

async fn act(s: &Stack, token: &str, wo: &str, body: Value) {
    let (status, v) = s
        .post_json(token, &format!("/api/v1/work-orders/{wo}/actions"), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

#[tokio::test]
async fn every_row_of_the_access_matrix_holds() {
    let s = stack().await;
    // The set-up the matrix describes.
    let citizen = s.keys.token("370202", &[Role::Citizen], "citizen-1");
    let mut b = ticket_body("13900000401");
    b["channel"] = json!("app");
    let (status, v) = s.post(Some(&citizen), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let ticket = v["id"].as_str().unwrap().to_owned();
    let order = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s
            .get(&s.agent(), &format!("/api/v1/tickets/{ticket}"))
            .await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    act(
        &s,
        &d,
        &order,
        json!({"action": "dispatch", "lead_unit_id": "sn-gafj", "co_unit_ids": ["sn-zjj"]}),
    )
    .await;
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    act(
        &s,
        &gw,
        &order,
        json!({"action": "whistle", "level": 2, "unit_ids": ["sn-bdx"], "note": "需街道协同"}),
    )
    .await;

    let mut rows = 0;
    let mut wrong = Vec::new();
    for line in MATRIX.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let [route, who, relation, expected] = cols[..] else {
            panic!("bad row: {line}");
        };
        let path = route
            .trim_start_matches("GET ")
            .replace("{order}", &order)
            .replace("{ticket}", &ticket);
        let (status, v) = s.get(&caller(&s, who, relation), &path).await;
        let got = match expected {
            "listed" | "not listed" if status == StatusCode::OK => {
                let listed = v["work_orders"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|w| w["id"] == order.as_str()));
                if listed { "listed" } else { "not listed" }.to_owned()
            }
            _ => status.as_u16().to_string(),
        };
        rows += 1;
        if got != expected {
            wrong.push(format!("{line} -> {got}: {v}"));
        }
    }
    eprintln!(
        "access matrix: {rows} rows executed, {} unexpected",
        wrong.len()
    );
    assert!(rows >= 35, "only {rows} rows");
    assert!(
        wrong.is_empty(),
        "unexpected answers:\n{}",
        wrong.join("\n")
    );
}
