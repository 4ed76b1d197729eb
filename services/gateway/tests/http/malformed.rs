//! Generated bad requests against every create endpoint (REST, signed
//! webhook, Open311): wrong types, missing and unknown fields, huge strings,
//! invalid UTF-8, bad coordinates, script tags, SQL fragments, deep JSON.
//! Every answer is a 4xx that names the problem; nothing is stored; the
//! service keeps answering.

use std::time::Duration;

use hmac::{Hmac, Mac};
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::stack::{Stack, now, stack};

const SCRIPT: &str = "<script>alert(1)</script>";
const SQL: &str = "x'; DROP TABLE tickets; --";

/// A bad value for a field, and the field the answer must name (a prefix:
/// `location` for a point outside the service area).
struct Mutation {
    path: &'static str,
    value: Option<Value>,
    names: String,
}

fn m(path: &'static str, value: Value) -> Mutation {
    Mutation {
        path,
        value: Some(value),
        names: path.to_owned(),
    }
}

fn missing(path: &'static str) -> Mutation {
    Mutation {
        path,
        value: None,
        names: path.to_owned(),
    }
}

fn named(path: &'static str, value: Value, names: &str) -> Mutation {
    Mutation {
        path,
        value: Some(value),
        names: names.to_owned(),
    }
}

/// Field-level mutations shared by the REST body and the webhook delivery.
fn field_mutations() -> Vec<Mutation> {
    let long = |n: usize| json!("x".repeat(n));
    let mut out = Vec::new();
    for v in [
        json!(123),
        json!(true),
        json!([]),
        json!({}),
        json!(SCRIPT),
        json!(SQL),
        json!(""),
        long(5000),
        Value::Null,
    ] {
        out.push(m("nature", v));
    }
    for v in [
        json!(123),
        json!([]),
        json!(SCRIPT),
        json!(SQL),
        json!(""),
        json!("NOPE99"),
        json!("SH"),
        long(40),
        Value::Null,
    ] {
        out.push(m("category", v));
    }
    for v in [
        json!(123),
        json!([]),
        json!({}),
        json!(""),
        json!("   "),
        json!("长".repeat(4001)),
        json!("a\u{0000}b"),
        Value::Null,
    ] {
        out.push(m("content", v));
    }
    for v in [json!(5), json!(SCRIPT), json!("very"), json!([])] {
        out.push(m("urgency", v));
    }
    for v in [
        json!(5),
        json!("<img src=x onerror=alert(1)>"),
        json!("military"),
        json!(SQL),
    ] {
        out.push(m("kind", v));
    }
    for v in [json!("yes"), json!(1), json!([])] {
        out.push(m("confidential", v));
    }
    for v in [json!("here"), json!(5), json!([])] {
        out.push(m("location", v));
    }
    for v in [
        json!("36.06"),
        json!(91),
        json!(-91),
        json!(true),
        json!([]),
        json!({}),
    ] {
        out.push(m("location.lat", v));
    }
    for v in [json!("120"), json!(181), json!(-181), json!(false)] {
        out.push(m("location.lon", v));
    }
    // A point on the equator: valid numbers, outside the service area.
    out.push(named("location.lat", json!(0.0), "location"));
    for v in [json!(5), json!([]), long(201), json!("a\u{0001}b")] {
        out.push(m("location.address", v));
    }
    for v in [json!("13800138000"), json!(5), json!([]), Value::Null] {
        out.push(m("citizen", v));
    }
    for v in [json!(5), long(51), json!("a\u{0007}b")] {
        out.push(m("citizen.name", v));
    }
    for v in [
        json!(13800138000u64),
        json!(""),
        json!("12345"),
        json!(SCRIPT),
        json!("13800138000' OR 1=1"),
        json!("1380013800a"),
        json!("+86 138 0013 8000"),
        Value::Null,
    ] {
        out.push(m("citizen.phone", v));
    }
    for v in [
        json!(5),
        json!("123"),
        json!("11010519491231002Y"),
        json!(format!("{SCRIPT}1234")),
        json!("110105194912310021"),
    ] {
        out.push(m("citizen.id_number", v));
    }
    out.push(m("attributes", json!("x")));
    out.push(m("attributes", json!(5)));
    out.push(m("attributes", json!([])));
    out.push(named("attributes", json!({"noise": 5}), "attributes.noise"));
    out.push(named(
        "attributes",
        json!({"x": {"deep": 1}}),
        "attributes.x",
    ));
    out.push(named("attributes", json!({SCRIPT: "x"}), "attributes"));
    out.push(named(
        "attributes",
        json!({"colour": "red"}),
        "attributes.colour",
    ));
    out.push(named(
        "attributes",
        json!({"colour": SQL}),
        "attributes.colour",
    ));
    for p in ["nature", "category", "content", "citizen", "citizen.phone"] {
        out.push(missing(p));
    }
    for unknown in ["fax", "__proto__", "$where", "tenant"] {
        out.push(named("", json!(unknown), unknown));
    }
    out
}

/// Applies a mutation to a copy of `body`; `path` "" adds the unknown
/// field named by the value.
fn apply(body: &Value, mu: &Mutation) -> Value {
    let mut b = body.clone();
    if mu.path.is_empty() {
        let name = mu
            .value
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("x")
            .to_owned();
        b[name] = json!("1");
        return b;
    }
    let (parent, leaf) = match mu.path.split_once('.') {
        Some((p, l)) => (Some(p), l),
        None => (None, mu.path),
    };
    let target = match parent {
        Some(p) => &mut b[p],
        None => &mut b,
    };
    let obj = target.as_object_mut().unwrap();
    match &mu.value {
        Some(v) => {
            obj.insert(leaf.to_owned(), v.clone());
        }
        None => {
            obj.remove(leaf);
        }
    }
    b
}

fn rest_body() -> Value {
    json!({
        "channel": "hotline",
        "nature": "complaint",
        "category": "SH01",
        "content": "楼上噪音",
        "urgency": "normal",
        "kind": "livelihood",
        "confidential": false,
        "location": {"lat": 36.06, "lon": 120.38, "address": "燕儿岛路10号"},
        "citizen": {"name": "张先生", "phone": "13800138000", "id_number": "11010519491231002X"},
        "attributes": {}
    })
}

/// Raw bodies that are not a JSON object at all.
fn raw_bodies() -> Vec<(Vec<u8>, &'static str)> {
    let deep_array = format!("{}{}", "[".repeat(1000), "]".repeat(1000));
    let deep_object = format!("{}1{}", "{\"a\":".repeat(300), "}".repeat(300));
    let deep_inside = format!(
        r#"{{"channel":"hotline","content":{}{}}}"#,
        "[".repeat(500),
        "]".repeat(500)
    );
    vec![
        (vec![0xff, 0xfe, b'{', b'}'], "UTF-8"),
        (b"{\"content\":\"\xc3\x28\"}".to_vec(), "UTF-8"),
        (b"{\"content\":\"\xed\xa0\x80\"}".to_vec(), "UTF-8"),
        (b"{\"channel\":".to_vec(), "JSON"),
        (b"{]".to_vec(), "JSON"),
        (b"".to_vec(), "JSON"),
        (b"null".to_vec(), ""),
        (b"[1,2,3]".to_vec(), ""),
        (b"\"just a string\"".to_vec(), ""),
        (b"{\"lat\": 1e400}".to_vec(), ""),
        (b"{'single': 'quotes'}".to_vec(), "JSON"),
        (deep_array.into_bytes(), "嵌套"),
        (deep_object.into_bytes(), "嵌套"),
        (deep_inside.into_bytes(), "嵌套"),
    ]
}

struct Tally {
    sent: usize,
}

impl Tally {
    /// 4xx, an error body with a code and a message, and (when known) the
    /// field it names.
    fn check(&mut self, what: &str, status: StatusCode, v: &Value, names: Option<&str>) {
        self.sent += 1;
        assert!(status.is_client_error(), "{what}: {status} {v}");
        let code = v["code"].as_str().unwrap_or_default();
        let message = v["message"].as_str().unwrap_or_default();
        assert!(!code.is_empty() && !message.is_empty(), "{what}: {v}");
        if let Some(field) = names
            && !field.is_empty()
        {
            let got = v["field"].as_str().unwrap_or_default();
            assert!(
                got.starts_with(field),
                "{what}: field {got:?}, expected {field:?}: {v}"
            );
        }
        // The answer never echoes the injected markup or SQL.
        assert!(
            !message.contains("<script>") && !message.contains("DROP TABLE"),
            "{what}: {v}"
        );
    }
}

async fn rest(s: &Stack, tally: &mut Tally) {
    let token = s.agent();
    let base = rest_body();
    let mut mutations = field_mutations();
    for v in [
        json!(5),
        json!(SCRIPT),
        json!(SQL),
        json!("fax"),
        json!(""),
        Value::Null,
    ] {
        mutations.push(m("channel", v));
    }
    mutations.push(missing("channel"));
    for mu in &mutations {
        let body = apply(&base, mu);
        let r = s
            .http
            .post(s.url("/api/v1/tickets"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        tally.check(
            &format!("REST {} = {:?}", mu.path, mu.value),
            status,
            &v,
            Some(&mu.names),
        );
    }
    for (raw, mentions) in raw_bodies() {
        let r = s
            .http
            .post(s.url("/api/v1/tickets"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        tally.check(
            &format!(
                "REST raw {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(20)])
            ),
            status,
            &v,
            None,
        );
        assert!(v["message"].as_str().unwrap().contains(mentions), "{v}");
    }
    // Wrong media type, and a body over the limit.
    for (ct, body, want) in [
        (
            "text/plain",
            b"hello".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/xml",
            b"<ticket/>".to_vec(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "application/json",
            vec![b' '; 200 * 1024],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
    ] {
        let r = s
            .http
            .post(s.url("/api/v1/tickets"))
            .bearer_auth(&token)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(status, want, "{v}");
        tally.check(ct, status, &v, None);
    }
}

fn sign(secret: &str, ts: &str, nonce: &str, body: &[u8]) -> String {
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

async fn webhook(s: &Stack, tally: &mut Tally) {
    let reg = s.register("坏输入测试", "tenant_platform", "webhook").await;
    let channel = reg["channel"]["id"].as_str().unwrap().to_owned();
    let secret = reg["secret"].as_str().unwrap().to_owned();
    let mut base = rest_body();
    base.as_object_mut().unwrap().remove("channel");
    base["external_id"] = json!("EXT-1");
    let mut mutations = field_mutations();
    for v in [
        json!(5),
        json!(""),
        json!(SCRIPT.repeat(30)),
        json!("a b\u{0000}"),
        Value::Null,
    ] {
        mutations.push(m("external_id", v));
    }
    mutations.push(missing("external_id"));
    mutations.push(named("", json!("channel"), "channel"));
    let mut bodies: Vec<(Vec<u8>, String, Option<String>)> = mutations
        .iter()
        .map(|mu| {
            (
                serde_json::to_vec(&apply(&base, mu)).unwrap(),
                format!("webhook {} = {:?}", mu.path, mu.value),
                Some(mu.names.clone()),
            )
        })
        .collect();
    for (raw, _) in raw_bodies() {
        let what = format!(
            "webhook raw {:?}",
            String::from_utf8_lossy(&raw[..raw.len().min(20)])
        );
        bodies.push((raw, what, None));
    }
    for (i, (body, what, names)) in bodies.into_iter().enumerate() {
        let ts = now().to_string();
        let nonce = format!("malformed-nonce-{i:04}");
        let r = s
            .http
            .post(s.url(&format!("/api/v1/channels/{channel}/tickets")))
            .header("content-type", "application/json")
            .header("x-jiesu-timestamp", &ts)
            .header("x-jiesu-nonce", &nonce)
            .header("x-jiesu-signature", sign(&secret, &ts, &nonce, &body))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        tally.check(&what, status, &v, names.as_deref());
    }
    // Headers that are themselves malformed.
    for (ts, nonce, sig, code) in [
        ("", "malformed-nonce-h001", "v1=00", "timestamp_missing"),
        (
            "１７００",
            "malformed-nonce-h002",
            "v1=00",
            "timestamp_missing",
        ),
        (
            "99999999999999999999",
            "malformed-nonce-h003",
            "v1=00",
            "timestamp_missing",
        ),
        ("NOW", "malformed-nonce-h004", "v1=00", "timestamp_missing"),
        ("TS", "<script>alert(1)</script>", "v1=00", "nonce_invalid"),
        ("TS", "' OR 1=1 --'''''''''", "v1=00", "nonce_invalid"),
        ("TS", "malformed-nonce-h007", "", "signature_missing"),
        (
            "TS",
            "malformed-nonce-h008",
            "sha256=abc",
            "signature_invalid",
        ),
        (
            "TS",
            "malformed-nonce-h009",
            &"v1=".repeat(500),
            "signature_invalid",
        ),
    ] {
        let ts = if ts == "TS" {
            now().to_string()
        } else {
            ts.to_owned()
        };
        let r = s
            .http
            .post(s.url(&format!("/api/v1/channels/{channel}/tickets")))
            .header("content-type", "application/json")
            .header("x-jiesu-timestamp", ts)
            .header("x-jiesu-nonce", nonce)
            .header("x-jiesu-signature", sig)
            .body(serde_json::to_vec(&base).unwrap())
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!(v["code"], code, "{v}");
        tally.check(&format!("webhook header {code}"), status, &v, None);
    }
}

async fn open311(s: &Stack, tally: &mut Tally) {
    let reg = s.register("坏输入App", "app", "open311").await;
    let key = reg["api_key"].as_str().unwrap().to_owned();
    let good: Vec<(String, String)> = [
        ("api_key", key.as_str()),
        ("service_code", "CG02"),
        ("lat", "36.06"),
        ("long", "120.38"),
        ("phone", "13700001111"),
        ("description", "占用消防通道"),
        ("attribute[blocking]", "yes"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let cases: Vec<(&str, String, &str)> = vec![
        ("service_code", SCRIPT.into(), "service_code"),
        ("service_code", SQL.into(), "service_code"),
        ("service_code", "".into(), "service_code"),
        ("service_code", "x".repeat(5000), "service_code"),
        ("lat", "north".into(), "lat"),
        ("lat", "1e400".into(), "lat"),
        ("lat", "95".into(), "lat"),
        ("lat", SQL.into(), "lat"),
        ("long", "east".into(), "long"),
        ("long", "-200".into(), "long"),
        ("long", "inf".into(), "long"),
        ("phone", SCRIPT.into(), "phone"),
        ("phone", SQL.into(), "phone"),
        ("phone", "".into(), "phone"),
        ("description", "".into(), "description"),
        ("description", "很".repeat(4001), "description"),
        ("description", "a\u{0000}b".into(), "description"),
        ("address_string", "x".repeat(201), "address_string"),
        ("first_name", "x".repeat(60), "first_name"),
        ("attribute[blocking]", SCRIPT.into(), "attribute[blocking]"),
        ("attribute[blocking]", SQL.into(), "attribute[blocking]"),
        ("attribute[plate]", "x".repeat(501), "attribute[plate]"),
        ("attribute[<b>]", "x".into(), "attribute"),
        ("attribute[]", "x".into(), "attribute"),
        ("attribute[blocking", "x".into(), "attribute"),
        ("attribute[a][b]", "x".into(), "attribute"),
        ("confidential", "maybe".into(), "confidential"),
        ("urgency", SCRIPT.into(), "urgency"),
        ("nature", SQL.into(), "nature"),
        ("kind", "x".into(), "kind"),
        ("email", "x".repeat(300), "email"),
        ("media_url", "x".repeat(3000), "media_url"),
        ("account_id", "x".repeat(200), "account_id"),
        ("api_key", "".into(), "api_key"),
        ("api_key", SQL.into(), "api_key"),
        ("api_key", "x".repeat(5000), "api_key"),
        ("jurisdiction_id", SCRIPT.into(), "jurisdiction_id"),
    ];
    for (name, value, mentions) in cases {
        let mut form = good.clone();
        form.retain(|(k, _)| k != name);
        form.push((name.to_owned(), value.clone()));
        for fmt in ["json", "xml"] {
            let r = s
                .http
                .post(s.url(&format!("/open311/v2/370202/requests.{fmt}")))
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            tally.sent += 1;
            assert!(status.is_client_error(), "Open311 {name}: {status} {text}");
            if fmt == "json" {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v[0]["code"], status.as_u16(), "{v}");
                let d = v[0]["description"].as_str().unwrap();
                assert!(
                    d.contains(mentions),
                    "Open311 {name}: {d:?} should name {mentions}"
                );
                assert!(!d.contains("<script>") && !d.contains("DROP TABLE"), "{d}");
            } else {
                assert!(
                    text.contains(&format!(
                        "<errors><error><code>{}</code><description>",
                        status.as_u16()
                    )),
                    "{text}"
                );
                assert!(!text.contains("<script>"), "{text}");
            }
        }
    }
    // Bodies that are not forms, or not UTF-8.
    for (ct, body, mentions) in [
        ("application/json", b"{}".to_vec(), "x-www-form-urlencoded"),
        ("text/plain", b"api_key=x".to_vec(), "x-www-form-urlencoded"),
        (
            "application/x-www-form-urlencoded",
            b"description=%FF%FE&api_key=x".to_vec(),
            "UTF-8",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, b'=', b'1'],
            "UTF-8",
        ),
        (
            "application/x-www-form-urlencoded",
            vec![b'a'; 200 * 1024],
            "字节",
        ),
    ] {
        let r = s
            .http
            .post(s.url("/open311/v2/370202/requests.json"))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        tally.sent += 1;
        assert!(status.is_client_error(), "{ct}: {status} {v}");
        assert!(
            v[0]["description"].as_str().unwrap().contains(mentions),
            "{v}"
        );
    }
}

#[tokio::test]
async fn two_hundred_bad_requests_get_named_4xx_answers_and_store_nothing() {
    let s = stack().await;
    let mut tally = Tally { sent: 0 };
    rest(&s, &mut tally).await;
    webhook(&s, &mut tally).await;
    open311(&s, &mut tally).await;
    assert!(tally.sent >= 200, "only {} bad requests", tally.sent);

    // Still serving, and markup or SQL in free text is stored as text.
    let mut body = rest_body();
    body["content"] = json!(format!("{SQL} {SCRIPT}"));
    let (status, v) = s.post(Some(&s.agent()), body).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_owned();
    let (_, t) = s.get(&s.agent(), &format!("/api/v1/tickets/{id}")).await;
    assert_eq!(t["content"], format!("{SQL} {SCRIPT}"));
    // Nothing before it was accepted: the only ticket intake ever announced
    // is this one (events leave in the order tickets were stored).
    let received = wait_until(Duration::from_secs(10), "the ticket announced", || async {
        let r = s.intake_events("ticket.received").await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert_eq!(received.len(), 1, "a bad request was accepted");
    assert!(String::from_utf8_lossy(&received[0]).contains(&id));
    for other in ["ticket.answered_directly", "ticket.merged"] {
        assert!(s.intake_events(other).await.is_empty(), "{other}");
    }
    eprintln!("malformed-input test: {} bad requests", tally.sent);
}
