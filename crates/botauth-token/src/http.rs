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

/// Builds the HTTP client botauth uses for identity endpoints and the Bot Connector: timeouts from
/// `options`, no redirects (a redirect would carry a secret or an assertion to another host), and
/// the environment's proxy for `https` requests only (see [`https_proxy_from`]).
pub fn build_client(options: &HttpOptions) -> Result<reqwest::Client> {
    build_client_with_env(options, &|key| std::env::var(key).ok())
}

/// [`build_client`] with the proxy variables read through `env` (tests inject them).
pub fn build_client_with_env(
    options: &HttpOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder();
    // reqwest would otherwise apply HTTP_PROXY/ALL_PROXY to every request, plain http included.
    let builder = match https_proxy_from(env) {
        Some(proxy) => builder.proxy(proxy),
        None => builder.no_proxy(),
    };
    builder
        .connect_timeout(options.connect_timeout)
        .timeout(options.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("botauth/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| {
            Error::credential_with_source("could not build the HTTP client (TLS setup failed?)", e)
        })
}

/// The proxy for `https` requests named by `HTTPS_PROXY` / `https_proxy` / `ALL_PROXY` /
/// `all_proxy` (first set wins), bypassed for the hosts in `NO_PROXY` / `no_proxy` (a
/// comma-separated list of hosts, each also matching its subdomains, or `*`).
///
/// Plain-`http` requests never use a proxy: botauth sends them only to loopback hosts (local
/// development, the sandbox), and through a proxy they would hand it the bearer token, the client
/// secret or the assertion in clear text — a proxied `https` request is tunnelled (`CONNECT`) and
/// TLS still authenticates the real host.
pub fn https_proxy_from(env: &dyn Fn(&str) -> Option<String>) -> Option<reqwest::Proxy> {
    let value = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|key| env(key).filter(|v| !v.trim().is_empty()))?;
    let value = value.trim();
    let with_scheme = if value.contains("://") {
        value.to_owned()
    } else {
        format!("http://{value}")
    };
    let Ok(proxy_url) = reqwest::Url::parse(&with_scheme) else {
        tracing::warn!("the https proxy variable is not a URL; connecting directly");
        return None;
    };
    let bypass: Vec<String> = ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|key| env(key))
        .unwrap_or_default()
        .split(',')
        .map(|entry| {
            entry
                .trim()
                .trim_start_matches("*.")
                .trim_start_matches('.')
        })
        .filter(|entry| !entry.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    Some(reqwest::Proxy::custom(move |target| {
        let host = target.host_str()?.to_ascii_lowercase();
        let bypassed = bypass.iter().any(|entry| {
            entry == "*"
                || host == *entry
                || host
                    .strip_suffix(entry.as_str())
                    .is_some_and(|rest| rest.ends_with('.'))
        });
        (target.scheme() == "https" && !bypassed).then(|| proxy_url.clone())
    }))
}

/// Checks an endpoint base URL: `https`, or plain `http` for loopback hosts only (local development
/// and tests; docs/protocol.md §2). Returns the URL without a trailing slash. `key` names the setting in
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

/// Why a token response with an unsendable `access_token` is refused (the text never quotes it).
pub const UNSENDABLE_TOKEN: &str = "the access_token cannot be sent in an Authorization header (it \
     is empty, or holds spaces, control characters, line breaks or non-ASCII): the endpoint is \
     misbehaving or is not a token endpoint; the token was not cached";

/// Whether `token` can be sent as `Authorization: Bearer <token>`: one or more visible ASCII
/// characters (`!` to `~`).
///
/// A token is pasted into a header for every Bot Connector call. One with a line break
/// (`tok\r\nX-Evil: 1`) or another control character fails every call for the token's lifetime
/// if it is cached, or injects a header where a client does not check; a space would split it
/// into two credentials. So it is refused when the token response is parsed, where the negative
/// cache and the retry policy apply. (RFC 6750's `b64token` is narrower still; visible ASCII is
/// what an HTTP header value can carry, and what any issuer's opaque token may use.)
pub fn is_sendable_token(token: &str) -> bool {
    !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic())
}

/// Whether `token_type` can be sent as the scheme of an `Authorization` header: an HTTP `token`
/// (RFC 9110 §5.6.2: letters, digits and ``!#$%&'*+-.^_`|~``).
pub fn is_sendable_token_type(token_type: &str) -> bool {
    !token_type.is_empty()
        && token_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Checks a parsed `access_token` (see [`is_sendable_token`]): an
/// [`InvalidResponse`](botauth_core::ErrorKind::InvalidResponse) error naming `endpoint` and
/// `status` when it cannot be sent. For every credential that parses a token response itself.
pub fn check_access_token(token: &str, endpoint: &str, status: u16) -> Result<()> {
    if is_sendable_token(token) {
        return Ok(());
    }
    Err(Error::InvalidResponse {
        endpoint: display_endpoint(endpoint),
        status,
        message: UNSENDABLE_TOKEN.into(),
    })
}

/// A server's text made fit for an error message or a log line: at most `max_chars`
/// characters (then `…`), control characters replaced by spaces, so that a hostile body can
/// neither flood a log nor forge a line of it.
pub fn clean_text(text: &str, max_chars: usize) -> String {
    let mut out: String = text
        .chars()
        .take(max_chars)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(max_chars).is_some() {
        out.push('…');
    }
    out
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
    #[test]
    fn clean_text_bounds_and_neutralises_controls() {
        assert_eq!(super::clean_text("a\nb\u{1b}[31m", 100), "a b [31m");
        assert_eq!(super::clean_text("abcdef", 3), "abc…");
        assert_eq!(super::clean_text("abc", 3), "abc");
    }

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

    /// A loopback server that answers every connection with `answer` and records each request's
    /// first line.
    async fn recording_server(
        answer: &'static str,
    ) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        (format!("127.0.0.1:{}", addr.port()), seen)
    }

    #[tokio::test]
    async fn environment_proxies_apply_to_https_only() {
        let (proxy, proxied) =
            recording_server("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        let (target, direct) =
            recording_server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
        let proxy_url = format!("http://{proxy}");
        let every_variable = |key: &str| match key {
            "HTTP_PROXY" | "http_proxy" | "HTTPS_PROXY" | "https_proxy" | "ALL_PROXY"
            | "all_proxy" => Some(proxy_url.clone()),
            _ => None,
        };
        let options = HttpOptions::default().timeout(Duration::from_secs(5));
        let client = build_client_with_env(&options, &every_variable).unwrap();
        // Plain http (loopback development hosts) goes direct: a proxy would see the bearer token.
        let answer = client
            .post(format!("http://{target}/token"))
            .header("authorization", "Bearer not-for-the-proxy")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(direct.lock().unwrap().as_slice(), ["POST /token HTTP/1.1"]);
        // https is tunnelled through the proxy (TLS then checks the real host).
        let _ = client.get("https://connector.example/").send().await;
        assert_eq!(
            proxied.lock().unwrap().as_slice(),
            ["CONNECT connector.example:443 HTTP/1.1"]
        );
        // NO_PROXY is honoured, and without any variable there is no proxy at all.
        let no_proxy = |key: &str| match key {
            "NO_PROXY" => Some("connector.example".to_owned()),
            other => every_variable(other),
        };
        for env in [&no_proxy as &dyn Fn(&str) -> Option<String>, &|_: &str| {
            None
        }] {
            let client =
                build_client_with_env(&options.connect_timeout(Duration::from_millis(500)), env)
                    .unwrap();
            let _ = client.get("https://connector.example/").send().await;
            assert_eq!(proxied.lock().unwrap().len(), 1);
        }
        assert!(https_proxy_from(&|_: &str| None).is_none());
        assert!(
            https_proxy_from(&|k: &str| (k == "https_proxy").then(|| "proxy:3128".into()))
                .is_some()
        );
    }

    #[test]
    fn only_visible_ascii_tokens_are_sendable() {
        for ok in [
            "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiJ4In0.c2ln",
            "a",
            "opaque~token+with/odd=chars_-.!",
        ] {
            assert!(is_sendable_token(ok), "{ok:?}");
            assert!(check_access_token(ok, "http://h/t", 200).is_ok());
        }
        for bad in [
            "",
            "zq\r\nX-Evil: 1",
            "zq\nX-Evil: 1",
            "zq\r",
            "zq\0",
            "zq\t",
            "zq\u{7f}",
            "zq\u{1b}[31m",
            "z q",
            " zq",
            "zqö",
            "zq\u{2028}",
        ] {
            assert!(!is_sendable_token(bad), "{bad:?}");
            let e = check_access_token(bad, "http://h/t?x=1", 200).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{bad:?}");
            assert!(
                matches!(e, Error::InvalidResponse { status: 200, ref endpoint, .. } if endpoint == "http://h/t")
            );
            assert!(!e.is_retryable());
            // The message never quotes the token.
            let message = e.to_string();
            assert!(
                !message.contains("zq") && !message.contains("z q"),
                "{message}"
            );
        }
        assert!(is_sendable_token_type("Bearer"));
        assert!(is_sendable_token_type("PoP"));
        for bad in ["", "Bearer x", "Bearer\r\nX: 1", "Béarer", "Bearer:"] {
            assert!(!is_sendable_token_type(bad), "{bad:?}");
        }
    }

    #[test]
    fn endpoints_lose_their_query() {
        assert_eq!(display_endpoint("http://h/p?resource=x"), "http://h/p");
    }
}
