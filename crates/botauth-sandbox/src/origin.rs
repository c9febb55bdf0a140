//! The scheme and host a client used to reach the sandbox.
//!
//! Entra ID's metadata names endpoints on the host the client asked, and MSAL follows the
//! advertised `token_endpoint` and signs its assertion's `aud` with it (docs/sandbox.md). A client
//! that reaches the sandbox as `https://localhost:PORT` must therefore be told
//! `https://localhost:PORT/…`, not `http://127.0.0.1:PORT/…`.

use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header::HOST;
use axum::http::request::Parts;

use crate::state::Shared;
use crate::tls::listener::Peer;

/// `scheme://host[:port]` as the client addressed the sandbox, no trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin(pub(crate) String);

impl Origin {
    /// The origin of a request: `https` when it came over TLS, the `Host` header when it is a
    /// plain host name or address with an optional port, else the sandbox's own URL.
    pub(crate) fn of(parts: &Parts, shared: &Shared) -> Self {
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<Peer>>() else {
            return Self(shared.url.clone());
        };
        let scheme = if peer.tls { "https" } else { "http" };
        let host = parts
            .headers
            .get(HOST)
            .and_then(|v| v.to_str().ok())
            .filter(|h| is_plain_authority(h));
        match host {
            Some(host) => Self(format!("{scheme}://{host}")),
            None => Self(format!("{scheme}://{}", peer_host(shared))),
        }
    }
}

/// Host and port of the sandbox's own URL (`127.0.0.1:PORT`).
fn peer_host(shared: &Shared) -> &str {
    shared
        .url
        .split_once("://")
        .map_or(shared.url.as_str(), |(_, rest)| rest)
}

/// Letters, digits, `.`, `-`, `:` and the brackets of an IPv6 literal: nothing that could add a
/// path, query, user info or a second URL to what the sandbox advertises.
fn is_plain_authority(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

impl FromRequestParts<Arc<Shared>> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts, shared))
    }
}

#[cfg(test)]
mod tests {
    use super::is_plain_authority;

    #[test]
    fn only_plain_authorities_are_echoed() {
        for ok in [
            "127.0.0.1:8765",
            "localhost",
            "[::1]:443",
            "sandbox.local-host",
        ] {
            assert!(is_plain_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example/path",
            "user@host",
            "host?x",
            "host#f",
            "a b",
            "host\\x",
        ] {
            assert!(!is_plain_authority(bad), "{bad}");
        }
        assert!(!is_plain_authority(&"a".repeat(256)));
    }
}
