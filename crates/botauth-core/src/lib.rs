#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod cloud;
pub mod config;
mod credential;
pub mod date;
pub mod endpoint;
mod entra;
mod error;
mod secret;
pub mod service_url;
pub mod telemetry;
#[cfg(feature = "testkit")]
pub mod testkit;
mod token;

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, Sleep, SystemClock, TokioClock};
pub use cloud::{Cloud, CloudEndpoints};
pub use config::{BotAuthConfig, CredentialConfig, Dialect};
pub use credential::{AssertionRequest, ClientAssertionSource, CredentialInfo, CredentialProvider};
pub use date::UtcDateTime;
pub use entra::EntraError;
pub use error::{Error, ErrorKind, ErrorSource, Report, Result};
pub use secret::Secret;
pub use token::{AccessToken, TokenRequest};
