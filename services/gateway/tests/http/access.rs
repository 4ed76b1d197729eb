//! The access matrix (docs/access-matrix.csv), row by row, over HTTP
//! against the whole stack: whose tickets, work orders, attachments, grid
//! events, households, key persons and duties a caller may read or act on
//! (own unit / co-handler / summoned / other unit, own citizen / other,
//! own grid / other grid, in scope / out of scope, own tenant / other).
//! Which routes a role may call at all is `access_roles`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jiesu_auth::{Role, TokenSpec};
use jiesu_testkit::{unique_tag, wait_until};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    access_roles::{Probe, send, three_grids},
    stack::{Stack, now, stack, ticket_body},
};

const MATRIX: &str = include_str!("../../../../docs/access-matrix.csv");

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

fn png() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(PNG)
        .unwrap()
}

/// The token a row's caller and relation name (none for `anonymous`).
fn caller(s: &Stack, who: &str, relation: &str) -> Option<String> {
    let arg = relation
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .unwrap_or_default();
    let role = match who {
        "anonymous" => return None,
        r => Role::parse(r).unwrap_or_else(|| panic!("unknown role {r}")),
    };
    let digits = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit());
    let tenant = if digits && arg.len() == 6 {
        arg
    } else {
        "370202"
    };
    let scope = (digits && arg.len() > 6).then(|| arg.to_owned());
    let (sub, unit, grids) = match role {
        Role::Citizen if relation.starts_with("own") => ("citizen-1".to_owned(), None, vec![]),
        Role::Citizen => ("citizen-2".to_owned(), None, vec![]),
        Role::Handler => {
            let unit = (!relation.starts_with("no unit"))
                .then(|| arg.to_owned())
                .filter(|u| u.starts_with("sn-"));
            (
                format!("handler-{}", unit.as_deref().unwrap_or("x")),
                unit,
                vec![],
            )
        }
        Role::GridWorker => {
            let grid = if arg.starts_with('G') { arg } else { "G1" };
            (format!("gw-{grid}"), None, vec![grid.to_owned()])
        }
        r => (format!("{r}-1"), None, vec![]),
    };
    Some(s.keys.token_with(TokenSpec {
        sub,
        tenant: tenant.into(),
        scope,
        roles: vec![role],
        unit,
        grids,
        ttl: Duration::from_secs(600),
    }))
}

/// What the set-up made; the rows' `{placeholders}`.
struct Things {
    ticket: String,
    tracking: String,
    order: String,
    attachment: String,
    spare: String,
    event: String,
    household: String,
    person: String,
    task: String,
    channel: String,
    secret: String,
    api_key: String,
}

impl Things {
    fn fill(&self, path: &str) -> String {
        path.replace("{ticket}", &self.ticket)
            .replace("{tracking}", &self.tracking)
            .replace("{order}", &self.order)
            .replace("{attachment}", &self.attachment)
            .replace("{spare}", &self.spare)
            .replace("{event}", &self.event)
            .replace("{household}", &self.household)
            .replace("{person}", &self.person)
            .replace("{task}", &self.task)
            .replace("{channel}", &self.channel)
    }

    /// The list a listing row looks in, and the id it looks for.
    fn listed(&self, path: &str) -> (&'static str, &str) {
        let p = path.split('?').next().unwrap_or_default();
        match p {
            "/api/v1/work-orders" => ("work_orders", &self.order),
            "/api/v1/tickets" => ("tickets", &self.ticket),
            "/api/v1/grid-events" => ("events", &self.event),
            "/api/v1/key-persons" => ("persons", &self.person),
            "/api/v1/duty-tasks" => ("tasks", &self.task),
            "/api/v1/households" => ("households", &self.household),
            _ => panic!("no list at {path}"),
        }
    }
}

fn json_probe(method: Method, path: String, body: Value) -> Probe {
    Probe {
        method,
        path,
        body: Some(("application/json", serde_json::to_vec(&body).unwrap())),
    }
}

fn form(fields: &[(&str, &str)]) -> Option<(&'static str, Vec<u8>)> {
    let mut f = form_urlencoded::Serializer::new(String::new());
    for (k, v) in fields {
        f.append_pair(k, v);
    }
    Some(("application/x-www-form-urlencoded", f.finish().into_bytes()))
}

fn signature(secret: &str, ts: &str, nonce: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{nonce}.").as_bytes());
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("v1={hex}")
}

/// Sends a row's request: its route with the set-up's ids, and the body
/// the route takes (one that changes nothing another row reads).
async fn request(
    s: &Stack,
    t: &Things,
    route: &str,
    relation: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let (method, template) = route.split_once(' ').unwrap();
    let path = t.fill(template);
    let m = Method::from_bytes(method.as_bytes()).unwrap();
    let json = |body: Value| json_probe(m.clone(), path.clone(), body);
    let p = match (method, template) {
        ("GET", _) => Probe {
            method: m.clone(),
            path: path.clone(),
            body: None,
        },
        // Not paused: the lead unit may resume, but not now.
        ("POST", "/api/v1/work-orders/{order}/actions") => json(json!({"action": "resume"})),
        ("POST", "/api/v1/tickets/{ticket}/information") => {
            json(json!({"text": "补充：周末上午也吵"}))
        }
        ("POST", "/api/v1/tickets/{spare}/withdraw") => json(json!({"reason": "已自行解决"})),
        ("POST", "/api/v1/tickets/{ticket}/attachments") => Probe {
            method: m.clone(),
            path: path.clone(),
            body: Some(("application/octet-stream", png())),
        },
        ("POST", "/api/v1/grid-events") => json(json!({
            "grid_code": "G1", "lat": 36.065, "lon": 120.385, "content": "消防通道堵塞"
        })),
        // The event has no category: a whistle needs one.
        ("POST", "/api/v1/grid-events/{event}/whistle") => {
            json(json!({"level": 2, "reason": "需街道协同"}))
        }
        ("POST", "/api/v1/grid-events/{event}/close") => json(json!({"result": "已处理"})),
        ("POST", "/api/v1/households") => json(json!({
            "grid_code": "G1", "room": "102", "head_name": "李四", "phone": "13700000002",
            "members": 2
        })),
        // Taken over into G2, the other grid worker's own grid.
        ("PUT", "/api/v1/key-persons/{person}") => json(json!({
            "grid_code": "G2", "category": "elderly_alone", "name": "张秀兰"
        })),
        // In G2: a check-in outside the task's grid G1.
        ("POST", "/api/v1/duty-tasks/{task}/check-in") => {
            json(json!({"lat": 36.065, "lon": 120.415}))
        }
        ("POST", "/api/v1/admin/channels/{channel}/disable") => Probe {
            method: m.clone(),
            path: path.clone(),
            body: None,
        },
        ("POST", "/api/v1/channels/{channel}/tickets") => {
            let body = serde_json::to_vec(&json!({
                "external_id": format!("ext-{}", unique_tag()),
                "nature": "complaint", "category": "SH01",
                "content": "小区广场舞音响声音太大，晚上十点还在跳",
                "citizen": {"name": "王女士", "phone": "13900000403"}
            }))
            .unwrap();
            let ts = now().to_string();
            let nonce = format!("n-{}{}", unique_tag(), unique_tag());
            let mut req = s
                .http
                .post(s.url(&path))
                .header("content-type", "application/json")
                .header("x-jiesu-timestamp", &ts)
                .header("x-jiesu-nonce", &nonce);
            if relation.starts_with("signed") {
                req = req.header(
                    "x-jiesu-signature",
                    signature(&t.secret, &ts, &nonce, &body),
                );
            }
            if let Some(token) = token {
                req = req.bearer_auth(token);
            }
            let resp = req.body(body).send().await.unwrap();
            let status = resp.status();
            return (status, resp.json().await.unwrap_or(Value::Null));
        }
        ("POST", p) if p.starts_with("/open311/v2/") => {
            let tenant = p.split('/').nth(3).unwrap();
            let mut fields = vec![
                ("jurisdiction_id", tenant),
                ("service_code", "SH01"),
                ("lat", "36.065"),
                ("long", "120.385"),
                ("phone", "13700001112"),
                ("description", "夜间施工噪音扰民"),
            ];
            if relation.contains("api_key of") {
                fields.push(("api_key", t.api_key.as_str()));
            }
            Probe {
                method: m.clone(),
                path: path.clone(),
                body: form(&fields),
            }
        }
        _ => panic!("no body for {route}: add one"),
    };
    let (status, text) = send(s, &p, token).await;
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn act(s: &Stack, token: &str, wo: &str, body: Value) {
    let (status, v) = s
        .post_json(token, &format!("/api/v1/work-orders/{wo}/actions"), body)
        .await;
    assert_eq!(status, StatusCode::OK, "{v}");
}

/// The set-up the matrix's header describes.
async fn set_up(s: &Stack) -> Things {
    let citizen = s.keys.token("370202", &[Role::Citizen], "citizen-1");
    let mut b = ticket_body("13900000401");
    b["channel"] = json!("app");
    let (status, v) = s.post(Some(&citizen), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let ticket = v["id"].as_str().unwrap().to_owned();
    let tracking = v["tracking_no"].as_str().unwrap().to_owned();
    let order = wait_until(Duration::from_secs(15), "the work order", || async {
        let (_, t) = s
            .get(&s.agent(), &format!("/api/v1/tickets/{ticket}"))
            .await;
        t["work_order_id"].as_str().map(str::to_owned)
    })
    .await;
    let d = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    act(
        s,
        &d,
        &order,
        json!({"action": "dispatch", "lead_unit_id": "sn-gafj", "co_unit_ids": ["sn-zjj"]}),
    )
    .await;
    let gw = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    act(
        s,
        &gw,
        &order,
        json!({"action": "whistle", "level": 2, "unit_ids": ["sn-bdx"], "note": "需街道协同"}),
    )
    .await;
    // Intake learns the lead unit from dispatch (the lookup filters by it).
    wait_until(Duration::from_secs(15), "intake knows the unit", || async {
        let (_, v) = s
            .get(
                &s.agent(),
                &format!("/api/v1/tickets?tracking_no={tracking}"),
            )
            .await;
        (v["tickets"][0]["unit_id"] == "sn-gafj").then_some(())
    })
    .await;
    // And every unit involved, the summoned one last (the whistle's event).
    let summoned = caller(s, "handler", "summoned unit (sn-bdx)").unwrap();
    wait_until(
        Duration::from_secs(15),
        "intake knows the summoned unit",
        || async {
            let (_, v) = s
                .get(
                    &summoned,
                    &format!("/api/v1/tickets?tracking_no={tracking}"),
                )
                .await;
            (v["tickets"].as_array().is_some_and(|t| t.len() == 1)).then_some(())
        },
    )
    .await;
    let upload = Probe {
        method: Method::POST,
        path: format!("/api/v1/tickets/{ticket}/attachments"),
        body: Some(("application/octet-stream", png())),
    };
    let (status, v) = send(s, &upload, Some(&citizen)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let v: Value = serde_json::from_str(&v).unwrap();
    let attachment = v["id"].as_str().unwrap().to_owned();
    let mut b = ticket_body("13900000402");
    b["channel"] = json!("app");
    b["category"] = json!("SC01");
    b["content"] = json!("健身房预付卡关门跑路，要求退款");
    let (status, v) = s.post(Some(&citizen), b).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let spare = v["id"].as_str().unwrap().to_owned();

    three_grids(s).await;
    let gw1 = caller(s, "grid_worker", "own grid (G1)").unwrap();
    let (status, e) = s
        .post_json(
            &gw1,
            "/api/v1/grid-events",
            json!({"grid_code": "G1", "lat": 36.065, "lon": 120.385, "content": "楼道堆放杂物"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let event = e["id"].as_str().unwrap().to_owned();
    let (status, h) = s
        .post_json(
            &gw1,
            "/api/v1/households",
            json!({"grid_code": "G1", "room": "101", "head_name": "赵一", "phone": "13700000001", "members": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{h}");
    let household = h["id"].as_str().unwrap().to_owned();
    let (status, k) = s
        .post_json(
            &gw1,
            "/api/v1/key-persons",
            json!({"grid_code": "G1", "household_id": household, "category": "elderly_alone",
                   "name": "张秀兰", "phone": "13912345678"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{k}");
    let person = k["id"].as_str().unwrap().to_owned();
    let admin = s.admin();
    let (status, g) = s
        .post_json(&admin, "/api/v1/admin/duties/generate", json!({}))
        .await;
    assert_eq!(status, StatusCode::OK, "{g}");
    let (status, tasks) = s.get(&gw1, "/api/v1/duty-tasks?grid_code=G1").await;
    assert_eq!(status, StatusCode::OK, "{tasks}");
    let task = tasks["tasks"][0]["id"].as_str().unwrap().to_owned();

    let open311 = s.register("市民App", "app", "open311").await;
    let api_key = open311["api_key"].as_str().unwrap().to_owned();
    let webhook = s.register("暖南诉办", "tenant_platform", "webhook").await;
    Things {
        ticket,
        tracking,
        order,
        attachment,
        spare,
        event,
        household,
        person,
        task,
        channel: webhook["channel"]["id"].as_str().unwrap().to_owned(),
        secret: webhook["secret"].as_str().unwrap().to_owned(),
        api_key,
    }
}

#[tokio::test]
async fn every_row_of_the_access_matrix_holds() {
    let s = stack().await;
    let t = set_up(&s).await;

    let mut rows = 0;
    let mut wrong = Vec::new();
    // In order: a row that changes something (a withdrawal) comes after
    // the rows that read it.
    for line in MATRIX.lines().filter(|l| !l.starts_with('#')).skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let [route, who, relation, expected] = cols[..] else {
            panic!("bad row: {line}");
        };
        let token = caller(&s, who, relation);
        let (status, v) = request(&s, &t, route, relation, token.as_deref()).await;
        let got = match expected {
            "listed" | "not listed" if status == StatusCode::OK => {
                let path = route.split_once(' ').unwrap().1;
                let (list, id) = t.listed(path);
                let listed = v[list]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x["id"] == id));
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
    assert!(rows >= 130, "only {rows} rows");
    assert!(
        wrong.is_empty(),
        "{} unexpected answers:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}
