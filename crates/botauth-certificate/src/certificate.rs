//! [`ClientCertificate`]: a private key and its certificate chain, loaded from PEM or PFX and
//! validated once, at load time (docs/protocol.md §3).

use std::fmt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use botauth_core::Secret;
use botauth_core::internal::date::{self, rfc3339};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{Id, PKey, Private};
use openssl::x509::{X509, X509NameRef};
use zeroize::Zeroizing;

use crate::error::{CertificateError, CertificateErrorKind as Kind};
use crate::pem::{is_pem, pem_certificates, pem_private_key, pkcs12_leaf, read_file};
use crate::thumbprint::{Thumbprints, parse_sha1_hex};

/// Entra ID accepts RSA keys of at least this size (docs/protocol.md §3).
pub(crate) const MIN_RSA_BITS: u32 = 2048;

/// A certificate that expires within this window is loaded with a warning.
pub(crate) const EXPIRY_WARNING: Duration = Duration::from_secs(30 * 86_400);

/// A validated signing identity: an RSA private key of at least 2048 bits and, unless it was
/// loaded in thumbprint-only mode, the certificate it belongs to (and any chain behind it).
pub(crate) struct ClientCertificate {
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
    pub(crate) fn from_pem(
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
    pub(crate) fn from_pkcs12(
        der: &[u8],
        password: Option<&Secret>,
    ) -> Result<Self, CertificateError> {
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
    pub(crate) fn from_base64_pkcs12(
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
    pub(crate) fn from_key_and_thumbprint(
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
    pub(crate) fn thumbprints(&self) -> &Thumbprints {
        &self.thumbprints
    }

    /// The certificate chain as DER, leaf first (empty in thumbprint-only mode).
    pub(crate) fn chain_der(&self) -> Vec<Vec<u8>> {
        self.chain.iter().filter_map(|c| c.to_der().ok()).collect()
    }

    /// The end of the leaf certificate's validity, when the certificate is known.
    pub(crate) fn not_after(&self) -> Option<SystemTime> {
        self.not_after
    }

    /// The leaf certificate's subject (`CN=…, O=…`), when the certificate is known.
    pub(crate) fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Whether the certificate itself is known (false in thumbprint-only mode).
    pub(crate) fn has_certificate(&self) -> bool {
        !self.chain.is_empty()
    }

    pub(crate) fn key(&self) -> &PKey<Private> {
        &self.key
    }

    /// Checks a configured SHA-1 thumbprint (any case, spaces and colons allowed) against the
    /// computed one.
    pub(crate) fn check_thumbprint(&self, expected: &str) -> Result<(), CertificateError> {
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
    pub(crate) fn check_validity(&self, now: SystemTime) -> Result<(), CertificateError> {
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
