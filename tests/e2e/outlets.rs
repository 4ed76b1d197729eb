//! Where the platform's notices go in the end-to-end run: units with an SMS
//! number in the directory get them through an HTTP SMS gateway (this
//! test's server, which notes every message id it takes), the others by
//! email to a real SMTP server (aiosmtpd). Both count, so a message sent
//! twice after a crash is seen where a person would see it.

use std::{
    path::PathBuf,
    sync::{Arc, Mutex},
};

use axum::{Json, Router, extract::State, routing::post};
use jiesu_auth::Role;
use jiesu_testkit::SmtpSink;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::platform::{Platform, out_dir};

pub struct Outlets {
    /// Message ids the SMS gateway was sent, in order, repeats kept. It
    /// honours the id as a province's gateway with a `msgid` field does: a
    /// repeat is answered as taken and not sent to the phone again.
    pub sms: Arc<Mutex<Vec<String>>>,
    pub smtp: SmtpSink,
    config: PathBuf,
}

async fn take(State(seen): State<Arc<Mutex<Vec<String>>>>, Json(v): Json<Value>) -> Json<Value> {
    if let (Some(id), Ok(mut s)) = (v["msgid"].as_str(), seen.lock()) {
        s.push(id.to_owned());
    }
    Json(json!({"code": "0", "msg": "ok"}))
}

impl Outlets {
    pub async fn start() -> Outlets {
        let sms: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = Router::new()
            .route("/sms", post(take))
            .with_state(sms.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let smtp = SmtpSink::start();
        let config = out_dir().join(format!("outlets-{}.toml", jiesu_testkit::unique_tag()));
        std::fs::create_dir_all(out_dir()).expect("out dir");
        std::fs::write(
            &config,
            format!(
                r#"[notification.channels.sms]
kind = "http_sms"
endpoint = "http://{addr}/sms"
success_pointer = "/code"
success_value = "0"

[notification.channels.sms.fields]
mobile = "{{phone}}"
content = "{{content}}"
msgid = "{{id}}"

[notification.channels.mail]
kind = "smtp"
host = "127.0.0.1"
port = {port}
security = "none"
from = "市南区12345热线 <noreply@e2e.example.gov.cn>"

[notification.routes.370202]
unit = ["sms", "mail"]
"#,
                port = smtp.port
            ),
        )
        .expect("write the outlets' configuration");
        Outlets { sms, smtp, config }
    }

    /// The setting that points every process at the configuration.
    pub fn env(&self) -> (&'static str, String) {
        ("JIESU_CONFIG", self.config.display().to_string())
    }

    /// The tenant admin puts every demo unit in the directory: every other
    /// one with an SMS number, the rest with an email address only (their
    /// notices fall back from SMS to email).
    pub async fn register_units(&self, p: &Platform) -> usize {
        let http = Client::new();
        let admin = p.token("370202", &[Role::TenantAdmin], "e2e-admin");
        let units: Value = http
            .get(format!("{}/api/v1/units", p.gateway))
            .bearer_auth(&admin)
            .send()
            .await
            .expect("units")
            .json()
            .await
            .expect("units json");
        let units = units["units"].as_array().cloned().unwrap_or_default();
        for (i, u) in units.iter().enumerate() {
            let id = u["id"].as_str().expect("unit id");
            let body = if i % 2 == 0 {
                json!({"sms": format!("1390000{i:04}")})
            } else {
                json!({"email": format!("unit{i}@e2e.example.gov.cn")})
            };
            let r = http
                .put(format!(
                    "{}/api/v1/admin/notification-recipients/unit/{id}",
                    p.gateway
                ))
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .expect("set addresses");
            assert_eq!(r.status(), StatusCode::OK, "{id}");
        }
        units.len()
    }

    /// (messages the SMS gateway took, distinct; emails, distinct).
    pub fn counts(&self) -> ((usize, usize), (usize, usize)) {
        let sms = self.sms.lock().map(|v| v.clone()).unwrap_or_default();
        let sms_distinct: std::collections::HashSet<&String> = sms.iter().collect();
        let mails = self.smtp.messages();
        let mail_distinct: std::collections::HashSet<&String> =
            mails.iter().map(|m| &m.message_id).collect();
        (
            (sms.len(), sms_distinct.len()),
            (mails.len(), mail_distinct.len()),
        )
    }
}
