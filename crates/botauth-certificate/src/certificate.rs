//! [`ClientCertificate`]: a private key and its certificate chain, loaded from PEM or PFX and
//! validated once, at load time (docs/protocol.md §3).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use botauth_core::Secret;
use botauth_core::date::{self, rfc3339};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509, X509NameRef};
use zeroize::Zeroizing;

use crate::error::{CertificateError, CertificateErrorKind as Kind};
use crate::thumbprint::{Thumbprints, parse_sha1_hex};

/// Entra ID accepts RSA keys of at least this size (docs/protocol.md §3).
pub const MIN_RSA_BITS: u32 = 2048;

/// A certificate that expires within this window is loaded with a warning.
pub const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// A validated signing identity: an RSA private key of at least 2048 bits and, unless it was
/// loaded in thumbprint-only mode, the certificate it belongs to (and any chain behind it).
pub struct ClientCertificate {
    key: PKey<Private>,
    /// Leaf first; empty in thumbprint-only mode.
    chain: Vec<X509>,
    thumbprints: Thumbprints,
    not_after: Option<SystemTime>,
    subject: Option<String>,
}

impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("subject", &self.subject)
            .field("thumbprint", &self.thumbprints.sha1_hex())
            .field("not_after", &self.not_after.map(rfc3339))
            .field("chain_len", &self.chain.len())
            .field("key", &format_args!("[redacted RSA-{}]", self.key.bits()))
            .finish_non_exhaustive()
    }
}

impl ClientCertificate {
    /// Loads a PEM certificate (optionally followed by its chain) and its PEM private key
    /// (PKCS#8, PKCS#1, or encrypted PKCS#8 / traditional with `password`). With `key = None` the
    /// key is read from `certificate` (one PEM file holding both).
    pub fn from_pem(
        certificate: &[u8],
        key: Option<&[u8]>,
        password: Option<&Secret>,
    ) -> Result<Self, CertificateError> {
        let chain = pem_certificates(certificate)?;
        let key = pem_private_key(key.unwrap_or(certificate), password)?;
        Self::assemble(key, chain)
    }

    /// Loads a PFX / PKCS#12 file's bytes, with or without a password. Modern (AES, PBKDF2) and
    /// legacy Windows (3DES, SHA-1 MAC) files are both read.
    pub fn from_pkcs12(der: &[u8], password: Option<&Secret>) -> Result<Self, CertificateError> {
        let pkcs12 = Pkcs12::from_der(der).map_err(|e| {
            CertificateError::new(
                Kind::Malformed,
                "the PFX file is corrupt or truncated (it is not PKCS#12 DER): export it again",
            )
            .with_source(e)
        })?;
        let pass = password.map_or("", Secret::expose_secret);
        let parsed = pkcs12.parse2(pass).map_err(|e| {
            let mac = e
                .errors()
                .iter()
                .any(|x| x.reason().is_some_and(|r| r.contains("mac verify")));
            let unsupported = e
                .errors()
                .iter()
                .any(|x| x.reason().is_some_and(|r| r.contains("unsupported")));
            let error = if mac && password.is_none() {
                CertificateError::new(
                    Kind::PasswordRequired,
                    "the PFX file is protected by a password: configure its password",
                )
            } else if mac {
                CertificateError::new(
                    Kind::WrongPassword,
                    "the password does not open the PFX file (or the file is corrupt): check the configured password",
                )
            } else if unsupported {
                CertificateError::new(
                    Kind::Malformed,
                    "the PFX file uses an encryption this OpenSSL cannot read (RC2-40?): export it \
                     again with AES-256 or 3DES",
                )
            } else {
                CertificateError::new(
                    Kind::Malformed,
                    "the PFX file is corrupt and cannot be read: export it again",
                )
            };
            error.with_source(e)
        })?;
        let key = parsed.pkey.ok_or_else(|| {
            CertificateError::new(
                Kind::NoPrivateKey,
                "the PFX file holds no private key: export the certificate together with its private key",
            )
        })?;
        let leaf = parsed.cert.ok_or_else(|| {
            CertificateError::new(Kind::NoCertificate, "the PFX file holds no certificate")
        })?;
        let mut chain = vec![leaf];
        chain.extend(parsed.ca.into_iter().flatten());
        Self::assemble(key, chain)
    }

    /// Loads a base64-encoded PFX (Microsoft.Identity.Web `Base64EncodedValue`).
    pub fn from_base64_pkcs12(
        base64: &Secret,
        password: Option<&Secret>,
    ) -> Result<Self, CertificateError> {
        let text: String = base64
            .expose_secret()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let text = Zeroizing::new(text);
        let der = Zeroizing::new(STANDARD.decode(text.as_bytes()).map_err(|e| {
            CertificateError::new(
                Kind::Malformed,
                "the base64-encoded PFX is not valid base64: encode the PFX file's bytes (e.g. \
                 `base64 -w0 bot.pfx`)",
            )
            .with_source(e)
        })?);
        Self::from_pkcs12(&der, password)
    }

    /// Bot Framework's thumbprint-only mode: a PEM private key plus the SHA-1 thumbprint of its
    /// registered certificate, given by the user. Without the certificate botauth cannot check
    /// that they belong together, cannot send `x5c` or `x5t#S256`, and cannot warn about expiry.
    pub fn from_key_and_thumbprint(
        key: &[u8],
        thumbprint: &str,
        password: Option<&Secret>,
    ) -> Result<Self, CertificateError> {
        let thumbprints = Thumbprints::from_sha1_hex(thumbprint)?;
        let key = pem_private_key(key, password)?;
        check_key(&key)?;
        Ok(ClientCertificate {
            key,
            chain: Vec::new(),
            thumbprints,
            not_after: None,
            subject: None,
        })
    }

    fn assemble(key: PKey<Private>, mut chain: Vec<X509>) -> Result<Self, CertificateError> {
        check_key(&key)?;
        // The leaf is whichever certificate holds the key's public half (PEM bundles are not
        // always leaf first); the rest keep their order for `x5c`.
        let leaf = chain
            .iter()
            .position(|c| c.public_key().is_ok_and(|p| p.public_eq(&key)))
            .ok_or_else(|| {
                CertificateError::new(
                    Kind::KeyMismatch,
                    "the private key does not belong to the certificate (their public keys \
                     differ): configure the key that was created with this certificate",
                )
            })?;
        let leaf = chain.remove(leaf);
        let leaf_der = leaf.to_der().map_err(|e| {
            CertificateError::new(Kind::Malformed, "the certificate cannot be encoded")
                .with_source(e)
        })?;
        chain.retain(|c| c.to_der().is_ok_and(|d| d != leaf_der));
        chain.insert(0, leaf);
        let leaf = &chain[0];
        Ok(ClientCertificate {
            key,
            thumbprints: Thumbprints::of_der(&leaf_der),
            not_after: asn1_to_system_time(leaf.not_after()),
            subject: Some(format_name(leaf.subject_name())),
            chain,
        })
    }

    /// The thumbprints of the leaf certificate (or the user-supplied SHA-1 in thumbprint-only mode).
    pub fn thumbprints(&self) -> &Thumbprints {
        &self.thumbprints
    }

    /// The certificate chain as DER, leaf first (empty in thumbprint-only mode).
    pub fn chain_der(&self) -> Vec<Vec<u8>> {
        self.chain.iter().filter_map(|c| c.to_der().ok()).collect()
    }

    /// The end of the leaf certificate's validity, when the certificate is known.
    pub fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }

    /// The leaf certificate's subject (`CN=…, O=…`), when the certificate is known.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The RSA key size in bits.
    pub fn key_bits(&self) -> u32 {
        self.key.bits()
    }

    /// Whether the certificate itself is known (false in thumbprint-only mode).
    pub fn has_certificate(&self) -> bool {
        !self.chain.is_empty()
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// Checks a configured SHA-1 thumbprint (any case, spaces and colons allowed) against the
    /// computed one.
    pub fn check_thumbprint(&self, expected: &str) -> Result<(), CertificateError> {
        let expected = parse_sha1_hex(expected)?;
        if &expected != self.thumbprints.sha1() {
            return Err(CertificateError::new(
                Kind::ThumbprintMismatch,
                format!(
                    "the configured thumbprint does not match the certificate, whose SHA-1 \
                     thumbprint is {}: fix the thumbprint or the certificate path",
                    self.thumbprints.sha1_hex()
                ),
            ));
        }
        Ok(())
    }

    /// Refuses a certificate whose validity ended before `now`, and logs a warning when it ends
    /// within 30 days. `now` comes from an injected clock, so tests do not depend on the date.
    pub fn check_validity(&self, now: SystemTime) -> Result<(), CertificateError> {
        let Some(not_after) = self.not_after else {
            return Ok(());
        };
        if not_after <= now {
            return Err(CertificateError::new(
                Kind::Expired,
                format!(
                    "the certificate {} expired on {}: create a new one, register it on the app \
                     and configure it",
                    self.thumbprints.sha1_hex(),
                    rfc3339(not_after)
                ),
            ));
        }
        if not_after.duration_since(now).unwrap_or_default() < EXPIRY_WARNING {
            tracing::warn!(
                thumbprint = %self.thumbprints.sha1_hex(),
                not_after = %rfc3339(not_after),
                "the client certificate expires within 30 days: register its successor on the app \
                 and replace the files (botauth picks up the new ones without a restart)"
            );
        }
        Ok(())
    }
}

/// What `botauth thumbprint` prints: a certificate's public facts, from a PEM or PFX file whose
/// key is not needed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CertificateSummary {
    /// The thumbprints.
    pub thumbprints: Thumbprints,
    /// The subject (`CN=…, O=…`).
    pub subject: String,
    /// The end of the validity period.
    pub not_after: Option<SystemTime>,
}

impl CertificateSummary {
    /// Reads the first (leaf) certificate of PEM data, or of a PFX with `password`.
    pub fn from_bytes(data: &[u8], password: Option<&Secret>) -> Result<Self, CertificateError> {
        let leaf = if is_pem(data) {
            pem_certificates(data)?.swap_remove(0)
        } else {
            // A PFX's certificate is usually encrypted with the same password as its key.
            let cert = ClientCertificate::from_pkcs12(data, password);
            match cert {
                Ok(c) => c.chain.into_iter().next().ok_or_else(|| {
                    CertificateError::new(Kind::NoCertificate, "the PFX file holds no certificate")
                })?,
                Err(e) if !matches!(e.kind(), Kind::NotRsa | Kind::KeyTooSmall) => return Err(e),
                Err(_) => pkcs12_leaf(data, password)?,
            }
        };
        let der = leaf.to_der().map_err(|e| {
            CertificateError::new(Kind::Malformed, "the certificate cannot be encoded")
                .with_source(e)
        })?;
        Ok(CertificateSummary {
            thumbprints: Thumbprints::of_der(&der),
            subject: format_name(leaf.subject_name()),
            not_after: asn1_to_system_time(leaf.not_after()),
        })
    }

    /// Reads a PEM or PFX file.
    pub fn from_file(path: &Path, password: Option<&Secret>) -> Result<Self, CertificateError> {
        let data = read_file(path)?;
        Self::from_bytes(&data, password)
    }
}

/// Reads a PFX's leaf certificate without judging its key (for inspecting EC or small-key files).
fn pkcs12_leaf(data: &[u8], password: Option<&Secret>) -> Result<X509, CertificateError> {
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

fn contains(data: &[u8], needle: &[u8]) -> bool {
    data.windows(needle.len()).any(|w| w == needle)
}

fn pem_certificates(data: &[u8]) -> Result<Vec<X509>, CertificateError> {
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

fn pem_private_key(
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

fn check_key(key: &PKey<Private>) -> Result<(), CertificateError> {
    if key.id() != Id::RSA {
        return Err(CertificateError::new(
            Kind::NotRsa,
            "the private key is not an RSA key: Entra ID accepts only RSA certificates for client \
             assertions; create an RSA certificate (2048 bits or more)",
        ));
    }
    if key.bits() < MIN_RSA_BITS {
        return Err(CertificateError::new(
            Kind::KeyTooSmall,
            format!(
                "the RSA key has {} bits; Entra ID requires at least {MIN_RSA_BITS}: create a new \
                 certificate with a 2048-bit or larger key",
                key.bits()
            ),
        ));
    }
    Ok(())
}

fn format_name(name: &X509NameRef) -> String {
    name.entries()
        .map(|e| {
            let field = e.object().nid().short_name().unwrap_or("?");
            let value = e.data().to_string().unwrap_or_default();
            format!("{field}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn asn1_to_system_time(t: &Asn1TimeRef) -> Option<SystemTime> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(t).ok()?;
    date::from_unix_seconds(i64::from(diff.days) * 86_400 + i64::from(diff.secs))
}

/// Where a certificate credential's key and certificate come from.
#[derive(Clone)]
pub struct CertificateSource(Inner);

#[derive(Clone)]
enum Inner {
    Files {
        certificate: Option<PathBuf>,
        key: Option<PathBuf>,
    },
    Pkcs12(Zeroizing<Vec<u8>>),
    Base64Pkcs12(Secret),
    Pem {
        certificate: Vec<u8>,
        key: Option<Zeroizing<Vec<u8>>>,
    },
    /// The key's PEM text from configuration, with a certificate file or (thumbprint-only) none.
    KeyPem {
        certificate: Option<PathBuf>,
        key: Secret,
    },
}

impl fmt::Debug for CertificateSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Files { certificate, key } => f
                .debug_struct("Files")
                .field("certificate", certificate)
                .field("key", key)
                .finish(),
            Inner::Pkcs12(d) => write!(f, "Pkcs12([{} bytes redacted])", d.len()),
            Inner::Base64Pkcs12(_) => f.write_str("Base64Pkcs12([redacted])"),
            Inner::Pem { key, .. } => f
                .debug_struct("Pem")
                .field("key", &key.as_ref().map(|_| "[redacted]"))
                .finish_non_exhaustive(),
            Inner::KeyPem { certificate, .. } => f
                .debug_struct("KeyPem")
                .field("certificate", certificate)
                .field("key", &"[redacted]")
                .finish(),
        }
    }
}

/// A file's identity for change detection: modification time and length.
/// What a file looked like: modification time, length, and on Unix its inode and change time,
/// so that a same-length replacement within the timestamp's resolution (a renamed-in file, a
/// Kubernetes secret's symlink swap) is still seen.
pub(crate) type Stamp = Option<(SystemTime, u64, u64, i64)>;

impl CertificateSource {
    /// One file: a PFX, or a PEM holding the certificate and its key.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        CertificateSource(Inner::Files {
            certificate: Some(path.into()),
            key: None,
        })
    }

    /// A PEM certificate file and a PEM key file.
    pub fn pem_files(certificate: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        CertificateSource(Inner::Files {
            certificate: Some(certificate.into()),
            key: Some(key.into()),
        })
    }

    /// Only a PEM key file: Bot Framework's thumbprint-only mode (set the thumbprint too).
    pub fn key_file(key: impl Into<PathBuf>) -> Self {
        CertificateSource(Inner::Files {
            certificate: None,
            key: Some(key.into()),
        })
    }

    /// PFX / PKCS#12 bytes.
    pub fn pkcs12(der: impl Into<Vec<u8>>) -> Self {
        CertificateSource(Inner::Pkcs12(Zeroizing::new(der.into())))
    }

    /// A base64-encoded PFX (Microsoft.Identity.Web `Base64Encoded`).
    pub fn base64_pkcs12(base64: Secret) -> Self {
        CertificateSource(Inner::Base64Pkcs12(base64))
    }

    /// PEM bytes: a certificate (and chain), and the key unless it is in `certificate`.
    pub fn pem(certificate: impl Into<Vec<u8>>, key: Option<Vec<u8>>) -> Self {
        CertificateSource(Inner::Pem {
            certificate: certificate.into(),
            key: key.map(Zeroizing::new),
        })
    }

    /// A PEM certificate file and the key's PEM text (Bot Framework's `CertificatePrivateKey` as
    /// the JavaScript SDK uses it).
    pub fn pem_file_and_key(certificate: impl Into<PathBuf>, key_pem: Secret) -> Self {
        CertificateSource(Inner::KeyPem {
            certificate: Some(certificate.into()),
            key: key_pem,
        })
    }

    /// Only the key's PEM text: thumbprint-only mode (set the thumbprint too).
    pub fn key_pem(key_pem: Secret) -> Self {
        CertificateSource(Inner::KeyPem {
            certificate: None,
            key: key_pem,
        })
    }

    /// Whether the source is files on disk (and so can change: rotation).
    pub fn is_files(&self) -> bool {
        matches!(self.0, Inner::Files { .. })
    }

    pub(crate) fn stamps(&self) -> Vec<Stamp> {
        let Inner::Files { certificate, key } = &self.0 else {
            return Vec::new();
        };
        [certificate, key]
            .into_iter()
            .flatten()
            .map(|p| {
                std::fs::metadata(p).ok().map(|m| {
                    (
                        m.modified().unwrap_or(UNIX_EPOCH),
                        m.len(),
                        inode(&m),
                        ctime_ns(&m),
                    )
                })
            })
            .collect()
    }

    /// Loads and validates: key and certificate, the configured thumbprint, and the validity
    /// period against `now`.
    pub fn load(
        &self,
        password: Option<&Secret>,
        thumbprint: Option<&str>,
        now: SystemTime,
    ) -> Result<ClientCertificate, CertificateError> {
        let cert = match &self.0 {
            Inner::Files {
                certificate: Some(path),
                key,
            } => {
                let data = read_file(path)?;
                if is_pem(&data) {
                    let key = key.as_deref().map(read_file).transpose()?;
                    ClientCertificate::from_pem(&data, key.as_deref().map(|k| &k[..]), password)?
                } else if key.is_some() {
                    return Err(CertificateError::new(
                        Kind::Unsupported,
                        format!(
                            "{} is not PEM, so it is read as a PFX, which holds its own key: \
                             remove the key path, or convert the certificate to PEM",
                            path.display()
                        ),
                    ));
                } else {
                    ClientCertificate::from_pkcs12(&data, password)?
                }
            }
            Inner::Files {
                certificate: None,
                key: Some(path),
            } => {
                let Some(thumbprint) = thumbprint else {
                    return Err(CertificateError::new(
                        Kind::NoCertificate,
                        "only a key file is configured: set the certificate file too, or the \
                         certificate's thumbprint (thumbprint-only mode)",
                    ));
                };
                let data = read_file(path)?;
                return ClientCertificate::from_key_and_thumbprint(&data, thumbprint, password);
            }
            Inner::Files {
                certificate: None,
                key: None,
            } => {
                return Err(CertificateError::new(
                    Kind::NoCertificate,
                    "no certificate file is configured",
                ));
            }
            Inner::KeyPem {
                certificate: Some(path),
                key,
            } => {
                let data = read_file(path)?;
                if !is_pem(&data) {
                    return Err(CertificateError::new(
                        Kind::Unsupported,
                        format!(
                            "{} is not a PEM certificate: with the key given as PEM text, the \
                             certificate must be PEM too",
                            path.display()
                        ),
                    ));
                }
                ClientCertificate::from_pem(&data, Some(key.expose_secret().as_bytes()), password)?
            }
            Inner::KeyPem {
                certificate: None,
                key,
            } => {
                let Some(thumbprint) = thumbprint else {
                    return Err(CertificateError::new(
                        Kind::NoCertificate,
                        "only a private key is configured: set the certificate file too, or the \
                         certificate's thumbprint (thumbprint-only mode)",
                    ));
                };
                return ClientCertificate::from_key_and_thumbprint(
                    key.expose_secret().as_bytes(),
                    thumbprint,
                    password,
                );
            }
            Inner::Pkcs12(der) => ClientCertificate::from_pkcs12(der, password)?,
            Inner::Base64Pkcs12(b64) => ClientCertificate::from_base64_pkcs12(b64, password)?,
            Inner::Pem { certificate, key } => {
                ClientCertificate::from_pem(certificate, key.as_deref().map(|k| &k[..]), password)?
            }
        };
        if let Some(expected) = thumbprint {
            cert.check_thumbprint(expected)?;
        }
        cert.check_validity(now)?;
        Ok(cert)
    }
}

#[cfg(unix)]
fn inode(m: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(m)
}

#[cfg(not(unix))]
fn inode(_: &std::fs::Metadata) -> u64 {
    0
}

#[cfg(unix)]
fn ctime_ns(m: &std::fs::Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt as _;
    m.ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(m.ctime_nsec())
}

#[cfg(not(unix))]
fn ctime_ns(_: &std::fs::Metadata) -> i64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::{PASSWORD, path, read, sha1_hex};

    fn pw() -> Secret {
        Secret::new(PASSWORD)
    }

    fn kind<T: fmt::Debug>(r: Result<T, CertificateError>) -> Kind {
        r.expect_err("expected an error").kind()
    }

    fn now() -> SystemTime {
        SystemTime::now()
    }

    #[test]
    fn every_supported_input_loads_the_same_identity() {
        let want = sha1_hex("rsa2048.pem");
        let pem = read("rsa2048.pem");
        let b64 = Secret::new(String::from_utf8(read("rsa2048.pfx.b64")).unwrap());
        let loaded = [
            ClientCertificate::from_pem(&pem, Some(&read("rsa2048.key")), None),
            ClientCertificate::from_pem(&pem, Some(&read("rsa2048.pkcs1.key")), None),
            ClientCertificate::from_pem(&pem, Some(&read("rsa2048.enc.key")), Some(&pw())),
            ClientCertificate::from_pem(&read("rsa2048.combined.pem"), None, None),
            ClientCertificate::from_pkcs12(&read("rsa2048.pfx"), Some(&pw())),
            ClientCertificate::from_pkcs12(&read("rsa2048.3des.pfx"), Some(&pw())),
            ClientCertificate::from_pkcs12(&read("rsa2048.nopass.pfx"), None),
            ClientCertificate::from_base64_pkcs12(&b64, Some(&pw())),
        ];
        for (i, c) in loaded.into_iter().enumerate() {
            let c = c.unwrap_or_else(|e| panic!("input {i}: {e}"));
            assert_eq!(c.thumbprints().sha1_hex(), want, "input {i}");
            assert_eq!(c.key_bits(), 2048);
            assert_eq!(c.chain_der().len(), 1);
            assert_eq!(
                c.subject(),
                Some("CN=botauth fixture rsa2048, O=botauth tests")
            );
        }
    }

    #[test]
    fn larger_keys_load() {
        for (name, bits) in [("rsa3072", 3072), ("rsa4096", 4096)] {
            let c = ClientCertificate::from_pem(
                &read(&format!("{name}.pem")),
                Some(&read(&format!("{name}.key"))),
                None,
            )
            .unwrap();
            assert_eq!(c.key_bits(), bits);
        }
    }

    #[test]
    fn a_chain_is_kept_leaf_first() {
        let leaf = read("leaf.pem");
        let ca = read("ca.pem");
        let want = |c: &ClientCertificate| {
            let der = c.chain_der();
            assert_eq!(der.len(), 2);
            assert_eq!(der[0], X509::from_pem(&leaf).unwrap().to_der().unwrap());
            assert_eq!(der[1], X509::from_pem(&ca).unwrap().to_der().unwrap());
        };
        want(
            &ClientCertificate::from_pem(&read("chain.pem"), Some(&read("leaf.key")), None)
                .unwrap(),
        );
        want(&ClientCertificate::from_pkcs12(&read("chain.pfx"), Some(&pw())).unwrap());
        // CA first in the bundle: the leaf is found by its key, not by its position.
        let mut reversed = ca.clone();
        reversed.extend_from_slice(&leaf);
        want(&ClientCertificate::from_pem(&reversed, Some(&read("leaf.key")), None).unwrap());
    }

    #[test]
    fn mismatched_key_and_certificate() {
        let e =
            ClientCertificate::from_pem(&read("rsa2048.pem"), Some(&read("other2048.key")), None)
                .unwrap_err();
        assert_eq!(e.kind(), Kind::KeyMismatch);
        assert!(e.to_string().contains("does not belong"), "{e}");
    }

    #[test]
    fn ec_key_is_not_rsa() {
        let r = ClientCertificate::from_pem(&read("ec.pem"), Some(&read("ec.key")), None);
        assert_eq!(kind(r), Kind::NotRsa);
    }

    #[test]
    fn rsa_1024_is_too_small() {
        let e = ClientCertificate::from_pem(&read("rsa1024.pem"), Some(&read("rsa1024.key")), None)
            .unwrap_err();
        assert_eq!(e.kind(), Kind::KeyTooSmall);
        assert!(e.to_string().contains("1024 bits"), "{e}");
    }

    #[test]
    fn wrong_and_missing_passwords() {
        let wrong = Secret::new("not-the-password");
        for pfx in ["rsa2048.pfx", "rsa2048.3des.pfx"] {
            assert_eq!(
                kind(ClientCertificate::from_pkcs12(&read(pfx), Some(&wrong))),
                Kind::WrongPassword,
                "{pfx}"
            );
            assert_eq!(
                kind(ClientCertificate::from_pkcs12(&read(pfx), None)),
                Kind::PasswordRequired,
                "{pfx}"
            );
        }
        let pem = read("rsa2048.pem");
        let enc = read("rsa2048.enc.key");
        assert_eq!(
            kind(ClientCertificate::from_pem(&pem, Some(&enc), Some(&wrong))),
            Kind::WrongPassword
        );
        assert_eq!(
            kind(ClientCertificate::from_pem(&pem, Some(&enc), None)),
            Kind::PasswordRequired
        );
    }

    #[test]
    fn corrupt_and_truncated_files_are_malformed() {
        let pfx = read("rsa2048.pfx");
        assert_eq!(
            kind(ClientCertificate::from_pkcs12(
                &pfx[..pfx.len() / 2],
                Some(&pw())
            )),
            Kind::Malformed
        );
        assert_eq!(
            kind(ClientCertificate::from_pkcs12(b"garbage", Some(&pw()))),
            Kind::Malformed
        );
        let pem = read("rsa2048.pem");
        let key = read("rsa2048.key");
        // Truncated certificate: BEGIN without END.
        assert_eq!(
            kind(ClientCertificate::from_pem(
                &pem[..pem.len() / 2],
                Some(&key),
                None
            )),
            Kind::Malformed
        );
        // Truncated key.
        assert_eq!(
            kind(ClientCertificate::from_pem(
                &pem,
                Some(&key[..key.len() / 2]),
                None
            )),
            Kind::Malformed
        );
        // Bit rot inside the base64 body of the certificate.
        let mut rotten = pem.clone();
        rotten[200] = b'!';
        assert_eq!(
            kind(ClientCertificate::from_pem(&rotten, Some(&key), None)),
            Kind::Malformed
        );
        // Not base64 at all.
        assert_eq!(
            kind(ClientCertificate::from_base64_pkcs12(
                &Secret::new("%%%"),
                None
            )),
            Kind::Malformed
        );
    }

    #[test]
    fn pem_without_key_or_certificate() {
        assert_eq!(
            kind(ClientCertificate::from_pem(
                &read("rsa2048.pem"),
                None,
                None
            )),
            Kind::NoPrivateKey
        );
        assert_eq!(
            kind(ClientCertificate::from_pem(
                &read("rsa2048.key"),
                None,
                None
            )),
            Kind::NoCertificate
        );
    }

    #[test]
    fn unreadable_files_are_io() {
        let source = CertificateSource::file(path("does-not-exist.pem"));
        let e = source.load(None, None, now()).unwrap_err();
        assert_eq!(e.kind(), Kind::Io);
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(e.is_retryable());
    }

    #[test]
    fn pem_text_in_a_path_is_not_echoed() {
        let key = String::from_utf8(read("rsa2048.key")).unwrap();
        let source = CertificateSource::key_file(key.clone());
        let e = source
            .load(None, Some(&sha1_hex("rsa2048.pem")), now())
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Malformed);
        let body = key.lines().nth(1).unwrap();
        assert!(!e.to_string().contains(body), "{e}");
        assert!(e.to_string().contains("PEM text"), "{e}");
    }

    #[test]
    fn key_given_as_pem_text() {
        let key = Secret::new(String::from_utf8(read("rsa2048.key")).unwrap());
        let hex = sha1_hex("rsa2048.pem");
        let with_cert = CertificateSource::pem_file_and_key(path("rsa2048.pem"), key.clone());
        assert_eq!(
            with_cert
                .load(None, None, now())
                .unwrap()
                .thumbprints()
                .sha1_hex(),
            hex
        );
        let only_key = CertificateSource::key_pem(key.clone());
        assert_eq!(
            only_key
                .load(None, Some(&hex), now())
                .unwrap()
                .thumbprints()
                .sha1_hex(),
            hex
        );
        assert_eq!(kind(only_key.load(None, None, now())), Kind::NoCertificate);
        let mismatched = CertificateSource::pem_file_and_key(path("other2048.pem"), key);
        assert_eq!(kind(mismatched.load(None, None, now())), Kind::KeyMismatch);
        assert!(!format!("{mismatched:?}").contains("PRIVATE"));
    }

    #[test]
    fn expired_certificate_is_refused() {
        let source = CertificateSource::pem_files(path("expired.pem"), path("expired.key"));
        let e = source.load(None, None, now()).unwrap_err();
        assert_eq!(e.kind(), Kind::Expired);
        assert!(e.to_string().contains("2021-01-01T00:00:00Z"), "{e}");
        // The same file was fine in 2020: only the clock decides.
        let in_2020 = UNIX_EPOCH + Duration::from_secs(1_590_000_000);
        source.load(None, None, in_2020).unwrap();
    }

    #[test]
    fn expiry_follows_the_injected_clock() {
        let source = CertificateSource::file(path("rsa2048.combined.pem"));
        let not_after = source.load(None, None, now()).unwrap().not_after().unwrap();
        let e = source
            .load(None, None, not_after + Duration::from_secs(1))
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Expired);
        assert_eq!(
            kind(source.load(None, None, not_after)),
            Kind::Expired,
            "not_after itself is past"
        );
    }

    #[test]
    fn thumbprint_is_checked_in_any_spelling() {
        let source = CertificateSource::file(path("rsa2048.combined.pem"));
        let hex = sha1_hex("rsa2048.pem");
        let colons: String = hex
            .to_lowercase()
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(":");
        source.load(None, Some(&hex), now()).unwrap();
        source.load(None, Some(&colons), now()).unwrap();
        let other = sha1_hex("other2048.pem");
        let e = source.load(None, Some(&other), now()).unwrap_err();
        assert_eq!(e.kind(), Kind::ThumbprintMismatch);
        assert!(e.to_string().contains(&hex), "names the computed one: {e}");
        assert_eq!(
            kind(source.load(None, Some("not-hex"), now())),
            Kind::InvalidThumbprint
        );
    }

    #[test]
    fn thumbprint_only_mode() {
        let hex = sha1_hex("rsa2048.pem");
        let source = CertificateSource::key_file(path("rsa2048.key"));
        let c = source.load(None, Some(&hex.to_lowercase()), now()).unwrap();
        assert_eq!(c.thumbprints().sha1_hex(), hex);
        assert!(!c.has_certificate());
        assert_eq!(c.thumbprints().x5t_s256(), None);
        assert_eq!(kind(source.load(None, None, now())), Kind::NoCertificate);
        // The key is still judged.
        let small = CertificateSource::key_file(path("rsa1024.key"));
        assert_eq!(kind(small.load(None, Some(&hex), now())), Kind::KeyTooSmall);
    }

    #[test]
    fn pfx_with_a_separate_key_is_unsupported() {
        let source = CertificateSource::pem_files(path("rsa2048.pfx"), path("rsa2048.key"));
        assert_eq!(
            kind(source.load(Some(&pw()), None, now())),
            Kind::Unsupported
        );
    }

    #[test]
    fn file_sources_sniff_pem_or_pfx() {
        let want = sha1_hex("rsa2048.pem");
        for (source, password) in [
            (CertificateSource::file(path("rsa2048.pfx")), Some(pw())),
            (CertificateSource::file(path("rsa2048.combined.pem")), None),
            (
                CertificateSource::pem_files(path("rsa2048.pem"), path("rsa2048.enc.key")),
                Some(pw()),
            ),
        ] {
            let c = source.load(password.as_ref(), None, now()).unwrap();
            assert_eq!(c.thumbprints().sha1_hex(), want);
        }
    }

    #[test]
    fn summary_of_pem_and_pfx() {
        let want = sha1_hex("rsa2048.pem");
        let a = CertificateSummary::from_file(&path("rsa2048.pem"), None).unwrap();
        let b = CertificateSummary::from_file(&path("rsa2048.pfx"), Some(&pw())).unwrap();
        for s in [&a, &b] {
            assert_eq!(s.thumbprints.sha1_hex(), want);
            assert_eq!(s.subject, "CN=botauth fixture rsa2048, O=botauth tests");
        }
        // Inspecting does not judge the key.
        let ec = CertificateSummary::from_file(&path("ec.pem"), None).unwrap();
        assert!(ec.subject.contains("ec"));
        assert_eq!(
            CertificateSummary::from_file(&path("rsa2048.pfx"), Some(&Secret::new("x")))
                .unwrap_err()
                .kind(),
            Kind::WrongPassword
        );
    }

    #[test]
    fn debug_never_shows_key_or_password() {
        let source = CertificateSource::pem(read("rsa2048.pem"), Some(read("rsa2048.enc.key")));
        let c = source.load(Some(&pw()), None, now()).unwrap();
        let text = format!("{c:?} {source:?}");
        assert!(text.contains("[redacted RSA-2048]"), "{text}");
        assert!(!text.contains("PRIVATE KEY"));
        assert!(!text.contains(PASSWORD));
        let b64 = CertificateSource::base64_pkcs12(Secret::new("QUJD"));
        assert!(!format!("{b64:?}").contains("QUJD"));
    }
}
