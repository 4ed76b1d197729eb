//! Every section of the configuration, as one document.
//!
//! Defaults live in each section's `Default`; a TOML file (`--config`) and
//! `JIESU__SECTION__KEY` environment variables override them. Unknown keys
//! are refused so a typo fails start-up instead of being ignored.

use jiesu_auth::AuthConfig;
use jiesu_bus::BusConfig;
use jiesu_db::DbConfig;
use jiesu_dispatch::DispatchConfig;
use jiesu_evaluation::EvaluationConfig;
use jiesu_gateway::GatewayConfig;
use jiesu_grid::GridConfig;
use jiesu_intake::IntakeConfig;
use jiesu_notification::NotificationConfig;
use jiesu_pii::PiiConfig;
use jiesu_runtime::{AdminConfig, ConfigError, ShutdownConfig, TelemetryConfig};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub admin: AdminConfig,
    pub telemetry: TelemetryConfig,
    pub shutdown: ShutdownConfig,
    pub database: DbConfig,
    pub bus: BusConfig,
    pub auth: AuthConfig,
    pub pii: PiiConfig,
    pub gateway: GatewayConfig,
    pub intake: IntakeConfig,
    pub dispatch: DispatchConfig,
    pub grid: GridConfig,
    pub notification: NotificationConfig,
    pub evaluation: EvaluationConfig,
}

impl Settings {
    pub fn load(file: Option<&std::path::Path>) -> Result<Self, ConfigError> {
        jiesu_runtime::load_config(file, None)
    }

    /// Checks what the chosen targets need; other sections may stay unset.
    pub fn validate(&self, rows: &[crate::targets::Row]) -> Result<(), ConfigError> {
        jiesu_runtime::config::parse_addr("admin.addr", &self.admin.addr)?;
        if !(0.0..=1.0).contains(&self.telemetry.sample_ratio) {
            return Err(ConfigError::invalid(
                "telemetry.sample_ratio",
                "must be between 0 and 1",
            ));
        }
        self.auth.validate()?;
        if rows.iter().any(|r| r.has_database(self)) {
            self.database.validate()?;
            self.bus.validate()?;
        }
        for row in rows {
            (row.validate)(self)?;
        }
        Ok(())
    }
}
