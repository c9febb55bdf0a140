#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod clock;
mod cloud;
pub mod config;
mod credential;
mod entra;
mod error;
#[doc(hidden)]
pub mod internal;
mod secret;
pub mod service_url;
#[cfg(feature = "testkit")]
pub mod testkit;
mod token;

// Short paths inside this crate to the modules it shares with botauth's other crates.
use internal::{date, endpoint};

pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, Sleep, SystemClock, TokioClock};
pub use cloud::{Cloud, CloudEndpoints};
pub use config::{BotAuthConfig, CredentialConfig, Dialect};
pub use credential::{AssertionRequest, ClientAssertionSource, CredentialInfo, CredentialProvider};
pub use entra::EntraError;
pub use error::{Error, ErrorKind, ErrorSource, Report, Result};
pub use secret::Secret;
pub use token::{AccessToken, TokenRequest};
