//! [`CertificateAssertion`]: the client assertion JWT of docs/protocol.md §3, signed with OpenSSL, from
//! a certificate that is reloaded when its files change.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use botauth_core::config::{AssertionAlgorithm, CertificateConfig};
use botauth_core::{
    AssertionRequest, ClientAssertionSource, Clock, EntraError, Error, Result, Secret, SystemClock,
};
use openssl::hash::MessageDigest;
use openssl::rsa::Padding;
use openssl::sign::{RsaPssSaltlen, Signer};

use crate::certificate::ClientCertificate;
use crate::error::{CertificateError, CertificateErrorKind as Kind};
use crate::source::CertificateSource;
use crate::stamp::Stamp;
use crate::thumbprint::Thumbprints;

/// An assertion is valid for ten minutes (docs/protocol.md §3).
const LIFETIME_SECS: u64 = 600;

/// The loaded certificate and the assertion header made from it (the header only changes with
/// the certificate, so it is encoded once).
struct Loaded {
    certificate: ClientCertificate,
    header_b64: String,
}

/// What to load and how to sign.
struct Settings {
    source: CertificateSource,
    password: Option<Secret>,
    thumbprint: Option<String>,
    algorithm: AssertionAlgorithm,
    send_x5c: bool,
}

impl Settings {
    fn load(&self, now: SystemTime) -> std::result::Result<Loaded, CertificateError> {
        let certificate =
            self.source
                .load(self.password.as_ref(), self.thumbprint.as_deref(), now)?;
        let header_b64 = self.header(&certificate)?;
        Ok(Loaded {
            certificate,
            header_b64,
        })
    }

    fn header(&self, cert: &ClientCertificate) -> std::result::Result<String, CertificateError> {
        let thumbprints: &Thumbprints = cert.thumbprints();
        let mut header = serde_json::Map::new();
        match self.algorithm {
            AssertionAlgorithm::Ps256 => {
                let s256 = thumbprints.x5t_s256().ok_or_else(|| {
                    CertificateError::new(
                        Kind::Unsupported,
                        "PS256 sends the certificate's SHA-256 thumbprint, which thumbprint-only \
                         mode does not know: configure the certificate file, or use RS256",
                    )
                })?;
                header.insert("alg".into(), "PS256".into());
                header.insert("typ".into(), "JWT".into());
                header.insert("x5t#S256".into(), s256.into());
            }
            // RS256 and any algorithm added later default to what every Microsoft SDK sends.
            _ => {
                header.insert("alg".into(), "RS256".into());
                header.insert("typ".into(), "JWT".into());
                header.insert("x5t".into(), thumbprints.x5t().into());
            }
        }
        if self.send_x5c {
            if !cert.has_certificate() {
                return Err(CertificateError::new(
                    Kind::Unsupported,
                    "send_x5c needs the certificate, which thumbprint-only mode does not have: \
                     configure the certificate file",
                ));
            }
            // x5c entries are standard base64 (with padding), unlike the rest of the JWS.
            let chain: Vec<serde_json::Value> = cert
                .chain_der()
                .iter()
                .map(|der| STANDARD.encode(der).into())
                .collect();
            header.insert("x5c".into(), chain.into());
        }
        let json = serde_json::Value::Object(header).to_string();
        Ok(URL_SAFE_NO_PAD.encode(json))
    }
}

/// Signs a fresh client assertion for every token request (docs/protocol.md §3): header `alg` + `typ` +
/// `x5t` (RS256, default) or `x5t#S256` (PS256), optionally `x5c`; claims `aud` = the token
/// endpoint, `iss` = `sub` = the client id, a new `jti`, `nbf` = `iat` = now, `exp` = now + 600 s.
///
/// When the source is files, each assertion first compares the files' modification time and
/// length with the loaded ones (one `stat` per file) and loads the new certificate when they
/// changed; a reload that fails keeps the current certificate and logs why. When Entra rejects
/// an assertion with a code a reload may cure, the token client calls
/// [`on_rejected`](ClientAssertionSource::on_rejected), which reloads unconditionally.
pub struct CertificateAssertion {
    settings: Settings,
    watch_files: bool,
    clock: Arc<dyn Clock>,
    current: RwLock<Arc<Loaded>>,
    /// The stamps of the files as last seen; the lock also keeps reloads one at a time.
    stamps: Mutex<Vec<Stamp>>,
}

impl fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("source", &self.settings.source)
            .field("certificate", &self.current().certificate)
            .field("algorithm", &self.settings.algorithm)
            .field("send_x5c", &self.settings.send_x5c)
            .field("watch_files", &self.watch_files)
            .finish_non_exhaustive()
    }
}

/// Builds a [`CertificateAssertion`].
pub struct CertificateAssertionBuilder {
    settings: Settings,
    watch_files: bool,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for CertificateAssertionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAssertionBuilder")
            .field("source", &self.settings.source)
            .field("password", &self.settings.password)
            .field("thumbprint", &self.settings.thumbprint)
            .field("algorithm", &self.settings.algorithm)
            .field("send_x5c", &self.settings.send_x5c)
            .field("watch_files", &self.watch_files)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertionBuilder {
    /// The password of the PFX or of the encrypted PEM key.
    pub fn password(mut self, password: Secret) -> Self {
        self.settings.password = Some(password);
        self
    }

    /// The expected SHA-1 thumbprint (any case, spaces and colons allowed). Loading fails when the
    /// certificate's differs; with [`CertificateSource::key_file`] it is the thumbprint sent.
    pub fn thumbprint(mut self, thumbprint: impl Into<String>) -> Self {
        self.settings.thumbprint = Some(thumbprint.into());
        self
    }

    /// RS256 + `x5t` (default) or PS256 + `x5t#S256`.
    pub fn algorithm(mut self, algorithm: AssertionAlgorithm) -> Self {
        self.settings.algorithm = algorithm;
        self
    }

    /// Sends the chain in an `x5c` header (Subject Name + Issuer authentication).
    pub fn send_x5c(mut self, send: bool) -> Self {
        self.settings.send_x5c = send;
        self
    }

    /// Whether to look for changed files before each assertion (default: yes). Without it the
    /// certificate is reloaded only when Entra rejects an assertion.
    pub fn watch_files(mut self, watch: bool) -> Self {
        self.watch_files = watch;
        self
    }

    /// The clock for assertion times and expiry checks (tests).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Loads and validates the certificate.
    pub fn build(self) -> std::result::Result<CertificateAssertion, CertificateError> {
        // Stamps first: a file replaced between the two is then seen as changed next time.
        let stamps = self.settings.source.stamps();
        let loaded = self.settings.load(self.clock.now())?;
        tracing::debug!(
            thumbprint = %loaded.certificate.thumbprints().sha1_hex(),
            subject = loaded.certificate.subject().unwrap_or("-"),
            "client certificate loaded"
        );
        Ok(CertificateAssertion {
            settings: self.settings,
            watch_files: self.watch_files,
            clock: self.clock,
            current: RwLock::new(Arc::new(loaded)),
            stamps: Mutex::new(stamps),
        })
    }
}

impl CertificateAssertion {
    /// A builder for assertions signed by the certificate from `source`.
    pub fn builder(source: CertificateSource) -> CertificateAssertionBuilder {
        CertificateAssertionBuilder {
            settings: Settings {
                source,
                password: None,
                thumbprint: None,
                algorithm: AssertionAlgorithm::default(),
                send_x5c: false,
            },
            watch_files: true,
            clock: Arc::new(SystemClock),
        }
    }

    /// A builder from a certificate entry of the configuration (any dialect).
    pub(crate) fn from_config(config: &CertificateConfig) -> Result<CertificateAssertionBuilder> {
        let source = match (
            &config.base64_pfx,
            &config.certificate_path,
            &config.key_path,
            &config.key_pem,
        ) {
            (Some(b64), ..) => CertificateSource::base64_pkcs12(b64.clone()),
            (None, Some(cert), Some(key), _) => CertificateSource::pem_files(cert, key),
            (None, Some(cert), None, Some(pem)) => {
                CertificateSource::pem_file_and_key(cert, pem.clone())
            }
            (None, Some(cert), None, None) => CertificateSource::file(cert),
            (None, None, Some(key), _) => CertificateSource::key_file(key),
            (None, None, None, Some(pem)) => CertificateSource::key_pem(pem.clone()),
            (None, None, None, None) => {
                return Err(Error::config(
                    config.keys.certificate_path(),
                    "a thumbprint alone cannot sign, and botauth does not read certificate stores: \
                     configure the certificate and key files (certificate_path/key_path, \
                     CertificatePrivateKey, CertPemFile/CertKeyFile) or a PFX",
                ));
            }
        };
        let mut builder = Self::builder(source)
            .algorithm(config.algorithm)
            .send_x5c(config.send_x5c);
        if let Some(p) = &config.password {
            builder = builder.password(p.clone());
        }
        if let Some(t) = config
            .thumbprint
            .as_deref()
            .filter(|t| !t.trim().is_empty())
        {
            builder = builder.thumbprint(t);
        }
        Ok(builder)
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The thumbprints of the certificate in use.
    pub(crate) fn thumbprints(&self) -> Thumbprints {
        *self.current().certificate.thumbprints()
    }

    /// Loads the certificate again when its files changed since they were last seen.
    fn reload_if_changed(&self) {
        if !self.watch_files || !self.settings.source.is_files() {
            return;
        }
        let now = self.settings.source.stamps();
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        if *seen == now {
            return;
        }
        // Remember the new stamps even if the reload fails: a half-written rotation changes the
        // files again when it completes, and a broken file is not re-parsed on every request.
        *seen = now;
        self.reload("the certificate files changed");
    }

    /// Loads the certificate from the source and swaps it in; on failure keeps the current one.
    fn reload(&self, why: &str) -> bool {
        let before = self.current().certificate.thumbprints().sha1_hex();
        match self.settings.load(self.clock.now()) {
            Ok(loaded) => {
                tracing::info!(
                    reason = why,
                    previous = %before,
                    thumbprint = %loaded.certificate.thumbprints().sha1_hex(),
                    "client certificate reloaded"
                );
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(loaded);
                true
            }
            Err(e) => {
                tracing::warn!(
                    reason = why,
                    kind = %e.kind(),
                    error = %crate::error_chain(&e),
                    thumbprint = %before,
                    "the client certificate could not be reloaded; keeping the current one"
                );
                false
            }
        }
    }

    /// Signs an assertion for `request` now (after the change check). The async
    /// [`ClientAssertionSource::assertion`] calls this.
    pub fn sign(&self, request: &AssertionRequest<'_>) -> Result<Secret> {
        self.reload_if_changed();
        let loaded = self.current();
        let clock_now = self.clock.now();
        // A certificate that expired while in use: say so plainly instead of letting Entra answer
        // with AADSTS700027. (The 30-day warning stays a load-time affair, not a per-request one.)
        if loaded
            .certificate
            .not_after()
            .is_some_and(|not_after| not_after <= clock_now)
        {
            loaded.certificate.check_validity(clock_now)?;
        }
        let now = u64::try_from(botauth_core::internal::date::unix_seconds(clock_now))
            .map_err(|_| Error::credential("the system clock is before 1970"))?;
        let claims = serde_json::json!({
            "aud": request.token_endpoint,
            "iss": request.client_id,
            "sub": request.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let mut jws = String::with_capacity(loaded.header_b64.len() + 700);
        jws.push_str(&loaded.header_b64);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(claims.to_string(), &mut jws);
        let signature = sign_rs(&loaded.certificate, self.settings.algorithm, jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jws);
        Ok(Secret::new(jws))
    }
}

/// RSASSA-PKCS1-v1_5 (RS256) or RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (PS256),
/// by OpenSSL (constant-time RSA blinding; never the `rsa` crate, RUSTSEC-2023-0071).
fn sign_rs(
    cert: &ClientCertificate,
    algorithm: AssertionAlgorithm,
    input: &[u8],
) -> std::result::Result<Vec<u8>, CertificateError> {
    let failed = |e: openssl::error::ErrorStack| {
        CertificateError::new(Kind::Signing, "OpenSSL could not sign the client assertion")
            .with_source(e)
    };
    let mut signer = Signer::new(MessageDigest::sha256(), cert.key()).map_err(failed)?;
    if algorithm == AssertionAlgorithm::Ps256 {
        signer.set_rsa_padding(Padding::PKCS1_PSS).map_err(failed)?;
        signer
            .set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)
            .map_err(failed)?;
        signer
            .set_rsa_mgf1_md(MessageDigest::sha256())
            .map_err(failed)?;
    }
    signer.sign_oneshot_to_vec(input).map_err(failed)
}

#[async_trait]
impl ClientAssertionSource for CertificateAssertion {
    async fn assertion(&self, request: &AssertionRequest<'_>) -> Result<Secret> {
        self.sign(request)
    }

    /// Reloads the certificate from its files (Microsoft.Identity.Web does the same for the
    /// reload-once codes: the app's certificate was rotated under a running bot).
    async fn on_rejected(&self, error: &EntraError) -> bool {
        if !self.settings.source.is_files() {
            return false;
        }
        let mut seen = self.stamps.lock().unwrap_or_else(|p| p.into_inner());
        *seen = self.settings.source.stamps();
        let reason = format!(
            "Entra rejected the assertion (AADSTS{})",
            error.code().unwrap_or(0)
        );
        self.reload(&reason)
    }

    fn kind(&self) -> &'static str {
        "certificate"
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use botauth_core::ManualClock;
    use openssl::sign::Verifier;
    use openssl::x509::X509;
    use serde_json::{Value, json};

    use super::*;
    use crate::fixtures::{PASSWORD, copy, path, read, sha1_hex};
    use botauth_core::testkit::LogCapture;

    const ENDPOINT: &str = "https://login.microsoftonline.com/tenant-x/oauth2/v2.0/token";
    const CLIENT: &str = "00000000-0000-0000-0000-00000000b07a";

    fn request() -> AssertionRequest<'static> {
        AssertionRequest::new(ENDPOINT, CLIENT)
    }

    fn part(jws: &str, i: usize) -> Value {
        let p = jws.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).unwrap()).unwrap()
    }

    /// Verifies `jws` with OpenSSL's own verifier and the certificate file's public key: a path
    /// that shares no code with the signer.
    fn openssl_verifies(jws: &str, cert_pem: &str, alg: AssertionAlgorithm) -> bool {
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
        let key = X509::from_pem(&read(cert_pem))
            .unwrap()
            .public_key()
            .unwrap();
        let mut v = Verifier::new(MessageDigest::sha256(), &key).unwrap();
        if alg == AssertionAlgorithm::Ps256 {
            v.set_rsa_padding(Padding::PKCS1_PSS).unwrap();
            v.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH).unwrap();
            v.set_rsa_mgf1_md(MessageDigest::sha256()).unwrap();
        }
        v.verify_oneshot(&sig, input.as_bytes()).unwrap()
    }

    fn x5t_by_openssl(cert_pem: &str) -> String {
        let cert = X509::from_pem(&read(cert_pem)).unwrap();
        URL_SAFE_NO_PAD.encode(cert.digest(MessageDigest::sha1()).unwrap())
    }

    /// `jws` names `cert_pem` in its `x5t` and verifies (RS256) with that certificate's key.
    #[track_caller]
    fn assert_rs256_by(jws: &Secret, cert_pem: &str) {
        assert_eq!(
            part(jws.expose_secret(), 0)["x5t"],
            x5t_by_openssl(cert_pem)
        );
        assert!(openssl_verifies(
            jws.expose_secret(),
            cert_pem,
            AssertionAlgorithm::Rs256
        ));
    }

    fn pem_files() -> CertificateAssertionBuilder {
        CertificateAssertion::builder(CertificateSource::pem_files(
            path("rsa2048.pem"),
            path("rsa2048.key"),
        ))
    }

    #[test]
    fn rs256_header_and_claims_are_exactly_protocol_3() {
        let clock = Arc::new(ManualClock::new());
        clock.set(std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        let a = pem_files().clock(clock.clone()).build().unwrap();
        let jws = a.sign(&request()).unwrap();
        let jws = jws.expose_secret();
        assert_eq!(
            part(jws, 0),
            json!({"alg": "RS256", "typ": "JWT", "x5t": x5t_by_openssl("rsa2048.pem")})
        );
        let claims = part(jws, 1);
        let jti = claims["jti"].as_str().unwrap();
        assert!(uuid::Uuid::parse_str(jti).is_ok(), "{jti}");
        assert_eq!(
            claims,
            json!({
                "aud": ENDPOINT, "iss": CLIENT, "sub": CLIENT, "jti": jti,
                "nbf": 1_800_000_000u64, "iat": 1_800_000_000u64, "exp": 1_800_000_600u64,
            })
        );
        assert!(openssl_verifies(
            jws,
            "rsa2048.pem",
            AssertionAlgorithm::Rs256
        ));
        // Nor by another key.
        assert!(!openssl_verifies(
            jws,
            "other2048.pem",
            AssertionAlgorithm::Rs256
        ));
    }

    #[test]
    fn every_assertion_is_fresh() {
        let clock = Arc::new(ManualClock::new());
        let a = pem_files().clock(clock.clone()).build().unwrap();
        let first = a.sign(&request()).unwrap();
        clock.advance(Duration::from_secs(42));
        let second = a.sign(&request()).unwrap();
        let (c1, c2) = (
            part(first.expose_secret(), 1),
            part(second.expose_secret(), 1),
        );
        assert_ne!(c1["jti"], c2["jti"]);
        assert_eq!(
            c2["iat"].as_u64().unwrap() - c1["iat"].as_u64().unwrap(),
            42
        );
        assert_eq!(
            c2["exp"].as_u64().unwrap() - c2["nbf"].as_u64().unwrap(),
            600
        );
    }

    #[test]
    fn ps256_with_x5t_s256() {
        let a = pem_files()
            .algorithm(AssertionAlgorithm::Ps256)
            .build()
            .unwrap();
        let jws = a.sign(&request()).unwrap();
        let cert = X509::from_pem(&read("rsa2048.pem")).unwrap();
        let s256 = URL_SAFE_NO_PAD.encode(cert.digest(MessageDigest::sha256()).unwrap());
        assert_eq!(
            part(jws.expose_secret(), 0),
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": s256})
        );
        assert!(openssl_verifies(
            jws.expose_secret(),
            "rsa2048.pem",
            AssertionAlgorithm::Ps256
        ));
        // PSS signatures are randomised; PKCS#1 v1.5 verification must not accept them.
        assert!(!openssl_verifies(
            jws.expose_secret(),
            "rsa2048.pem",
            AssertionAlgorithm::Rs256
        ));
    }

    #[test]
    fn x5c_is_the_chain_in_standard_base64_leaf_first() {
        let a = CertificateAssertion::builder(CertificateSource::file(path("chain.pfx")))
            .password(Secret::new(PASSWORD))
            .send_x5c(true)
            .build()
            .unwrap();
        let header = part(a.sign(&request()).unwrap().expose_secret(), 0);
        let x5c: Vec<Vec<u8>> = header["x5c"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| STANDARD.decode(v.as_str().unwrap()).unwrap())
            .collect();
        let der = |name| X509::from_pem(&read(name)).unwrap().to_der().unwrap();
        assert_eq!(x5c, vec![der("leaf.pem"), der("ca.pem")]);
        assert_eq!(header["x5t"], x5t_by_openssl("leaf.pem"));
    }

    #[test]
    fn thumbprint_only_sends_the_given_thumbprint() {
        let hex = sha1_hex("rsa2048.pem");
        let only_key = || {
            CertificateAssertion::builder(CertificateSource::key_file(path("rsa2048.key")))
                .thumbprint(hex.to_lowercase())
        };
        let a = only_key().build().unwrap();
        let jws = a.sign(&request()).unwrap();
        assert_rs256_by(&jws, "rsa2048.pem");
        let e = only_key()
            .algorithm(AssertionAlgorithm::Ps256)
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), Kind::Unsupported);
        let e = only_key().send_x5c(true).build().unwrap_err();
        assert_eq!(e.kind(), Kind::Unsupported);
    }

    #[test]
    fn warns_when_the_certificate_expires_within_30_days() {
        let not_after = ClientCertificate::from_pem(&read("rsa2048.combined.pem"), None, None)
            .unwrap()
            .not_after()
            .unwrap();
        let clock = Arc::new(ManualClock::new());
        clock.set(not_after - Duration::from_secs(10 * 86_400));
        let (built, logs) = LogCapture::capture(|| pem_files().clock(clock.clone()).build());
        built.unwrap();
        assert!(logs.contains("WARN"), "{logs}");
        assert!(logs.contains("expires within 30 days"), "{logs}");
        clock.set(not_after - Duration::from_secs(31 * 86_400));
        let (built, logs) = LogCapture::capture(|| pem_files().clock(clock.clone()).build());
        built.unwrap();
        assert!(!logs.contains("expires within 30 days"), "{logs}");
        clock.set(not_after + Duration::from_secs(1));
        let e = pem_files().clock(clock.clone()).build().unwrap_err();
        assert_eq!(e.kind(), Kind::Expired);
    }

    #[test]
    fn a_certificate_that_expires_while_in_use_stops_signing() {
        let not_after = ClientCertificate::from_pem(&read("rsa2048.combined.pem"), None, None)
            .unwrap()
            .not_after()
            .unwrap();
        let clock = Arc::new(ManualClock::new());
        clock.set(not_after - Duration::from_secs(3600));
        let a = pem_files().clock(clock.clone()).build().unwrap();
        assert!(a.sign(&request()).is_ok());
        clock.set(not_after + Duration::from_secs(1));
        let e = a.sign(&request()).unwrap_err();
        assert_eq!(
            CertificateError::find_in(&e).map(CertificateError::kind),
            Some(Kind::Expired)
        );
    }

    #[test]
    fn changed_files_are_picked_up_and_a_broken_change_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("bot.pem"), dir.path().join("bot.key"));
        copy("rsa2048.pem", &cert);
        copy("rsa2048.key", &key);
        let a = CertificateAssertion::builder(CertificateSource::pem_files(&cert, &key))
            .build()
            .unwrap();
        let first = a.sign(&request()).unwrap();
        assert_eq!(
            part(first.expose_secret(), 0)["x5t"],
            x5t_by_openssl("rsa2048.pem")
        );

        // Half a rotation: the new certificate with the old key does not load.
        copy("other2048.pem", &cert);
        let (jws, logs) = LogCapture::capture(|| a.sign(&request()).unwrap());
        assert_rs256_by(&jws, "rsa2048.pem");
        assert!(
            logs.contains("could not be reloaded; keeping the current one"),
            "{logs}"
        );
        assert!(logs.contains("key_mismatch"), "{logs}");
        // The broken state is not re-parsed (nor re-logged) on every request.
        let (_, logs) = LogCapture::capture(|| a.sign(&request()).unwrap());
        assert!(!logs.contains("reloaded"), "{logs}");

        // The rotation completes: the next assertion uses the new certificate.
        copy("other2048.key", &key);
        let (jws, logs) = LogCapture::capture(|| a.sign(&request()).unwrap());
        assert_rs256_by(&jws, "other2048.pem");
        assert!(logs.contains("client certificate reloaded"), "{logs}");
        assert_eq!(a.thumbprints().sha1_hex(), sha1_hex("other2048.pem"));
        assert!(!logs.contains("PRIVATE KEY"));
    }

    #[tokio::test]
    async fn on_rejected_reloads_even_without_watching() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bot.pem");
        copy("rsa2048.combined.pem", &file);
        let a = CertificateAssertion::builder(CertificateSource::file(&file))
            .watch_files(false)
            .build()
            .unwrap();
        std::fs::write(
            &file,
            [read("other2048.pem"), read("other2048.key")].concat(),
        )
        .unwrap();
        let jws = a.assertion(&request()).await.unwrap();
        assert_eq!(
            part(jws.expose_secret(), 0)["x5t"],
            x5t_by_openssl("rsa2048.pem"),
            "not watching: the old certificate until Entra complains"
        );
        let rejected = EntraError::from_body(
            401,
            br#"{"error":"invalid_client","error_codes":[700027]}"#,
            None,
        )
        .unwrap();
        assert!(a.on_rejected(&rejected).await);
        let jws = a.assertion(&request()).await.unwrap();
        assert_eq!(
            part(jws.expose_secret(), 0)["x5t"],
            x5t_by_openssl("other2048.pem")
        );
        // A reload that fails reports that no retry is worthwhile.
        std::fs::write(&file, b"garbage").unwrap();
        assert!(!a.on_rejected(&rejected).await);
        assert_eq!(a.thumbprints().sha1_hex(), sha1_hex("other2048.pem"));
    }

    #[tokio::test]
    async fn in_memory_sources_have_nothing_to_reload() {
        let a =
            CertificateAssertion::builder(CertificateSource::pkcs12(read("rsa2048.nopass.pfx")))
                .build()
                .unwrap();
        let rejected = EntraError::from_body(
            401,
            br#"{"error":"invalid_client","error_codes":[7000274]}"#,
            None,
        )
        .unwrap();
        assert!(!a.on_rejected(&rejected).await);
        assert_eq!(a.kind(), "certificate");
    }

    #[test]
    fn from_config_maps_every_shape() {
        let built = |c: &CertificateConfig| {
            CertificateAssertion::from_config(c)
                .unwrap()
                .build()
                .unwrap()
        };
        let hex = sha1_hex("rsa2048.pem");
        let mut c = CertificateConfig::default();
        c.certificate_path = Some(path("rsa2048.pfx"));
        c.password = Some(Secret::new(PASSWORD));
        c.thumbprint = Some(hex.clone());
        c.algorithm = AssertionAlgorithm::Ps256;
        c.send_x5c = true;
        let a = built(&c);
        let header = part(a.sign(&request()).unwrap().expose_secret(), 0);
        assert_eq!(header["alg"], "PS256");
        assert!(header["x5c"].is_array());

        let mut c = CertificateConfig::default();
        c.base64_pfx = Some(Secret::new(
            String::from_utf8(read("rsa2048.pfx.b64")).unwrap(),
        ));
        c.password = Some(Secret::new(PASSWORD));
        let a = built(&c);
        assert_eq!(a.thumbprints().sha1_hex(), hex);

        let mut c = CertificateConfig::default();
        c.key_path = Some(path("rsa2048.key"));
        c.thumbprint = Some(hex.clone());
        let a = built(&c);
        assert_eq!(a.thumbprints().sha1_hex(), hex);

        let mut c = CertificateConfig::default();
        c.thumbprint = Some(hex);
        let e = CertificateAssertion::from_config(&c).unwrap_err();
        assert!(
            matches!(e, Error::Config { ref key, .. } if key == "certificate_path"),
            "{e:?}"
        );
    }

    #[test]
    fn errors_convert_to_the_core_error() {
        let mut c = CertificateConfig::default();
        c.certificate_path = Some(path("rsa2048.pfx"));
        c.password = Some(Secret::new("wrong"));
        let e: Error = CertificateAssertion::from_config(&c)
            .unwrap()
            .build()
            .unwrap_err()
            .into();
        assert_eq!(e.kind(), botauth_core::ErrorKind::Credential);
        assert_eq!(
            CertificateError::find_in(&e).map(CertificateError::kind),
            Some(Kind::WrongPassword)
        );
        assert!(e.to_string().contains("cannot be loaded"), "{e}");
        let mut c = CertificateConfig::default();
        c.certificate_path = Some(path("rsa2048.combined.pem"));
        c.thumbprint = Some(sha1_hex("other2048.pem"));
        let e: Error = CertificateAssertion::from_config(&c)
            .unwrap()
            .build()
            .unwrap_err()
            .into();
        assert!(
            matches!(e, Error::Config { ref key, .. } if key == "thumbprint"),
            "{e:?}"
        );
    }

    /// Issue 12: load errors name the key as the user's dialect spells it.
    #[test]
    fn load_errors_name_the_dialect_key() {
        let load = |vars: Vec<(&str, String)>| {
            let config = botauth_core::BotAuthConfig::from_vars(vars).unwrap();
            let botauth_core::config::CredentialConfig::Certificate(cert) = &config.credentials[0]
            else {
                panic!("{config:?}")
            };
            CertificateAssertion::from_config(cert)
                .unwrap()
                .build()
                .map(|_| ())
                .map_err(|e| e.for_config(cert))
        };
        let agents = |extra: Vec<(&'static str, String)>| {
            let mut vars = vec![
                (
                    "Connections__ServiceConnection__Settings__AuthType",
                    "Certificate".to_owned(),
                ),
                (
                    "Connections__ServiceConnection__Settings__ClientId",
                    "app".to_owned(),
                ),
                (
                    "Connections__ServiceConnection__Settings__TenantId",
                    "contoso.com".to_owned(),
                ),
            ];
            vars.extend(extra);
            vars
        };
        let missing = load(agents(vec![(
            "Connections__ServiceConnection__Settings__CertPemFile",
            "/nonexistent/bot.pem".to_owned(),
        )]))
        .unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("the certificate configured by Connections__ServiceConnection__Settings__CertPemFile"),
            "{missing}"
        );
        assert_eq!(
            CertificateError::find_in(&missing).map(CertificateError::kind),
            Some(Kind::Io)
        );
        let key = load(agents(vec![
            (
                "Connections__ServiceConnection__Settings__CertPemFile",
                path("rsa2048.pem").display().to_string(),
            ),
            (
                "Connections__ServiceConnection__Settings__CertKeyFile",
                "/nonexistent/bot.key".to_owned(),
            ),
        ]))
        .unwrap_err();
        assert!(
            key.to_string()
                .contains("Connections__ServiceConnection__Settings__CertKeyFile"),
            "{key}"
        );
        let password = load(vec![
            ("AzureAd__ClientId", "app".to_owned()),
            ("AzureAd__TenantId", "contoso.com".to_owned()),
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "Path".to_owned(),
            ),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                path("rsa2048.pfx").display().to_string(),
            ),
            (
                "AzureAd__ClientCredentials__0__CertificatePassword",
                "wrong".to_owned(),
            ),
        ])
        .unwrap_err();
        assert!(
            password
                .to_string()
                .contains("AzureAd__ClientCredentials__0__CertificatePassword"),
            "{password}"
        );
        let thumbprint = load(vec![
            ("MicrosoftAppId", "app".to_owned()),
            ("MicrosoftAppTenantId", "contoso.com".to_owned()),
            ("MicrosoftAppType", "SingleTenant".to_owned()),
            (
                "CertificatePath",
                path("rsa2048.combined.pem").display().to_string(),
            ),
            ("CertificateThumbprint", sha1_hex("other2048.pem")),
        ])
        .unwrap_err();
        assert!(
            matches!(thumbprint, Error::Config { ref key, .. } if key == "CertificateThumbprint"),
            "{thumbprint:?}"
        );
    }
}
