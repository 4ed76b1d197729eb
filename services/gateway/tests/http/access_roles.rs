//! The role table (docs/access-roles.csv), cell by cell, over HTTP against
//! the whole stack: every route of the gateway × no token and each role.
//! Each route is called the way its caller would call it, with a body that
//! parses but names nothing that exists (or breaks one rule the service
//! checks after the role), so a caller who passes the gate gets 404 or 422
//! and nothing changes; a caller who does not gets 401 or 403.

use std::time::Duration;

use futures::{StreamExt, stream};
use jiesu_auth::{Role, TokenSpec};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stack::{Stack, stack};

const TABLE: &str = include_str!("../../../../docs/access-roles.csv");

/// The columns after method and path.
const CALLERS: [&str; 10] = [
    "anonymous",
    "citizen",
    "agent",
    "dispatcher",
    "handler",
    "grid_worker",
    "mediator",
    "supervisor",
    "tenant_admin",
    "platform_admin",
];

/// Well-formed ids nothing has.
const NO_ID: &str = "0195f0c2-7d2a-7c3e-9a61-3f2b6f1c8e10";
const NO_ID_2: &str = "0195f0c2-7d2a-7c3e-9a61-3f2b6f1c8e11";
const NO_TRACKING: &str = "370202-20260101-99999";

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The token of a column: tenant 370202, the whole tenant in scope; the
/// handler acts for the lead unit of the set-up, the grid worker serves G1.
fn token(s: &Stack, caller: &str) -> Option<String> {
    let role = Role::parse(caller)?;
    Some(s.keys.token_with(TokenSpec {
        sub: match role {
            Role::Citizen => "citizen-1".into(),
            Role::GridWorker => "gw-1".into(),
            r => format!("{r}-1"),
        },
        tenant: "370202".into(),
        scope: None,
        roles: vec![role],
        unit: (role == Role::Handler).then(|| "sn-gafj".to_owned()),
        grids: if role == Role::GridWorker {
            vec!["G1".into()]
        } else {
            vec![]
        },
        ttl: Duration::from_secs(600),
    }))
}

/// One request: where, and what body with which content type.
#[derive(Clone)]
pub struct Probe {
    pub method: Method,
    pub path: String,
    pub body: Option<(&'static str, Vec<u8>)>,
}

fn json_body(v: Value) -> Option<(&'static str, Vec<u8>)> {
    Some(("application/json", serde_json::to_vec(&v).unwrap()))
}

fn text(content_type: &'static str, body: &str) -> Option<(&'static str, Vec<u8>)> {
    Some((content_type, body.as_bytes().to_vec()))
}

/// The request that calls `method path` (the table's path, with its
/// parameters) as a caller would, changing nothing when it passes.
fn probe(method: &str, path: &str) -> Probe {
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let fill = |p: &str| {
        p.replace("{tenant}", "370202")
            .replace("{attachment_id}", NO_ID_2)
            .replace("{grid_code}", "G1")
            .replace("{code}", "NOPE")
            .replace("{token}", "no-such-link")
            .replace("{kind}", "unit")
            .replace("{channel}", "sms")
            .replace("{id}", NO_ID)
    };
    let (url, body) = match (method, path) {
        ("GET", "/api/v1/track") => (
            format!("{path}?tracking_no={NO_TRACKING}&phone_last4=0000"),
            None,
        ),
        // No signature: the channel's key, not a bearer token, lets a
        // delivery in.
        ("POST", "/api/v1/channels/{id}/tickets") => (fill(path), json_body(json!({}))),
        ("POST", "/api/v1/tickets") => (
            path.into(),
            json_body(json!({
                "channel": "app", "nature": "complaint", "category": "ZZ99",
                "content": "探针：没有这个分类", "citizen": {"phone": "13900000499"}
            })),
        ),
        ("POST", "/api/v1/tickets/{id}/attachments") => {
            use base64::Engine;
            let png = base64::engine::general_purpose::STANDARD
                .decode(PNG)
                .unwrap();
            (fill(path), Some(("application/octet-stream", png)))
        }
        ("POST", "/api/v1/tickets/{id}/information") => {
            (fill(path), json_body(json!({"text": "补充：周末也吵"})))
        }
        ("POST", "/api/v1/tickets/{id}/merge") => {
            (fill(path), json_body(json!({"master_id": NO_ID_2})))
        }
        ("POST", "/api/v1/tickets/{id}/unmerge") => {
            (fill(path), json_body(json!({"reason": "不是同一问题"})))
        }
        ("POST", "/api/v1/tickets/{id}/withdraw") => (fill(path), json_body(json!({}))),
        ("POST", "/api/v1/categories/suggest") => {
            (path.into(), json_body(json!({"text": "楼上噪音到半夜"})))
        }
        ("POST", "/api/v1/admin/categories/import") => {
            (format!("{path}?dry_run=true"), text("text/csv", "nope\n"))
        }
        ("POST", "/api/v1/admin/channels") => (
            path.into(),
            json_body(json!({"name": "探针", "channel": "nope", "auth": "webhook"})),
        ),
        ("POST", "/api/v1/admin/channels/{id}/rotate") => (fill(path), json_body(json!({}))),
        ("POST", "/api/v1/admin/kb") | ("PUT", "/api/v1/admin/kb/{id}") => (
            fill(path),
            json_body(json!({"title": "", "body": "探针", "categories": []})),
        ),
        ("POST", "/api/v1/kb/search") => (path.into(), json_body(json!({"text": "噪音"}))),
        ("GET", "/api/v1/work-orders") => (format!("{path}?queue=mine"), None),
        ("POST", "/api/v1/work-orders/{id}/actions") => {
            (fill(path), json_body(json!({"action": "sign"})))
        }
        ("PUT", "/api/v1/admin/sla-policy") => (
            path.into(),
            json_body(json!({
                "rules": [], "reminder_at": 5.0, "supervise_after": "1d",
                "review_required": false, "max_extensions": 1, "max_extension_days": 5,
                "max_reopens": 1, "lift_after_returns": 2, "allow_pause": true,
                "restart_on_redispatch": false, "report_in_within": "1d"
            })),
        ),
        ("PUT", "/api/v1/admin/calendar") => (
            path.into(),
            json_body(json!({"days": [{"date": "bad", "kind": "holiday"}]})),
        ),
        ("POST", "/api/v1/notifications/{id}/retry") => (fill(path), None),
        ("POST", "/api/v1/inbox/read") => (path.into(), json_body(json!({"ids": [NO_ID]}))),
        // `unit` is no kind of notice: 422, nothing saved or removed.
        ("PUT", "/api/v1/admin/notification-templates/{kind}/{channel}")
        | ("POST", "/api/v1/admin/notification-templates/{kind}/{channel}/preview") => (
            fill(path),
            json_body(json!({"title": "探针", "body": "探针"})),
        ),
        ("PUT", "/api/v1/admin/notification-recipients/{kind}/{id}") => {
            (fill(path), json_body(json!({"sms": "12345"})))
        }
        ("PUT", "/api/v1/admin/units/{id}") => (
            path.replace("{id}", "probe-unit"),
            json_body(json!({"name": "", "kind": "department", "region_code": "370202"})),
        ),
        ("PUT", "/api/v1/admin/responsibilities") => {
            (format!("{path}?dry_run=true"), text("text/csv", "nope\n"))
        }
        ("GET", "/api/v1/locate") => (format!("{path}?lat=36.065&lon=120.385"), None),
        ("PUT", "/api/v1/admin/regions")
        | ("PUT", "/api/v1/admin/grid-pairs")
        | ("PUT", "/api/v1/admin/buildings") => (path.into(), text("text/csv", "nope\n")),
        ("PUT", "/api/v1/admin/grids")
        | ("POST", "/api/v1/admin/grids/{code}/split")
        | ("PUT", "/api/v1/admin/grid-imports/{id}") => {
            (fill(path), text("application/geo+json", "{}"))
        }
        ("POST", "/api/v1/admin/grids/merge") => {
            (path.into(), json_body(json!({"codes": [], "code": "NOPE"})))
        }
        ("POST", "/api/v1/admin/grid-workers") | ("PUT", "/api/v1/admin/grid-workers/{id}") => (
            fill(path),
            json_body(json!({
                "account": "probe", "name": "", "phone": "13800138000", "kind": "full_time"
            })),
        ),
        ("POST", "/api/v1/admin/grid-workers/{id}/assignments") => {
            (fill(path), json_body(json!({"grid_code": "G1"})))
        }
        ("POST", "/api/v1/grid-workers/{id}/rating") => (
            fill(path),
            json_body(json!({"stars": 5, "reason": "走访到位"})),
        ),
        ("POST", "/api/v1/households") => (
            path.into(),
            json_body(json!({
                "grid_code": "G1", "room": "101", "head_name": "", "phone": "13700000001",
                "members": 1
            })),
        ),
        ("GET", "/api/v1/households") => (format!("{path}?grid_code=G1"), None),
        ("POST", "/api/v1/key-persons") | ("PUT", "/api/v1/key-persons/{id}") => (
            fill(path),
            json_body(json!({"grid_code": "G1", "category": "elderly_alone", "name": ""})),
        ),
        ("GET", "/api/v1/key-persons/{id}") => (format!("{}?purpose=走访", fill(path)), None),
        ("PUT", "/api/v1/admin/duty-rules") => (
            path.into(),
            json_body(json!({"rules": [
                {"code": "x", "name": "x", "target": "household", "every": "fortnight"}
            ]})),
        ),
        ("POST", "/api/v1/admin/duties/generate") => (path.into(), json_body(json!({}))),
        ("POST", "/api/v1/duty-tasks/{id}/check-in") => (
            fill(path),
            json_body(json!({"lat": 36.065, "lon": 120.385})),
        ),
        ("GET", "/api/v1/duties/compliance") => (format!("{path}?period=2026-01"), None),
        ("POST", "/api/v1/grid-events") => (
            path.into(),
            json_body(json!({"grid_code": "G1", "lat": 36.065, "lon": 120.385, "content": ""})),
        ),
        ("POST", "/api/v1/grid-events/{id}/close") => {
            (fill(path), json_body(json!({"result": "已处理"})))
        }
        ("POST", "/api/v1/grid-events/{id}/whistle") => (
            fill(path),
            json_body(json!({"level": 2, "reason": "需街道协同"})),
        ),
        ("GET", "/api/v1/grid-events/stats") => (
            format!("{path}?from=2026-01-01T00:00:00Z&to=2026-02-01T00:00:00Z"),
            None,
        ),
        ("POST", "/api/v1/broadcasts") => (
            path.into(),
            json_body(json!({"kind": "nope", "title": "台风预警", "body": "探针"})),
        ),
        ("GET", "/open311/v2/{tenant}/requests/{id}.json") => (
            path.replace("{tenant}", "370202")
                .replace("{id}", NO_TRACKING),
            None,
        ),
        ("GET", "/open311/v2/{tenant}/services/{code}.json") => (
            path.replace("{tenant}", "370202").replace("{code}", "SH01"),
            None,
        ),
        // Without an api_key.
        ("POST", "/open311/v2/{tenant}/requests.json") => (
            fill(path),
            Some((
                "application/x-www-form-urlencoded",
                "jurisdiction_id=370202&service_code=SH01&lat=36.065&long=120.385\
                 &description=%E6%8E%A2%E9%92%88"
                    .as_bytes()
                    .to_vec(),
            )),
        ),
        ("POST", "/api/v1/tickets/{id}/callbacks") => (
            fill(path),
            json_body(json!({"verdict": {"resolved": true, "satisfaction": "satisfied"}})),
        ),
        ("POST", "/api/v1/tickets/{id}/rating") => (
            fill(path),
            json_body(json!({"resolved": true, "satisfaction": "satisfied"})),
        ),
        ("POST", "/api/v1/track/invitations/{token}/rating") => (
            fill(path),
            json_body(json!({"resolved": true, "satisfaction": "satisfied"})),
        ),
        ("POST", "/api/v1/track/rating") => (
            path.into(),
            json_body(json!({
                "tracking_no": NO_TRACKING, "phone_last4": "0000",
                "verdict": {"resolved": true, "satisfaction": "satisfied"}
            })),
        ),
        ("PUT", "/api/v1/tickets/{id}/exclusion") => (
            fill(path),
            json_body(json!({"reason": "unreasonable", "note": "探针"})),
        ),
        ("DELETE", "/api/v1/tickets/{id}/exclusion") => {
            (fill(path), json_body(json!({"note": "探针"})))
        }
        ("GET", "/api/v1/evaluation/rates") => {
            (format!("{path}?dimension=unit&period=2026-01"), None)
        }
        // A past day: refused after the role, nothing added.
        ("POST", "/api/v1/evaluation/formulas") => (
            path.into(),
            json_body(json!({
                "effective_from": "2020-01-01", "satisfied_weight": 1.0, "basic_weight": 0.9,
                "response_weight": 0.1, "resolution_weight": 0.5, "satisfaction_weight": 0.4,
                "resolution_basis": "callback", "response_basis": "on_time"
            })),
        ),
        ("PUT", "/api/v1/evaluation/callback-policy") => (
            path.into(),
            json_body(json!({
                "natures": ["nope"], "due_hours": 48, "max_attempts": 2, "max_reopens": 1
            })),
        ),
        // A metric that does not exist: refused after the role.
        ("POST", "/api/v1/evaluation/warning-rules")
        | ("PUT", "/api/v1/evaluation/warning-rules/{id}") => (
            fill(path),
            json_body(json!({
                "name": "探针", "metric": "nope", "dimension": "unit", "window_days": 30,
                "threshold": 0.75, "min_tickets": 1
            })),
        ),
        ("PUT", "/api/v1/evaluation/frequency-policy") => (
            path.into(),
            json_body(json!({
                "level": "nope", "window_days": 7, "threshold": 5, "season_weeks": 4,
                "season_years": 3, "season_min_count": 10, "season_ratio": 1.5
            })),
        ),
        ("PATCH", "/api/v1/evaluation/proactive-items/{id}") => {
            (fill(path), json_body(json!({"progress_note": "探针"})))
        }
        // A scan makes items only where earlier years rose: none here.
        ("POST", "/api/v1/evaluation/seasons/scan") => (path.into(), None),
        ("PUT", "/api/v1/admin/evaluation/history") => {
            (format!("{path}?dry_run=true"), text("text/csv", "nope\n"))
        }
        ("GET", "/api/v1/evaluation/hotspots") => {
            (format!("{path}?dimension=category&period=2026-01"), None)
        }
        ("GET", "/api/v1/evaluation/hotspots/phrases") => (
            format!("{path}?category=SH01&from=2026-01-01&to=2026-01-31"),
            None,
        ),
        ("GET", "/api/v1/evaluation/reports/monthly") => (format!("{path}?month=2026-01"), None),
        ("GET", _) | ("DELETE", _) => (fill(path), None),
        ("POST", "/api/v1/admin/channels/{id}/disable")
        | ("POST", "/api/v1/admin/kb/{id}/retire") => (fill(path), None),
        _ => panic!("no probe for {method} {path}: add one"),
    };
    Probe {
        method: m,
        path: url,
        body,
    }
}

pub async fn send(s: &Stack, p: &Probe, token: Option<&str>) -> (StatusCode, String) {
    let mut req = s.http.request(p.method.clone(), s.url(&p.path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((ct, body)) = &p.body {
        req = req.header("content-type", *ct).body(body.clone());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

/// The gate's answer as the table writes it.
/// What the answer says of the gate: passed means the request then failed
/// or succeeded on its own merits; a server error or a throttled answer says
/// nothing of the gate and never counts as passed.
fn gate(status: StatusCode) -> String {
    match status {
        StatusCode::UNAUTHORIZED => "401".into(),
        StatusCode::FORBIDDEN => "403".into(),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => s.as_str().to_owned(),
        _ => "ok".into(),
    }
}

/// G1 and G2 side by side in community 370202006001, G3 in 370202006002.
pub async fn three_grids(s: &Stack) {
    let square = |code: &str, community: &str, x0: f64, y0: f64| {
        json!({
            "type": "Feature",
            "properties": {"code": code, "name": format!("{code}网格"), "kind": "basic", "community_code": community},
            "geometry": {"type": "Polygon", "coordinates": [[
                [x0, y0], [x0 + 0.02, y0], [x0 + 0.02, y0 + 0.01], [x0, y0 + 0.01], [x0, y0]
            ]]}
        })
    };
    let layer = json!({"type": "FeatureCollection", "features": [
        square("G1", "370202006001", 120.38, 36.06),
        square("G2", "370202006001", 120.40, 36.06),
        square("G3", "370202006002", 120.38, 36.07),
    ]});
    let p = Probe {
        method: Method::PUT,
        path: "/api/v1/admin/grids".into(),
        body: text("application/geo+json", &layer.to_string()),
    };
    let (status, v) = send(s, &p, Some(&s.admin())).await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// Every operation the gateway serves: its OpenAPI document's.
async fn documented(s: &Stack) -> Vec<(String, String)> {
    let (status, doc) = s.get(&s.agent(), "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options"]
                .contains(&method.as_str())
            {
                ops.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_cell_of_the_role_table_holds() {
    let s = stack().await;
    three_grids(&s).await;

    let header = TABLE
        .lines()
        .find(|l| !l.starts_with('#'))
        .unwrap()
        .split(',')
        .collect::<Vec<_>>();
    assert_eq!(header[..2], ["method", "path"]);
    assert_eq!(header[2..], CALLERS, "the table's columns");
    let mut cells = Vec::new();
    let mut rows = Vec::new();
    for line in TABLE.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        assert_eq!(cols.len(), 2 + CALLERS.len(), "bad row: {line}");
        let (method, path) = (cols[0], cols[1]);
        assert!(
            !rows.contains(&(method.to_owned(), path.to_owned())),
            "{method} {path} twice"
        );
        rows.push((method.to_owned(), path.to_owned()));
        let p = probe(method, path);
        for (caller, expected) in CALLERS.iter().zip(&cols[2..]) {
            assert!(
                ["ok", "401", "403"].contains(expected),
                "{method} {path} {caller}: {expected}"
            );
            cells.push((p.clone(), method, path, *caller, *expected));
        }
    }
    // The table names every operation of the document.
    let missing: Vec<String> = documented(&s)
        .await
        .into_iter()
        .filter(|op| !rows.contains(op))
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "operations without a row in docs/access-roles.csv: {missing:?}"
    );

    let tokens: Vec<(&str, Option<String>)> = CALLERS.iter().map(|c| (*c, token(&s, c))).collect();
    let token_of = |caller: &str| {
        tokens
            .iter()
            .find(|(c, _)| *c == caller)
            .and_then(|(_, t)| t.clone())
    };
    let total = cells.len();
    let started = std::time::Instant::now();
    let answers: Vec<(u16, Option<String>)> = stream::iter(cells)
        .map(|(p, method, path, caller, expected)| {
            let token = token_of(caller);
            let s = &s;
            async move {
                let (status, body) = send(s, &p, token.as_deref()).await;
                let body: String = body.chars().take(300).collect();
                let got = gate(status);
                let wrong = (got != expected).then(|| {
                    format!(
                        "{method} {path} as {caller}: expected {expected}, got {got} ({} {body})",
                        status.as_u16()
                    )
                });
                (status.as_u16(), wrong)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // How the cells were answered, to show what `ok` and the refusals were.
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (status, _) in &answers {
        *by_status.entry(*status).or_default() += 1;
    }
    let mut wrong: Vec<String> = answers.into_iter().filter_map(|(_, w)| w).collect();
    wrong.sort();
    eprintln!(
        "access roles: {} operations x {} callers = {total} cells executed in {:.1?} \
         (answers by status: {by_status:?}), {} unexpected",
        rows.len(),
        CALLERS.len(),
        started.elapsed(),
        wrong.len()
    );
    assert!(rows.len() >= 80, "only {} operations", rows.len());
    assert!(
        wrong.is_empty(),
        "{} unexpected answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
