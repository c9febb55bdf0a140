//! The sandbox as Azure Key Vault (docs/sandbox.md §7; what clients do with it is
//! docs/protocol.md §9, "Key Vault source"): one vault at the root of the sandbox's origin holding certificates
//! with versions, read over REST with a bearer token for [`KEY_VAULT_RESOURCE`].
//!
//! Why it is shaped this way:
//!
//! - **Rotation is the point.** A bot that loads its client certificate from a vault must pick the
//!   newest *usable* version, skip versions outside `[nbf, exp]`, and reload after Entra refuses
//!   the old certificate. So every certificate keeps all its versions, `created` is strictly
//!   increasing per certificate (two versions made in one second still sort in creation order),
//!   versions can be disabled, and [`Sandbox::set_app_certificates`](crate::Sandbox::set_app_certificates)
//!   plays the Entra side of a rotation.
//! - **Real Key Vault's shapes and codes**, so a client tested here works against Azure: the
//!   `CertificateBundle` / `SecretBundle` JSON, the 401 challenge that names the authority and the
//!   resource, `BadParameter` for the api-version, `ForbiddenByRbac`, `SecretDisabled`,
//!   `CertificateNotFound` / `SecretNotFound`, paging with `nextLink`.
//! - **Only tokens this sandbox issued** (Entra client credentials or a managed identity endpoint)
//!   for `https://vault.azure.net` open it, optionally narrowed to an access list of identities.
//! - **Private keys stay in the vault's answers.** The request log, `tracing` and the console see
//!   paths, statuses and thumbprints, never a secret's value; the control endpoint answers
//!   thumbprints only.

mod control;
mod rest;

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

use crate::state::Shared;

pub(crate) use control::control_routes;
pub(crate) use rest::{injected_error, routes};

/// The Key Vault resource of the public cloud: tokens for the vault carry it as `aud`, and
/// clients ask for the scope `https://vault.azure.net/.default`.
pub const KEY_VAULT_RESOURCE: &str = "https://vault.azure.net";

/// Default validity: from a minute before creation (clock skew) for a year.
const BACKDATE: Duration = Duration::from_secs(60);
const VALIDITY: Duration = Duration::from_secs(365 * 86_400);

/// The last second X.509 and JWT NumericDates can name: 9999-12-31T23:59:59Z.
const MAX_TIME: i64 = 253_402_300_799;

/// How a certificate version's secret is stored (its `contentType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pkcs12 => "application/x-pkcs12",
            Self::Pem => "application/x-pem-file",
        }
    }

    fn from_mime(mime: &str) -> Option<Self> {
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
    pub content_type: KeyVaultContentType,
    /// Whether the secret holds the private key; default true. A non-exportable version's secret
    /// holds only the certificate, as in Key Vault.
    pub exportable: bool,
    /// Whether the version is enabled; default true. A disabled version's secret answers 403.
    pub enabled: bool,
    /// Start of validity (certificate and `nbf`); default the sandbox clock's now − 60 s.
    pub not_before: Option<SystemTime>,
    /// End of validity (certificate and `exp`); default `not_before` + 365 days.
    pub not_after: Option<SystemTime>,
    /// The subject, `K=V[, K=V…]` with OpenSSL attribute names, in the order written; default
    /// `CN={name}`.
    pub subject: Option<String>,
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
    pub fn enabled(mut self, enabled: bool) -> Self {
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
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
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
    pub not_before: SystemTime,
    /// End of validity (whole seconds).
    pub not_after: SystemTime,
    /// Whether the version is enabled.
    pub enabled: bool,
    /// `attributes.created` (whole seconds, sandbox clock, strictly increasing per certificate).
    pub created: SystemTime,
}

/// One version as the vault keeps it.
#[derive(Clone)]
struct Version {
    id: String,
    key: PKey<Private>,
    cert: X509,
    der: Vec<u8>,
    subject: String,
    content_type: KeyVaultContentType,
    exportable: bool,
    enabled: bool,
    nbf: i64,
    exp: i64,
    created: i64,
    updated: i64,
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
    fn public(&self, name: &str) -> KeyVaultVersion {
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
struct Certificate {
    /// The name as first created (Key Vault names are case-insensitive).
    name: String,
    /// In creation order, which is also `created` order.
    versions: Vec<Arc<Version>>,
}

/// The vault's part of the sandbox's state.
#[derive(Debug, Default)]
pub(crate) struct VaultState {
    /// Keyed by lower-case name.
    certificates: HashMap<String, Certificate>,
    /// `None`: every valid token may read.
    allowed: Option<Vec<String>>,
}

fn unix(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .min(MAX_TIME)
}

fn system_time(unix: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// Key Vault object names: 1 to 127 ASCII letters, digits and dashes.
fn valid_name(name: &str) -> bool {
    (1..=127).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn x509_name(subject: &str) -> Result<X509Name, String> {
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
fn generate(subject: &X509Name, nbf: i64, exp: i64) -> Result<(PKey<Private>, X509), ErrorStack> {
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

/// Creates a certificate, or a new version of it. The key is generated without the lock held.
pub(crate) fn create(
    shared: &Shared,
    name: &str,
    options: &KeyVaultCertificateOptions,
) -> Result<KeyVaultVersion, String> {
    if !valid_name(name) {
        return Err(format!(
            "'{name}' is not a Key Vault certificate name (1 to 127 letters, digits and '-')"
        ));
    }
    let now = shared.lock().mi.now();
    let not_before = options
        .not_before
        .unwrap_or_else(|| now.checked_sub(BACKDATE).unwrap_or(UNIX_EPOCH));
    let nbf = unix(not_before);
    let exp = options
        .not_after
        .map_or_else(|| unix(not_before + VALIDITY), unix);
    let subject = options
        .subject
        .clone()
        .unwrap_or_else(|| format!("CN={name}"));
    let (key, cert) = generate(&x509_name(&subject)?, nbf, exp).map_err(|e| e.to_string())?;
    let der = cert.to_der().map_err(|e| e.to_string())?;

    let mut inner = shared.lock();
    let now = unix(inner.mi.now());
    let certificate = inner
        .key_vault
        .certificates
        .entry(name.to_ascii_lowercase())
        .or_insert_with(|| Certificate {
            name: name.to_owned(),
            versions: Vec::new(),
        });
    // Clients pick the newest version by `created` (any list order is legal in Key Vault):
    // a version made in the same second as the last one, or after the sandbox clock went back,
    // still has to be newer.
    let created = certificate
        .versions
        .last()
        .map_or(now, |last| now.max(last.created.saturating_add(1)));
    let version = Version {
        id: uuid::Uuid::new_v4().simple().to_string(),
        key,
        cert,
        der,
        subject,
        content_type: options.content_type,
        exportable: options.exportable,
        enabled: options.enabled,
        nbf,
        exp,
        created,
        updated: created,
    };
    let public = version.public(&certificate.name);
    certificate.versions.push(Arc::new(version));
    Ok(public)
}

/// The certificate's name as created and its versions, oldest first.
fn snapshot(shared: &Shared, name: &str) -> Option<(String, Vec<Arc<Version>>)> {
    let inner = shared.lock();
    inner
        .key_vault
        .certificates
        .get(&name.to_ascii_lowercase())
        .map(|c| (c.name.clone(), c.versions.clone()))
}

/// The vault sits at the root of the sandbox's origin, as a real vault does: the Azure SDKs
/// parse ids as `/{collection}/{name}[/{version}]` and refuse a vault below a path.
fn base(shared: &Shared) -> String {
    shared.url.trim_end_matches('/').to_owned()
}

// The Key Vault part of the `Sandbox` handle.

impl crate::Sandbox {
    /// The vault's URL (`KeyVaultUrl`): the sandbox's own URL, without a trailing slash, since the
    /// vault's routes sit at the root of the origin (`{vault}/certificates/{name}/{version}`).
    /// Over the TLS listener it is that listener's `https` URL: ids name the vault as the
    /// client reached it.
    pub fn key_vault_url(&self) -> String {
        base(&self.shared)
    }

    /// Creates the certificate `name` with a fresh RSA-2048 key and a self-signed certificate, or,
    /// when it exists, adds a new version (a rotation: `GET certificates/{name}` answers it from
    /// now on). Blocks for the ~100 ms key generation takes.
    ///
    /// # Panics
    ///
    /// When `name` is not 1 to 127 ASCII letters, digits and `-` (Key Vault's rule), or
    /// `options.subject` is not `K=V[, K=V…]` with attribute names OpenSSL knows.
    pub fn create_key_vault_certificate(
        &self,
        name: &str,
        options: KeyVaultCertificateOptions,
    ) -> KeyVaultVersion {
        create(&self.shared, name, &options)
            .unwrap_or_else(|error| panic!("create_key_vault_certificate: {error}"))
    }

    /// Enables or disables a version (a disabled version's secret answers 403 `SecretDisabled`;
    /// the certificate still reads, with `enabled: false`). `false` when there is no such
    /// certificate or version.
    pub fn set_key_vault_version_enabled(&self, name: &str, version: &str, enabled: bool) -> bool {
        let mut inner = self.shared.lock();
        let now = unix(inner.mi.now());
        let found = inner
            .key_vault
            .certificates
            .get_mut(&name.to_ascii_lowercase())
            .and_then(|c| {
                c.versions
                    .iter_mut()
                    .find(|v| v.id.eq_ignore_ascii_case(version))
            });
        match found {
            Some(v) => {
                let v = Arc::make_mut(v);
                v.enabled = enabled;
                v.updated = now.max(v.created);
                true
            }
            None => false,
        }
    }

    /// The versions of certificate `name`, oldest first (empty when there is none).
    pub fn key_vault_versions(&self, name: &str) -> Vec<KeyVaultVersion> {
        snapshot(&self.shared, name)
            .map(|(name, versions)| versions.iter().map(|v| v.public(&name)).collect())
            .unwrap_or_default()
    }

    /// Who may read the vault: `None` (the default) lets every valid token read; `Some(ids)` only
    /// tokens whose `oid`, `appid`, `azp` or `xms_mirid` is one of `ids` (case-insensitive), so a
    /// managed identity is named by its object, client or resource id and an app by its client
    /// id. Others answer 403 `ForbiddenByRbac`.
    pub fn set_key_vault_access(&self, allowed: Option<Vec<String>>) {
        self.shared.lock().key_vault.allowed = allowed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sandbox;

    #[test]
    fn names_follow_key_vault() {
        assert!(valid_name("bot-cert-2"));
        assert!(valid_name(&"a".repeat(127)));
        for bad in ["", "a_b", "a.b", "a b", "é", &"a".repeat(128)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn subjects_are_parsed_in_order() {
        let name = x509_name("CN=bot.contoso.com, O=Contoso").unwrap();
        let entries: Vec<String> = name
            .entries()
            .map(|e| e.data().to_string().unwrap())
            .collect();
        assert_eq!(entries, ["bot.contoso.com", "Contoso"]);
        for bad in ["", "CN", "CN=", "=x", "NOPE=x"] {
            assert!(x509_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn versions_created_in_one_second_still_sort_in_creation_order() {
        let sandbox = Sandbox::start().await.unwrap();
        let fixed = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        sandbox.set_clock(move || fixed);
        let options = KeyVaultCertificateOptions::default;
        let a = sandbox.create_key_vault_certificate("bot", options());
        let b = sandbox.create_key_vault_certificate("BOT", options().enabled(false));
        assert_eq!(b.name, "bot", "names are case-insensitive");
        assert_eq!(unix(a.created), 1_700_000_000);
        assert_eq!(unix(b.created), 1_700_000_001);
        assert_eq!(unix(a.not_before), 1_700_000_000 - 60);
        assert_eq!(unix(a.not_after), unix(a.not_before) + 365 * 86_400);
        let cert = X509::from_der(&a.certificate_der).unwrap();
        assert_eq!(
            cert.not_before()
                .compare(&Asn1Time::from_unix(1_700_000_000 - 60).unwrap())
                .unwrap(),
            std::cmp::Ordering::Equal
        );
        assert_eq!(a.version.len(), 32);
        assert!(
            a.version
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        );
        assert_eq!(a.sha1_thumbprint.len(), 40);
        let listed = sandbox.key_vault_versions("Bot");
        assert_eq!(
            listed.iter().map(|v| &v.version).collect::<Vec<_>>(),
            [&a.version, &b.version]
        );
        assert!(!listed[1].enabled);
        assert!(sandbox.set_key_vault_version_enabled("bot", &b.version.to_uppercase(), true));
        assert!(sandbox.key_vault_versions("bot")[1].enabled);
        assert!(!sandbox.set_key_vault_version_enabled("bot", "0123", true));
        assert!(!sandbox.set_key_vault_version_enabled("nope", &a.version, true));
        assert!(sandbox.key_vault_versions("nope").is_empty());
    }

    #[tokio::test]
    #[should_panic(expected = "not a Key Vault certificate name")]
    async fn invalid_names_panic() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.create_key_vault_certificate("a_b", KeyVaultCertificateOptions::default());
    }
}
