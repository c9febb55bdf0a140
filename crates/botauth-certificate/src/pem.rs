//! Reading certificate and key bytes: PEM blocks (certificates, encrypted or plain keys) and
//! PKCS#12 files, with the key checked for what Entra accepts.

use std::path::Path;

use botauth_core::Secret;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use zeroize::Zeroizing;

use crate::error::{CertificateError, CertificateErrorKind as Kind};

/// Reads a PFX's leaf certificate without judging its key (for inspecting EC or small-key files).
pub(crate) fn pkcs12_leaf(
    data: &[u8],
    password: Option<&Secret>,
) -> Result<X509, CertificateError> {
    Pkcs12::from_der(data)
        .and_then(|p| p.parse2(password.map_or("", Secret::expose_secret)))
        .ok()
        .and_then(|p| p.cert)
        .ok_or_else(|| {
            CertificateError::new(Kind::NoCertificate, "the PFX file holds no certificate")
        })
}

/// Reads a whole file into zeroizing memory (it may hold a private key).
pub(crate) fn read_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CertificateError> {
    std::fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CertificateError::io(path, e))
}

pub(crate) fn is_pem(data: &[u8]) -> bool {
    data.windows(11).any(|w| w == b"-----BEGIN ")
}

pub(crate) fn contains(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

pub(crate) fn pem_certificates(data: &[u8]) -> Result<Vec<X509>, CertificateError> {
    let has_cert_block = contains(data, b"-----BEGIN CERTIFICATE-----");
    if !has_cert_block {
        let (kind, message) = if is_pem(data) {
            (
                Kind::NoCertificate,
                "the PEM data holds no certificate (no BEGIN CERTIFICATE block): configure the \
                 certificate file, not only the key",
            )
        } else {
            (
                Kind::Malformed,
                "the certificate file is neither PEM nor PFX: use a PEM certificate or a PFX file",
            )
        };
        return Err(CertificateError::new(kind, message));
    }
    match X509::stack_from_pem(data) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(CertificateError::new(
            Kind::NoCertificate,
            "the PEM data holds no readable certificate",
        )),
        Err(e) => Err(CertificateError::new(
            Kind::Malformed,
            "a PEM certificate is corrupt or truncated: copy the file again",
        )
        .with_source(e)),
    }
}

pub(crate) fn pem_private_key(
    data: &[u8],
    password: Option<&Secret>,
) -> Result<PKey<Private>, CertificateError> {
    if !contains(data, b"PRIVATE KEY-----") {
        return Err(CertificateError::new(
            Kind::NoPrivateKey,
            "no PEM private key found: configure the key file (BEGIN PRIVATE KEY or BEGIN RSA \
             PRIVATE KEY), or a PEM file holding both certificate and key",
        ));
    }
    let encrypted = contains(data, b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        || contains(data, b"Proc-Type: 4,ENCRYPTED");
    if encrypted && password.is_none() {
        return Err(CertificateError::new(
            Kind::PasswordRequired,
            "the private key is encrypted: configure its password",
        ));
    }
    // Always the callback variant: OpenSSL's default would prompt on the terminal.
    let parsed = PKey::private_key_from_pem_callback(data, |buf| {
        let pass = password.map_or(&b""[..], |p| p.expose_secret().as_bytes());
        if pass.len() > buf.len() {
            return Ok(0);
        }
        buf[..pass.len()].copy_from_slice(pass);
        Ok(pass.len())
    });
    parsed.map_err(|e| {
        if encrypted {
            CertificateError::new(
                Kind::WrongPassword,
                "the password does not decrypt the private key: check the configured password",
            )
        } else {
            CertificateError::new(
                Kind::Malformed,
                "the PEM private key is corrupt or truncated: copy the key file again",
            )
        }
        .with_source(e)
    })
}
