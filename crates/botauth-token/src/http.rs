//! HTTP plumbing shared by every botauth client: timeouts, bounded bodies, `Retry-After`,
//! the https-or-loopback rule, and mapping transport failures to [`Error`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth_core::{Error, Result};
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Limits for one HTTP exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Time allowed to establish a connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange (connect, send, receive).
    pub timeout: Duration,
    /// The largest response body accepted; a larger one is an `InvalidResponse` error.
    pub max_response_bytes: usize,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_response_bytes: 256 * 1024,
        }
    }
}

impl HttpOptions {
    /// Sets the connect timeout.
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Sets the overall timeout.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets the response size limit.
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }
}

/// The `x-client-SKU` botauth sends.
pub const CLIENT_SKU: &str = "botauth.rust";
/// The `x-client-Ver` botauth sends.
pub const CLIENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds the HTTP client botauth uses for identity endpoints: timeouts from `options`, and no
/// redirects (a redirect would carry a secret or an assertion to another host).
pub fn build_client(options: &HttpOptions) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("botauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::credential_with_source("could not build the HTTP client (TLS setup failed?)", e)
        })
}

/// Checks an endpoint base URL: `https`, or plain `http` for loopback hosts only (local development
/// and tests; PROTOCOL §2). Returns the URL without a trailing slash. `key` names the setting in
/// errors. The same rule as the configuration readers apply: one implementation.
pub fn validate_endpoint(value: &str, key: &str) -> Result<String> {
    botauth_core::config::check_endpoint_url(key, value)
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (measured against `now`).
pub fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// The URL without query string: what errors and logs name (queries may carry identifiers).
pub fn display_endpoint(url: &str) -> String {
    url.split(['?', '#']).next().unwrap_or(url).to_owned()
}

/// Maps a transport failure of a request to `endpoint` into an [`Error`].
pub fn transport_error(endpoint: &str, err: reqwest::Error, timeout: Duration) -> Error {
    if err.is_timeout() {
        Error::Timeout {
            endpoint: display_endpoint(endpoint),
            after: timeout,
        }
    } else {
        Error::Unavailable {
            endpoint: display_endpoint(endpoint),
            status: None,
            retry_after: None,
            // Strip the URL: reqwest errors print it, and ours is already in the message.
            source: Some(Arc::new(err.without_url())),
        }
    }
}

/// Reads a response body, refusing more than `limit` bytes.
pub async fn read_body(
    mut response: reqwest::Response,
    endpoint: &str,
    limit: usize,
    timeout: Duration,
) -> Result<Vec<u8>> {
    let status = response.status().as_u16();
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large(endpoint, status, limit));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| transport_error(endpoint, e, timeout))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large(endpoint, status, limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn too_large(endpoint: &str, status: u16, limit: usize) -> Error {
    Error::InvalidResponse {
        endpoint: display_endpoint(endpoint),
        status,
        message: format!("the response body is larger than {limit} bytes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use botauth_core::ErrorKind;

    #[test]
    fn https_or_loopback_only() {
        assert_eq!(
            validate_endpoint("https://login.microsoftonline.com/", "k").unwrap(),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            validate_endpoint("http://127.0.0.1:8080", "k").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(validate_endpoint("http://localhost:1", "k").is_ok());
        assert!(validate_endpoint("http://[::1]:1", "k").is_ok());
        for bad in [
            "http://login.microsoftonline.com",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "https://user:pw@login.microsoftonline.com",
            "https://login.microsoftonline.com/?x=1",
            "not a url",
        ] {
            let e = validate_endpoint(bad, "AUTHORITY").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Config, "{bad}");
            assert!(matches!(e, Error::Config { ref key, .. } if key == "AUTHORITY"));
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h, now), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(120));
        h.insert(RETRY_AFTER, later.parse().unwrap());
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(120)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn endpoints_lose_their_query() {
        assert_eq!(display_endpoint("http://h/p?resource=x"), "http://h/p");
    }
}
