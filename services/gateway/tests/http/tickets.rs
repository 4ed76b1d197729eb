//! `/api/v1/tickets`, tokens, roles, the OpenAPI document.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jiesu_auth::{DevSigner, Role, TokenSpec};
use jiesu_testkit::wait_until;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::stack::{now, stack, ticket_body, timeline_events};

#[tokio::test]
async fn a_ticket_travels_to_its_unit_and_reads_back_masked() {
    let s = stack().await;
    let agent = s.keys.token("370202", &[Role::Agent], "agent-1");
    let (status, created) = s.post(Some(&agent), ticket_body("13800138000")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["status"], "received");
    let id = created["id"].as_str().unwrap().to_owned();

    let view = wait_until(Duration::from_secs(15), "dispatched", || async {
        let (_, v) = s.get(&agent, &format!("/api/v1/tickets/{id}")).await;
        (v["status"] == "dispatched").then_some(v)
    })
    .await;
    assert_eq!(view["citizen"]["phone"], "138****8000");
    assert_eq!(view["unit"]["id"], "sn-gafj");
    assert_eq!(view["category_name"], "噪声扰民");
    let events = timeline_events(&view);
    assert_eq!(events, ["received", "dispatched"]);
    assert!(!view.to_string().contains("13800138000"));
    assert!(!view.to_string().contains("10号"));

    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let page = wait_until(Duration::from_secs(15), "the notification", || async {
        let (_, v) = s
            .get(
                &dispatcher,
                &format!("/api/v1/notifications?ticket_id={id}"),
            )
            .await;
        (v["notifications"].as_array().map(|a| a.len()) == Some(1)).then_some(v)
    })
    .await;
    assert_eq!(page["notifications"][0]["recipient_id"], "sn-gafj");

    // A repeated create with the same Idempotency-Key is the same ticket.
    let send = || {
        s.http
            .post(format!("{}/api/v1/tickets", s.base))
            .bearer_auth(&agent)
            .header("Idempotency-Key", "call-42")
            .json(&ticket_body("13800138001"))
            .send()
    };
    let a = send().await.unwrap();
    assert_eq!(a.status(), StatusCode::CREATED);
    let b = send().await.unwrap();
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    let (a, b): (Value, Value) = (a.json().await.unwrap(), b.json().await.unwrap());
    assert_eq!(a["id"], b["id"]);
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401() {
    let s = stack().await;
    let signer = s.keys.signer();
    let claims = json!({
        "sub": "agent-1", "tenant": "370202", "roles": ["agent"],
        "iss": "jiesu-dev", "aud": "jiesu", "exp": now() + 600,
    });
    let with = |k: &str, v: Value| {
        let mut c = claims.clone();
        c[k] = v;
        c
    };
    let jwks: Value = serde_json::from_str(&signer.jwks_json()).unwrap();
    let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = Some(signer.kid().to_owned());
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(x.as_bytes()),
        )
        .unwrap()
    };
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": signer.kid()}).to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let stranger = DevSigner::from_pem(&jiesu_auth::generate_dev_key_pem().unwrap()).unwrap();
    let cases: Vec<(&str, String)> = vec![
        ("alg none", none),
        ("HS256 signed with the public key", hs256),
        (
            "expired beyond leeway",
            signer.sign_json(&with("exp", json!(now() - 3600))).unwrap(),
        ),
        (
            "wrong aud",
            signer.sign_json(&with("aud", json!("other"))).unwrap(),
        ),
        (
            "wrong iss",
            signer
                .sign_json(&with("iss", json!("https://idp.example")))
                .unwrap(),
        ),
        ("unknown kid", stranger.sign_json(&claims).unwrap()),
        (
            "exp as a string",
            signer
                .sign_json(&with("exp", json!((now() + 600).to_string())))
                .unwrap(),
        ),
        ("garbage", "not-a-token".into()),
    ];
    for (what, token) in cases {
        let resp = s
            .http
            .get(format!("{}/api/v1/categories", s.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{what}");
        assert!(resp.headers().contains_key("www-authenticate"), "{what}");
        let body: Value = resp.json().await.unwrap();
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{what}: {body}"
        );
    }
    let resp = s
        .http
        .get(format!("{}/api/v1/categories", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "missing_token");
    // The good token works.
    let good = signer.sign_json(&claims).unwrap();
    let (status, cats) = s.get(&good, "/api/v1/categories").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(cats["categories"].as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn roles_tenants_and_fields_are_enforced() {
    let s = stack().await;
    let agent = s.keys.token("370202", &[Role::Agent], "agent-1");
    let dispatcher = s.keys.token("370202", &[Role::Dispatcher], "d-1");
    let (status, body) = s.post(Some(&dispatcher), ticket_body("13800138000")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");

    let mut bad = ticket_body("13800138000");
    bad["citizen"]["phone"] = json!("12345");
    let (status, body) = s.post(Some(&agent), bad).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "citizen.phone");
    let mut typo = ticket_body("13800138000");
    typo["catgory"] = json!("SH01");
    let (status, body) = s.post(Some(&agent), typo).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "catgory");
    let mut wrong_type = ticket_body("13800138000");
    wrong_type["location"]["lat"] = json!("north");
    let (status, body) = s.post(Some(&agent), wrong_type).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "location.lat");

    let raw = |body: &'static str, ct: &'static str| {
        s.http
            .post(format!("{}/api/v1/tickets", s.base))
            .bearer_auth(&agent)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        raw("{\"channel\":", "application/json")
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        raw("channel=hotline", "application/x-www-form-urlencoded")
            .await
            .unwrap()
            .status(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let mut huge = ticket_body("13800138000");
    huge["content"] = json!("字".repeat(100_000));
    let (status, body) = s.post(Some(&agent), huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");

    // Tenants and citizens.
    let citizen = s.keys.token("370202", &[Role::Citizen], "wx-1");
    let mut own = ticket_body("13800138000");
    own["channel"] = json!("app");
    let (status, mine) = s.post(Some(&citizen), own).await;
    assert_eq!(status, StatusCode::CREATED);
    let (_, theirs) = s.post(Some(&agent), ticket_body("13800138002")).await;
    let path = |v: &Value| format!("/api/v1/tickets/{}", v["id"].as_str().unwrap());
    assert_eq!(s.get(&citizen, &path(&mine)).await.0, StatusCode::OK);
    let (status, body) = s.get(&citizen, &path(&theirs)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.get("content").is_none());
    let neighbour = s.keys.token("370203", &[Role::Agent], "agent-9");
    let (status, body) = s.get(&neighbour, &path(&theirs)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "not_found");
    let (status, body) = s.get(&agent, "/api/v1/tickets/42").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["field"], "id");
    let (status, _) = s.get(&agent, "/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let handler = s.keys.token_with(TokenSpec {
        sub: "h".into(),
        tenant: "370202".into(),
        scope: None,
        roles: vec![Role::Citizen],
        unit: None,
        grids: vec![],
        ttl: Duration::from_secs(60),
    });
    assert_eq!(
        s.get(&handler, "/api/v1/notifications").await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = s
        .get(&dispatcher, "/api/v1/notifications?page_size=lots")
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn without_dispatch_a_ticket_still_reads_marked_degraded() {
    let s = stack().await;
    let agent = s.keys.token("370202", &[Role::Agent], "agent-1");
    s.dispatch.stop();
    let (status, created) = s.post(Some(&agent), ticket_body("13800138000")).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = created["id"].as_str().unwrap();
    let view = wait_until(Duration::from_secs(15), "a degraded answer", || async {
        let (status, v) = s.get(&agent, &format!("/api/v1/tickets/{id}")).await;
        (status == StatusCode::OK && v["degraded"] == json!(["dispatch"])).then_some(v)
    })
    .await;
    assert_eq!(view["status"], "received");
    assert!(view["unit"].is_null());
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let s = stack().await;
    let resp = s
        .http
        .get(format!("{}/api/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let doc: Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/healthz", "get"),
        ("/api/v1/tickets", "post"),
        ("/api/v1/tickets/{id}", "get"),
        ("/api/v1/categories", "get"),
        ("/api/v1/notifications", "get"),
        ("/api/v1/notifications/{id}/retry", "post"),
        ("/api/v1/inbox", "get"),
        ("/api/v1/broadcasts/{id}/delivery", "get"),
        ("/api/v1/inbox/read", "post"),
        ("/api/v1/admin/notification-recipients/{kind}/{id}", "get"),
        ("/api/v1/admin/notification-recipients/{kind}/{id}", "put"),
        ("/api/v1/admin/notification-templates", "get"),
        (
            "/api/v1/admin/notification-templates/{kind}/{channel}",
            "put",
        ),
        (
            "/api/v1/admin/notification-templates/{kind}/{channel}",
            "delete",
        ),
        (
            "/api/v1/admin/notification-templates/{kind}/{channel}/preview",
            "post",
        ),
        ("/api/v1/admin/channels", "post"),
        ("/api/v1/admin/channels", "get"),
        ("/api/v1/admin/channels/{id}/rotate", "post"),
        ("/api/v1/admin/channels/{id}/disable", "post"),
        ("/api/v1/channels/{id}/tickets", "post"),
        ("/api/v1/categories/suggest", "post"),
        ("/api/v1/tickets/{id}/information", "post"),
        ("/api/v1/tickets/{id}/withdraw", "post"),
        ("/api/v1/track", "get"),
        ("/api/v1/admin/categories/export", "get"),
        ("/api/v1/admin/categories/import", "post"),
        ("/api/v1/admin/kb", "post"),
        ("/api/v1/admin/kb/{id}", "put"),
        ("/api/v1/admin/kb/{id}/retire", "post"),
        ("/api/v1/kb/search", "post"),
        ("/api/v1/intake/stats", "get"),
        ("/api/v1/tickets/{id}/attachments", "post"),
        ("/api/v1/tickets/{id}/attachments/{attachment_id}", "get"),
        ("/api/v1/tickets/{id}/duplicates", "get"),
        ("/api/v1/tickets/{id}/merge", "post"),
        ("/api/v1/tickets/{id}/unmerge", "post"),
        ("/api/v1/work-orders", "get"),
        ("/api/v1/work-orders/{id}", "get"),
        ("/api/v1/work-orders/{id}/actions", "post"),
        ("/api/v1/admin/sla-policy", "get"),
        ("/api/v1/admin/sla-policy", "put"),
        ("/api/v1/admin/calendar", "get"),
        ("/api/v1/admin/calendar", "put"),
        ("/api/v1/units", "get"),
        ("/api/v1/admin/units/{id}", "put"),
        ("/api/v1/admin/responsibilities", "get"),
        ("/api/v1/admin/responsibilities", "put"),
        ("/api/v1/admin/responsibilities/gaps", "get"),
        ("/api/v1/locate", "get"),
        ("/api/v1/admin/grids", "get"),
        ("/api/v1/admin/grids", "put"),
        ("/api/v1/regions", "get"),
        ("/api/v1/admin/regions", "put"),
        ("/api/v1/grids/{code}", "get"),
        ("/api/v1/admin/grids/{code}/split", "post"),
        ("/api/v1/admin/grids/merge", "post"),
        ("/api/v1/admin/grid-pairs", "put"),
        ("/api/v1/admin/buildings", "put"),
        ("/api/v1/admin/grid-imports/{id}", "put"),
        ("/api/v1/admin/grid-imports/{id}", "get"),
        ("/api/v1/admin/grid-workers", "post"),
        ("/api/v1/admin/grid-workers/{id}", "put"),
        ("/api/v1/grid-workers", "get"),
        ("/api/v1/admin/grid-workers/{id}/assignments", "post"),
        (
            "/api/v1/admin/grid-workers/{id}/assignments/{grid_code}",
            "delete",
        ),
        ("/api/v1/grid-workers/{id}/rating", "post"),
        ("/api/v1/households", "post"),
        ("/api/v1/households", "get"),
        ("/api/v1/key-persons", "post"),
        ("/api/v1/key-persons", "get"),
        ("/api/v1/key-persons/{id}", "put"),
        ("/api/v1/key-persons/{id}", "get"),
        ("/api/v1/admin/personal-data-reads", "get"),
        ("/api/v1/admin/duty-rules", "get"),
        ("/api/v1/admin/duty-rules", "put"),
        ("/api/v1/admin/duties/generate", "post"),
        ("/api/v1/duty-tasks", "get"),
        ("/api/v1/duty-tasks/{id}/check-in", "post"),
        ("/api/v1/duties/compliance", "get"),
        ("/api/v1/grid-events", "post"),
        ("/api/v1/grid-events", "get"),
        ("/api/v1/grid-events/stats", "get"),
        ("/api/v1/grid-events/{id}", "get"),
        ("/api/v1/grid-events/{id}/close", "post"),
        ("/api/v1/grid-events/{id}/whistle", "post"),
        ("/api/v1/broadcasts", "post"),
        ("/api/v1/tickets/{id}/contact-reads", "get"),
        ("/api/v1/tickets/{id}/evaluation", "get"),
        ("/api/v1/tickets/{id}/exclusion", "put"),
        ("/api/v1/tickets/{id}/exclusion", "delete"),
        ("/api/v1/tickets/{id}/callbacks", "post"),
        ("/api/v1/tickets/{id}/rating", "post"),
        ("/api/v1/track/rating", "post"),
        ("/api/v1/track/invitations/{token}", "get"),
        ("/api/v1/track/invitations/{token}/rating", "post"),
        ("/api/v1/callbacks", "get"),
        ("/api/v1/evaluation/rates", "get"),
        ("/api/v1/evaluation/formulas", "get"),
        ("/api/v1/evaluation/formulas", "post"),
        ("/api/v1/evaluation/callback-policy", "get"),
        ("/api/v1/evaluation/callback-policy", "put"),
        ("/api/v1/evaluation/warning-rules", "get"),
        ("/api/v1/evaluation/warning-rules", "post"),
        ("/api/v1/evaluation/warning-rules/{id}", "put"),
        ("/api/v1/evaluation/warnings", "get"),
        ("/api/v1/evaluation/frequency-policy", "get"),
        ("/api/v1/evaluation/frequency-policy", "put"),
        ("/api/v1/evaluation/proactive-items", "get"),
        ("/api/v1/evaluation/proactive-items/{id}", "get"),
        ("/api/v1/evaluation/proactive-items/{id}", "patch"),
        ("/api/v1/evaluation/seasons/scan", "post"),
        ("/api/v1/admin/evaluation/history", "put"),
        ("/api/v1/evaluation/hotspots", "get"),
        ("/api/v1/evaluation/hotspots/phrases", "get"),
        ("/api/v1/evaluation/reports/monthly", "get"),
    ];
    let paths = doc["paths"].as_object().unwrap();
    let documented: std::collections::HashSet<&str> = expected.iter().map(|(p, _)| *p).collect();
    assert_eq!(paths.len(), documented.len(), "{:?}", paths.keys());
    for (path, method) in expected {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} undocumented");
        assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()));
        // Every endpoint but health and the signed webhook takes a JWT;
        // all of them document their 401.
        if path != "/healthz" {
            assert!(op["responses"]["401"].is_object(), "{path}");
        }
        let public = [
            "/healthz",
            "/api/v1/channels/{id}/tickets",
            "/api/v1/track",
            "/api/v1/track/rating",
            "/api/v1/track/invitations/{token}",
            "/api/v1/track/invitations/{token}/rating",
        ];
        if !public.contains(&path) {
            assert_eq!(op["security"][0]["bearer"], json!([]), "{path}");
        }
    }
    for schema in [
        "Problem",
        "CreateTicketBody",
        "TicketView",
        "TicketCreated",
        "NotificationPage",
        "RegisterChannelBody",
        "CredentialView",
        "WorkOrderView",
        "ActionBody",
        "SlaPolicyBody",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
    let health = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn suggestions_start_from_keywords_and_learn_from_tickets() {
    let s = stack().await;
    let agent = s.agent();
    let ask = |text: &str| {
        let s = &s;
        let agent = agent.clone();
        let text = text.to_owned();
        async move {
            s.post_json(
                &agent,
                "/api/v1/categories/suggest",
                json!({ "text": text }),
            )
            .await
        }
    };
    let (status, v) = ask("小区门口有车堵住消防通道").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["training_tickets"], 0);
    assert_eq!(v["suggestions"][0]["code"], "CG02");
    assert_eq!(v["suggestions"][0]["source"], "keywords");
    // Nothing to go on: no suggestion rather than a guess.
    let (_, v) = ask("楼下半夜蹦迪吵得睡不着").await;
    assert_eq!(v["suggestions"].as_array().unwrap().len(), 0, "{v}");

    // Sixty tickets filed under 噪声扰民 with words no keyword has.
    for i in 0..60 {
        let mut body = ticket_body(&format!("1380000{i:04}"));
        body["content"] = json!(format!("楼下酒吧半夜蹦迪，吵得睡不着，第{i}次反映"));
        let (status, v) = s.post(Some(&agent), body).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    let (_, v) = ask("楼下半夜蹦迪吵得睡不着").await;
    assert_eq!(v["training_tickets"], 60, "{v}");
    let top = &v["suggestions"][0];
    assert_eq!(top["code"], "SH01", "{v}");
    assert_eq!(top["source"], "model");
    assert!(top["score"].as_f64().unwrap() > 0.5, "{v}");
    assert!(v["suggestions"].as_array().unwrap().len() <= 3);

    let handler = s.keys.token("370202", &[Role::Handler], "h-1");
    let (status, _) = s
        .post_json(&handler, "/api/v1/categories/suggest", json!({"text": "x"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    for body in [
        json!({"text": ""}),
        json!({"text": "长".repeat(4001)}),
        json!({}),
    ] {
        let (status, v) = s
            .post_json(&agent, "/api/v1/categories/suggest", body)
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["field"], "text");
    }
}

#[tokio::test]
async fn a_tenant_admin_exports_and_replaces_the_category_tree() {
    let s = stack().await;
    let admin = s.admin();
    let get_raw = |path: &str| {
        let s = &s;
        let admin = admin.clone();
        let path = path.to_owned();
        async move {
            let r = s
                .http
                .get(s.url(&path))
                .bearer_auth(&admin)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
            (status, ct, r.text().await.unwrap())
        }
    };
    let import = |ct: &str, body: String| {
        let s = &s;
        let admin = admin.clone();
        let ct = ct.to_owned();
        async move {
            let r = s
                .http
                .post(s.url("/api/v1/admin/categories/import"))
                .bearer_auth(&admin)
                .header("content-type", ct)
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };

    let (status, ct, json_tree) = get_raw("/api/v1/admin/categories/export").await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/json"));
    let tree: Value = serde_json::from_str(&json_tree).unwrap();
    assert_eq!(tree.as_array().unwrap().len(), 8);
    let cg02 = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "CG02")
        .unwrap();
    assert_eq!(cg02["attributes"][1]["code"], "blocking");
    let (_, ct, csv) = get_raw("/api/v1/admin/categories/export?format=csv").await;
    assert!(ct.starts_with("text/csv"));
    assert!(
        csv.starts_with("code,name,parent,description,keywords,attributes\n"),
        "{csv}"
    );

    // Re-importing the export changes nothing.
    let (status, v) = import("text/csv", csv.clone()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"created": 0, "updated": 8, "deactivated": 0, "leaves": 4, "dry_run": false})
    );

    // A new tree: 市场监管 goes, 环境保护 arrives with three levels.
    let new_tree = "code,name,parent,description,keywords,attributes\n\
        SH,社会治理,,,,\n\
        SH01,噪声扰民,SH,,噪音,\n\
        CG,城市管理,,,,\n\
        CG02,违章停车,CG,,停车,\n\
        HB,环境保护,,,,\n\
        HB01,大气污染,HB,,,\n\
        HB0101,餐饮油烟,HB01,饭店油烟直排,\"油烟,排烟\",\n";
    let (status, v) = import("text/csv", new_tree.into()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"created": 3, "updated": 4, "deactivated": 4, "leaves": 3, "dry_run": false})
    );
    let (_, cats) = s.get(&s.agent(), "/api/v1/categories").await;
    let codes: Vec<&str> = cats["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"HB0101") && !codes.contains(&"SC01"),
        "{codes:?}"
    );
    let leaf = cats["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "HB0101")
        .unwrap();
    assert_eq!(leaf["level"], 3);
    // CSV carries no attributes: CG02 no longer asks them.
    let (status, v) = s
        .post(Some(&s.agent()), {
            let mut b = ticket_body("13800138000");
            b["category"] = json!("SC01");
            b
        })
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["field"], "category");
    let services: Value = s
        .http
        .get(s.url("/open311/v2/370202/services.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(services.to_string().contains("HB0101"));

    // The JSON export round-trips through import as well.
    let (status, v) = import("application/json", json_tree).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // SC, SC01, QT and QT01 come back (reactivated, not created); 环境保护 goes.
    assert_eq!(
        v,
        json!({"created": 0, "updated": 8, "deactivated": 3, "leaves": 4, "dry_run": false})
    );

    for (ct, body, mentions) in [
        (
            "text/csv",
            "code,name,parent\nA,一,\nA1,二,A\nA11,三,A1\nA111,四,A11\n".to_owned(),
            "层级超过 3 级",
        ),
        (
            "text/csv",
            "code,name,parent\nA,一,\nB,二,Z\n".to_owned(),
            "上级 Z",
        ),
        (
            "text/csv",
            "code,name,parent\nA,一,\nA,二,\n".to_owned(),
            "重复出现",
        ),
        ("text/csv", "code,name,parent\nA,,\n".to_owned(), "name"),
        ("text/csv", "code,name,parent\nA B,一,\n".to_owned(), "code"),
        (
            "text/csv",
            "code,name,parent\nA,一,B\nB,二,A\n".to_owned(),
            "循环",
        ),
        ("text/csv", "name\n一\n".to_owned(), "表头"),
        ("text/csv", "code,name,parent\nA,一\n".to_owned(), "第 2 行"),
        ("text/csv", "code,name,parent\n".to_owned(), "没有任何分类"),
        ("application/json", "[{\"code\":\"A\"}]".to_owned(), "name"),
        ("application/json", "{]".to_owned(), "JSON"),
        (
            "application/json",
            "[{\"code\":\"A\",\"name\":\"一\",\"colour\":\"red\"}]".to_owned(),
            "colour",
        ),
    ] {
        let (status, v) = import(ct, body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(mentions),
            "{body}: {v}"
        );
    }
    let (status, _) = import("application/xml", "<x/>".into()).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, _, _) = get_raw("/api/v1/admin/categories/export?format=xml").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = s.get(&s.agent(), "/api/v1/admin/categories/export").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_same_problem_reported_twice_is_offered_as_a_duplicate() {
    let s = stack().await;
    let agent = s.agent();
    let create = |phone: &str, content: &str, lat: f64, category: &str| {
        let s = &s;
        let agent = agent.clone();
        let mut b = ticket_body(phone);
        b["content"] = json!(content);
        b["category"] = json!(category);
        // The far report gives another address as well as another point.
        let address = if lat > 36.09 {
            "东海西路200号"
        } else {
            "燕儿岛路10号"
        };
        b["location"] = json!({"lat": lat, "lon": 120.3826, "address": address});
        async move {
            let (status, v) = s.post(Some(&agent), b).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let first = create(
        "13800000001",
        "燕儿岛路10号楼下烧烤店晚上吵到十二点，油烟很大",
        36.0662,
        "SH01",
    )
    .await;
    let other = create("13800000002", "路口井盖丢了，晚上很危险", 36.0662, "SH01").await;
    let far = create(
        "13800000003",
        "燕儿岛路10号楼下烧烤店晚上吵到十二点，油烟很大",
        36.1,
        "SH01",
    )
    .await;
    // A neighbour, and the first caller again.
    let neighbour = create(
        "13800000004",
        "楼下烧烤店晚上吵到十二点，油烟大",
        36.0663,
        "SH01",
    )
    .await;
    let again = create(
        "13800000001",
        "燕儿岛路10号楼下的烧烤店晚上吵到十二点，油烟很大",
        36.0662,
        "SH01",
    )
    .await;

    let (status, d) = s
        .get(&agent, &format!("/api/v1/tickets/{neighbour}/duplicates"))
        .await;
    assert_eq!(status, StatusCode::OK, "{d}");
    let ids: Vec<&str> = d["candidates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["ticket_id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&first.as_str()), "{d}");
    assert!(!ids.contains(&other.as_str()), "a different problem: {d}");
    assert!(d["compared"].as_i64().unwrap() >= 3);
    let c = &d["candidates"][0];
    assert!(c["reasons"].as_str().unwrap().contains("内容相似"), "{c}");
    assert_eq!(c["clear_case"], false);

    let (_, d) = s
        .get(&agent, &format!("/api/v1/tickets/{again}/duplicates"))
        .await;
    let top = &d["candidates"][0];
    assert_eq!(top["ticket_id"], first.as_str(), "{d}");
    assert_eq!(top["same_caller"], true);
    assert_eq!(
        top["clear_case"], true,
        "same caller, same problem, within 24 h"
    );
    // The far one (4 km away, another caller) is not offered for the neighbour.
    let (_, d) = s
        .get(&agent, &format!("/api/v1/tickets/{neighbour}/duplicates"))
        .await;
    assert!(
        d["candidates"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ticket_id"] != far.as_str()),
        "{d}"
    );

    let citizen = s.keys.token("370202", &[Role::Citizen], "c-1");
    let (status, _) = s
        .get(&citizen, &format!("/api/v1/tickets/{again}/duplicates"))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let elsewhere = s.keys.token("370203", &[Role::Agent], "a-9");
    let (status, _) = s
        .get(&elsewhere, &format!("/api/v1/tickets/{again}/duplicates"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn at_capacity_intake_refuses_at_once_and_a_retry_with_the_key_lands_once() {
    // One create at a time: concurrent ones are refused with 503
    // `overloaded` and Retry-After instead of queueing.
    let s = crate::stack::stack_with_intake(|cfg| cfg.max_concurrent_creates = 1).await;
    let agent = s.agent();
    let send = |i: usize| {
        let s = &s;
        let agent = agent.clone();
        async move {
            let mut b = ticket_body(&format!("1390000{i:04}"));
            b["content"] = json!(format!("第{i}件：路灯不亮"));
            let resp = s
                .http
                .post(s.url("/api/v1/tickets"))
                .bearer_auth(&agent)
                .header("Idempotency-Key", format!("cap-{i}"))
                .json(&b)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let v: Value = resp.json().await.unwrap();
            (status, retry_after, v)
        }
    };
    let first = futures::future::join_all((0..24).map(send)).await;
    let mut pending = Vec::new();
    for (i, (status, retry_after, v)) in first.into_iter().enumerate() {
        match status {
            StatusCode::CREATED => {}
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(v["code"], "overloaded", "{v}");
                assert_eq!(retry_after.as_deref(), Some("1"));
                pending.push(i);
            }
            other => panic!("{other}: {v}"),
        }
    }
    // The refused ones retry one by one with their keys and land.
    for i in pending {
        let (status, _, v) = send(i).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
    }
    assert_eq!(
        s.tickets_accepted_so_far().await,
        24,
        "each request accepted exactly once"
    );
}

#[tokio::test]
async fn a_category_file_is_checked_whole_and_a_dry_run_changes_nothing() {
    let s = stack().await;
    let admin = s.admin();
    let import = |query: &'static str, body: &'static str| {
        let s = &s;
        let admin = admin.clone();
        async move {
            let r = s
                .http
                .post(s.url(&format!("/api/v1/admin/categories/import{query}")))
                .bearer_auth(&admin)
                .header("content-type", "text/csv")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let tree = || async {
        let (_, cats) = s.get(&s.agent(), "/api/v1/categories").await;
        cats["categories"].to_string()
    };
    let before = tree().await;
    // A misspelt column is refused by name, and nothing changes (before, it
    // was read as no parent at all and every category became a leaf).
    let (status, v) = import("", "code,name,parnet\nSH,社会治理,\nSH01,噪声扰民,SH\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("未知的列 `parnet`") && msg.contains("缺少列 `parent`"),
        "{msg}"
    );
    assert_eq!(tree().await, before);
    // Every bad line in one answer: a short row, a bad attribute list and a
    // tree rule.
    let (status, v) = import(
        "",
        "code,name,parent,attributes\nSH,社会治理,,\nSH01,噪声扰民\nSH02,其他,SH,[oops\nSH03,三,ZZ,\n",
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(
        msg.contains("第 3 行") && msg.contains("第 4 行") && msg.contains("上级 ZZ"),
        "{msg}"
    );
    assert_eq!(tree().await, before);
    // A dry run reports what an import would do and does nothing.
    let (status, v) = import(
        "?dry_run=true",
        "code,name,parent\nSH,社会治理,\nSH01,噪声扰民,SH\nHB,环境保护,\nHB01,大气污染,HB\n",
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        v,
        json!({"created": 2, "updated": 2, "deactivated": 6, "leaves": 2, "dry_run": true})
    );
    assert_eq!(tree().await, before);
    let (status, v) = import("?dry_run=maybe", "code,name,parent\nSH,社会治理,\n").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(tree().await, before);
}

#[tokio::test]
async fn one_lookup_finds_a_callers_earlier_requests_inside_the_readers_scope() {
    let s = stack().await;
    let agent = s.agent();
    let mut made = Vec::new();
    for (phone, category, content) in [
        ("13800138000", "SH01", "楼上装修噪音到半夜"),
        ("13800138000", "SC01", "健身房预付卡无法退费"),
        ("13900139000", "SH01", "广场舞音响声音太大"),
        ("13800138000", "SH01", "夜市摊位收摊时叫卖吵闹"),
    ] {
        let mut b = ticket_body(phone);
        b["category"] = json!(category);
        b["content"] = json!(content);
        let (status, v) = s.post(Some(&agent), b).await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        made.push(v);
    }
    let find = |token: String, query: &'static str| {
        let s = &s;
        async move { s.get(&token, &format!("/api/v1/tickets{query}")).await }
    };
    // By phone, however it is written: the caller's three, newest first,
    // masked.
    let (status, v) = find(agent.clone(), "?phone=138%200013%208000").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let found: Vec<&str> = v["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tracking_no"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = [3, 1, 0]
        .iter()
        .map(|i| made[*i]["tracking_no"].as_str().unwrap())
        .collect();
    assert_eq!(found, expected, "{v}");
    assert_eq!(v["tickets"][0]["phone"], "138****8000");
    assert!(!v.to_string().contains("13800138000"), "{v}");
    // By tracking number; by category; a page at a time.
    let (_, v) = s
        .get(
            &agent,
            &format!(
                "/api/v1/tickets?tracking_no={}",
                made[2]["tracking_no"].as_str().unwrap()
            ),
        )
        .await;
    assert_eq!(v["tickets"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["tickets"][0]["phone"], "139****9000");
    let (_, v) = find(agent.clone(), "?category=SC01").await;
    assert_eq!(v["tickets"].as_array().unwrap().len(), 1, "{v}");
    let (_, first) = find(agent.clone(), "?page_size=3").await;
    assert_eq!(first["tickets"].as_array().unwrap().len(), 3);
    let token = first["next_page_token"].as_str().unwrap().to_owned();
    let (_, rest) = s
        .get(
            &agent,
            &format!("/api/v1/tickets?page_size=3&page_token={token}"),
        )
        .await;
    assert_eq!(rest["tickets"].as_array().unwrap().len(), 1, "{rest}");
    assert!(rest.get("next_page_token").is_none(), "{rest}");
    assert_eq!(
        rest["tickets"][0]["tracking_no"], made[0]["tracking_no"],
        "the oldest comes last"
    );
    // Another tenant finds nothing of 370202.
    let other = s.keys.token("370203", &[Role::Agent], "agent-9");
    let (status, v) = find(other, "?phone=13800138000").await;
    assert_eq!(
        (status, v["tickets"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0))
    );
    // A unit's handler finds the tickets its unit leads, once dispatched;
    // another unit's handler none.
    let gafj = s
        .keys
        .unit_token("370202", &[Role::Handler], "h-gafj", "sn-gafj");
    // ticket.units (what a handler may see) and ticket.dispatched (the
    // lead unit shown) are two events: wait for both.
    let led = wait_until(Duration::from_secs(15), "the units known", || async {
        let (_, v) = find(gafj.clone(), "").await;
        let t = v["tickets"].as_array()?;
        (t.len() == 4 && t.iter().all(|x| x["unit_id"] == "sn-gafj")).then_some(v)
    })
    .await;
    assert_eq!(led["tickets"][0]["unit_id"], "sn-gafj", "{led}");
    let zjj = s
        .keys
        .unit_token("370202", &[Role::Handler], "h-zjj", "sn-zjj");
    let (_, v) = find(zjj, "").await;
    assert_eq!(v["tickets"].as_array().unwrap().len(), 0, "{v}");
    // A citizen lists their own requests only, and cannot search by phone.
    let me = s.keys.token("370202", &[Role::Citizen], "citizen-7");
    let mut b = ticket_body("13700137000");
    b["channel"] = json!("app");
    let (status, mine) = s.post(Some(&me), b).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let (_, v) = find(me.clone(), "").await;
    let listed: Vec<&str> = v["tickets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [mine["id"].as_str().unwrap()], "{v}");
    let (status, v) = find(me, "?phone=13800138000").await;
    assert_eq!(
        (status, v["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("phone"))
    );
    // Bad filters are named.
    for (query, field) in [
        ("?page_size=500", "page_size"),
        ("?phone=abc", "phone"),
        ("?page_token=zzz", "page_token"),
        ("?from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z", "from"),
    ] {
        let (status, v) = find(agent.clone(), query).await;
        assert_eq!(
            (status, v["field"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some(field)),
            "{query}: {v}"
        );
    }
    let grid = s.keys.token("370202", &[Role::GridWorker], "gw-1");
    let (status, _) = find(grid, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
