//! Starting and stopping the platform as separate processes.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use jiesu_testkit::{ServiceProcess, TargetProcess, TestBus, TestKeys, unique_tag, wait_until};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// The service key notification presents to intake, and its SHA-256.
pub const CONTACT_KEY: &str = "jiesu-test-contact-key";
pub const CONTACT_KEY_SHA256: &str =
    "61709366bfa13a4fa90d46b7b3409bfb819bd6c6590141d92ec8d5ce7d5b4386";

pub const TARGETS: [&str; 5] = [
    "gateway",
    "intake",
    "dispatch",
    "notification",
    "evaluation",
];

/// The targets behind the gateway, each its own process.
pub const SERVICES: [&str; 4] = ["intake", "dispatch", "notification", "evaluation"];

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_jiesu"))
}

/// Where logs and reports of end-to-end runs go.
pub fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("e2e");
    std::fs::create_dir_all(&d).expect("e2e dir");
    d
}

/// Messages seen on the bus: subject, headers and payload as text.
pub type Sniffed = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// The PostgreSQL and NATS servers a platform runs against: the machine's
/// (the default), or a drill's own.
pub struct Servers {
    /// PostgreSQL server URL without a database.
    pub db: String,
    pub nats: String,
}

impl Default for Servers {
    fn default() -> Self {
        Self {
            db: jiesu_testkit::database_server_url(),
            nats: jiesu_testkit::nats_url(),
        }
    }
}

pub struct Platform {
    pub tag: String,
    pub keys: TestKeys,
    pub _bus: TestBus,
    pub db_prefix: String,
    /// PostgreSQL server URL without a database.
    pub db_server: String,
    pub gateway: String,
    pub procs: HashMap<&'static str, TargetProcess>,
    pub sniffed: Sniffed,
    pub logs: PathBuf,
}

impl Platform {
    /// Common environment of every process of this platform.
    pub fn base_env(keys: &TestKeys, bus: &TestBus, db_prefix: &str) -> Vec<(String, String)> {
        Self::env_on(&jiesu_testkit::database_server_url(), keys, bus, db_prefix)
    }

    fn env_on(
        db_server: &str,
        keys: &TestKeys,
        bus: &TestBus,
        db_prefix: &str,
    ) -> Vec<(String, String)> {
        vec![
            ("JIESU__DATABASE__URL".into(), db_server.to_owned()),
            ("JIESU__DATABASE__NAME_PREFIX".into(), db_prefix.into()),
            ("JIESU__BUS__URL".into(), bus.cfg.url.clone()),
            ("JIESU__BUS__SUBJECT_ROOT".into(), bus.cfg.subject_root.clone()),
            ("JIESU__BUS__STREAM_PREFIX".into(), bus.cfg.stream_prefix.clone()),
            (
                "JIESU__AUTH__DEV_SIGNING_KEY_FILE".into(),
                keys.dev_key_file.display().to_string(),
            ),
            (
                "JIESU__PII__KEYRING_FILE".into(),
                keys.keyring_file.display().to_string(),
            ),
            // Verbose on purpose: the personal-data scan reads these logs.
            (
                "JIESU__TELEMETRY__LOG_FILTER".into(),
                "debug,h2=info,hyper=info,hyper_util=info,tower=info,rustls=info,async_nats=info,tokio_postgres=info"
                    .into(),
            ),
            ("JIESU__SHUTDOWN__GRACE".into(), "5s".into()),
            // Five processes per platform and several platforms at once
            // stay well inside PostgreSQL's 100 connections.
            ("JIESU__DATABASE__MAX_CONNECTIONS".into(), "8".into()),
            // Notification asks intake for citizens' contacts with this key.
            ("JIESU__NOTIFICATION__CONTACT_KEY".into(), CONTACT_KEY.into()),
            ("JIESU__INTAKE__CONTACT_KEY_DIGESTS".into(), CONTACT_KEY_SHA256.into()),
            // Counts must not depend on the hour the run starts: no quiet
            // hours for citizens (their own test covers them).
            ("JIESU__NOTIFICATION__QUIET_HOURS".into(), String::new()),
        ]
    }

    /// [`Platform::start`] with environment entries that override the
    /// common ones (e.g. a quieter log filter for a load run).
    pub async fn start_with(overrides: &[(&str, &str)]) -> Platform {
        Self::start_on(Servers::default(), overrides).await
    }

    /// [`Platform::start_with`] against `servers`.
    pub async fn start_on(servers: Servers, overrides: &[(&str, &str)]) -> Platform {
        let tag = unique_tag();
        let keys = TestKeys::new();
        let bus = TestBus::on(&servers.nats);
        let db_prefix = format!("jt_e2e_{tag}_");
        let logs = out_dir().join(&tag);
        std::fs::create_dir_all(&logs).expect("log dir");
        let mut base = Self::env_on(&servers.db, &keys, &bus, &db_prefix);
        base.extend(
            overrides
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );

        // Listen to everything the platform publishes, from the start.
        let sniffed: Sniffed = Arc::default();
        let client = async_nats::connect(bus.cfg.url.as_str())
            .await
            .expect("NATS");
        let mut sub = client
            .subscribe(format!("{}.>", bus.cfg.subject_root))
            .await
            .expect("subscribe");
        let sink = sniffed.clone();
        tokio::spawn(async move {
            let _keep = client;
            while let Some(m) = sub.next().await {
                let headers = m
                    .headers
                    .as_ref()
                    .map(|h| {
                        h.iter()
                            .map(|(k, v)| format!("{k}: {v:?}"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default();
                if let Ok(mut v) = sink.lock() {
                    v.push((m.subject.to_string(), headers, m.payload.to_vec()));
                }
            }
        });

        // Migrate, then load the demo tenant twice: the second load must
        // change nothing (seed-demo is idempotent).
        let run = |name: &str, args: &[&str]| {
            let log = logs.join(format!("{name}.log"));
            let mut p = ServiceProcess::new(name, &bin(), args, base.clone(), log.clone());
            p.start();
            let code = p.wait_exit();
            assert_eq!(code, Some(0), "{name} failed; see {}", log.display());
            std::fs::read_to_string(&log).unwrap_or_default()
        };
        let migrated = run("migrate", &["migrate", "--target", "all"]);
        for svc in SERVICES {
            assert!(
                migrated.contains(&format!("migrated {svc}: {db_prefix}{svc}")),
                "{migrated}"
            );
        }
        let first = run("seed-1", &["seed-demo"]);
        let second = run("seed-2", &["seed-demo"]);
        let counts = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.starts_with("青岛市市南区"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(counts(&first).len(), 7, "{first}");
        assert_eq!(counts(&first), counts(&second));

        // The services first (their ports go into the others' settings),
        // then the gateway in front of them.
        let mut procs: HashMap<&'static str, TargetProcess> = HashMap::new();
        for t in SERVICES {
            let mut env = base.clone();
            if t == "notification" || t == "evaluation" {
                env.push((
                    format!("JIESU__{}__INTAKE_URL", t.to_uppercase()),
                    procs["intake"].url(),
                ));
            }
            let log = logs.join(format!("{t}.log"));
            procs.insert(t, TargetProcess::start(&bin(), t, t, env, log));
        }
        let mut env = base.clone();
        for s in SERVICES {
            env.push((
                format!("JIESU__GATEWAY__{}_URL", s.to_uppercase()),
                procs[s].url(),
            ));
        }
        let gateway =
            TargetProcess::start(&bin(), "gateway", "gateway", env, logs.join("gateway.log"));
        let url = gateway.url();
        procs.insert("gateway", gateway);
        let platform = Platform {
            tag,
            keys,
            _bus: bus,
            db_prefix,
            db_server: servers.db,
            gateway: url,
            procs,
            sniffed,
            logs,
        };
        for t in TARGETS {
            platform.wait_ready(t).await;
        }
        platform
    }

    /// Waits for the target's `/readyz` to answer 200.
    pub async fn wait_ready(&self, target: &str) {
        self.procs[target].wait_ready().await;
    }

    pub fn kill9(&mut self, target: &str) {
        self.procs.get_mut(target).expect("target").process.kill9();
    }

    pub fn restart(&mut self, target: &str) {
        self.procs.get_mut(target).expect("target").process.start();
    }

    pub async fn db(&self, service: &str) -> DatabaseConnection {
        let url = jiesu_db::with_database(&self.db_server, &format!("{}{service}", self.db_prefix))
            .expect("url");
        let cfg = jiesu_db::DbConfig {
            max_connections: 2,
            min_connections: 0,
            ..Default::default()
        };
        jiesu_db::connect(&url, &cfg).await.expect("connect")
    }

    pub async fn scalar(&self, service: &str, sql: &str) -> i64 {
        let conn = self.db(service).await;
        let row = conn
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .expect("row");
        let n = row.try_get_by_index::<i64>(0).expect("number");
        let _ = conn.close().await;
        n
    }

    pub fn all_logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(&self.logs)
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    }

    pub fn token(&self, tenant: &str, roles: &[jiesu_auth::Role], sub: &str) -> String {
        self.keys.token(tenant, roles, sub)
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        for p in self.procs.values_mut() {
            p.process.kill9();
        }
        // A drill's own server goes away with its directory.
        if self.db_server == jiesu_testkit::database_server_url() {
            jiesu_testkit::drop_databases_with_prefix(&self.db_prefix);
        }
    }
}

/// The gateway alone in its own process (no backends), on its own ports.
pub struct LoneGateway {
    pub process: ServiceProcess,
    pub http: u16,
    pub admin: u16,
    pub keys: TestKeys,
    _bus: TestBus,
}

impl LoneGateway {
    /// Starts it with `extra` settings and waits for `/healthz`.
    pub async fn start(label: &str, extra: Vec<(String, String)>) -> LoneGateway {
        let keys = TestKeys::new();
        let bus = TestBus::new();
        let mut env = Platform::base_env(&keys, &bus, "jt_unused_");
        env.extend(extra);
        let log = out_dir().join(format!("{label}-{}.log", unique_tag()));
        let TargetProcess {
            process,
            admin,
            port: http,
        } = TargetProcess::start(&bin(), "gateway", "gateway", env, log);
        let client = reqwest::Client::new();
        wait_until(Duration::from_secs(30), "the lone gateway", || {
            let client = client.clone();
            async move {
                let r = client
                    .get(format!("http://127.0.0.1:{http}/healthz"))
                    .send()
                    .await
                    .ok()?;
                r.status().is_success().then_some(())
            }
        })
        .await;
        LoneGateway {
            process,
            http,
            admin,
            keys,
            _bus: bus,
        }
    }

    /// SIGTERM; returns the exit code once the process drained.
    pub async fn terminate(mut self) -> Option<i32> {
        tokio::task::spawn_blocking(move || self.process.terminate())
            .await
            .expect("join")
    }
}
