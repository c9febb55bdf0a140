//! The limits of one HTTP exchange.

use std::time::Duration;

/// Limits for one HTTP exchange: public fields over a [`Default`] (each client documents its own
/// defaults where they differ, e.g. 64 KiB bodies for managed identity and the Bot Connector).
///
/// ```
/// use std::time::Duration;
/// use botauth_http::HttpOptions;
///
/// let options = HttpOptions {
///     timeout: Duration::from_secs(10),
///     ..HttpOptions::default()
/// };
/// assert_eq!(options.connect_timeout, Duration::from_secs(5));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpOptions {
    /// Time allowed to establish a connection (default 5 s).
    pub connect_timeout: Duration,
    /// Time allowed for the whole exchange: connect, send, receive (default 30 s).
    pub timeout: Duration,
    /// The largest response body accepted (default 256 KiB); a larger one is an
    /// `InvalidResponse` error.
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
