//! Configuration: one model ([`BotAuthConfig`]) and readers for each dialect of docs/protocol.md §7.

mod dotenv;
mod env;
mod file;
pub(crate) mod model;
pub(crate) mod sources;
pub(crate) mod tables;
pub(crate) mod validate;
mod vars;

pub use env::{Explained, Provenance};
pub use model::{
    AssertionAlgorithm, BotAuthConfig, CertificateConfig, CertificateKeys, ConnectionConfig,
    ConnectionMapEntry, CredentialConfig, CustomSettings, DEFAULT_CONNECTION_NAME, Dialect,
    InboundConfig, KeyVaultCertificateConfig, KeyVaultKeys, ManagedIdentityId,
};
pub use sources::ConfigLoader;
pub use vars::{EnvVars, Origin};
