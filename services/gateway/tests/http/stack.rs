//! Every service in-process on port 0 against a fresh database each and a
//! private NATS prefix, with a small category tree and one unit.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jiesu_auth::{Role, Verifier};
use jiesu_gateway::{Gateway, GatewayConfig};
use jiesu_intake::{
    domain::attributes::{AttributeDef, AttributeOption, Datatype},
    seed::CategorySeed,
};
use jiesu_runtime::TargetCtx;
use jiesu_testkit::{TestBus, TestDb, TestKeys};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct Stack {
    pub base: String,
    pub keys: TestKeys,
    pub http: Client,
    pub stop: CancellationToken,
    /// Dispatch alone, so a test can take it away.
    pub stop_dispatch: CancellationToken,
    pub intake_db: String,
    pub dispatch_db: String,
    pub grid_db: String,
    /// Where intake's object store keeps attachment bytes.
    pub attachments_dir: std::path::PathBuf,
    _dbs: Vec<TestDb>,
    _bus: TestBus,
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.attachments_dir);
        self.stop.cancel();
        self.stop_dispatch.cancel();
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

async fn stack_configured(
    tweak: impl FnOnce(&mut GatewayConfig),
    tweak_intake: impl FnOnce(&mut jiesu_intake::IntakeConfig),
) -> Stack {
    let intake_db = TestDb::new::<jiesu_intake::Migrations>("intake").await;
    let dispatch_db = TestDb::new::<jiesu_dispatch::Migrations>("dispatch").await;
    let notification_db = TestDb::new::<jiesu_notification::Migrations>("notification").await;
    let grid_db = TestDb::new::<jiesu_grid::Migrations>("grid").await;
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

    let tb = TestBus::new();
    let keys = TestKeys::new();
    let verifier = Verifier::start(&keys.auth_config()).await.unwrap();
    let stop = CancellationToken::new();
    let stop_dispatch = CancellationToken::new();
    let ctx = TargetCtx::new(stop.clone(), Duration::from_secs(5));
    let dispatch_ctx = TargetCtx::new(stop_dispatch.clone(), Duration::from_secs(5));

    let mut intake_cfg = jiesu_intake::IntakeConfig {
        grpc_addr: "127.0.0.1:0".into(),
        database_url: intake_db.url.clone(),
        // Retrain on every suggestion so tests see new tickets at once.
        suggest_refresh: Duration::ZERO,
        attachments: jiesu_intake::AttachmentsConfig {
            local_dir: attachments_dir.display().to_string(),
            max_image_bytes: 256 * 1024,
            ..Default::default()
        },
        contact_key_digests: CONTACT_KEY_SHA256.into(),
        ..Default::default()
    };
    tweak_intake(&mut intake_cfg);
    let intake = jiesu_intake::Intake::build(
        &intake_cfg,
        &intake_db.config(),
        tb.connect().await,
        verifier.clone(),
        keys.keyring(),
        &ctx,
    )
    .await
    .unwrap();
    let grid = jiesu_grid::GridTarget::build(
        &jiesu_grid::GridConfig {
            grpc_addr: "127.0.0.1:0".into(),
            database_url: grid_db.url.clone(),
            service_key_digests: jiesu_auth::service_key::digest(GRID_KEY),
            ..Default::default()
        },
        &grid_db.config(),
        tb.connect().await,
        verifier.clone(),
        keys.keyring(),
        &ctx,
    )
    .await
    .unwrap();
    let dispatch = jiesu_dispatch::Dispatch::build(
        &jiesu_dispatch::DispatchConfig {
            grpc_addr: "127.0.0.1:0".into(),
            database_url: dispatch_db.url.clone(),
            timer_poll: std::time::Duration::from_millis(200),
            grid_url: format!("http://{}", grid.addr()),
            grid_key: GRID_KEY.into(),
            ..Default::default()
        },
        &dispatch_db.config(),
        tb.connect().await,
        verifier.clone(),
        &dispatch_ctx,
    )
    .await
    .unwrap();
    let notification = jiesu_notification::NotificationTarget::build(
        &jiesu_notification::NotificationConfig {
            grpc_addr: "127.0.0.1:0".into(),
            database_url: notification_db.url.clone(),
            intake_url: format!("http://{}", intake.addr()),
            contact_key: CONTACT_KEY.into(),
        },
        &notification_db.config(),
        tb.connect().await,
        verifier.clone(),
        &ctx,
    )
    .await
    .unwrap();
    let mut cfg = GatewayConfig {
        http_addr: "127.0.0.1:0".into(),
        intake_url: format!("http://{}", intake.addr()),
        dispatch_url: format!("http://{}", dispatch.addr()),
        grid_url: format!("http://{}", grid.addr()),
        notification_url: format!("http://{}", notification.addr()),
        retries: 1,
        ..GatewayConfig::default()
    };
    // Suites send many requests from one address; the limits have tests
    // of their own.
    cfg.rate_limit.per_ip_per_minute = 0;
    cfg.rate_limit.per_channel_per_minute = 0;
    cfg.rate_limit.lookup_per_minute = 0;
    tweak(&mut cfg);
    let gateway = Gateway::build(&cfg, verifier, &ctx).await.unwrap();
    let base = format!("http://{}", gateway.addr());
    tokio::spawn(intake.run_until_stopped());
    tokio::spawn(dispatch.run_until_stopped());
    tokio::spawn(notification.run_until_stopped());
    tokio::spawn(grid.run_until_stopped());
    tokio::spawn(gateway.run_until_stopped());
    Stack {
        base,
        keys,
        http: Client::new(),
        stop,
        stop_dispatch,
        intake_db: intake_db.url.clone(),
        dispatch_db: dispatch_db.url.clone(),
        grid_db: grid_db.url.clone(),
        attachments_dir,
        _dbs: vec![intake_db, dispatch_db, notification_db, grid_db],
        _bus: tb,
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

    /// One value from intake's own database.
    pub async fn intake_scalar<T: sea_orm::TryGetable>(&self, sql: &str) -> T {
        scalar(&self.intake_db, sql).await
    }

    /// One value from grid's own database.
    pub async fn grid_scalar<T: sea_orm::TryGetable>(&self, sql: &str) -> T {
        scalar(&self.grid_db, sql).await
    }

    /// A count from dispatch's own database.
    pub async fn dispatch_count(&self, sql: &str) -> i64 {
        scalar(&self.dispatch_db, sql).await
    }

    /// Runs a statement on dispatch's database (tests that make time pass
    /// by moving a timer's due moment); returns the rows affected.
    pub async fn dispatch_exec(&self, sql: &str) -> u64 {
        use sea_orm::ConnectionTrait;
        let db = sea_orm::Database::connect(&self.dispatch_db).await.unwrap();
        let n = db.execute_unprepared(sql).await.unwrap().rows_affected();
        db.close().await.ok();
        n
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

/// One value of a query on the database at `url`.
async fn scalar<T: sea_orm::TryGetable>(url: &str, sql: &str) -> T {
    use sea_orm::ConnectionTrait;
    let db = sea_orm::Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    let v = row.try_get_by_index(0).unwrap();
    db.close().await.ok();
    v
}
