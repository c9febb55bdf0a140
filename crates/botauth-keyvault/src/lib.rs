#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod credential;
mod error;
mod source;
mod vault;

pub use credential::{
    KeyVaultCertificateCredential, KeyVaultCertificateCredentialBuilder, KeyVaultWithFallback,
};
pub use error::{KeyVaultError, KeyVaultErrorKind};
pub use source::RotationOutcome;
