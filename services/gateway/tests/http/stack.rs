//! Every service in-process on port 0 against a fresh database each and a
//! private NATS prefix, with a small category tree and one unit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiesu_auth::Role;
use jiesu_dispatch::Dispatch;
use jiesu_gateway::{Gateway, GatewayConfig};
use jiesu_grid::GridTarget;
use jiesu_intake::{
    Intake,
    domain::attributes::{AttributeDef, AttributeOption, Datatype},
    seed::CategorySeed,
};
use jiesu_notification::NotificationTarget;
use jiesu_proto::intake::TicketReceived;
use jiesu_testkit::{Spawned, TestDb, TestEnv};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

pub struct Stack {
    pub base: String,
    pub http: Client,
    /// Dispatch alone, so a test can take it away.
    pub dispatch: Spawned,
    /// Where intake's object store keeps attachment bytes.
    pub attachments_dir: std::path::PathBuf,
    /// Keys, clock and bus the services share (`s.keys`, `s.clock`).
    kit: TestEnv,
    _targets: Vec<Spawned>,
    _dbs: Vec<TestDb>,
}

impl std::ops::Deref for Stack {
    type Target = TestEnv;

    fn deref(&self) -> &TestEnv {
        &self.kit
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.attachments_dir);
    }
}

fn option(key: &str, name: &str) -> AttributeOption {
    AttributeOption {
        key: key.into(),
        name: name.into(),
    }
}

fn attr(
    code: &str,
    datatype: Datatype,
    required: bool,
    order: i32,
    values: Vec<AttributeOption>,
) -> AttributeDef {
    AttributeDef {
        code: code.into(),
        datatype,
        required,
        description: format!("{code}？"),
        datatype_description: String::new(),
        order,
        values,
    }
}

/// SH01 asks nothing; CG02 and SC01 ask every kind of attribute.
fn categories() -> Vec<CategorySeed> {
    let cat = |code: &str, name: &str, parent: &str| CategorySeed {
        code: code.into(),
        name: name.into(),
        parent: parent.into(),
        ..CategorySeed::default()
    };
    let mut cg02 = cat("CG02", "违章停车", "CG");
    cg02.description = "车辆乱停乱放、占用消防通道".into();
    cg02.keywords = "停车,占道,消防通道".into();
    cg02.attributes = vec![
        attr("plate", Datatype::String, false, 1, vec![]),
        attr(
            "blocking",
            Datatype::Singlevaluelist,
            true,
            2,
            vec![option("yes", "是"), option("no", "否")],
        ),
        attr("note", Datatype::Text, false, 3, vec![]),
    ];
    let mut sc01 = cat("SC01", "预付卡消费", "SC");
    sc01.attributes = vec![
        attr("paid_at", Datatype::Datetime, false, 1, vec![]),
        attr("amount", Datatype::Number, false, 2, vec![]),
        attr(
            "items",
            Datatype::Multivaluelist,
            false,
            3,
            vec![
                option("gym", "健身"),
                option("salon", "美容美发"),
                option("edu", "教育培训"),
            ],
        ),
    ];
    vec![
        cat("SH", "社会治理", ""),
        cat("SH01", "噪声扰民", "SH"),
        cat("CG", "城市管理", ""),
        cg02,
        cat("SC", "市场监管", ""),
        sc01,
        // Nobody is responsible for it: it goes to triage.
        cat("QT", "其他", ""),
        cat("QT01", "其他事项", "QT"),
    ]
}

/// The service key dispatch presents to grid.
pub const GRID_KEY: &str = "jiesu-test-grid-key";

/// The service key notification presents to intake, and its SHA-256.
pub const CONTACT_KEY: &str = "jiesu-test-contact-key";
pub const CONTACT_KEY_SHA256: &str =
    "61709366bfa13a4fa90d46b7b3409bfb819bd6c6590141d92ec8d5ce7d5b4386";

pub async fn stack() -> Stack {
    stack_with(|_| {}).await
}

/// A stack whose gateway configuration the test adjusts (rate limits).
pub async fn stack_with(tweak: impl FnOnce(&mut GatewayConfig)) -> Stack {
    stack_configured(tweak, |_| {}).await
}

/// A stack whose intake configuration the test adjusts.
pub async fn stack_with_intake(tweak: impl FnOnce(&mut jiesu_intake::IntakeConfig)) -> Stack {
    stack_configured(|_| {}, tweak).await
}

/// A stack whose grid holds the demo tenant's grids (`jiesu seed-demo`'s
/// division tree, basic, police and micro grids, pairs, workers and
/// buildings), and whose gateway configuration the test adjusts.
pub async fn demo_stack(tweak: impl FnOnce(&mut GatewayConfig)) -> Stack {
    build(tweak, |_| {}, |_| {}, true).await
}

async fn stack_configured(
    tweak: impl FnOnce(&mut GatewayConfig),
    tweak_intake: impl FnOnce(&mut jiesu_intake::IntakeConfig),
) -> Stack {
    build(tweak, tweak_intake, |_| {}, false).await
}

/// A stack whose notification configuration the test adjusts (channels
/// and routes to the test's own endpoints).
pub async fn stack_with_notification(
    tweak: impl FnOnce(&mut jiesu_notification::NotificationConfig),
) -> Stack {
    build(|_| {}, |_| {}, tweak, false).await
}

/// The demo grids of 370202 in a fresh grid database.
async fn demo_grid_db(keys: &jiesu_testkit::TestKeys) -> TestDb {
    use jiesu_grid::seed;
    let db = TestDb::new::<jiesu_grid::Migrations>("grid").await;
    let conn = db.connect().await;
    let streets: Vec<(String, String)> = vec![("370202006".into(), "八大峡街道办事处".into())];
    seed::import_regions(&conn, "370202", &seed::shinan_regions(&streets))
        .await
        .unwrap();
    for layer in [
        seed::shinan_layer(),
        seed::shinan_police(),
        seed::shinan_places(),
    ] {
        seed::import(&conn, "370202", &layer).await.unwrap();
    }
    seed::import_pairs(&conn, "370202", &seed::shinan_pairs())
        .await
        .unwrap();
    seed::import_workers(&conn, "370202", &keys.keyring())
        .await
        .unwrap();
    seed::import_buildings(&conn, "370202").await.unwrap();
    db
}

async fn build(
    tweak: impl FnOnce(&mut GatewayConfig),
    tweak_intake: impl FnOnce(&mut jiesu_intake::IntakeConfig),
    tweak_notification: impl FnOnce(&mut jiesu_notification::NotificationConfig),
    demo_grids: bool,
) -> Stack {
    let intake_db = TestDb::new::<jiesu_intake::Migrations>("intake").await;
    let dispatch_db = TestDb::new::<jiesu_dispatch::Migrations>("dispatch").await;
    let cats = categories();
    let attachments_dir =
        std::env::temp_dir().join(format!("jiesu-att-{}", jiesu_testkit::unique_tag()));
    jiesu_intake::seed::upsert_categories(&intake_db.connect().await, "370202", &cats)
        .await
        .unwrap();
    let d = dispatch_db.connect().await;
    jiesu_dispatch::seed::upsert_units(
        &d,
        "370202",
        &[
            ("sn-gafj", "青岛市公安局市南分局", "department", "370202"),
            ("sn-zjj", "市南区住房和城乡建设局", "department", "370202"),
            ("sn-scjg", "市南区市场监督管理局", "department", "370202"),
            ("sn-bdx", "八大峡街道办事处", "street", "370202006"),
        ]
        .map(|(id, name, kind, region)| jiesu_dispatch::seed::UnitSeed {
            id: id.into(),
            name: name.into(),
            kind: kind.into(),
            region_code: region.into(),
            parent: String::new(),
        }),
    )
    .await
    .unwrap();
    jiesu_dispatch::seed::upsert_routes(
        &d,
        "370202",
        &["SH01", "CG02", "SC01"].map(|c| jiesu_dispatch::seed::RouteSeed {
            category: c.into(),
            unit: "sn-gafj".into(),
        }),
    )
    .await
    .unwrap();

    let kit = TestEnv::new().await;
    let dir = attachments_dir.display().to_string();
    let intake = kit
        .spawn_on::<Intake>(&intake_db, |cfg| {
            // Retrain on every suggestion so tests see new tickets at once.
            cfg.suggest_refresh = Duration::ZERO;
            cfg.attachments = jiesu_intake::AttachmentsConfig {
                local_dir: dir,
                max_image_bytes: 256 * 1024,
                ..Default::default()
            };
            cfg.contact_key_digests = CONTACT_KEY_SHA256.into();
            tweak_intake(cfg);
        })
        .await;
    let grid_db = if demo_grids {
        Some(demo_grid_db(&kit.keys).await)
    } else {
        None
    };
    let grid_key = |cfg: &mut jiesu_grid::GridConfig| {
        cfg.service_key_digests = jiesu_auth::service_key::digest(GRID_KEY);
    };
    let grid = match &grid_db {
        Some(db) => kit.spawn_on::<GridTarget>(db, grid_key).await,
        None => kit.spawn::<GridTarget>(grid_key).await,
    };
    let dispatch = kit
        .spawn_on::<Dispatch>(&dispatch_db, |cfg| {
            cfg.timer_poll = Duration::from_millis(200);
            cfg.grid_url = grid.url();
            cfg.grid_key = GRID_KEY.into();
        })
        .await;
    let notification = kit
        .spawn::<NotificationTarget>(|cfg| {
            cfg.intake_url = intake.url();
            cfg.contact_key = CONTACT_KEY.into();
            // Whatever the hour of the run: no quiet hours for citizens.
            cfg.quiet_hours = String::new();
            tweak_notification(cfg);
        })
        .await;
    let evaluation = kit
        .spawn::<jiesu_evaluation::EvaluationTarget>(|cfg| {
            cfg.intake_url = intake.url();
            cfg.warning_interval = Duration::from_millis(200);
        })
        .await;
    let gateway = kit
        .spawn::<Gateway>(|cfg| {
            cfg.intake_url = intake.url();
            cfg.dispatch_url = dispatch.url();
            cfg.grid_url = grid.url();
            cfg.notification_url = notification.url();
            cfg.evaluation_url = evaluation.url();
            cfg.retries = 1;
            // Suites send many requests from one address; the limits have
            // tests of their own.
            cfg.rate_limit.per_ip_per_minute = 0;
            cfg.rate_limit.per_channel_per_minute = 0;
            cfg.rate_limit.lookup_per_minute = 0;
            tweak(cfg);
        })
        .await;
    Stack {
        base: gateway.url(),
        http: Client::new(),
        dispatch,
        attachments_dir,
        kit,
        _targets: vec![intake, grid, notification, evaluation, gateway],
        _dbs: [intake_db, dispatch_db]
            .into_iter()
            .chain(grid_db)
            .collect(),
    }
}

pub fn ticket_body(phone: &str) -> Value {
    json!({
        "channel": "hotline",
        "nature": "complaint",
        "category": "SH01",
        "content": "楼上噪音到半夜",
        "location": {"lat": 36.06, "lon": 120.38, "address": "燕儿岛路10号"},
        "citizen": {"name": "张先生", "phone": phone}
    })
}

impl Stack {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn admin(&self) -> String {
        self.keys.token("370202", &[Role::TenantAdmin], "admin-1")
    }

    pub fn agent(&self) -> String {
        self.keys.token("370202", &[Role::Agent], "agent-1")
    }

    /// Registers a channel as the tenant admin; returns the whole answer.
    pub async fn register(&self, name: &str, channel: &str, auth: &str) -> Value {
        let resp = self
            .http
            .post(self.url("/api/v1/admin/channels"))
            .bearer_auth(self.admin())
            .json(&json!({"name": name, "channel": channel, "auth": auth}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::CREATED);
        resp.json().await.unwrap()
    }

    /// The `intake` events of tenant 370202 named `event` published so far.
    pub async fn intake_events(&self, event: &str) -> Vec<Vec<u8>> {
        self.bus.published("intake", "370202", event).await
    }

    /// The `ticket.received` intake announced for `tracking_no`.
    pub async fn received(&self, tracking_no: &str) -> TicketReceived {
        jiesu_testkit::wait_until(Duration::from_secs(15), "the ticket announced", || async {
            self.intake_events("ticket.received")
                .await
                .iter()
                .filter_map(|p| <TicketReceived as prost::Message>::decode(p.as_slice()).ok())
                .find(|ev| ev.tracking_no == tracking_no)
        })
        .await
    }

    /// How many tickets intake has accepted so far, read off the bus: a
    /// new ticket is made now and, once it is announced, every ticket
    /// stored before it has been too. That holds because this stack runs one
    /// intake, whose one relay claims outbox rows in id order, every earlier
    /// ticket committed before this one was inserted, and on this machine's
    /// own NATS no publish fails (a failed one would be retried after later
    /// rows). The new one is not counted.
    pub async fn tickets_accepted_so_far(&self) -> usize {
        let (status, v) = self
            .post(Some(&self.agent()), ticket_body("13800139999"))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{v}");
        let last = v["id"].as_str().unwrap_or_default().to_owned();
        let announced = jiesu_testkit::wait_until(
            Duration::from_secs(15),
            "every ticket announced",
            || async {
                let r = self.intake_events("ticket.received").await;
                r.iter()
                    .any(|p| String::from_utf8_lossy(p).contains(&last))
                    .then_some(r)
            },
        )
        .await;
        announced.len() - 1
    }

    pub async fn put_json(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .put(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post_json(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut req = self
            .http
            .post(format!("{}/api/v1/tickets", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The `event` names of a ticket's (or tracking answer's) timeline, in order.
pub fn timeline_events(view: &Value) -> Vec<String> {
    view["timeline"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["event"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
