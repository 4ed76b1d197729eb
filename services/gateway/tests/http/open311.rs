//! Open311 GeoReport v2 conformance: every endpoint in JSON and XML, the
//! spec's error format and status codes, nulls for absent optional fields,
//! datetimes with a zone, and no personal data in any public answer.

use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::stack::{Stack, stack};

const BASE: &str = "/open311/v2/370202";

async fn get(s: &Stack, path: &str) -> Response {
    s.http.get(s.url(path)).send().await.unwrap()
}

async fn json(s: &Stack, path: &str) -> (StatusCode, Value) {
    let r = get(s, path).await;
    let status = r.status();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{path}"
    );
    (status, r.json().await.unwrap())
}

async fn xml(s: &Stack, path: &str) -> (StatusCode, String) {
    let r = get(s, path).await;
    let status = r.status();
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml"),
        "{path}"
    );
    let text = r.text().await.unwrap();
    assert!(
        text.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
        "{text}"
    );
    (status, text)
}

async fn post(s: &Stack, fmt: &str, form: &[(&str, &str)]) -> Response {
    s.http
        .post(s.url(&format!("{BASE}/requests.{fmt}")))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A spec error: `[{"code": <status>, "description": ...}]`.
fn assert_error(status: StatusCode, v: &Value, want: StatusCode, mentions: &str) {
    assert_eq!(status, want, "{v}");
    let e = &v.as_array().unwrap_or_else(|| panic!("not a list: {v}"))[0];
    assert_eq!(e["code"], want.as_u16(), "{v}");
    let d = e["description"].as_str().unwrap();
    assert!(d.contains(mentions), "{d:?} should mention {mentions:?}");
}

async fn open311_key(s: &Stack) -> String {
    let reg = s.register("市民App", "app", "open311").await;
    let key = reg["api_key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("o311_"), "{reg}");
    key
}

fn good_form(key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("api_key", key.to_owned()),
        ("jurisdiction_id", "370202".into()),
        ("service_code", "CG02".into()),
        ("lat", "36.0662".into()),
        ("long", "120.3826".into()),
        ("address_string", "香港中路街道燕儿岛路10号楼下".into()),
        ("email", "citizen@example.com".into()),
        ("first_name", "明".into()),
        ("last_name", "李".into()),
        ("phone", "13700001111".into()),
        ("description", "一辆白色轿车长期占用消防通道".into()),
        ("attribute[blocking]", "yes".into()),
        ("attribute[plate]", "鲁B12345".into()),
        ("account_id", "acct-77".into()),
    ]
}

fn refs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn discovery_and_services_in_both_formats() {
    let s = stack().await;
    for path in [
        format!("{BASE}/discovery.json"),
        format!("{BASE}/"),
        BASE.to_owned(),
    ] {
        let (status, d) = json(&s, &path).await;
        assert_eq!(status, StatusCode::OK);
        let ep = &d["endpoints"][0];
        assert_eq!(ep["specification"], "http://wiki.open311.org/GeoReport_v2");
        assert!(
            ep["url"].as_str().unwrap().ends_with("/open311/v2/370202"),
            "{d}"
        );
        assert_eq!(
            ep["formats"],
            serde_json::json!(["text/xml", "application/json"])
        );
        assert!(d["changeset"].as_str().unwrap().ends_with("+08:00"));
    }
    let (status, d) = xml(&s, &format!("{BASE}/discovery.xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(d.contains("<discovery><changeset>"), "{d}");
    assert!(
        d.contains("<formats><format>text/xml</format><format>application/json</format></formats>")
    );

    let (status, list) = json(&s, &format!("{BASE}/services.json")).await;
    assert_eq!(status, StatusCode::OK);
    let list = list.as_array().unwrap();
    // Leaves only: SH01, CG02, SC01, QT01.
    assert_eq!(list.len(), 4, "{list:?}");
    let cg02 = list.iter().find(|x| x["service_code"] == "CG02").unwrap();
    assert_eq!(cg02["service_name"], "违章停车");
    assert_eq!(cg02["metadata"], true);
    assert_eq!(cg02["type"], "realtime");
    assert_eq!(cg02["group"], "城市管理");
    assert_eq!(cg02["keywords"], "停车,占道,消防通道");
    let sh01 = list.iter().find(|x| x["service_code"] == "SH01").unwrap();
    assert_eq!(sh01["metadata"], false);
    // Optional fields are present, as null.
    assert!(sh01.as_object().unwrap().contains_key("description"));
    assert_eq!(sh01["description"], Value::Null);
    assert_eq!(sh01["keywords"], Value::Null);

    let (_, x) = xml(&s, &format!("{BASE}/services.xml")).await;
    assert!(x.contains("<services><service><service_code>"), "{x}");
    assert!(x.contains("<service_name>违章停车</service_name>"));
    assert!(x.contains("<metadata>true</metadata>"));
    assert!(x.contains("<description/>"));

    let (status, def) = json(&s, &format!("{BASE}/services/CG02.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(def["service_code"], "CG02");
    let attrs = def["attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 3);
    assert_eq!(attrs[1]["code"], "blocking");
    assert_eq!(attrs[1]["variable"], true);
    assert_eq!(attrs[1]["datatype"], "singlevaluelist");
    assert_eq!(attrs[1]["required"], true);
    assert_eq!(attrs[1]["order"], 2);
    assert_eq!(
        attrs[1]["values"][0],
        serde_json::json!({"key": "yes", "name": "是"})
    );
    assert_eq!(attrs[0]["datatype_description"], Value::Null);
    let (_, x) = xml(&s, &format!("{BASE}/services/CG02.xml")).await;
    assert!(x.contains("<service_definition><service_code>CG02</service_code><attributes><attribute><variable>true</variable>"), "{x}");
    assert!(x.contains("<values><value><key>yes</key><name>是</name></value>"));

    // Errors: unknown service, unknown jurisdiction, bad format.
    let (status, v) = json(&s, &format!("{BASE}/services/NOPE.json")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "service_code");
    let (status, x) = xml(&s, &format!("{BASE}/services/NOPE.xml")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(x.contains("<errors><error><code>404</code><description>未找到 service_code</description></error></errors>"), "{x}");
    // In English for a client that asks for it, as the API's errors.
    let r = s
        .http
        .get(s.url(&format!("{BASE}/services/NOPE.xml")))
        .header("accept-language", "en-US,en;q=0.9")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-language"], "en");
    let x = r.text().await.unwrap();
    assert!(x.contains("<errors><error><code>404</code><description>service_code not found</description></error></errors>"), "{x}");
    let (status, v) = json(&s, "/open311/v2/999999/services.json").await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "jurisdiction_id");
    let (status, v) = json(&s, "/open311/v2/abc/services.json").await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "jurisdiction_id");
    let (status, v) = json(&s, &format!("{BASE}/services.json?jurisdiction_id=370203")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "jurisdiction_id");
    let (status, v) = json(&s, &format!("{BASE}/services.json?jurisdiction_id=370202")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let (status, v) = json(&s, &format!("{BASE}/services.csv")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "json 或 xml");
    let (status, v) = json(&s, &format!("{BASE}/services")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, ".json 或 .xml");
}

#[tokio::test]
async fn post_requests_then_read_them_back_publicly() {
    let s = stack().await;
    let key = open311_key(&s).await;
    let form = good_form(&key);

    let r = post(&s, "json", &refs(&form)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let created: Value = r.json().await.unwrap();
    let created = &created[0];
    let id = created["service_request_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("370202-"), "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["account_id"], "acct-77");
    assert!(created["service_notice"].is_string());

    // XML create, with a multi-value attribute and a datetime with zone.
    let xml_form = vec![
        ("api_key", key.as_str()),
        ("service_code", "SC01"),
        ("address_string", "南京路100号健身房"),
        ("phone", "0532-88886666"),
        ("description", "健身房突然关门，预付卡无法退费"),
        ("attribute[paid_at]", "2026-10-01T10:00:00+08:00"),
        ("attribute[amount]", "3999.5"),
        ("attribute[items][]", "gym"),
        ("attribute[items][]", "salon"),
    ];
    let r = post(&s, "xml", &xml_form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let x = r.text().await.unwrap();
    assert!(
        x.contains("<service_requests><request><service_request_id>370202-"),
        "{x}"
    );
    assert!(x.contains("<account_id/>"), "{x}");
    let xml_id = x
        .split("<service_request_id>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();

    // GET requests/{id}: public fields, nulls present, zone +08:00, no
    // personal data.
    let (status, v) = json(&s, &format!("{BASE}/requests/{id}.json")).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let req = &v[0];
    assert_eq!(req["service_request_id"], id.as_str());
    assert_eq!(req["status"], "open");
    assert_eq!(req["service_code"], "CG02");
    assert_eq!(req["service_name"], "违章停车");
    assert_eq!(req["description"], "一辆白色轿车长期占用消防通道");
    assert_eq!(req["lat"], 36.0662);
    assert_eq!(req["long"], 120.3826);
    assert!(
        req["requested_datetime"]
            .as_str()
            .unwrap()
            .ends_with("+08:00"),
        "{req}"
    );
    for field in [
        "status_notes",
        "agency_responsible",
        "service_notice",
        "expected_datetime",
        "address_id",
        "zipcode",
        "media_url",
    ] {
        assert_eq!(
            req[field],
            Value::Null,
            "{field} must be present as null: {req}"
        );
    }
    let address = req["address"].as_str().unwrap();
    assert!(
        address.ends_with("****") && !address.contains("10号"),
        "{address}"
    );
    for secret in [
        "13700001111",
        "citizen@example.com",
        "燕儿岛路10号",
        "李 明",
        key.as_str(),
    ] {
        assert!(!v.to_string().contains(secret), "{secret} leaked: {v}");
    }
    let (status, x) = xml(&s, &format!("{BASE}/requests/{id}.xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(x.contains("<status>open</status>"), "{x}");
    assert!(x.contains("<zipcode/>"));
    assert!(x.contains("<long>120.3826</long>"));

    // tokens/{token}
    let (status, v) = json(&s, &format!("{BASE}/tokens/{token}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v[0]["service_request_id"], id.as_str());
    assert_eq!(v[0]["token"], token.as_str());
    let (_, x) = xml(&s, &format!("{BASE}/tokens/{token}.xml")).await;
    assert!(
        x.contains(&format!(
            "<request><service_request_id>{id}</service_request_id><token>{token}</token></request>"
        )),
        "{x}"
    );
    let (status, v) = json(&s, &format!("{BASE}/tokens/nope.json")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "token");
    let (status, v) = json(&s, "/open311/v2/370203/tokens/{token}.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");

    // GET requests with filters.
    let (status, v) = json(&s, &format!("{BASE}/requests.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?service_code=SC01")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["service_request_id"], xml_id.as_str());
    let (_, v) = json(
        &s,
        &format!("{BASE}/requests.json?service_request_id={id},{xml_id}"),
    )
    .await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?status=open")).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?status=closed")).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?status=open,closed")).await;
    assert_eq!(v.as_array().unwrap().len(), 2);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?start_date=2020-01-01T00:00:00Z&end_date=2020-02-01T00:00:00%2B08:00")).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?page_size=1")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    let newest = v[0]["service_request_id"].clone();
    let (_, v) = json(&s, &format!("{BASE}/requests.json?page_size=1&page=2")).await;
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_ne!(v[0]["service_request_id"], newest);
    let (_, v) = json(&s, &format!("{BASE}/requests.json?page_size=1&page=3")).await;
    assert_eq!(v.as_array().unwrap().len(), 0);
    let (_, x) = xml(&s, &format!("{BASE}/requests.xml?service_code=SC01")).await;
    assert_eq!(x.matches("<request>").count(), 1, "{x}");

    for (query, mentions) in [
        ("status=pending", "status"),
        ("start_date=yesterday", "start_date"),
        ("end_date=2026-13-01", "end_date"),
        ("page=0", "page"),
        ("page_size=abc", "page_size"),
        ("page_size=5000", "page_size"),
        ("start_date=2026-02-01&end_date=2026-01-01", "start_date"),
    ] {
        let (status, v) = json(&s, &format!("{BASE}/requests.json?{query}")).await;
        assert_error(status, &v, StatusCode::BAD_REQUEST, mentions);
    }
    let (status, v) = json(&s, &format!("{BASE}/requests/370202-19990101-00001.json")).await;
    assert_error(status, &v, StatusCode::NOT_FOUND, "service_request_id");
    let (status, x) = xml(&s, &format!("{BASE}/requests/370202-19990101-00001.xml")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(x.contains("<errors><error><code>404</code>"), "{x}");

    // The agent sees the Open311 ticket as app channel, its attributes kept.
    let (_, list) = s.get(&s.admin(), "/api/v1/admin/channels").await;
    let channel = list["channels"][0]["id"].as_str().unwrap().to_owned();
    let received = s.received(&xml_id).await;
    let ticket_id = received.ticket_id;
    assert_eq!(received.channel, "app");
    let (status, view) = s
        .get(&s.agent(), &format!("/api/v1/tickets/{ticket_id}"))
        .await;
    assert_eq!(status, StatusCode::OK, "{view}");
    assert_eq!(view["channel_id"], channel.as_str());
    assert_eq!(
        view["attributes"]["items"],
        serde_json::json!(["gym", "salon"])
    );
    assert_eq!(view["attributes"]["amount"], serde_json::json!(["3999.5"]));
    assert_eq!(view["citizen"]["phone"], "053****6666");
    // The e-mail address given to Open311 never comes back out; that it is
    // stored only encrypted is intake's own test
    // (`open311_client_details_and_id_numbers_are_stored_sealed`).
    assert!(!view.to_string().contains("example.com"), "{view}");
}

#[tokio::test]
async fn post_refusals_follow_the_spec() {
    let s = stack().await;
    let key = open311_key(&s).await;
    let webhook = s.register("暖南诉办", "tenant_platform", "webhook").await;
    let secret = webhook["secret"].as_str().unwrap().to_owned();

    let with = |name: &'static str, value: &str| {
        let mut f = good_form(&key);
        f.retain(|(k, _)| *k != name);
        if !value.is_empty() {
            f.push((name, value.to_owned()));
        }
        f
    };
    let without = |name: &'static str| with(name, "");

    type Case<'a> = (Vec<(&'static str, String)>, StatusCode, &'a str);
    let cases: Vec<Case> = vec![
        (without("api_key"), StatusCode::FORBIDDEN, "api_key"),
        (
            with("api_key", "o311_wrong"),
            StatusCode::FORBIDDEN,
            "api_key",
        ),
        (with("api_key", &secret), StatusCode::FORBIDDEN, "api_key"),
        (
            with("jurisdiction_id", "370203"),
            StatusCode::NOT_FOUND,
            "jurisdiction_id",
        ),
        (
            with("service_code", "NOPE"),
            StatusCode::BAD_REQUEST,
            "service_code",
        ),
        (
            with("service_code", "CG"),
            StatusCode::BAD_REQUEST,
            "service_code",
        ),
        (
            without("service_code"),
            StatusCode::BAD_REQUEST,
            "service_code",
        ),
        (
            without("description"),
            StatusCode::BAD_REQUEST,
            "description",
        ),
        (
            with("description", &"很".repeat(4001)),
            StatusCode::BAD_REQUEST,
            "description",
        ),
        (with("lat", "north"), StatusCode::BAD_REQUEST, "lat"),
        (with("long", "NaN"), StatusCode::BAD_REQUEST, "long"),
        (with("lat", "95"), StatusCode::BAD_REQUEST, "lat"),
        (without("phone"), StatusCode::BAD_REQUEST, "phone"),
        (with("phone", "12"), StatusCode::BAD_REQUEST, "phone"),
        (
            without("attribute[blocking]"),
            StatusCode::BAD_REQUEST,
            "attribute[blocking]",
        ),
        (
            with("attribute[blocking]", "maybe"),
            StatusCode::BAD_REQUEST,
            "attribute[blocking]",
        ),
        (
            with("attribute[colour]", "red"),
            StatusCode::BAD_REQUEST,
            "attribute[colour]",
        ),
        (
            with("attribute[", "x"),
            StatusCode::BAD_REQUEST,
            "attribute",
        ),
        (
            with("confidential", "perhaps"),
            StatusCode::BAD_REQUEST,
            "confidential",
        ),
        (
            with("email", &format!("{}@x.cn", "a".repeat(300))),
            StatusCode::BAD_REQUEST,
            "email",
        ),
    ];
    for (form, want, mentions) in cases {
        let r = post(&s, "json", &refs(&form)).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert_error(status, &v, want, mentions);
    }
    // No location at all: lat/long or address_string is required.
    let mut f = without("lat");
    f.retain(|(k, _)| *k != "long" && *k != "address_string");
    let r = post(&s, "json", &refs(&f)).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "address_string",
    );
    // Number and datetime attributes are typed.
    for (attr, value) in [
        ("attribute[amount]", "lots"),
        ("attribute[paid_at]", "2026-10-01 10:00"),
    ] {
        let form = vec![
            ("api_key", key.as_str()),
            ("service_code", "SC01"),
            ("address_string", "南京路100号"),
            ("phone", "13700001111"),
            ("description", "预付卡"),
            (attr, value),
        ];
        let r = post(&s, "json", &form).await;
        let status = r.status();
        assert_error(
            status,
            &r.json().await.unwrap(),
            StatusCode::BAD_REQUEST,
            attr,
        );
    }
    // The XML error format for a refusal.
    let r = post(&s, "xml", &refs(&without("api_key"))).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let x = r.text().await.unwrap();
    assert!(
        x.contains("<errors><error><code>403</code><description>"),
        "{x}"
    );
    // Not a form.
    let r = s
        .http
        .post(s.url(&format!("{BASE}/requests.json")))
        .json(&serde_json::json!({"api_key": key}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "x-www-form-urlencoded",
    );
    // Invalid UTF-8 in a value.
    let r = s
        .http
        .post(s.url(&format!("{BASE}/requests.json")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("api_key={key}&description=%FF%FE"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::BAD_REQUEST,
        "UTF-8",
    );

    // A disabled channel's key stops working.
    let (_, list) = s.get(&s.admin(), "/api/v1/admin/channels").await;
    let app = list["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["auth"] == "open311")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post(&s, "json", &refs(&good_form(&key))).await.status(),
        StatusCode::OK
    );
    s.post_json(
        &s.admin(),
        &format!("/api/v1/admin/channels/{app}/disable"),
        serde_json::json!({}),
    )
    .await;
    let r = post(&s, "json", &refs(&good_form(&key))).await;
    let status = r.status();
    assert_error(
        status,
        &r.json().await.unwrap(),
        StatusCode::FORBIDDEN,
        "api_key",
    );
}

#[tokio::test]
async fn a_confidential_request_is_not_listed_and_shows_only_its_status() {
    let s = stack().await;
    let key = open311_key(&s).await;
    let mut form = good_form(&key);
    form.push(("confidential", "true".into()));
    let r = post(&s, "json", &refs(&form)).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    let id = v[0]["service_request_id"].as_str().unwrap().to_owned();
    let (_, list) = json(&s, &format!("{BASE}/requests.json")).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "{list}");
    let (status, one) = json(&s, &format!("{BASE}/requests/{id}.json")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one[0]["status"], "open");
    assert_eq!(one[0]["description"], Value::Null);
    assert_eq!(one[0]["address"], Value::Null);
    assert_eq!(one[0]["lat"], Value::Null);
}
