//! Error messages in the caller's language: Chinese (zh-CN) by default,
//! English with `Accept-Language: en`, and the machine `code` and `field`
//! the same in both, whether the refusal comes from a service (through
//! gRPC), from the token check or from the gateway itself.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::stack::{Stack, stack, ticket_body};

/// One answer: its status, `Content-Language` and body.
struct Answer {
    status: StatusCode,
    language: String,
    vary: String,
    body: Value,
}

async fn ask(
    s: &Stack,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
    accept_language: Option<&str>,
) -> Answer {
    let mut r = s.http.request(method, s.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(b) = body {
        r = r.json(b);
    }
    if let Some(l) = accept_language {
        r = r.header("accept-language", l);
    }
    let r = r.send().await.unwrap();
    let header = |name: &str| {
        r.headers()
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let (status, language, vary) = (r.status(), header("content-language"), header("vary"));
    Answer {
        status,
        language,
        vary,
        body: r.json().await.unwrap_or(Value::Null),
    }
}

/// The same request with no `Accept-Language`, a Chinese browser's
/// (English third), and an English client's: two Chinese answers and one
/// English, identical but for the message.
async fn in_each_language(
    s: &Stack,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> (Value, Value) {
    let plain = ask(s, method.clone(), path, token, body, None).await;
    let browser = ask(
        s,
        method.clone(),
        path,
        token,
        body,
        Some("zh-CN,zh;q=0.9,en;q=0.8"),
    )
    .await;
    let english = ask(s, method, path, token, body, Some("en-US,en;q=0.9")).await;
    assert_eq!(plain.body, browser.body, "{path}");
    assert_eq!(plain.status, english.status, "{path}");
    for field in ["code", "field"] {
        assert_eq!(plain.body[field], english.body[field], "{path}: {field}");
    }
    assert_eq!(
        (plain.language.as_str(), english.language.as_str()),
        ("zh-CN", "en"),
        "{path}"
    );
    assert!(
        plain.vary.to_ascii_lowercase().contains("accept-language"),
        "{path}: {}",
        plain.vary
    );
    (plain.body, english.body)
}

#[tokio::test]
async fn errors_speak_chinese_unless_the_caller_asks_for_english() {
    let s = stack().await;
    let agent = s.agent();

    // A service's refusal: intake's validation of a ticket, through gRPC.
    let mut ticket = ticket_body("13800138000");
    ticket["content"] = json!("   ");
    let (zh, en) = in_each_language(
        &s,
        Method::POST,
        "/api/v1/tickets",
        Some(&agent),
        Some(&ticket),
    )
    .await;
    assert_eq!(
        zh,
        json!({"code": "invalid_field", "field": "content", "message": "content：必填"})
    );
    assert_eq!(
        en,
        json!({"code": "invalid_field", "field": "content", "message": "content: is required"})
    );
    // A nested field keeps its path in both.
    let mut ticket = ticket_body("12345");
    ticket["citizen"]["name"] = json!("张先生");
    let (zh, en) = in_each_language(
        &s,
        Method::POST,
        "/api/v1/tickets",
        Some(&agent),
        Some(&ticket),
    )
    .await;
    assert_eq!(zh["field"], "citizen.phone");
    assert!(
        zh["message"]
            .as_str()
            .unwrap()
            .starts_with("citizen.phone：必须是中国大陆手机号码"),
        "{zh}"
    );
    assert!(
        en["message"]
            .as_str()
            .unwrap()
            .starts_with("citizen.phone: must be a mainland mobile number"),
        "{en}"
    );

    // A service's "not found".
    let (zh, en) = in_each_language(
        &s,
        Method::GET,
        &format!("/api/v1/tickets/{}", uuid::Uuid::now_v7()),
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(
        (zh["code"].as_str(), zh["message"].as_str()),
        (Some("not_found"), Some("未找到诉求"))
    );
    assert_eq!(en["message"], "ticket not found");

    // The token check: no token at all.
    let (zh, en) = in_each_language(&s, Method::GET, "/api/v1/categories", None, None).await;
    assert_eq!(
        zh,
        json!({"code": "missing_token", "message": "缺少 Bearer 令牌"})
    );
    assert_eq!(
        en,
        json!({"code": "missing_token", "message": "missing bearer token"})
    );
    // A role the route does not admit: the roles by their Chinese names.
    let citizen = s
        .keys
        .token("370202", &[jiesu_auth::Role::Citizen], "citizen-1");
    let (zh, en) = in_each_language(
        &s,
        Method::GET,
        "/api/v1/admin/channels",
        Some(&citizen),
        None,
    )
    .await;
    assert_eq!(zh["code"], "forbidden");
    assert_eq!(zh["message"], "此操作需要以下角色之一：本级管理员", "{zh}");
    assert_eq!(
        en["message"],
        "this action needs one of the roles: tenant_admin"
    );

    // The gateway's own: a query parameter that does not parse.
    let (zh, en) = in_each_language(
        &s,
        Method::GET,
        "/api/v1/tickets?page_size=many",
        Some(&agent),
        None,
    )
    .await;
    assert_eq!(zh["code"], "invalid_query");
    let (zh, en) = (
        zh["message"].as_str().unwrap(),
        en["message"].as_str().unwrap(),
    );
    assert!(
        zh.starts_with("查询参数有误：") && zh.contains("page_size"),
        "{zh}"
    );
    assert!(
        en.starts_with("query parameters: ") && en.contains("page_size"),
        "{en}"
    );
    // ... a body that is not JSON, and a route that does not exist.
    let r = s
        .http
        .post(s.url("/api/v1/tickets"))
        .bearer_auth(&agent)
        .header("content-type", "text/plain")
        .body("楼上噪音")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"code": "unsupported_media_type", "message": "请以 application/json 格式发送请求体"})
    );
    let (zh, en) = in_each_language(&s, Method::GET, "/api/v1/nowhere", None, None).await;
    assert_eq!(
        (zh["message"].as_str(), en["message"].as_str()),
        (Some("没有这个接口"), Some("no such endpoint"))
    );
}
