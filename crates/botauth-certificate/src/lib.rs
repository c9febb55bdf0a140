#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod assertion;
mod certificate;
mod credential;
mod error;
mod pem;
mod source;
mod stamp;
mod thumbprint;

pub use assertion::{CertificateAssertion, CertificateAssertionBuilder};
pub use botauth_core::config::AssertionAlgorithm;
pub use certificate::CertificateSummary;
pub use credential::{CertificateCredential, CertificateCredentialBuilder};
pub use error::{CertificateError, CertificateErrorKind};
pub use source::CertificateSource;
pub use thumbprint::Thumbprints;

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
    use std::path::{Path, PathBuf};

    /// The password of every fixture PFX and of `rsa2048.enc.key` (fixtures/certs/README.md).
    pub(crate) const PASSWORD: &str = "fixture-Pfx+pass/1";

    pub(crate) fn path(name: &str) -> PathBuf {
        PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/certs")).join(name)
    }

    pub(crate) fn read(name: &str) -> Vec<u8> {
        std::fs::read(path(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
    }

    /// Copies fixture `from` to `to` as a careful rotation does: a temporary name, then a rename.
    pub(crate) fn copy(from: &str, to: &Path) {
        let tmp = to.with_extension("tmp");
        std::fs::write(&tmp, read(from)).unwrap();
        std::fs::rename(&tmp, to).unwrap();
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
