//! The accept loop: hyper's HTTP/1 server with a header-read timeout and graceful shutdown.
//!
//! `axum::serve` cannot bound how long a client may take to send its request headers, so a
//! client that opens connections and trickles (or never sends) a request line holds a task and
//! a socket each for as long as it likes: a cheap way to exhaust the bot's file descriptors.
//! hyper can: [`http1::Builder::header_read_timeout`] closes a connection whose headers are not
//! complete in time. The clock starts when the connection is accepted and again whenever a
//! kept-alive connection waits for its next request, so it also closes idle connections.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The header-read timeout when none is configured. Generous for any real client (the Bot
/// Service sends its headers in one write) and short enough to shed idle connections.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the loop waits before accepting again after an error such as `EMFILE`: retrying at
/// once would spin on the same error (hyper 0.14's server and `axum::serve` wait a second too).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Options for [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    header_read_timeout: Duration,
}

impl ServeOptions {
    /// The defaults: a [`DEFAULT_HEADER_READ_TIMEOUT`] header-read timeout.
    pub fn new() -> Self {
        ServeOptions {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }

    /// Sets how long a connection may take to deliver a complete set of request headers, counted
    /// from its accept (or from the end of its previous response) before it is closed.
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The header-read timeout.
    pub fn header_read_timeout(&self) -> Duration {
        self.header_read_timeout
    }
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// Serves `router` over HTTP/1.1 on `listener` until `shutdown` completes, then stops accepting
/// and waits for the open connections to finish: requests in flight get their responses, idle
/// connections close at once, and a client still sending headers is cut off by the header-read
/// timeout at the latest.
///
/// # Errors
///
/// None at present: like `axum::serve`, an accept error is logged and retried (after a pause
/// unless it concerns only the one connection). The `io::Result` matches `axum::serve`'s so
/// either can stand in for the other.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    shutdown: F,
) -> io::Result<()>
where
    F: Future<Output = ()>,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "accept failed; retrying in {ACCEPT_ERROR_PAUSE:?}");
                    tokio::select! {
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                    }
                }
            },
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            match connection.await {
                Ok(()) => {}
                Err(error) if error.is_timeout() => {
                    tracing::debug!(%peer, "closed a connection that sent no complete request headers in time");
                }
                Err(error) => tracing::debug!(%peer, %error, "connection ended with an error"),
            }
        });
    }
    // Close the socket first so that new clients are refused rather than left waiting.
    drop(listener);
    tracing::debug!(open = graceful.count(), "draining open connections");
    graceful.shutdown().await;
    Ok(())
}

/// Errors about one incoming connection that went away before it was accepted: the next accept
/// is unaffected.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
