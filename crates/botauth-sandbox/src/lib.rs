#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod app;
mod assertion;
mod botservice;
mod builder;
mod certificate;
mod channel;
mod clock;
mod connector;
mod console;
mod delivery;
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
mod router;
mod sandbox;
mod state;
mod tls;
mod token_service;

#[cfg(test)]
mod testkit;

pub use app::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, FederatedCredential,
};
pub use botservice::keys::ChannelTokenClaims;
pub use builder::SandboxBuilder;
pub use channel::{DEMO_CONVERSATION_ID, DEMO_USER_ID};
pub use console::{ChatTarget, Console};
pub use delivery::Delivery;
pub use demo::{DemoCredential, DemoEnvironment};
pub use faults::Fault;
pub use key_vault::store::{KeyVaultCertificateOptions, KeyVaultContentType, KeyVaultVersion};
pub use log::{ConnectorPost, RequestRecord, Route};
pub use managed_identity::identity::{
    DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID, DEMO_SYSTEM_MI_CLIENT_ID,
    DEMO_SYSTEM_MI_OBJECT_ID, ManagedIdentity,
};
pub use registrations::{Registrations, read_certificate};
pub use sandbox::Sandbox;
pub use tls::ca::LocalCa;
pub use token_service::state::SignInPush;
