//! https for the sandbox: a local certificate authority kept in a state directory, the server
//! certificate it issues for the loopback names at every start, and the listener that serves
//! https and plain http on one port.
//!
//! Why a CA and not a self-signed server certificate: Microsoft's clients (MSAL Python, msal-node)
//! refuse an `http` authority, and they trust additional roots only as CA files
//! (`REQUESTS_CA_BUNDLE`, `NODE_EXTRA_CA_CERTS`, `SSL_CERT_FILE`). A CA that outlives the sandbox
//! process lets a user trust it once, while the short-lived server certificate is made anew.
//!
//! Why one port for both schemes: the managed identity endpoints the sandbox plays are plain http
//! in Azure (IMDS, App Service, Azure Arc, Cloud Shell, Azure ML), while Entra ID, the Bot Service
//! and the Bot Connector are https. The first byte of a connection tells them apart (a TLS
//! handshake record starts with 0x16, an HTTP request with a method's letter), so the printed
//! URLs differ only in their scheme.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, PKeyRef, Private};
use openssl::ssl::{Ssl, SslAcceptor, SslMethod};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509NameBuilder, X509NameRef};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_openssl::SslStream;

/// How long a connection may take to show its first byte and finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
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

// ------------------------------------------------------------------------------------------------
// The listener.

/// Whether a connection came over TLS: the connect info of the sandbox's router.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer {
    pub(crate) tls: bool,
}

/// What a listener accepts.
pub(crate) enum Mode {
    /// Plain http only.
    Plain,
    /// https (a connection whose first byte starts a TLS handshake) and plain http.
    Both(SslAcceptor),
    /// https only (the Service Fabric endpoint).
    TlsOnly(SslAcceptor),
}

/// A connection after its TLS handshake, if any.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<SslStream<TcpStream>>),
}

/// An axum listener that sorts and handshakes each connection in a task of its own, so a slow
/// or silent client never holds up the others.
pub(crate) struct Listener {
    ready: mpsc::Receiver<(Stream, Peer)>,
    sorter: JoinHandle<()>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.sorter.abort();
    }
}

impl Listener {
    pub(crate) fn new(tcp: TcpListener, mode: Mode) -> Self {
        let (tx, ready) = mpsc::channel(64);
        let mode = std::sync::Arc::new(mode);
        let sorter = tokio::spawn(async move {
            loop {
                let (stream, _) = match tcp.accept().await {
                    Ok(pair) => pair,
                    Err(error) => {
                        // Out of file descriptors and the like: wait rather than spin.
                        tracing::debug!(%error, "botauth sandbox accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let (tx, mode) = (tx.clone(), std::sync::Arc::clone(&mode));
                tokio::spawn(async move {
                    let sorted = tokio::time::timeout(HANDSHAKE_TIMEOUT, sort(stream, &mode)).await;
                    match sorted {
                        Ok(Ok(Some((stream, tls)))) => {
                            let _ = tx.send((stream, Peer { tls })).await;
                        }
                        Ok(Ok(None)) => {}
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "botauth sandbox TLS handshake failed");
                        }
                        Err(_) => tracing::debug!("botauth sandbox connection set-up timed out"),
                    }
                });
            }
        });
        Self { ready, sorter }
    }
}

/// `None`: the client closed the connection, or spoke plain http where only https is served.
async fn sort(stream: TcpStream, mode: &Mode) -> io::Result<Option<(Stream, bool)>> {
    let acceptor = match mode {
        Mode::Plain => return Ok(Some((Stream::Plain(stream), false))),
        Mode::Both(acceptor) | Mode::TlsOnly(acceptor) => acceptor,
    };
    let mut first = [0_u8; 1];
    if stream.peek(&mut first).await? == 0 {
        return Ok(None);
    }
    // 0x16: a TLS handshake record (RFC 8446 §5.1).
    if first[0] != 0x16 {
        return Ok(match mode {
            Mode::Both(_) => Some((Stream::Plain(stream), false)),
            _ => None,
        });
    }
    let ssl = Ssl::new(acceptor.context()).map_err(io::Error::other)?;
    let mut tls = SslStream::new(ssl, stream).map_err(io::Error::other)?;
    Pin::new(&mut tls)
        .accept()
        .await
        .map_err(io::Error::other)?;
    Ok(Some((Stream::Tls(Box::new(tls)), true)))
}

impl axum::serve::Listener for Listener {
    type Io = Stream;
    type Addr = Peer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The sorter only stops when this listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Peer { tls: false })
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, Listener>> for Peer {
    fn connect_info(stream: axum::serve::IncomingStream<'_, Listener>) -> Self {
        *stream.remote_addr()
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::testkit::{BOT_SCOPE, Reply, secret_form, send};
    use crate::{DEMO_CLIENT_ID, DEMO_TENANT_ID, Sandbox};

    async fn tls_sandbox() -> (Sandbox, reqwest::Client) {
        let ca = LocalCa::generate().unwrap();
        let root = reqwest::Certificate::from_pem(ca.certificate_pem()).unwrap();
        let client = reqwest::Client::builder()
            .add_root_certificate(root)
            .build()
            .unwrap();
        let sandbox = Sandbox::builder().tls(ca).start().await.unwrap();
        (sandbox, client)
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish()
    }

    /// POSTs `pairs` form-encoded with `client`, which trusts the sandbox's CA.
    async fn post(client: &reqwest::Client, url: &str, pairs: &[(&str, &str)]) -> Reply {
        send(
            client
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(pairs)),
        )
        .await
    }

    #[tokio::test]
    async fn https_endpoints_are_named_with_the_scheme_and_host_the_client_used() {
        let (sandbox, client) = tls_sandbox().await;
        let port = sandbox.addr().port();
        assert_eq!(sandbox.url(), format!("https://127.0.0.1:{port}"));
        assert_eq!(sandbox.imds_host(), format!("http://127.0.0.1:{port}"));
        for host in ["127.0.0.1", "localhost"] {
            let base = format!("https://{host}:{port}");
            let url = format!("{base}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration");
            let reply = send(client.get(&url)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let metadata = reply.json();
            assert_eq!(
                metadata["token_endpoint"],
                format!("{base}/{DEMO_TENANT_ID}/oauth2/v2.0/token")
            );
            assert_eq!(metadata["issuer"], format!("{base}/{DEMO_TENANT_ID}/v2.0"));
            assert_eq!(
                metadata["jwks_uri"],
                format!("{base}/{DEMO_TENANT_ID}/discovery/v2.0/keys")
            );
            let bot = send(client.get(format!(
                "{base}/botservice/v1/.well-known/openidconfiguration"
            )))
            .await
            .json();
            assert_eq!(
                bot["jwks_uri"],
                format!("{base}/botservice/v1/.well-known/keys")
            );
            // The advertised endpoints answer.
            let keys = send(client.get(metadata["jwks_uri"].as_str().unwrap())).await;
            assert_eq!(keys.status, 200);
            let token = send(
                client
                    .post(metadata["token_endpoint"].as_str().unwrap())
                    .header(
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )
                    .body(form(&secret_form())),
            )
            .await;
            assert_eq!(token.status, 200, "{}", token.text);
        }
        // The v1 document names the v1 endpoints.
        let v1 = send(client.get(format!(
            "{}/{DEMO_TENANT_ID}/.well-known/openid-configuration",
            sandbox.url()
        )))
        .await
        .json();
        assert_eq!(
            v1["token_endpoint"],
            format!("{}/{DEMO_TENANT_ID}/oauth2/token", sandbox.url())
        );
        assert_eq!(
            v1["issuer"],
            format!("https://sts.windows.net/{DEMO_TENANT_ID}/")
        );
        let keys = send(client.get(v1["jwks_uri"].as_str().unwrap())).await;
        assert_eq!(keys.status, 200, "{}", keys.text);
    }

    #[tokio::test]
    async fn plain_http_is_served_on_the_same_port_for_the_managed_identity_endpoints() {
        let (sandbox, _) = tls_sandbox().await;
        let url = format!(
            "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://api.botframework.com",
            sandbox.imds_host()
        );
        let reply = send(reqwest::Client::new().get(&url).header("Metadata", "true")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // Metadata over plain http names plain http endpoints: what the client can reach.
        let metadata = send(reqwest::Client::new().get(format!(
            "{}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration",
            sandbox.imds_host()
        )))
        .await
        .json();
        assert!(
            metadata["token_endpoint"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }

    #[tokio::test]
    async fn a_client_that_does_not_trust_the_ca_is_refused_in_the_handshake() {
        let (sandbox, _) = tls_sandbox().await;
        let error = reqwest::Client::new()
            .get(sandbox.bot_service_metadata_url())
            .send()
            .await
            .unwrap_err();
        assert!(error.is_connect(), "{error:?}");
        assert_eq!(sandbox.requests().len(), 0);
    }

    #[tokio::test]
    async fn a_silent_connection_does_not_hold_up_the_others() {
        let (sandbox, client) = tls_sandbox().await;
        let _silent = TcpStream::connect(sandbox.addr()).await.unwrap();
        let reply = send(client.get(sandbox.bot_service_metadata_url())).await;
        assert_eq!(reply.status, 200);
    }

    #[tokio::test]
    async fn instance_discovery_vouches_for_the_host_the_client_used() {
        let (sandbox, client) = tls_sandbox().await;
        let port = sandbox.addr().port();
        let authorize = format!("https://localhost:{port}/{DEMO_TENANT_ID}/oauth2/v2.0/authorize");
        let url = format!(
            "https://localhost:{port}/common/discovery/instance?api-version=1.1&authorization_endpoint={}",
            form_urlencoded::byte_serialize(authorize.as_bytes()).collect::<String>()
        );
        let body = send(client.get(&url)).await.json();
        let host = format!("localhost:{port}");
        assert_eq!(
            body,
            json!({
                "tenant_discovery_endpoint": format!("https://{host}/{DEMO_TENANT_ID}/v2.0/.well-known/openid-configuration"),
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            })
        );
        let metadata = send(client.get(body["tenant_discovery_endpoint"].as_str().unwrap())).await;
        assert_eq!(metadata.status, 200);
        // Without an authorization endpoint the tenant is `common`; without api-version, 400.
        let body = send(client.get(format!(
            "{}/common/discovery/instance?api-version=1.1",
            sandbox.url()
        )))
        .await
        .json();
        assert!(
            body["tenant_discovery_endpoint"]
                .as_str()
                .unwrap()
                .ends_with("/common/v2.0/.well-known/openid-configuration")
        );
        send(client.get(format!("{}/common/discovery/instance", sandbox.url())))
            .await
            .assert_entra_error(400, "invalid_request", 900_144);
    }

    #[tokio::test]
    async fn v1_token_endpoint_takes_a_resource() {
        let (sandbox, client) = tls_sandbox().await;
        let endpoint = format!("{}/{DEMO_TENANT_ID}/oauth2/token", sandbox.url());
        let mut pairs: Vec<(&str, &str)> = secret_form()
            .into_iter()
            .filter(|(n, _)| *n != "scope")
            .collect();
        pairs.push(("resource", "https://api.botframework.com"));
        let reply = post(&client, &endpoint, &pairs).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body = reply.json();
        assert_eq!(body["resource"], "https://api.botframework.com");
        assert!(body["expires_on"].as_str().unwrap().parse::<i64>().is_ok());
        let claims = sandbox
            .verify_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims["aud"], "https://api.botframework.com");
        // v1 needs `resource`; a scope alone is not it.
        let scope_only: Vec<(&str, &str)> = secret_form();
        post(&client, &endpoint, &scope_only)
            .await
            .assert_entra_error(400, "invalid_request", 900_144);
        pairs.retain(|(n, _)| *n != "resource");
        pairs.push(("resource", "https://graph.microsoft.com"));
        post(&client, &endpoint, &pairs)
            .await
            .assert_entra_error(400, "invalid_scope", 1_002_012);
    }

    #[tokio::test]
    async fn fields_and_parameters_msal_adds_are_tolerated() {
        let (sandbox, client) = tls_sandbox().await;
        let mut pairs = secret_form();
        pairs.extend([
            ("client_info", "1"),
            ("x-client-SKU", "MSAL.Python"),
            ("x-client-Ver", "1.39.0"),
            ("x-client-OS", "linux"),
            ("x-client-CPU", "x64"),
            ("x-ms-lib-capability", "retry-after, h429"),
            ("x-client-current-telemetry", "4|730,2|"),
            ("x-client-last-telemetry", "4|0|||"),
        ]);
        let url = format!(
            "{}?client-request-id=0f6c8a3e-1111-4444-8888-123456789abc",
            sandbox.token_endpoint(DEMO_TENANT_ID)
        );
        let reply = send(
            client
                .post(&url)
                .header(
                    "content-type",
                    "application/x-www-form-urlencoded;charset=utf-8",
                )
                .body(form(&pairs)),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let body: Value = reply.json();
        let claims = sandbox
            .verify_access_token(body["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims["appid"], DEMO_CLIENT_ID);
        assert_eq!(claims["aud"], BOT_SCOPE.trim_end_matches("/.default"));
    }

    #[tokio::test]
    async fn an_assertion_is_judged_against_the_endpoint_as_the_client_addressed_it() {
        use crate::jwt::{Alg, SigningKey, sign_jws, x5t};
        let (sandbox, client) = tls_sandbox().await;
        let cert = SigningKey::generate("aud test").unwrap();
        sandbox.register_app(
            crate::AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
                .with_certificate_der(cert.cert_der()),
        );
        let port = sandbox.addr().port();
        let endpoint = |host: &str, path: &str| {
            format!("https://{host}:{port}/{DEMO_TENANT_ID}/oauth2/{path}")
        };
        let assertion = |aud: &str| {
            let now = crate::clock::unix_now();
            let claims = json!({"aud": aud, "iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID,
                "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 600});
            let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(cert.cert_der())});
            sign_jws(&header, &claims, Alg::Rs256, cert.key()).unwrap()
        };
        let request = |posted_to: String, aud: String| {
            let client = client.clone();
            async move {
                let signed = assertion(&aud);
                let pairs = [
                    ("grant_type", "client_credentials"),
                    ("client_id", DEMO_CLIENT_ID),
                    ("scope", BOT_SCOPE),
                    ("client_assertion_type", crate::assertion::JWT_BEARER),
                    ("client_assertion", signed.as_str()),
                ];
                post(&client, &posted_to, &pairs).await
            }
        };
        // Posted to localhost: the v2 and v1 forms on localhost are the audience.
        for aud in [
            endpoint("localhost", "v2.0/token"),
            endpoint("localhost", "token"),
        ] {
            let reply = request(endpoint("localhost", "v2.0/token"), aud).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        // The same endpoint under another name, or over plain http, is another audience.
        request(
            endpoint("localhost", "v2.0/token"),
            endpoint("127.0.0.1", "v2.0/token"),
        )
        .await
        .assert_entra_error(401, "invalid_client", 700_023);
        let plain = format!("http://127.0.0.1:{port}/{DEMO_TENANT_ID}/oauth2/v2.0/token");
        request(endpoint("127.0.0.1", "v2.0/token"), plain)
            .await
            .assert_entra_error(401, "invalid_client", 700_023);
    }

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
