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

#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::PathBuf;

    /// The password of every fixture PFX and of `rsa2048.enc.key` (fixtures/certs/README.md).
    pub(crate) const PASSWORD: &str = "fixture-Pfx+pass/1";

    pub(crate) fn path(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/certs")).join(name)
    }

    pub(crate) fn read(name: &str) -> Vec<u8> {
        std::fs::read(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// The SHA-1 thumbprint of a fixture certificate, by the openssl crate (not by botauth).
    pub(crate) fn sha1_hex(pem_name: &str) -> String {
        let cert = openssl::x509::X509::from_pem(&read(pem_name)).unwrap();
        cert.digest(openssl::hash::MessageDigest::sha1())
            .unwrap()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect()
    }
}
