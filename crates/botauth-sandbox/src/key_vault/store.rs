//! What the vault holds: certificates with their versions, the access list, and how a version is
//! generated.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{ExtendedKeyUsage, KeyUsage};
use openssl::x509::{X509, X509Name, X509NameBuilder};

/// The Key Vault resource of the public cloud: tokens for the vault carry it as `aud`, and
/// clients ask for the scope `https://vault.azure.net/.default`.
pub(crate) const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

/// Default validity: from a minute before creation (clock skew) for a year.
pub(super) const BACKDATE: Duration = Duration::from_secs(60);
pub(super) const VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// The last second X.509 and JWT NumericDates can name: 9999-12-31T23:59:59Z.
pub(super) const MAX_TIME: i64 = 253_402_300_799;

/// How a certificate version's secret is stored (its `contentType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyVaultContentType {
    /// `application/x-pkcs12`: the secret's value is standard base64 of a PFX with an empty
    /// password (the default, and the only type Identity.Web accepts).
    #[default]
    Pkcs12,
    /// `application/x-pem-file`: the PKCS#8 private key PEM followed by the certificate PEM.
    Pem,
}

impl KeyVaultContentType {
    /// The MIME type Key Vault names it by.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Self::Pkcs12 => "application/x-pkcs12",
            Self::Pem => "application/x-pem-file",
        }
    }

    pub(super) fn from_mime(mime: &str) -> Option<Self> {
        [Self::Pkcs12, Self::Pem]
            .into_iter()
            .find(|t| t.mime().eq_ignore_ascii_case(mime.trim()))
    }
}

/// How [`Sandbox::create_key_vault_certificate`](crate::Sandbox::create_key_vault_certificate)
/// makes a certificate version.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KeyVaultCertificateOptions {
    /// How the secret is stored; default PKCS#12.
    pub(crate) content_type: KeyVaultContentType,
    /// Whether the secret holds the private key; default true. A non-exportable version's secret
    /// holds only the certificate, as in Key Vault.
    pub(crate) exportable: bool,
    /// Whether the version is enabled; default true. A disabled version's secret answers 403.
    pub(crate) enabled: bool,
    /// Start of validity (certificate and `nbf`); default the sandbox clock's now − 60 s.
    pub(crate) not_before: Option<SystemTime>,
    /// End of validity (certificate and `exp`); default `not_before` + 365 days.
    pub(crate) not_after: Option<SystemTime>,
    /// The subject, `K=V[, K=V…]` with OpenSSL attribute names, in the order written; default
    /// `CN={name}`.
    pub(crate) subject: Option<String>,
}

impl Default for KeyVaultCertificateOptions {
    fn default() -> Self {
        Self {
            content_type: KeyVaultContentType::Pkcs12,
            exportable: true,
            enabled: true,
            not_before: None,
            not_after: None,
            subject: None,
        }
    }
}

impl KeyVaultCertificateOptions {
    /// How the secret is stored.
    #[must_use]
    pub fn content_type(mut self, content_type: KeyVaultContentType) -> Self {
        self.content_type = content_type;
        self
    }

    /// Whether the secret holds the private key.
    #[must_use]
    pub fn exportable(mut self, exportable: bool) -> Self {
        self.exportable = exportable;
        self
    }

    /// Whether the version is enabled.
    #[must_use]
    #[cfg(test)]
    pub(crate) fn enabled(mut self, enabled: bool) -> Self {
        self.enabled = enabled;
        self
    }

    /// Start of validity.
    #[must_use]
    pub fn not_before(mut self, at: SystemTime) -> Self {
        self.not_before = Some(at);
        self
    }

    /// End of validity.
    #[must_use]
    pub fn not_after(mut self, at: SystemTime) -> Self {
        self.not_after = Some(at);
        self
    }

    /// The certificate's subject, e.g. `CN=bot.contoso.com, O=Contoso`.
    #[must_use]
    #[cfg(test)]
    pub(crate) fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
}

/// A certificate version in the sandbox's vault: the public side only (its key stays in the
/// vault, reachable through the secret).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyVaultVersion {
    /// The certificate's name, as first created.
    pub name: String,
    /// The version id: 32 lower-case hex digits.
    pub version: String,
    /// SHA-1 of the certificate DER, 40 upper-case hex digits (what Windows and Entra show).
    pub sha1_thumbprint: String,
    /// The certificate, DER.
    pub certificate_der: Vec<u8>,
    /// Start of validity (whole seconds).
    pub(crate) not_before: SystemTime,
    /// End of validity (whole seconds).
    pub(crate) not_after: SystemTime,
    /// Whether the version is enabled.
    pub(crate) enabled: bool,
    /// `attributes.created` (whole seconds, sandbox clock, strictly increasing per certificate).
    pub(crate) created: SystemTime,
}

/// One version as the vault keeps it.
#[derive(Clone)]
pub(super) struct Version {
    pub(super) id: String,
    pub(super) key: PKey<Private>,
    pub(super) cert: X509,
    pub(super) der: Vec<u8>,
    pub(super) subject: String,
    pub(super) content_type: KeyVaultContentType,
    pub(super) exportable: bool,
    pub(super) enabled: bool,
    pub(super) nbf: i64,
    pub(super) exp: i64,
    pub(super) created: i64,
    pub(super) updated: i64,
}

impl std::fmt::Debug for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Version")
            .field("id", &self.id)
            .field("subject", &self.subject)
            .field("enabled", &self.enabled)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Version {
    pub(super) fn public(&self, name: &str) -> KeyVaultVersion {
        KeyVaultVersion {
            name: name.to_owned(),
            version: self.id.clone(),
            sha1_thumbprint: openssl::sha::sha1(&self.der)
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect(),
            certificate_der: self.der.clone(),
            not_before: system_time(self.nbf),
            not_after: system_time(self.exp),
            enabled: self.enabled,
            created: system_time(self.created),
        }
    }
}

#[derive(Debug)]
pub(super) struct Certificate {
    /// The name as first created (Key Vault names are case-insensitive).
    pub(super) name: String,
    /// In creation order, which is also `created` order.
    pub(super) versions: Vec<Arc<Version>>,
}

/// The vault's part of the sandbox's state.
#[derive(Debug, Default)]
pub(crate) struct VaultState {
    /// Keyed by lower-case name.
    pub(super) certificates: HashMap<String, Certificate>,
    /// `None`: every valid token may read.
    pub(super) allowed: Option<Vec<String>>,
}

pub(super) fn unix(at: SystemTime) -> i64 {
    botauth_core::internal::date::unix_seconds(at).clamp(0, MAX_TIME)
}

pub(super) fn system_time(unix: i64) -> SystemTime {
    botauth_core::internal::date::from_unix_seconds(unix.max(0)).unwrap_or(UNIX_EPOCH)
}

/// Key Vault object names: 1 to 127 ASCII letters, digits and dashes.
pub(super) fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

pub(super) fn x509_name(subject: &str) -> Result<X509Name, String> {
    let invalid = || format!("the subject '{subject}' is not K=V[, K=V…]");
    let mut name = X509NameBuilder::new().map_err(|e| e.to_string())?;
    for part in subject.split(',') {
        let (kind, value) = part.split_once('=').ok_or_else(invalid)?;
        let (kind, value) = (kind.trim(), value.trim());
        if kind.is_empty() || value.is_empty() {
            return Err(invalid());
        }
        name.append_entry_by_text(kind, value)
            .map_err(|_| format!("the subject attribute '{kind}' is not one OpenSSL knows"))?;
    }
    Ok(name.build())
}

/// A fresh RSA-2048 key and a self-signed certificate valid over `[nbf, exp]`, with the key
/// usages of Key Vault's self-signed certificates.
pub(super) fn generate(
    subject: &X509Name,
    nbf: i64,
    exp: i64,
) -> Result<(PKey<Private>, X509), ErrorStack> {
    let key = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    let (not_before, not_after) = (Asn1Time::from_unix(nbf)?, Asn1Time::from_unix(exp)?);
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(subject)?;
    cert.set_issuer_name(subject)?;
    cert.set_pubkey(&key)?;
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    cert.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_encipherment()
            .build()?,
    )?;
    cert.append_extension(
        ExtendedKeyUsage::new()
            .server_auth()
            .client_auth()
            .build()?,
    )?;
    cert.sign(&key, MessageDigest::sha256())?;
    Ok((key, cert.build()))
}
