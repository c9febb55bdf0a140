//! The accept loop: hyper's HTTP/1 server with a header-read timeout, a connection limit and
//! graceful shutdown.
//!
//! `axum::serve` cannot bound how long a client may take to send its request headers, so a
//! client that opens connections and trickles (or never sends) a request line holds a task and
//! a socket each for as long as it likes: a cheap way to exhaust the bot's file descriptors.
//! hyper can: [`http1::Builder::header_read_timeout`] closes a connection whose headers are not
//! complete in time. The clock starts when the connection is accepted and again whenever a
//! kept-alive connection waits for its next request, so it also closes idle connections.
//!
//! The timeouts bound how long each connection can be held; the connection limit bounds how many
//! are held at once, so that a flood of slow clients costs a bounded number of sockets, tasks and
//! buffers however fast it opens them. At the limit the loop stops accepting: new connections
//! wait in the kernel's listen backlog (128 with Tokio's `bind`) until one closes, and once that is
//! full the system drops further connection attempts, which clients retry a little later. The
//! body of a request is bounded by `BotAuthLayer`: a caller without a valid token is answered
//! before its body is read, and a valid one has its body timeout.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The header-read timeout when none is configured. Generous for any real client (the Bot
/// Service sends its headers in one write) and short enough to shed idle connections.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection limit when none is configured. Each open connection holds about 16 KiB of
/// hyper's read and write buffers however little it sends, so the limit is also the bound on
/// what a flood of connections can make the bot hold at once: about 4 MiB here. It stays well
/// under the common 1,024 open-file limit (which outbound connections and logs share), and above
/// what a bot behind the Bot Service has open (it sends each activity on a short request).
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// How long the loop waits before accepting again after an error such as `EMFILE`: retrying at
/// once would spin on the same error (hyper 0.14's server and `axum::serve` wait a second too).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Options for [`serve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeOptions {
    header_read_timeout: Duration,
    max_connections: usize,
}

impl ServeOptions {
    /// The defaults: a [`DEFAULT_HEADER_READ_TIMEOUT`] header-read timeout and at most
    /// [`DEFAULT_MAX_CONNECTIONS`] connections at once.
    pub fn new() -> Self {
        ServeOptions {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Sets how many connections may be open at once (at least 1; 0 counts as 1). Beyond it the
    /// server stops accepting until a connection closes.
    pub fn with_max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.clamp(1, Semaphore::MAX_PERMITS);
        self
    }

    /// The connection limit.
    pub fn max_connections(&self) -> usize {
        self.max_connections
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
/// timeout at the latest. At most [`ServeOptions::max_connections`] connections are open at
/// once; at the limit, the next connection is accepted when one closes.
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
    let permits = Arc::new(Semaphore::new(options.max_connections));
    let mut shutdown = pin!(shutdown);
    let mut at_limit = false;
    loop {
        if permits.available_permits() == 0 {
            if !at_limit {
                tracing::warn!(
                    max_connections = options.max_connections,
                    "at the connection limit: new connections wait until one closes"
                );
            }
            at_limit = true;
        } else {
            at_limit = false;
        }
        // A permit first, then the accept: at the limit, clients wait in the listen backlog
        // and cost this process nothing.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
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
            let _permit = permit;
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
