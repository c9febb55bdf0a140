//! The local certificate authority kept in a state directory, and the server certificate it
//! issues for the loopback names at every start (see `tls/mod.rs` for why a CA).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder, X509NameRef};

/// The CA lives for years so that a user trusts it once; it is local to one machine and its key
/// never leaves the state directory (0600).
const CA_DAYS: u32 = 5 * 365;

/// Server certificates are made at every start, so a short life costs nothing.
const SERVER_DAYS: u32 = 30;

/// A local certificate authority for the sandbox's https endpoints.
///
/// [`LocalCa::load_or_create`] keeps it in a state directory so that restarts reuse it (clients
/// trust its certificate file once); [`LocalCa::generate`] makes a throw-away one in memory, for
/// tests. Pass it to [`SandboxBuilder::tls`](crate::SandboxBuilder::tls).
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let ca = botauth_sandbox::LocalCa::load_or_create(dir.path())?;
/// let again = botauth_sandbox::LocalCa::load_or_create(dir.path())?;
/// assert_eq!(ca.certificate_pem(), again.certificate_pem());
/// assert_eq!(ca.certificate_path(), Some(dir.path().join("ca").join("ca.pem").as_path()));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct LocalCa {
    cert: X509,
    key: PKey<Private>,
    pem: Vec<u8>,
    path: Option<PathBuf>,
}

impl fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalCa")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl LocalCa {
    /// A fresh CA in memory (not written anywhere).
    ///
    /// # Errors
    ///
    /// OpenSSL's error, as an I/O error, if key or certificate generation fails.
    pub fn generate() -> io::Result<Self> {
        let (cert, key) = new_ca().map_err(io::Error::other)?;
        let pem = cert.to_pem().map_err(io::Error::other)?;
        Ok(Self {
            cert,
            key,
            pem,
            path: None,
        })
    }

    /// The CA kept in `state_dir/ca/` (`ca.pem`, and `ca.key` readable by the owner only),
    /// created on first use. A CA that has expired or expires within a day is replaced.
    ///
    /// Several sandboxes may start at once with the same directory: the CA is written to a
    /// private temporary directory and renamed into place, so each sees a complete CA.
    ///
    /// # Errors
    ///
    /// The directory cannot be created or written, or it holds files that are not a matching
    /// certificate and key (the error names the file; delete the `ca` directory to start anew).
    pub fn load_or_create(state_dir: &Path) -> io::Result<Self> {
        let dir = state_dir.join("ca");
        for _ in 0..3 {
            match Self::load(&dir) {
                Ok(Some(ca)) => return Ok(ca),
                Ok(None) => {}
                Err(error) => return Err(error),
            }
            Self::create(state_dir, &dir)?;
        }
        Self::load(&dir)?.ok_or_else(|| {
            io::Error::other(format!(
                "the sandbox CA in {} keeps changing; is another program writing it?",
                dir.display()
            ))
        })
    }

    /// `Ok(None)`: there is no CA yet, or it has (nearly) expired and was moved aside.
    fn load(dir: &Path) -> io::Result<Option<Self>> {
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca.key");
        let pem = match std::fs::read(&cert_path) {
            Ok(pem) => pem,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(with_path(&cert_path, error)),
        };
        let unusable = |path: &Path, what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} is not {what}; delete {} and the sandbox makes a new CA",
                    path.display(),
                    dir.display()
                ),
            )
        };
        let cert = X509::from_pem(&pem).map_err(|_| unusable(&cert_path, "a PEM certificate"))?;
        let key_pem = std::fs::read(&key_path).map_err(|e| with_path(&key_path, e))?;
        let key = PKey::private_key_from_pem(&key_pem)
            .map_err(|_| unusable(&key_path, "a PEM private key"))?;
        let matches = cert.public_key().is_ok_and(|public| public.public_eq(&key));
        if !matches {
            return Err(unusable(&key_path, "the key of ca.pem"));
        }
        let expiring = Asn1Time::days_from_now(1)
            .ok()
            .and_then(|soon| cert.not_after().compare(&soon).ok())
            .is_none_or(|order| order.is_lt());
        if expiring {
            let aside = dir.with_file_name(format!("ca.expired.{}", uuid::Uuid::new_v4()));
            tracing::warn!(dir = %dir.display(), "the sandbox CA expires within a day; making a new one");
            std::fs::rename(dir, &aside).map_err(|e| with_path(dir, e))?;
            return Ok(None);
        }
        Ok(Some(Self {
            cert,
            key,
            pem,
            path: Some(cert_path),
        }))
    }

    fn create(state_dir: &Path, dir: &Path) -> io::Result<()> {
        create_private_dir(state_dir)?;
        let staging = state_dir.join(format!("ca.new.{}", uuid::Uuid::new_v4()));
        create_private_dir(&staging)?;
        let written = (|| -> io::Result<()> {
            let (cert, key) = new_ca().map_err(io::Error::other)?;
            let key_pem = key.private_key_to_pem_pkcs8().map_err(io::Error::other)?;
            write_private(&staging.join("ca.key"), &key_pem)?;
            std::fs::write(
                staging.join("ca.pem"),
                cert.to_pem().map_err(io::Error::other)?,
            )?;
            Ok(())
        })();
        let placed = written.and_then(|()| std::fs::rename(&staging, dir));
        if placed.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        match placed {
            // Another sandbox placed its CA first: use that one.
            Err(_) if dir.join("ca.pem").exists() => Ok(()),
            other => other.map_err(|e| with_path(dir, e)),
        }
    }

    /// The CA certificate, PEM: what clients add to their trusted roots.
    pub fn certificate_pem(&self) -> &[u8] {
        &self.pem
    }

    /// Where the CA certificate is kept (`None` for [`LocalCa::generate`]): the value for
    /// `SSL_CERT_FILE`, `NODE_EXTRA_CA_CERTS` and `REQUESTS_CA_BUNDLE`.
    pub fn certificate_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// A TLS acceptor with a fresh server certificate for `localhost`, `127.0.0.1` and `::1`
    /// issued by this CA.
    pub(crate) fn server_acceptor(&self) -> Result<SslAcceptor, ErrorStack> {
        let key = ec_key()?;
        let cert = self.issue_server_certificate(&key)?;
        let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
        acceptor.set_private_key(&key)?;
        acceptor.set_certificate(&cert)?;
        acceptor.add_extra_chain_cert(self.cert.clone())?;
        acceptor.check_private_key()?;
        Ok(acceptor.build())
    }

    fn issue_server_certificate(&self, key: &PKeyRef<Private>) -> Result<X509, ErrorStack> {
        let mut builder = certificate_builder(
            "localhost",
            Some(self.cert.subject_name()),
            key,
            SERVER_DAYS,
        )?;
        builder.append_extension(BasicConstraints::new().critical().build()?)?;
        builder.append_extension(
            KeyUsage::new()
                .critical()
                .digital_signature()
                .key_agreement()
                .build()?,
        )?;
        builder.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
        let context = builder.x509v3_context(Some(&self.cert), None);
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .ip("::1")
            .build(&context)?;
        let ski = SubjectKeyIdentifier::new().build(&context)?;
        let aki = AuthorityKeyIdentifier::new().keyid(true).build(&context)?;
        builder.append_extension(san)?;
        builder.append_extension(ski)?;
        builder.append_extension(aki)?;
        builder.sign(&self.key, MessageDigest::sha256())?;
        Ok(builder.build())
    }
}

fn with_path(path: &Path, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(|e| with_path(dir, e))
}

fn write_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| with_path(path, e))?;
    file.write_all(contents)
}

fn ec_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

/// Version 3, random serial, subject `CN=common_name`, issued by `issuer` (itself when `None`),
/// valid from an hour ago (clock skew) for `days`; extensions and signature are the caller's.
fn certificate_builder(
    common_name: &str,
    issuer: Option<&X509NameRef>,
    key: &PKeyRef<Private>,
    days: u32,
) -> Result<openssl::x509::X509Builder, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let now = botauth_core::internal::date::unix_seconds(std::time::SystemTime::now());
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(issuer.unwrap_or(&name))?;
    builder.set_pubkey(key)?;
    let (not_before, not_after) = (
        Asn1Time::from_unix(now.saturating_sub(3600))?,
        Asn1Time::days_from_now(days)?,
    );
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    Ok(builder)
}

fn new_ca() -> Result<(X509, PKey<Private>), ErrorStack> {
    let key = ec_key()?;
    let mut builder = certificate_builder("botauth sandbox local CA", None, &key, CA_DAYS)?;
    builder.append_extension(BasicConstraints::new().critical().ca().pathlen(0).build()?)?;
    builder.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ski = SubjectKeyIdentifier::new().build(&builder.x509v3_context(None, None))?;
    builder.append_extension(ski)?;
    builder.sign(&key, MessageDigest::sha256())?;
    Ok((builder.build(), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_is_kept_and_reused_and_its_key_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalCa::load_or_create(dir.path()).unwrap();
        let second = LocalCa::load_or_create(dir.path()).unwrap();
        assert_eq!(first.certificate_pem(), second.certificate_pem());
        let pem = std::fs::read(dir.path().join("ca/ca.pem")).unwrap();
        assert_eq!(pem, first.certificate_pem());
        let cert = X509::from_pem(&pem).unwrap();
        let ca_flag = cert.to_text().unwrap();
        assert!(
            String::from_utf8_lossy(&ca_flag).contains("CA:TRUE"),
            "the CA certificate must be a CA"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |p: &str| {
                std::fs::metadata(dir.path().join(p))
                    .unwrap()
                    .permissions()
                    .mode()
                    & 0o777
            };
            assert_eq!(mode("ca/ca.key"), 0o600);
            assert_eq!(mode("ca"), 0o700);
        }
        // The server certificate chains to it, for the loopback names.
        let acceptor = first.server_acceptor().unwrap();
        let leaf = acceptor.context().certificate().unwrap().to_owned();
        assert!(leaf.verify(&cert.public_key().unwrap()).unwrap());
        let names: Vec<String> = leaf
            .subject_alt_names()
            .unwrap()
            .iter()
            .map(|n| {
                n.dnsname()
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{:?}", n.ipaddress().unwrap_or_default()))
            })
            .collect();
        assert_eq!(
            names,
            [
                "localhost",
                "[127, 0, 0, 1]",
                "[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]"
            ]
        );
    }

    #[test]
    fn sandboxes_starting_together_share_one_ca() {
        let dir = tempfile::tempdir().unwrap();
        let pems: Vec<Vec<u8>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| LocalCa::load_or_create(dir.path()).unwrap()))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().certificate_pem().to_vec())
                .collect()
        });
        assert!(pems.windows(2).all(|w| w[0] == w[1]));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers, ["ca"]);
    }

    #[test]
    fn a_damaged_ca_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        LocalCa::load_or_create(dir.path()).unwrap();
        std::fs::write(dir.path().join("ca/ca.pem"), "not a certificate").unwrap();
        let error = LocalCa::load_or_create(dir.path()).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(
            error
                .to_string()
                .contains("ca.pem is not a PEM certificate"),
            "{error}"
        );
        // A key that is not the certificate's.
        let other = tempfile::tempdir().unwrap();
        LocalCa::load_or_create(other.path()).unwrap();
        std::fs::copy(other.path().join("ca/ca.pem"), dir.path().join("ca/ca.pem")).unwrap();
        let error = LocalCa::load_or_create(dir.path()).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ca.key is not the key of ca.pem"),
            "{error}"
        );
    }
}
