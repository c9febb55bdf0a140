//! Client certificates made on the spot, for apps registered on the sandbox.

use std::fmt;
use std::io;

use openssl::pkey::PKey;
use openssl::rsa::Rsa;

/// A fresh RSA-2048 key and a self-signed certificate for it, as a bot would upload to its app
/// registration. Register it with
/// [`AppRegistration::with_certificate_der`](crate::AppRegistration::with_certificate_der) and
/// point the certificate credential at the two PEM texts.
///
/// ```
/// let cert = botauth_sandbox::GeneratedCertificate::generate("my test bot")?;
/// assert!(cert.certificate_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));
/// assert!(cert.private_key_pem().starts_with(b"-----BEGIN PRIVATE KEY-----"));
/// # Ok::<(), std::io::Error>(())
/// ```
pub struct GeneratedCertificate {
    certificate_pem: Vec<u8>,
    private_key_pem: Vec<u8>,
    der: Vec<u8>,
}

impl GeneratedCertificate {
    /// Generates a key and a certificate with subject `CN=common_name`, valid from now for a day.
    pub fn generate(common_name: &str) -> io::Result<Self> {
        let generate = || -> Result<Self, openssl::error::ErrorStack> {
            let key = PKey::from_rsa(Rsa::generate(2048)?)?;
            let cert = crate::jwt::self_signed_certificate(&key, common_name, 1)?;
            Ok(GeneratedCertificate {
                certificate_pem: cert.to_pem()?,
                private_key_pem: key.private_key_to_pem_pkcs8()?,
                der: cert.to_der()?,
            })
        };
        generate().map_err(io::Error::other)
    }

    /// The certificate, PEM.
    pub fn certificate_pem(&self) -> &[u8] {
        &self.certificate_pem
    }

    /// The private key, unencrypted PKCS#8 PEM.
    pub fn private_key_pem(&self) -> &[u8] {
        &self.private_key_pem
    }

    /// The certificate, DER: what the sandbox's app registration takes.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

impl fmt::Debug for GeneratedCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedCertificate")
            .field("der_len", &self.der.len())
            .field("private_key_pem", &"[redacted]")
            .finish_non_exhaustive()
    }
}
