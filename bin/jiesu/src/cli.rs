//! The command line: subcommands and their flags.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "jiesu",
    version,
    about = "Jiesu 接诉即办: request handling for 12345 government hotlines"
)]
pub struct Cli {
    /// Optional TOML configuration file; `JIESU__SECTION__KEY` variables
    /// override it.
    #[arg(long, global = true, env = "JIESU_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
    /// Publish a target's already-sent events again from its outbox: after
    /// NATS lost or rolled back its JetStream store. Consumers' inboxes skip
    /// what they applied. Rows are kept for `bus.outbox_retention`.
    OutboxReplay {
        #[arg(long, default_value = "all", value_delimiter = ',')]
        target: Vec<String>,
        /// Only events sent within this long, e.g. 2h; all retained if absent.
        #[arg(long, value_parser = humantime::parse_duration)]
        since: Option<Duration>,
    },
    /// Print a JWT signed with the local development key.
    Token(TokenArgs),
    /// Load the demo tenant 370202 (青岛市市南区). Safe to repeat.
    SeedDemo,
    /// Write a development JWT signing key and a personal-data keyring into
    /// DIR unless they exist. Never for production.
    DevKeys {
        #[arg(long, default_value = ".local/dev")]
        dir: PathBuf,
    },
}

/// What `jiesu token` is asked for.
#[derive(Args)]
pub struct TokenArgs {
    /// Tenant region code, e.g. 370202.
    #[arg(long)]
    pub tenant: String,
    /// Role(s): citizen, agent, dispatcher, handler, grid_worker,
    /// mediator, supervisor, tenant_admin, platform_admin.
    #[arg(long = "role", required = true, value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Visible region (defaults to the tenant).
    #[arg(long)]
    pub scope: Option<String>,
    /// Handling unit id (for handlers).
    #[arg(long)]
    pub unit: Option<String>,
    /// Grid ids (for grid workers).
    #[arg(long, value_delimiter = ',')]
    pub grids: Vec<String>,
    /// Subject; defaults to dev-<first role>.
    #[arg(long)]
    pub sub: Option<String>,
    /// Lifetime, e.g. 30m, 8h.
    #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
    pub ttl: Duration,
}
