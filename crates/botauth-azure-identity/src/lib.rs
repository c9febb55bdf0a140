#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod azure_credential;
mod convert;
mod error;
mod token_credential;

pub use azure_credential::AzureCredential;
pub use token_credential::BotTokenCredential;

/// The `azure_core` this crate is built against: name `TokenCredential`, `ClientOptions` and the
/// rest through it, so the versions always match.
pub use azure_core;
