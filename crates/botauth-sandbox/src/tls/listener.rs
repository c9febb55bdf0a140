//! The listener that serves https and plain http on one port (the first byte of a connection
//! tells them apart), and https only for the Service Fabric endpoint.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use openssl::ssl::{Ssl, SslAcceptor};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_openssl::SslStream;

/// How long a connection may take to show its first byte and finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    use crate::tls::ca::LocalCa;
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
}
