//! `jiesu`: one binary for every target (see STYLE.md: one binary, many
//! targets). `main` parses arguments, loads configuration and runs; the
//! targets are rows of [`targets::table`], the commands in [`commands`].

mod cli;
mod commands;
mod demo;
mod settings;
mod targets;

use std::process::ExitCode;

use clap::Parser;
use cli::{Cli, Command};
use settings::Settings;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
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
        Command::Serve { target } => commands::serve(settings, targets::pick(&target)?).await,
        Command::Migrate { target } => {
            quiet_logs();
            commands::migrate(&settings, &targets::pick(&target)?).await
        }
        Command::Rekey { target, batch } => {
            quiet_logs();
            commands::rekey(&settings, &targets::pick(&target)?, batch).await
        }
        Command::OutboxReplay { target, since } => {
            quiet_logs();
            commands::outbox_replay(&settings, &targets::pick(&target)?, since).await
        }
        Command::SeedDemo => {
            quiet_logs();
            commands::seed_demo(&settings).await
        }
        Command::Token(args) => commands::token(&settings, args),
        Command::DevKeys { dir } => commands::dev_keys(&dir),
    }
}

/// Chores print what they did; the services' info logs would bury it.
fn quiet_logs() {
    let cfg = jiesu_runtime::TelemetryConfig {
        log_filter: "warn,jiesu=info".into(),
        ..Default::default()
    };
    let _ = jiesu_runtime::telemetry::init(&cfg, "jiesu-cli");
}
