//! Configuration: one model ([`BotAuthConfig`]) and readers for each dialect of docs/protocol.md §7.

mod dotenv;
mod env;
mod file;
mod model;
mod sources;
mod tables;
pub(crate) mod validate;
mod vars;

pub use env::{Explained, Provenance};
pub use model::{
    AssertionAlgorithm, BotAuthConfig, CertificateConfig, CertificateKeys, ConnectionConfig,
    ConnectionMapEntry, CredentialConfig, CustomSettings, DEFAULT_CONNECTION_NAME, Dialect,
    InboundConfig, KeyVaultCertificateConfig, KeyVaultKeys, ManagedIdentityId, parse_duration,
    validate_tenant_id,
};
pub use sources::{BOTAUTH_CONFIG, ConfigLoader};
pub use tables::supported_keys_markdown;
pub use vars::{EnvVars, Origin};
