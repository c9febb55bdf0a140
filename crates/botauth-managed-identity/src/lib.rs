#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod app_service;
mod arc;
mod assertion;
mod azure_ml;
mod cloud_shell;
mod config;
mod credential;
mod imds;
mod request;
mod response;
mod retry;
mod service_fabric;
mod source;
mod transport;
mod workload;

pub use assertion::ManagedIdentityAssertion;
pub use botauth_core::config::ManagedIdentityId;
pub use credential::{
    EndpointRejection, ManagedIdentityCredential, ManagedIdentityCredentialBuilder,
};
pub use retry::RetryOptions;
pub use source::ManagedIdentitySource;
pub use workload::WorkloadIdentityAssertion;
