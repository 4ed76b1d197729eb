//! What each subcommand does; the targets come from the table.

use std::{path::Path, sync::Arc, time::Duration};

use anyhow::{Context, anyhow, bail};
use jiesu_auth::{DevSigner, Role, TokenSpec, Verifier};
use jiesu_bus::Bus;
use jiesu_db::sea_orm::{self, ConnectionTrait};
use jiesu_pii::Keyring;
use jiesu_runtime::{TargetCtx, admin, telemetry};
use jiesu_service::Env;

use crate::{
    cli::TokenArgs,
    demo::{self, Seeding},
    settings::Settings,
    targets::{self, Row},
};

/// Runs `rows` in this process until SIGTERM, then drains them.
pub async fn serve(settings: Settings, rows: Vec<Row>) -> anyhow::Result<()> {
    settings.validate(&rows)?;
    let names: Vec<&str> = rows.iter().map(|r| r.name).collect();
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
    let mut env = Env::new(ctx, settings.database.clone(), verifier);
    // Every target that keeps data also publishes or consumes events.
    if rows.iter().any(|r| r.has_database(&settings)) {
        env = env.with_bus(Bus::connect(&settings.bus, &service_name).await?);
    }
    if rows.iter().any(|r| !r.sealed.is_empty()) {
        env = env.with_keyring(Arc::new(Keyring::load(&settings.pii)?));
    }
    let mut running = Vec::new();
    for row in &rows {
        running.push((row.build)(&settings, &env).await?.run_until_stopped());
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

/// Creates each target's database if missing and applies its migrations.
pub async fn migrate(settings: &Settings, rows: &[Row]) -> anyhow::Result<()> {
    settings.database.validate()?;
    let db = &settings.database;
    for row in rows.iter().filter(|r| r.has_database(settings)) {
        let url = row.database_url(settings)?;
        let name = row.name;
        jiesu_db::ensure_database(&url, db)
            .await
            .with_context(|| format!("creating the {name} database"))?;
        (row.migrate)(&url, db)
            .await
            .with_context(|| format!("migrating the {name} database"))?;
        println!("migrated {name}: {}", jiesu_db::database_name(&url)?);
    }
    Ok(())
}

/// Re-seals personal data still under an older key with the active one.
pub async fn rekey(settings: &Settings, rows: &[Row], batch: u32) -> anyhow::Result<()> {
    if batch == 0 {
        bail!("--batch must be at least 1");
    }
    let keyring = Keyring::load(&settings.pii)?;
    let db = &settings.database;
    for row in rows {
        let name = row.name;
        if row.sealed.is_empty() {
            println!("{name}: no personal data to re-encrypt");
            continue;
        }
        let conn = jiesu_db::connect(&row.database_url(settings)?, db).await?;
        let report = jiesu_db::rekey::rekey(&conn, &keyring, row.sealed, batch).await?;
        for (column, n) in &report.resealed {
            if *n > 0 {
                println!("{name} {column}: {n} re-encrypted");
            }
        }
        let left = jiesu_db::rekey::remaining(&conn, &keyring, row.sealed).await?;
        println!(
            "{name}: {} values re-encrypted with key {}; {left} left under other keys",
            report.total(),
            keyring.active_key_id()
        );
    }
    Ok(())
}

/// Marks each target's retained sent events unsent; the running relays
/// publish them again within a poll interval.
pub async fn outbox_replay(
    settings: &Settings,
    rows: &[Row],
    since: Option<Duration>,
) -> anyhow::Result<()> {
    for row in rows.iter().filter(|r| r.has_database(settings)) {
        let conn = jiesu_db::connect(&row.database_url(settings)?, &settings.database).await?;
        let has_outbox = conn
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT to_regclass('bus_outbox') IS NOT NULL AS present",
            ))
            .await?
            .map(|r| r.try_get::<bool>("", "present"))
            .transpose()?
            .unwrap_or(false);
        if !has_outbox {
            println!("{}: no outbox", row.name);
            continue;
        }
        let n = jiesu_bus::replay(&conn, &settings.bus.subject_root, row.name, since).await?;
        println!("{}: {n} events will be published again", row.name);
    }
    Ok(())
}

/// Migrates every target and loads the demo tenant into each that has a part.
pub async fn seed_demo(settings: &Settings) -> anyhow::Result<()> {
    let rows = targets::table();
    migrate(settings, &rows).await?;
    let demo = demo::shinan()?;
    let keyring = Keyring::load(&settings.pii)?;
    for row in &rows {
        let Some(seed) = row.seed else { continue };
        let db = jiesu_db::connect(&row.database_url(settings)?, &settings.database).await?;
        seed(&Seeding {
            db: &db,
            demo: &demo,
            keyring: &keyring,
        })
        .await
        .with_context(|| format!("demo data for {}", row.name))?;
    }
    Ok(())
}

/// Prints a JWT signed with the local development key.
pub fn token(settings: &Settings, a: TokenArgs) -> anyhow::Result<()> {
    let key = &settings.auth.dev_signing_key_file;
    if key.is_empty() {
        bail!(
            "no development signing key configured: set JIESU__AUTH__DEV_SIGNING_KEY_FILE \
             (`make up` writes .local/dev/jwt-dev-key.pem; `jiesu dev-keys` creates one)"
        );
    }
    let signer = DevSigner::from_file(Path::new(key))
        .map_err(|e| anyhow!("auth.dev_signing_key_file: {e}"))?;
    jiesu_auth::Region::parse(&a.tenant).map_err(|e| anyhow!("--tenant: {e}"))?;
    if let Some(s) = &a.scope {
        jiesu_auth::Region::parse(s).map_err(|e| anyhow!("--scope: {e}"))?;
    }
    let roles = a
        .roles
        .iter()
        .map(|r| Role::parse(r.trim()).ok_or_else(|| anyhow!("--role: unknown role `{r}`")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sub = a.sub.unwrap_or_else(|| format!("dev-{}", roles[0]));
    let spec = TokenSpec {
        sub,
        tenant: a.tenant,
        scope: a.scope,
        roles,
        unit: a.unit,
        grids: a.grids,
        ttl: a.ttl,
    };
    let jwt = signer
        .sign(&spec, &settings.auth.issuer, &settings.auth.audience)
        .map_err(|e| anyhow!("signing failed: {e}"))?;
    println!("{jwt}");
    Ok(())
}

/// Writes a development signing key and keyring into `dir` unless they exist.
pub fn dev_keys(dir: &Path) -> anyhow::Result<()> {
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

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
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
