//! Not part of botauth's public API: shared between botauth's own crates; no stability promise.
//!
//! The date arithmetic, the endpoint rule, the telemetry names and recorders and a few
//! configuration helpers that several botauth crates (and the `botauth` CLI) use. Applications
//! use the types at the crate root and in [`crate::config`] and [`crate::service_url`] instead.

pub mod date;
pub mod endpoint;
pub mod telemetry;

pub use crate::config::model::{parse_duration, validate_tenant_id};
pub use crate::config::sources::BOTAUTH_CONFIG;
pub use crate::config::tables::supported_keys_markdown;
