//! `serve` over real TCP connections on 127.0.0.1: the header-read timeout closes stalled
//! clients, the connection limit holds, complete requests are answered, and shutdown drains
//! requests in flight.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use botauth_echo_bot::{ServeOptions, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// Short enough for a quick test; the assertions below only bound it from above generously.
const SHORT_TIMEOUT: Duration = Duration::from_millis(300);
/// An upper bound that only a broken timeout (or a machine far past overloaded) reaches.
const GENEROUS: Duration = Duration::from_secs(30);

fn router() -> Router {
    Router::new().route("/health", get(|| async { "ok" }))
}

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<io::Result<()>>,
}

impl Server {
    async fn start(router: Router, options: ServeOptions) -> Server {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, router, options, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            stop: Some(stop),
            task,
        }
    }

    fn shut_down(&mut self) {
        let _ = self.stop.take().expect("not yet shut down").send(());
    }
}

/// Reads until the server closes the connection; returns what was read and whether the close
/// came as a reset rather than an orderly EOF.
async fn read_until_closed(stream: &mut TcpStream) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(GENEROUS, stream.read(&mut buf)).await {
            Err(_) => panic!("the server did not close the connection within {GENEROUS:?}"),
            Ok(Ok(0)) => return (received, false),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionReset => return (received, true),
            Ok(Err(e)) => panic!("unexpected read error: {e}"),
        }
    }
}

async fn get_health(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write the request");
    let (response, reset) = read_until_closed(&mut stream).await;
    assert!(!reset, "the connection was reset after the response");
    String::from_utf8(response).expect("a UTF-8 response")
}

#[tokio::test]
async fn a_stalled_partial_request_header_is_closed_after_the_timeout() {
    let server = Server::start(
        router(),
        ServeOptions::new().with_header_read_timeout(SHORT_TIMEOUT),
    )
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    // A request line and one header, but never the blank line that ends the headers.
    stream
        .write_all(b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write the partial header");
    let (received, _reset) = read_until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(
        received.is_empty(),
        "the server answered instead of closing: {:?}",
        String::from_utf8_lossy(&received)
    );
    assert!(
        elapsed >= SHORT_TIMEOUT,
        "closed after {elapsed:?}, before the {SHORT_TIMEOUT:?} timeout"
    );
    // The server itself is unaffected.
    assert!(
        get_health(server.addr)
            .await
            .starts_with("HTTP/1.1 200 OK\r\n")
    );
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_timeout() {
    let server = Server::start(
        router(),
        ServeOptions::new().with_header_read_timeout(SHORT_TIMEOUT),
    )
    .await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let (received, _reset) = read_until_closed(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(received.is_empty(), "the server wrote {received:?}");
    assert!(
        elapsed >= SHORT_TIMEOUT,
        "closed after {elapsed:?}, before the {SHORT_TIMEOUT:?} timeout"
    );
}

#[tokio::test]
async fn an_idle_kept_alive_connection_is_closed_after_the_timeout() {
    let server = Server::start(
        router(),
        ServeOptions::new().with_header_read_timeout(SHORT_TIMEOUT),
    )
    .await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .expect("write the request");
    // The response arrives, then the connection stays open for a next request that never comes.
    let (received, _reset) = read_until_closed(&mut stream).await;
    let response = String::from_utf8(received).expect("a UTF-8 response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
}

#[tokio::test]
async fn a_complete_request_is_answered() {
    // The default timeout: a prompt client is never near it, however slow the machine.
    let server = Server::start(router(), ServeOptions::new()).await;
    let response = get_health(server.addr).await;
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\nok"), "{response}");
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /missing HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write the request");
    let (response, _) = read_until_closed(&mut stream).await;
    let response = String::from_utf8(response).expect("a UTF-8 response");
    assert!(
        response.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{response}"
    );
}

#[tokio::test]
async fn shutdown_finishes_the_request_in_flight_then_refuses_new_connections() {
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let slow = Router::new().route(
        "/slow",
        get({
            let (entered, release) = (entered.clone(), release.clone());
            move || async move {
                entered.notify_one();
                release.notified().await;
                "done"
            }
        }),
    );
    let mut server = Server::start(slow, ServeOptions::new()).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream
        .write_all(b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write the request");
    tokio::time::timeout(GENEROUS, entered.notified())
        .await
        .expect("the handler runs");

    server.shut_down();
    // The listener closes at once; the server waits for the request in flight.
    tokio::time::timeout(GENEROUS, async {
        loop {
            // A connection that raced the close may be accepted by the kernel and then reset.
            match TcpStream::connect(server.addr).await {
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {}
                Err(e) => panic!("unexpected connect error: {e}"),
                Ok(_) => {}
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the listener closes after shutdown");
    assert!(
        !server.task.is_finished(),
        "serve returned with a request in flight"
    );

    release.notify_one();
    let (response, _) = read_until_closed(&mut stream).await;
    let response = String::from_utf8(response).expect("a UTF-8 response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(response.ends_with("\r\n\r\ndone"), "{response}");
    tokio::time::timeout(GENEROUS, &mut server.task)
        .await
        .expect("serve returns once the connection is done")
        .expect("the serve task did not panic")
        .expect("serve returns Ok");
}

#[tokio::test]
async fn shutdown_with_no_connections_returns_at_once() {
    let mut server = Server::start(router(), ServeOptions::new()).await;
    assert!(
        get_health(server.addr)
            .await
            .starts_with("HTTP/1.1 200 OK\r\n")
    );
    server.shut_down();
    tokio::time::timeout(GENEROUS, &mut server.task)
        .await
        .expect("serve returns")
        .expect("the serve task did not panic")
        .expect("serve returns Ok");
}

/// Opens a connection and sends a request line and one header, never the blank line that ends
/// the headers: it holds its connection until the header-read timeout or until it is dropped.
async fn hold(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .expect("write the partial header");
    stream
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let server = Server::start(
        router(),
        ServeOptions::new()
            .with_header_read_timeout(GENEROUS)
            .with_max_connections(2),
    )
    .await;
    let first = hold(server.addr).await;
    let _second = hold(server.addr).await;
    // The third connection's request is complete, but both permits are held.
    let mut third = TcpStream::connect(server.addr).await.expect("connect");
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .expect("write the request");
    let mut buf = [0u8; 64];
    let waited = tokio::time::timeout(SHORT_TIMEOUT, third.read(&mut buf)).await;
    assert!(
        waited.is_err(),
        "the third connection was served at the limit: {waited:?}"
    );
    // One held connection goes away: the third is accepted and answered.
    drop(first);
    let (response, _) = read_until_closed(&mut third).await;
    let response = String::from_utf8(response).expect("a UTF-8 response");
    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
}

#[tokio::test]
async fn a_limit_of_one_still_serves_clients_one_after_another() {
    let server = Server::start(router(), ServeOptions::new().with_max_connections(1)).await;
    for _ in 0..5 {
        assert!(
            get_health(server.addr)
                .await
                .starts_with("HTTP/1.1 200 OK\r\n")
        );
    }
}

#[tokio::test]
async fn shutdown_at_the_connection_limit_still_returns() {
    let mut server = Server::start(
        router(),
        ServeOptions::new()
            .with_header_read_timeout(SHORT_TIMEOUT)
            .with_max_connections(1),
    )
    .await;
    let _held = hold(server.addr).await;
    // Let the loop take the only permit and wait for the next.
    tokio::time::sleep(Duration::from_millis(50)).await;
    server.shut_down();
    tokio::time::timeout(GENEROUS, &mut server.task)
        .await
        .expect("serve returns: the held connection is cut off by the header-read timeout")
        .expect("the serve task did not panic")
        .expect("serve returns Ok");
}
