//! [`CertificateSource`]: where a certificate and its key come from (files, PFX bytes, base64,
//! PEM text), and loading them into a validated [`ClientCertificate`].

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

use botauth_core::Secret;
use zeroize::Zeroizing;

use crate::certificate::ClientCertificate;
use crate::error::{CertificateError, CertificateErrorKind as Kind};
use crate::pem::{is_pem, read_file};
use crate::stamp::{self, Stamp};

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
    pub(crate) fn is_files(&self) -> bool {
        matches!(self.0, Inner::Files { .. })
    }

    pub(crate) fn stamps(&self) -> Vec<Stamp> {
        let Inner::Files { certificate, key } = &self.0 else {
            return Vec::new();
        };
        [certificate, key]
            .into_iter()
            .flatten()
            .map(|p| stamp::of(p))
            .collect()
    }

    /// Loads and validates: key and certificate, the configured thumbprint, and the validity
    /// period against `now`.
    pub(crate) fn load(
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    use openssl::x509::X509;

    use crate::certificate::CertificateSummary;
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
            assert_eq!(c.key().bits(), 2048);
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
            assert_eq!(c.key().bits(), bits);
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
