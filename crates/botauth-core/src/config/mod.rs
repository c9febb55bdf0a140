//! Configuration: one model ([`BotAuthConfig`]) and readers for each dialect of docs/protocol.md §7.

mod env;
mod file;
mod model;
pub(crate) mod validate;

pub use env::EnvVars;
pub use model::{
    AssertionAlgorithm, BotAuthConfig, CertificateConfig, CredentialConfig, CustomSettings,
    Dialect, InboundConfig, ManagedIdentityId, validate_tenant_id,
};
pub use validate::check_endpoint_url;
