//! Not part of botauth's public API: shared between botauth's own crates; no stability promise.
//!
//! The date arithmetic, the endpoint rule, the telemetry names and recorders and a few
//! configuration helpers that several botauth crates (and the `botauth` CLI) use. Applications
//! use the types at the crate root and in [`crate::config`] and [`crate::service_url`] instead.

pub mod date;
pub mod endpoint;
pub mod telemetry;

use std::time::Duration;

use crate::Result;

/// The environment variable that names the configuration file (the CLI's `--config` default).
pub const BOTAUTH_CONFIG: &str = crate::config::sources::BOTAUTH_CONFIG;

/// Parses a duration setting: a number of seconds (`30`, `2.5`) or a number with a unit (`1500ms`,
/// `30s`, `2m`). `key` names the setting in the error, which never repeats the value.
///
/// # Errors
///
/// A configuration error naming `key`.
pub fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    crate::config::model::parse_duration(key, value)
}

/// Validates a tenant id before it goes into a URL: `[A-Za-z0-9.-]+` (docs/protocol.md §2).
///
/// # Errors
///
/// A configuration error naming `tenant_id`, without the value.
pub fn validate_tenant_id(tenant: &str) -> Result<()> {
    crate::config::model::validate_tenant_id(tenant)
}

/// The README's list of every key botauth reads, per dialect (`botauth config --keys`).
pub fn supported_keys_markdown() -> String {
    crate::config::tables::supported_keys_markdown()
}
