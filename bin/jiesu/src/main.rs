//! `jiesu`: one binary for every target (see STYLE.md: one binary, many
//! targets). `main` parses arguments, loads configuration and runs; the
//! services live in their own crates.

mod demo;
mod settings;

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, anyhow, bail};
use clap::{Parser, Subcommand};
use jiesu_auth::{DevSigner, Role, TokenSpec, Verifier};
use jiesu_bus::Bus;
use jiesu_pii::Keyring;
use jiesu_runtime::{TargetCtx, admin, telemetry};
use settings::Settings;

#[derive(Parser)]
#[command(
    name = "jiesu",
    version,
    about = "Jiesu 接诉即办: request handling for 12345 government hotlines"
)]
struct Cli {
    /// Optional TOML configuration file; `JIESU__SECTION__KEY` variables
    /// override it.
    #[arg(long, global = true, env = "JIESU_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run targets in this process: all, or a list such as gateway,intake.
    Serve {
        #[arg(long, default_value = "all", value_delimiter = ',')]
        target: Vec<String>,
    },
    /// Create each target's database if missing and apply its migrations.
    Migrate {
        #[arg(long, default_value = "all", value_delimiter = ',')]
        target: Vec<String>,
    },
    /// Re-encrypt personal data still sealed with an older key using the
    /// keyring's active key (after a key rotation). Safe while serving and
    /// safe to repeat.
    Rekey {
        #[arg(long, default_value = "intake", value_delimiter = ',')]
        target: Vec<String>,
        /// Rows per transaction.
        #[arg(long, default_value_t = 500)]
        batch: u32,
    },
    /// Print a JWT signed with the local development key.
    Token {
        /// Tenant region code, e.g. 370202.
        #[arg(long)]
        tenant: String,
        /// Role(s): citizen, agent, dispatcher, handler, grid_worker,
        /// mediator, supervisor, tenant_admin, platform_admin.
        #[arg(long, required = true, value_delimiter = ',')]
        role: Vec<String>,
        /// Visible region (defaults to the tenant).
        #[arg(long)]
        scope: Option<String>,
        /// Handling unit id (for handlers).
        #[arg(long)]
        unit: Option<String>,
        /// Grid ids (for grid workers).
        #[arg(long, value_delimiter = ',')]
        grids: Vec<String>,
        /// Subject; defaults to dev-<first role>.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime, e.g. 30m, 8h.
        #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Load the demo tenant 370202 (青岛市市南区). Safe to repeat.
    SeedDemo,
    /// Write a development JWT signing key and a personal-data keyring into
    /// DIR unless they exist. Never for production.
    DevKeys {
        #[arg(long, default_value = ".local/dev")]
        dir: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Gateway,
    Intake,
    Dispatch,
    Grid,
    Notification,
}

impl Target {
    const ALL: [Target; 5] = [
        Target::Gateway,
        Target::Intake,
        Target::Dispatch,
        Target::Grid,
        Target::Notification,
    ];

    fn name(self) -> &'static str {
        match self {
            Target::Gateway => jiesu_gateway::TARGET,
            Target::Intake => jiesu_intake::TARGET,
            Target::Dispatch => jiesu_dispatch::TARGET,
            Target::Grid => jiesu_grid::TARGET,
            Target::Notification => jiesu_notification::TARGET,
        }
    }
}

fn parse_targets(list: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut out = Vec::new();
    for raw in list {
        let name = raw.trim();
        if name == "all" {
            return Ok(Target::ALL.to_vec());
        }
        let t = Target::ALL
            .into_iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| {
                anyhow!(
                    "unknown target `{name}` (known: all, gateway, intake, dispatch, grid, notification)"
                )
            })?;
        if !out.contains(&t) {
            out.push(t);
        }
    }
    if out.is_empty() {
        bail!("no target given");
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("jiesu: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve { target } => serve(settings, parse_targets(&target)?).await,
        Command::Migrate { target } => {
            quiet_logs();
            migrate(&settings, &parse_targets(&target)?).await
        }
        Command::Token {
            tenant,
            role,
            scope,
            unit,
            grids,
            sub,
            ttl,
        } => token(&settings, tenant, role, scope, unit, grids, sub, ttl),
        Command::Rekey { target, batch } => {
            quiet_logs();
            rekey(&settings, &parse_targets(&target)?, batch).await
        }
        Command::SeedDemo => {
            quiet_logs();
            seed_demo(&settings).await
        }
        Command::DevKeys { dir } => dev_keys(&dir),
    }
}

fn quiet_logs() {
    let cfg = jiesu_runtime::TelemetryConfig {
        log_filter: "warn,jiesu=info".into(),
        ..Default::default()
    };
    let _ = telemetry::init(&cfg, "jiesu-cli");
}

async fn serve(settings: Settings, targets: Vec<Target>) -> anyhow::Result<()> {
    settings.validate(&targets)?;
    let names: Vec<&str> = targets.iter().map(|t| t.name()).collect();
    let service_name = format!("jiesu-{}", names.join("-"));
    let guard = telemetry::init(&settings.telemetry, &service_name)?;
    let metrics = admin::install_metrics();
    let shutdown = jiesu_runtime::shutdown_token();
    let ctx = TargetCtx::new(shutdown.clone(), settings.shutdown.grace);
    let (admin_addr, admin_task) = admin::serve(
        &settings.admin.addr,
        ctx.readiness.clone(),
        metrics,
        shutdown.clone(),
    )
    .await
    .with_context(|| format!("admin server on {} (admin.addr)", settings.admin.addr))?;

    let verifier = Verifier::start(&settings.auth).await?;
    verifier.spawn_refresh(shutdown.clone());
    let needs_bus = targets.iter().any(|t| *t != Target::Gateway);
    let bus = if needs_bus {
        Some(Bus::connect(&settings.bus, &service_name).await?)
    } else {
        None
    };
    let bus = || bus.clone().ok_or_else(|| anyhow!("bus not connected"));

    let mut running = Vec::new();
    for t in &targets {
        let started = match t {
            Target::Gateway => {
                jiesu_gateway::Gateway::build(&settings.gateway, verifier.clone(), &ctx).await?
            }
            Target::Intake => {
                let keyring = Arc::new(Keyring::load(&settings.pii)?);
                jiesu_intake::Intake::build(
                    &settings.intake,
                    &settings.database,
                    bus()?,
                    verifier.clone(),
                    keyring,
                    &ctx,
                )
                .await?
            }
            Target::Dispatch => {
                jiesu_dispatch::Dispatch::build(
                    &settings.dispatch,
                    &settings.database,
                    bus()?,
                    verifier.clone(),
                    &ctx,
                )
                .await?
            }
            Target::Grid => {
                jiesu_grid::GridTarget::build(
                    &settings.grid,
                    &settings.database,
                    bus()?,
                    verifier.clone(),
                    Arc::new(Keyring::load(&settings.pii)?),
                    &ctx,
                )
                .await?
            }
            Target::Notification => {
                jiesu_notification::NotificationTarget::build(
                    &settings.notification,
                    &settings.database,
                    bus()?,
                    verifier.clone(),
                    &ctx,
                )
                .await?
            }
        };
        running.push(started.run_until_stopped());
    }
    tracing::info!(targets = ?names, admin = %admin_addr, "jiesu started");

    shutdown.cancelled().await;
    // Targets budget `grace` from the signal on; allow them a little more
    // than that before giving up on them.
    let grace = settings.shutdown.grace + Duration::from_secs(2);
    if tokio::time::timeout(grace, futures::future::join_all(running))
        .await
        .is_err()
    {
        tracing::warn!(?grace, "targets did not drain within the grace period");
    }
    let _ = admin_task.await;
    tracing::info!("jiesu stopped");
    guard.shutdown();
    Ok(())
}

async fn migrate(settings: &Settings, targets: &[Target]) -> anyhow::Result<()> {
    settings.database.validate()?;
    let db = &settings.database;
    for t in targets {
        let (url, name) = match t {
            Target::Gateway => continue,
            Target::Intake => (
                db.url_for(t.name(), &settings.intake.database_url)?,
                t.name(),
            ),
            Target::Dispatch => (
                db.url_for(t.name(), &settings.dispatch.database_url)?,
                t.name(),
            ),
            Target::Grid => (db.url_for(t.name(), &settings.grid.database_url)?, t.name()),
            Target::Notification => (
                db.url_for(t.name(), &settings.notification.database_url)?,
                t.name(),
            ),
        };
        jiesu_db::ensure_database(&url, db)
            .await
            .with_context(|| format!("creating the {name} database"))?;
        match t {
            Target::Intake => jiesu_db::migrate::<jiesu_intake::Migrations>(&url, db).await,
            Target::Dispatch => jiesu_db::migrate::<jiesu_dispatch::Migrations>(&url, db).await,
            Target::Grid => jiesu_db::migrate::<jiesu_grid::Migrations>(&url, db).await,
            Target::Notification => {
                jiesu_db::migrate::<jiesu_notification::Migrations>(&url, db).await
            }
            Target::Gateway => Ok(()),
        }
        .with_context(|| format!("migrating the {name} database"))?;
        println!("migrated {name}: {}", jiesu_db::database_name(&url)?);
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn token(
    settings: &Settings,
    tenant: String,
    roles: Vec<String>,
    scope: Option<String>,
    unit: Option<String>,
    grids: Vec<String>,
    sub: Option<String>,
    ttl: Duration,
) -> anyhow::Result<()> {
    let key = &settings.auth.dev_signing_key_file;
    if key.is_empty() {
        bail!(
            "no development signing key configured: set JIESU__AUTH__DEV_SIGNING_KEY_FILE \
             (`make up` writes .local/dev/jwt-dev-key.pem; `jiesu dev-keys` creates one)"
        );
    }
    let signer = DevSigner::from_file(std::path::Path::new(key))
        .map_err(|e| anyhow!("auth.dev_signing_key_file: {e}"))?;
    jiesu_auth::Region::parse(&tenant).map_err(|e| anyhow!("--tenant: {e}"))?;
    if let Some(s) = &scope {
        jiesu_auth::Region::parse(s).map_err(|e| anyhow!("--scope: {e}"))?;
    }
    let roles = roles
        .iter()
        .map(|r| Role::parse(r.trim()).ok_or_else(|| anyhow!("--role: unknown role `{r}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sub = sub.unwrap_or_else(|| format!("dev-{}", roles[0]));
    let spec = TokenSpec {
        sub,
        tenant,
        scope,
        roles,
        unit,
        grids,
        ttl,
    };
    let jwt = signer
        .sign(&spec, &settings.auth.issuer, &settings.auth.audience)
        .map_err(|e| anyhow!("signing failed: {e}"))?;
    println!("{jwt}");
    Ok(())
}

async fn rekey(settings: &Settings, targets: &[Target], batch: u32) -> anyhow::Result<()> {
    if batch == 0 {
        anyhow::bail!("--batch must be at least 1");
    }
    let keyring = Keyring::load(&settings.pii)?;
    let db = &settings.database;
    for t in targets {
        match t {
            Target::Intake => {
                let conn =
                    jiesu_db::connect(&db.url_for("intake", &settings.intake.database_url)?, db)
                        .await?;
                let report = jiesu_intake::rekey::rekey(&conn, &keyring, batch).await?;
                for (column, n) in &report.resealed {
                    if *n > 0 {
                        println!("intake {column}: {n} re-encrypted");
                    }
                }
                let left = jiesu_intake::rekey::remaining(&conn, &keyring).await?;
                println!(
                    "intake: {} values re-encrypted with key {}; {left} left under other keys",
                    report.total(),
                    keyring.active_key_id()
                );
            }
            Target::Grid => {
                let conn = jiesu_db::connect(&db.url_for("grid", &settings.grid.database_url)?, db)
                    .await?;
                let columns = jiesu_grid::rekey::COLUMNS;
                let report = jiesu_db::rekey::rekey(&conn, &keyring, columns, batch).await?;
                for (column, n) in &report.resealed {
                    if *n > 0 {
                        println!("grid {column}: {n} re-encrypted");
                    }
                }
                let left = jiesu_db::rekey::remaining(&conn, &keyring, columns).await?;
                println!(
                    "grid: {} values re-encrypted with key {}; {left} left under other keys",
                    report.total(),
                    keyring.active_key_id()
                );
            }
            other => println!("{}: no personal data to re-encrypt", other.name()),
        }
    }
    Ok(())
}

async fn seed_demo(settings: &Settings) -> anyhow::Result<()> {
    migrate(
        settings,
        &[
            Target::Intake,
            Target::Dispatch,
            Target::Grid,
            Target::Notification,
        ],
    )
    .await?;
    let d = demo::shinan()?;
    let db = &settings.database;
    let intake =
        jiesu_db::connect(&db.url_for("intake", &settings.intake.database_url)?, db).await?;
    let n = jiesu_intake::seed::upsert_categories(&intake, &d.tenant, &d.categories).await?;
    println!("{} ({}): {n} categories", d.name, d.tenant);
    let dispatch = jiesu_db::connect(
        &db.url_for("dispatch", &settings.dispatch.database_url)?,
        db,
    )
    .await?;
    let n = jiesu_dispatch::seed::upsert_units(&dispatch, &d.tenant, &d.units).await?;
    println!(
        "{} ({}): {n} units (streets, communities, departments)",
        d.name, d.tenant
    );
    let n = jiesu_dispatch::seed::upsert_routes(&dispatch, &d.tenant, &d.routes).await?;
    println!("{} ({}): {n} category -> unit routes", d.name, d.tenant);
    let grid = jiesu_db::connect(&db.url_for("grid", &settings.grid.database_url)?, db).await?;
    let streets: Vec<(String, String)> = d
        .units
        .iter()
        .filter(|u| u.kind == "street")
        .map(|u| (u.region_code.clone(), u.name.clone()))
        .collect();
    let n = jiesu_grid::seed::import_regions(
        &grid,
        &d.tenant,
        &jiesu_grid::seed::shinan_regions(&streets),
    )
    .await
    .map_err(|e| anyhow!("demo regions: {e}"))?;
    println!(
        "{} ({}): {n} regions (district, streets, communities)",
        d.name, d.tenant
    );
    let (created, updated) =
        jiesu_grid::seed::import(&grid, &d.tenant, &jiesu_grid::seed::shinan_layer())
            .await
            .map_err(|e| anyhow!("demo grid layer: {e}"))?;
    println!(
        "{} ({}): {} basic grids",
        d.name,
        d.tenant,
        created + updated
    );
    let places = [
        jiesu_grid::seed::shinan_police(),
        jiesu_grid::seed::shinan_places(),
    ];
    for layer in &places {
        jiesu_grid::seed::import(&grid, &d.tenant, layer)
            .await
            .map_err(|e| anyhow!("demo grid layer: {e}"))?;
    }
    let pairs = jiesu_grid::seed::import_pairs(&grid, &d.tenant, &jiesu_grid::seed::shinan_pairs())
        .await
        .map_err(|e| anyhow!("demo pairs: {e}"))?;
    let keyring = Keyring::load(&settings.pii)?;
    let workers = jiesu_grid::seed::import_workers(&grid, &d.tenant, &keyring)
        .await
        .map_err(|e| anyhow!("demo grid workers: {e}"))?;
    println!(
        "{} ({}): {workers} grid workers serving {}",
        d.name,
        d.tenant,
        jiesu_grid::seed::DEMO_WORKER_GRID
    );
    let buildings = jiesu_grid::seed::import_buildings(&grid, &d.tenant)
        .await
        .map_err(|e| anyhow!("demo buildings: {e}"))?;
    println!(
        "{} ({}): 148 police grids ({pairs} pairs with basic grids), {} micro and dedicated grids, {buildings} registry buildings",
        d.name,
        d.tenant,
        jiesu_grid::seed::DEMO_PLACES.len()
    );
    Ok(())
}

fn dev_keys(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = dir.join("jwt-dev-key.pem");
    if !key.exists() {
        let pem = jiesu_auth::generate_dev_key_pem().map_err(|e| anyhow!(e))?;
        write_private(&key, &pem)?;
    }
    let ring = dir.join("pii-keyring.json");
    if !ring.exists() {
        write_private(&ring, &Keyring::generate_json().map_err(|e| anyhow!(e))?)?;
    }
    println!("{}", key.display());
    println!("{}", ring.display());
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}
