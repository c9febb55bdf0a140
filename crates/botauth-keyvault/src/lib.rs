#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod credential;
mod error;
mod source;
mod vault;

pub use credential::{
    DEFAULT_ROTATION_CHECK, KeyVaultCertificateCredential, KeyVaultCertificateCredentialBuilder,
    KeyVaultWithFallback,
};
pub use error::{KeyVaultError, KeyVaultErrorKind};
pub use source::{KeyVaultCertificateSource, RotationOutcome};

/// The REST API version botauth sends (`api-version`).
pub const API_VERSION: &str = vault::API_VERSION;
