//! Client certificates made on the spot, for apps registered on the sandbox.

use std::fmt;
use std::io;

use openssl::pkey::PKey;
use openssl::rsa::Rsa;

/// A fresh RSA-2048 key and a self-signed certificate for it, as a bot would upload to its app
/// registration: what [`DemoCredential::Certificate`](crate::DemoCredential::Certificate) and the
/// tests register.
pub(crate) struct GeneratedCertificate {
    certificate_pem: Vec<u8>,
    private_key_pem: Vec<u8>,
    der: Vec<u8>,
}

impl GeneratedCertificate {
    /// Generates a key and a certificate with subject `CN=common_name`, valid from now for a day.
    pub(crate) fn generate(common_name: &str) -> io::Result<Self> {
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
    pub(crate) fn certificate_pem(&self) -> &[u8] {
        &self.certificate_pem
    }

    /// The private key, unencrypted PKCS#8 PEM.
    pub(crate) fn private_key_pem(&self) -> &[u8] {
        &self.private_key_pem
    }

    /// The certificate, DER: what the sandbox's app registration takes.
    pub(crate) fn der(&self) -> &[u8] {
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
