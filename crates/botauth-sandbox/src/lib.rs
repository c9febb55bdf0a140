#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod app;
mod assertion;
mod botservice;
mod certificate;
mod channel;
mod clock;
mod connector;
mod console;
mod demo;
mod entra;
mod error;
mod faults;
mod jwt;
mod key_vault;
mod log;
mod managed_identity;
mod mint;
mod origin;
mod registrations;
mod server;
mod state;
mod tls;
mod token_service;

#[cfg(test)]
mod testkit;

pub use app::{AppRegistration, FederatedCredential};
pub use botservice::ChannelTokenClaims;
pub use certificate::GeneratedCertificate;
pub use channel::{DEMO_CONVERSATION_ID, DEMO_USER_ID, Delivery};
pub use connector::ConnectorPost;
pub use console::{ChatTarget, Console, ConsoleFault};
pub use demo::{DEMO_KEY_VAULT_CERTIFICATE, DEMO_SERVICE_ACCOUNT, DemoCredential, DemoEnvironment};
pub use faults::Fault;
pub use key_vault::{
    KEY_VAULT_RESOURCE, KeyVaultCertificateOptions, KeyVaultContentType, KeyVaultVersion,
};
pub use log::{RequestRecord, Route};
pub use managed_identity::{
    DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID, DEMO_SYSTEM_MI_CLIENT_ID,
    DEMO_SYSTEM_MI_OBJECT_ID, ManagedIdentity,
};
pub use registrations::{Registrations, read_certificate};
pub use server::{Sandbox, SandboxBuilder};
pub use tls::LocalCa;
pub use token_service::SignInPush;

/// Tenant of the demo app.
pub const DEMO_TENANT_ID: &str = "11111111-2222-3333-4444-555555555555";

/// Client id of the demo app.
pub const DEMO_CLIENT_ID: &str = "00000000-0000-0000-0000-00000000b07a";

/// Client secret of the demo app. It contains `+ / = ~` so that form-encoding bugs show.
pub const DEMO_CLIENT_SECRET: &str = "sandbox~Secret+with/odd=chars_0123456789";
