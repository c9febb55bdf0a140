//! [`CertificateAssertion`]: the client assertion JWT of PROTOCOL §3, signed with OpenSSL, from
//! a certificate that is reloaded when its files change.

use std::fmt;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

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

use crate::certificate::{CertificateSource, ClientCertificate, Stamp};
use crate::error::{CertificateError, CertificateErrorKind as Kind};
use crate::thumbprint::Thumbprints;

/// An assertion is valid for ten minutes (PROTOCOL §3).
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

/// Signs a fresh client assertion for every token request (PROTOCOL §3): header `alg` + `typ` +
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
    pub fn from_config(config: &CertificateConfig) -> Result<CertificateAssertionBuilder> {
        let source = match (
            &config.base64_pfx,
            &config.certificate_path,
            &config.key_path,
        ) {
            (Some(b64), _, _) => CertificateSource::base64_pkcs12(b64.clone()),
            (None, Some(cert), Some(key)) => CertificateSource::pem_files(cert, key),
            (None, Some(cert), None) => CertificateSource::file(cert),
            (None, None, Some(key)) => CertificateSource::key_file(key),
            (None, None, None) => {
                return Err(Error::config(
                    "certificate_path",
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
        if let Some(t) = config.thumbprint.as_deref().filter(|t| !t.trim().is_empty()) {
            builder = builder.thumbprint(t);
        }
        Ok(builder)
    }

    fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// The thumbprints of the certificate in use.
    pub fn thumbprints(&self) -> Thumbprints {
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
        let now = self
            .clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| Error::credential("the system clock is before 1970"))?
            .as_secs();
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
        let signature = sign_rs(
            &loaded.certificate,
            self.settings.algorithm,
            jws.as_bytes(),
        )?;
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
        let reason = format!("Entra rejected the assertion (AADSTS{})", error.code().unwrap_or(0));
        self.reload(&reason)
    }

    fn kind(&self) -> &'static str {
        "certificate"
    }
}
