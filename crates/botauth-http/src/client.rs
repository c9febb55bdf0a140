//! The one way botauth builds a reqwest client.

use botauth_core::{Error, Result};
use reqwest::{NoProxy, Proxy};

use crate::HttpOptions;

/// Builds the HTTP client botauth uses for identity endpoints and the Bot Connector: timeouts from
/// `options`, no redirects (a redirect would carry a secret or an assertion to another host), and
/// the environment's proxy for `https` requests only (`HTTPS_PROXY` / `ALL_PROXY` minus `NO_PROXY`; plain `http` is never proxied).
///
/// # Errors
///
/// A credential error when the client cannot be built (the TLS back end failed to start).
pub fn build_client(options: &HttpOptions) -> Result<reqwest::Client> {
    build_client_with_env(options, &|key| std::env::var(key).ok())
}

/// [`build_client`] with the proxy variables read through `env` (tests inject them; managed
/// identity passes an empty environment, so that its endpoints are never proxied).
///
/// # Errors
///
/// As [`build_client`].
pub(crate) fn build_client_with_env(
    options: &HttpOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<reqwest::Client> {
    let builder = reqwest::Client::builder();
    // Left alone, reqwest would read HTTP_PROXY/ALL_PROXY itself and apply them to plain http too.
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
/// `all_proxy` (the first one set wins), bypassed for the entries of `NO_PROXY` / `no_proxy`:
/// reqwest's own [`Proxy::https`] and [`NoProxy`], so the list takes hosts (each also matching its
/// subdomains; a leading `.` or `*.` is accepted), IP addresses, CIDR ranges, or `*`.
///
/// Plain-`http` requests never use a proxy — the proxy applies to the `https` scheme only: botauth
/// sends plain `http` only to loopback hosts (local development, the sandbox), and through a
/// proxy such a request would hand it the bearer token, the client secret or the assertion in
/// clear text. A proxied `https` request is tunnelled (`CONNECT`) and TLS still authenticates the
/// real host.
pub(crate) fn https_proxy_from(env: &dyn Fn(&str) -> Option<String>) -> Option<Proxy> {
    let value = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
        .iter()
        .find_map(|key| env(key).filter(|v| !v.trim().is_empty()))?;
    let Ok(proxy) = Proxy::https(value.trim()) else {
        tracing::warn!("the https proxy variable is not a URL; connecting directly");
        return None;
    };
    let bypass = ["NO_PROXY", "no_proxy"]
        .iter()
        .find_map(|key| env(key))
        .map(|list| {
            // curl and most tools read `*.example.com` as `.example.com`; reqwest takes `*` alone.
            list.split(',')
                .map(|entry| {
                    let entry = entry.trim();
                    entry.strip_prefix("*.").map_or(entry, |rest| rest)
                })
                .collect::<Vec<_>>()
                .join(",")
        });
    Some(proxy.no_proxy(bypass.as_deref().and_then(NoProxy::from_string)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

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
        let mut options = HttpOptions {
            timeout: Duration::from_secs(5),
            ..HttpOptions::default()
        };
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
        // NO_PROXY is honoured, and without any variable there is no proxy at all: both go
        // straight to a closed loopback port (refused there, no name looked up).
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_url = format!("https://{}/", closed.local_addr().unwrap());
        drop(closed);
        let no_proxy = |key: &str| match key {
            "NO_PROXY" => Some("127.0.0.1".to_owned()),
            other => every_variable(other),
        };
        options.connect_timeout = Duration::from_millis(500);
        for env in [&no_proxy as &dyn Fn(&str) -> Option<String>, &|_: &str| {
            None
        }] {
            let client = build_client_with_env(&options, env).unwrap();
            let _ = client.get(&closed_url).send().await;
            assert_eq!(proxied.lock().unwrap().len(), 1);
        }
        assert!(https_proxy_from(&|_: &str| None).is_none());
        assert!(
            https_proxy_from(&|k: &str| (k == "https_proxy").then(|| "proxy:3128".into()))
                .is_some()
        );
    }

    #[tokio::test]
    async fn no_proxy_takes_wildcard_domains_addresses_and_ranges() {
        let (proxy, proxied) =
            recording_server("HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n").await;
        let proxy_url = format!("http://{proxy}");
        let env = |key: &str| match key {
            "HTTPS_PROXY" => Some(proxy_url.clone()),
            "NO_PROXY" => Some(" *.bypassed.example , 127.0.0.0/8,::1".to_owned()),
            _ => None,
        };
        // A closed port on loopback: a bypassed request is simply refused there. Every name
        // resolves to it, so no lookup leaves the machine.
        let closed = std::net::TcpListener::bind("127.0.0.2:0")
            .or_else(|_| std::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        let names = [
            "api.bypassed.example",
            "bypassed.example",
            "notbypassed.example",
        ];
        let client = names
            .iter()
            .fold(reqwest::Client::builder(), |b, name| {
                b.resolve(name, closed_addr)
            })
            .proxy(https_proxy_from(&env).unwrap())
            .connect_timeout(Duration::from_millis(500))
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        for bypassed in [
            format!("https://{closed_addr}/"),
            format!("https://{}:{}/", names[0], closed_addr.port()),
            format!("https://{}:{}/", names[1], closed_addr.port()),
        ] {
            let _ = client.get(&bypassed).send().await;
            assert!(
                proxied.lock().unwrap().is_empty(),
                "{bypassed} went to the proxy"
            );
        }
        let _ = client.get("https://notbypassed.example/").send().await;
        assert_eq!(
            proxied.lock().unwrap().as_slice(),
            ["CONNECT notbypassed.example:443 HTTP/1.1"]
        );
    }
}
