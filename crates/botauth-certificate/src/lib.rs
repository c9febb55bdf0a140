#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod assertion;
mod certificate;
mod credential;
mod error;
mod thumbprint;

pub use assertion::{CertificateAssertion, CertificateAssertionBuilder};
pub use botauth_core::config::AssertionAlgorithm;
pub use certificate::{
    CertificateSource, CertificateSummary, ClientCertificate, EXPIRY_WARNING, MIN_RSA_BITS,
    rfc3339,
};
pub use credential::{CertificateCredential, CertificateCredentialBuilder};
pub use error::{CertificateError, CertificateErrorKind};
pub use thumbprint::{Thumbprints, parse_sha1_hex};

/// An error and its causes on one line, for logs.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut line = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        line.push_str(": ");
        line.push_str(&s.to_string());
        source = s.source();
    }
    line
}
