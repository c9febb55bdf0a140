//! One HTTP exchange with a managed identity endpoint, over plain reqwest or (Service Fabric) over
//! a TLS connection pinned to a certificate thumbprint.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth_core::{Error, ErrorSource, Result, Secret};
use botauth_http::HttpOptions;
use botauth_http::internal as token_http;
use url::Url;

/// The HTTP method of a managed identity request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Post,
}

/// A request to a managed identity endpoint. Header values may be secrets (`X-IDENTITY-HEADER`,
/// `secret`, the Arc key), so they are held as [`Secret`]s.
#[derive(Clone)]
pub(crate) struct Request {
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) headers: Vec<(&'static str, Secret)>,
    /// A form body (Cloud Shell).
    pub(crate) form: Option<String>,
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("url", &token_http::display_endpoint(self.url.as_str()))
            .field(
                "headers",
                &self.headers.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Request {
    pub(crate) fn get(url: Url) -> Self {
        Request {
            method: Method::Get,
            url,
            headers: Vec::new(),
            form: None,
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: impl Into<Secret>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The endpoint as errors and logs name it: no query string (it carries identity ids).
    pub(crate) fn endpoint(&self) -> String {
        token_http::display_endpoint(self.url.as_str())
    }
}

/// What the endpoint answered.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) www_authenticate: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Why no answer came back.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be made (refused, unreachable, connect timeout): no endpoint there.
    Connect(ErrorSource),
    /// Connected, but the answer did not come in time.
    Timeout(Duration),
    /// Anything else, already mapped.
    Other(Error),
}

/// Builds the HTTP client for managed identity endpoints: botauth's client (bounded timeouts, no
/// redirects) with **no proxy** whatever the environment says — these endpoints are on the host
/// itself and a proxy would see the identity secret.
pub(crate) fn build_client(options: &HttpOptions) -> Result<reqwest::Client> {
    botauth_http::internal::build_client_with_env(options, &|_| None)
}

/// Sends `request` with reqwest.
pub(crate) async fn send(
    client: &reqwest::Client,
    options: &HttpOptions,
    request: &Request,
    now: SystemTime,
) -> Result<Response, SendError> {
    let mut builder = match request.method {
        Method::Get => client.get(request.url.clone()),
        Method::Post => client.post(request.url.clone()),
    };
    for (name, value) in &request.headers {
        let mut value =
            reqwest::header::HeaderValue::from_str(value.expose_secret()).map_err(|_| {
                SendError::Other(Error::config(
                    *name,
                    "the value cannot be sent as an HTTP header (it contains control characters)",
                ))
            })?;
        value.set_sensitive(true);
        builder = builder.header(*name, value);
    }
    if let Some(form) = &request.form {
        builder = builder
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.clone());
    }
    let endpoint = request.endpoint();
    let response = builder
        .send()
        .await
        .map_err(|e| classify(&endpoint, e, options))?;
    let status = response.status().as_u16();
    let retry_after = token_http::retry_after(response.headers(), now);
    let www_authenticate = response
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = token_http::read_body(
        response,
        &endpoint,
        options.max_response_bytes,
        options.timeout,
    )
    .await
    .map_err(|e| match e {
        Error::Timeout { after, .. } => SendError::Timeout(after),
        other => SendError::Other(other),
    })?;
    Ok(Response {
        status,
        retry_after,
        www_authenticate,
        body,
    })
}

fn classify(endpoint: &str, e: reqwest::Error, options: &HttpOptions) -> SendError {
    if e.is_connect() {
        SendError::Connect(Arc::new(e.without_url()))
    } else if e.is_timeout() {
        SendError::Timeout(options.timeout)
    } else {
        SendError::Other(token_http::transport_error(endpoint, e, options.timeout))
    }
}
