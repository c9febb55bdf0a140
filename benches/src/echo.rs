//! The end-to-end figure's parts: the echo bot's HTTP server (its own [`serve`] loop and
//! messaging route) with and without the validator layer, and a load generator on hyper that
//! keeps many HTTP/1.1 connections busy on loopback for a fixed time.
//!
//! Replies are disabled: the handler builds the echo reply as the echo bot does but does not
//! send it, so that the figure measures the inbound side (the Bot Connector round trip would
//! otherwise dominate both configurations alike).

use std::hint::black_box;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use botauth::connector::reply_activity;
use botauth::validator::Validator;
use botauth::{BotAuthLayer, VerifiedActivity};
use botauth_echo_bot::{MESSAGES_PATH, ServeOptions, serve};
use http_body_util::{BodyExt as _, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};

use crate::validator::{TEAMS, activity};

/// A message activity as Teams sends it, about 600 bytes.
pub fn message_body() -> Bytes {
    let info = activity();
    let body = json!({
        "type": "message",
        "id": "1700000000000",
        "timestamp": "2026-12-02T10:00:00.000Z",
        "serviceUrl": TEAMS,
        "channelId": info.channel_id(),
        "from": {"id": "29:1a2b3c4d5e6f", "name": "Ada", "aadObjectId": "00000000-0000-0000-0000-0000000000ad"},
        "conversation": {"id": "a:1b2c3d4e5f6a7b8c9d", "conversationType": "personal", "tenantId": "11111111-2222-3333-4444-555555555555"},
        "recipient": {"id": "28:9e1f3c2a-0000-4000-8000-00000000b07a", "name": "Echo"},
        "text": "hello there",
        "locale": "en-US",
        "channelData": {"tenant": {"id": "11111111-2222-3333-4444-555555555555"}},
    });
    Bytes::from(body.to_string())
}

/// The echo bot's handler with replies disabled: the reply is built, not sent.
async fn verified_echo(activity: VerifiedActivity) -> StatusCode {
    echo(activity.activity())
}

/// The same handler without the layer: the body is parsed as any bot would, no token checked.
async fn plain_echo(body: Bytes) -> StatusCode {
    match serde_json::from_slice::<Value>(&body) {
        Ok(activity) => echo(&activity),
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

fn echo(activity: &Value) -> StatusCode {
    if activity.get("type").and_then(Value::as_str) == Some("message") {
        let text = activity
            .get("text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        black_box(reply_activity(activity, &format!("echo: {text}")));
    }
    StatusCode::OK
}

/// The echo bot's messaging route with replies disabled, behind the validator layer when there
/// is a validator.
pub fn router(validator: Option<Validator>) -> Router {
    match validator {
        Some(v) => Router::new()
            .route(MESSAGES_PATH, post(verified_echo))
            .route_layer(BotAuthLayer::new(v)),
        None => Router::new().route(MESSAGES_PATH, post(plain_echo)),
    }
}

/// Serves the echo bot's route on a loopback port with the echo bot's own server loop and
/// default [`ServeOptions`]; `validator: None` serves it without the layer.
pub async fn spawn_server(validator: Option<Validator>) -> SocketAddr {
    let router = router(validator);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(serve(
        listener,
        router,
        ServeOptions::new(),
        std::future::pending(),
    ));
    addr
}

/// What one load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests answered 200 in the measured window.
    pub ok: u64,
    /// Requests answered otherwise, or failed, in the measured window.
    pub failed: u64,
    /// Requests answered 200 in all, the warm-up's included.
    pub answered: u64,
    /// The measured window.
    pub window: Duration,
    /// Latency of each measured request, in microseconds, sorted.
    pub latencies_us: Vec<u32>,
}

impl LoadReport {
    /// Requests answered 200 per second.
    pub fn per_second(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }

    /// A latency percentile (`p` in 0..=1), in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i.min(self.latencies_us.len() - 1)]) / 1000.0
    }
}

/// Keeps `connections` HTTP/1.1 connections busy with `POST /api/messages` for `warm_up` +
/// `window`, each request carrying the next of `tokens` (round robin per connection) and `body`;
/// counts and times the requests started inside the window.
pub async fn run_load(
    addr: SocketAddr,
    connections: usize,
    warm_up: Duration,
    window: Duration,
    tokens: Arc<Vec<String>>,
    body: Bytes,
) -> LoadReport {
    let start = Instant::now() + warm_up;
    let end = start + window;
    let tasks: Vec<_> = (0..connections)
        .map(|c| {
            let (tokens, body) = (Arc::clone(&tokens), body.clone());
            tokio::spawn(async move { connection(addr, c, start, end, &tokens, body).await })
        })
        .collect();
    let mut report = LoadReport {
        window,
        ..LoadReport::default()
    };
    for task in tasks {
        let one = task.await.expect("load task");
        report.ok += one.ok;
        report.failed += one.failed;
        report.answered += one.answered;
        report.latencies_us.extend(one.latencies_us);
    }
    report.latencies_us.sort_unstable();
    report
}

async fn connection(
    addr: SocketAddr,
    index: usize,
    start: Instant,
    end: Instant,
    tokens: &[String],
    body: Bytes,
) -> LoadReport {
    let mut report = LoadReport::default();
    let stream = TcpStream::connect(addr).await.expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    // Connections start at different tokens, so that each token is in flight on one at a time.
    let mut next = index.wrapping_mul(7919);
    loop {
        let started = Instant::now();
        if started >= end {
            break;
        }
        let token = &tokens[next % tokens.len()];
        next = next.wrapping_add(1);
        let request = Request::post(MESSAGES_PATH)
            .header("host", "127.0.0.1")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Full::new(body.clone()))
            .expect("request");
        let ok = match sender.send_request(request).await {
            Ok(response) => {
                let status = response.status();
                let drained = response.into_body().collect().await.is_ok();
                status == StatusCode::OK && drained
            }
            Err(_) => false,
        };
        report.answered += u64::from(ok);
        if started >= start {
            let took = started.elapsed();
            if ok {
                report.ok += 1;
            } else {
                report.failed += 1;
            }
            report
                .latencies_us
                .push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        }
        if !ok {
            break;
        }
    }
    report
}
