//! Service Fabric: HTTPS to the cluster's identity endpoint, whose certificate is not publicly
//! trusted and is instead pinned by `IDENTITY_SERVER_THUMBPRINT`.
//!
//! The pin is checked **inside the TLS handshake** (an OpenSSL verify callback comparing the SHA-1
//! of the server's leaf certificate), so a server with any other certificate never receives the
//! `secret` header. reqwest with native-tls cannot express "trust exactly this certificate", and
//! "accept any certificate" would hand the secret to whoever answers; hence this small, separate
//! HTTP/1.1 client (hyper's connection API over tokio-openssl).

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use botauth_core::{Error, Result};
use botauth_http::HttpOptions;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use openssl::hash::MessageDigest;
use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use crate::request::{Header, IdParams, Spec};
use crate::source::{ManagedIdentitySource, env};
use crate::transport::{Method, Request, Response, SendError};

/// `GET $IDENTITY_ENDPOINT?api-version=2019-07-01-preview&resource=R[&client_id|mi_res_id]`,
/// `secret: $IDENTITY_HEADER`.
pub(crate) const SPEC: Spec = Spec {
    source: ManagedIdentitySource::ServiceFabric,
    api_version: Some("2019-07-01-preview"),
    ids: IdParams {
        client_id: Some("client_id"),
        object_id: None,
        resource_id: Some("mi_res_id"),
    },
    header: Header::Secret {
        name: "secret",
        variable: env::IDENTITY_HEADER,
        required_by: "Service Fabric",
    },
};

/// Sends `request` over TLS to a server whose leaf certificate's SHA-1 is `thumbprint`.
pub(crate) async fn send_pinned(
    request: &Request,
    thumbprint: [u8; 20],
    options: &HttpOptions,
    now: std::time::SystemTime,
) -> Result<Response, SendError> {
    let timeout = options.timeout;
    match tokio::time::timeout(timeout, exchange(request, thumbprint, options, now)).await {
        Ok(result) => result,
        Err(_) => Err(SendError::Timeout(timeout)),
    }
}

async fn exchange(
    request: &Request,
    thumbprint: [u8; 20],
    options: &HttpOptions,
    now: std::time::SystemTime,
) -> Result<Response, SendError> {
    let endpoint = request.endpoint();
    let url = &request.url;
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let addr = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tcp = match tokio::time::timeout(
        options.connect_timeout,
        TcpStream::connect((addr.as_str(), port)),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(SendError::Connect(Arc::new(e))),
        Err(_) => {
            return Err(SendError::Connect(Arc::new(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timed out",
            ))));
        }
    };

    let mismatch = Arc::new(AtomicBool::new(false));
    let ssl = pinned_ssl(&host, thumbprint, Arc::clone(&mismatch))
        .map_err(|e| SendError::Other(Error::credential_with_source("could not set up TLS", e)))?;
    let mut tls = SslStream::new(ssl, tcp)
        .map_err(|e| SendError::Other(Error::credential_with_source("could not set up TLS", e)))?;
    if let Err(e) = Pin::new(&mut tls).connect().await {
        if mismatch.load(Ordering::SeqCst) {
            return Err(SendError::Other(Error::credential(format!(
                "the Service Fabric identity endpoint {endpoint} presented a TLS certificate whose \
                 thumbprint is not IDENTITY_SERVER_THUMBPRINT: nothing was sent. Check that \
                 IDENTITY_ENDPOINT and IDENTITY_SERVER_THUMBPRINT come from the same cluster"
            ))));
        }
        return Err(SendError::Other(Error::Unavailable {
            endpoint,
            status: None,
            retry_after: None,
            source: Some(Arc::new(e)),
        }));
    }

    let unavailable = |e: hyper::Error| {
        SendError::Other(Error::Unavailable {
            endpoint: request.endpoint(),
            status: None,
            retry_after: None,
            source: Some(Arc::new(e)),
        })
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(unavailable)?;
    let driver = tokio::spawn(async move {
        // The connection ends with the exchange; its error, if any, surfaces through `sender`.
        let _ = connection.await;
    });

    let path_and_query = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    let mut builder = http::Request::builder()
        .method(match request.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
        })
        .uri(path_and_query)
        .header(http::header::HOST, url.authority())
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("botauth/", env!("CARGO_PKG_VERSION")),
        );
    for (name, value) in &request.headers {
        let mut value = http::HeaderValue::from_str(value.expose_secret()).map_err(|_| {
            SendError::Other(Error::config(
                *name,
                "the value cannot be sent as an HTTP header (it contains control characters)",
            ))
        })?;
        value.set_sensitive(true);
        builder = builder.header(*name, value);
    }
    let http_request = builder.body(Empty::<Bytes>::new()).map_err(|e| {
        SendError::Other(Error::credential_with_source(
            "could not build the request",
            e,
        ))
    })?;
    let response = sender
        .send_request(http_request)
        .await
        .map_err(unavailable)?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let retry_after = botauth_http::internal::retry_after(response.headers(), now);
    let www_authenticate = header("www-authenticate");
    let limit = options.max_response_bytes;
    let body = Limited::new(response.into_body(), limit)
        .collect()
        .await
        .map_err(|_| {
            SendError::Other(Error::InvalidResponse {
                endpoint: request.endpoint(),
                status,
                message: format!("the response body is larger than {limit} bytes or was cut off"),
            })
        })?
        .to_bytes()
        .to_vec();
    driver.abort();
    Ok(Response {
        status,
        retry_after,
        www_authenticate,
        body,
    })
}

/// An SSL session that accepts exactly the certificate with SHA-1 `thumbprint` as the server's
/// leaf, whatever its issuer, name or dates: the pin replaces the public PKI for this endpoint.
fn pinned_ssl(
    host: &str,
    thumbprint: [u8; 20],
    mismatch: Arc<AtomicBool>,
) -> Result<openssl::ssl::Ssl, openssl::error::ErrorStack> {
    let mut builder = SslConnector::builder(SslMethod::tls_client())?;
    builder.set_verify_callback(SslVerifyMode::PEER, move |_preverified, ctx| {
        // Called for every certificate of the chain, root first. Only the leaf (depth 0) is
        // compared; the others are irrelevant once the leaf is pinned.
        if ctx.error_depth() > 0 {
            return true;
        }
        let matches = ctx
            .current_cert()
            .and_then(|cert| cert.digest(MessageDigest::sha1()).ok())
            .is_some_and(|digest| digest.as_ref() == thumbprint.as_slice());
        if !matches {
            mismatch.store(true, Ordering::SeqCst);
        }
        matches
    });
    let connector = builder.build();
    let mut config = connector.configure()?;
    // The pin authenticates the server; its name is irrelevant (clusters use IP addresses).
    config.set_verify_hostname(false);
    config.set_use_server_name_indication(false);
    config.into_ssl(host)
}
