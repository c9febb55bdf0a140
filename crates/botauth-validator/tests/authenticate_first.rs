//! Issue 13 §1: the layer judges the token before it reads a byte of the body, reads the body
//! only for a token that passed, within a time limit, and checks `serviceurl` and endorsements
//! against the activity once it has it. Over real TCP so that bodies can be cut short or
//! trickled.
#![cfg(feature = "axum")]
// Helpers outside `#[test]` functions unwrap too: a failure there is a broken test set-up.
#![allow(clippy::unwrap_used)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use botauth_sandbox::Route;
use botauth_validator::{BotAuthLayer, VerifiedActivity};
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An upper bound that only a hang (or a machine far past overloaded) reaches.
const GENEROUS: Duration = Duration::from_secs(30);

const UNAUTHORIZED: &str =
    r#"{"error":"unauthorized","message":"the request is not authenticated"}"#;

struct Bot {
    addr: SocketAddr,
    calls: Arc<AtomicUsize>,
}

impl Bot {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn bot(layer: BotAuthLayer) -> Bot {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let router = Router::new()
        .route(
            "/api/messages",
            post(move |verified: VerifiedActivity| {
                let counter = Arc::clone(&counter);
                async move {
                    counter.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"text": verified.activity()["text"]}))
                }
            }),
        )
        .layer(layer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Bot { addr, calls }
}

/// Opens a connection and sends the request head: `Content-Length` announces `content_length`
/// bytes, of which none is sent yet.
async fn send_head(bot: &Bot, authorization: Option<&str>, content_length: usize) -> TcpStream {
    let mut stream = TcpStream::connect(bot.addr).await.unwrap();
    let mut head = format!(
        "POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {content_length}\r\n"
    );
    if let Some(authorization) = authorization {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: String,
}

/// Reads one response (head and `Content-Length` body). A reset after the whole response is
/// fine: the server may close a connection whose body it chose not to read.
async fn read_reply(stream: &mut TcpStream) -> Reply {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(reply) = parse(&received) {
            return reply;
        }
        let n = match tokio::time::timeout(GENEROUS, stream.read(&mut buf)).await {
            Err(_) => panic!("no response within {GENEROUS:?}"),
            Ok(Ok(0)) => panic!(
                "closed before a whole response: {:?}",
                String::from_utf8_lossy(&received)
            ),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => panic!(
                "read failed ({e}) after {:?}",
                String::from_utf8_lossy(&received)
            ),
        };
        received.extend_from_slice(&buf[..n]);
    }
}

fn parse(received: &[u8]) -> Option<Reply> {
    let text = std::str::from_utf8(received).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    (body.len() >= length).then(|| Reply {
        status,
        head: head.to_owned(),
        body: body[..length].to_owned(),
    })
}

/// Sends a whole request, the body from a separate task so that a server that answers before
/// reading it cannot block the writer (its write errors are ignored), and reads the response.
async fn exchange(bot: &Bot, authorization: Option<&str>, body: Vec<u8>) -> Reply {
    let stream = send_head(bot, authorization, body.len()).await;
    let (mut reader, mut writer) = stream.into_split();
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&body).await;
        writer
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let reply = loop {
        if let Some(reply) = parse(&received) {
            break reply;
        }
        match tokio::time::timeout(GENEROUS, reader.read(&mut buf)).await {
            Err(_) => panic!("no response within {GENEROUS:?}"),
            Ok(Ok(0)) => panic!("closed before a whole response"),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
            Ok(Err(e)) => panic!("read failed: {e}"),
        }
    };
    writing.abort();
    reply
}

fn assert_unauthorized(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}: {reply:?}");
    assert_eq!(reply.body, UNAUTHORIZED, "{what}");
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("\r\nwww-authenticate: bearer"),
        "{what}: {reply:?}"
    );
}

/// A channel activity from the sandbox and a channel token for it.
fn channel(env: &Env) -> (Value, String) {
    let activity = env.sandbox.channel_activity(APP, "hi");
    let token = env.sandbox.channel_token(APP, &activity);
    (activity, token)
}

#[tokio::test]
async fn garbage_bearer_with_a_300_kib_body_is_401_not_413() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    // Before issue 13 the body was read first: 413 (and 256 KiB buffered) for a caller that
    // was never authenticated.
    let reply = exchange(&bot, Some("Bearer garbage"), vec![b'x'; 300 * 1024]).await;
    assert_unauthorized(&reply, "300 KiB body");
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn garbage_bearer_with_a_non_json_body_is_401_not_400() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    // Before issue 13: 400, which told an unauthenticated caller the body had been parsed.
    for body in [&b"not json"[..], b"[1,2]", b""] {
        let reply = exchange(&bot, Some("Bearer garbage"), body.to_vec()).await;
        assert_unauthorized(&reply, &String::from_utf8_lossy(body));
    }
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_300_kib_bearer_is_401_before_the_body() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    let huge = format!("Bearer {}", "A".repeat(300 * 1024));
    let (activity, _) = channel(&env);
    let reply = exchange(&bot, Some(&huge), activity.to_string().into_bytes()).await;
    assert_unauthorized(&reply, "300 KiB bearer");
    // Just over the token limit, with a body that never comes.
    let over = format!("Bearer {}", "A".repeat(16 * 1024 + 1));
    let mut stream = send_head(&bot, Some(&over), 1000).await;
    assert_unauthorized(&read_reply(&mut stream).await, "16 KiB + 1 bearer");
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn unauthenticated_requests_are_answered_without_waiting_for_the_body() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    let (_, token) = channel(&env);
    let expired = env.token_with(|c| {
        c.insert("exp".into(), json!(env.now() - 3600));
    });
    let wrong_audience = env.token_with(|c| {
        c.insert("aud".into(), json!("another-bot"));
    });
    let mut bad_signature = token.clone();
    bad_signature.truncate(token.len() - 4);
    bad_signature.push_str("AAAA");
    let cases = [
        ("no Authorization header", None),
        ("Bearer garbage", Some("Bearer garbage".to_owned())),
        ("Basic scheme", Some(format!("Basic {token}"))),
        ("expired", Some(format!("Bearer {expired}"))),
        ("wrong aud", Some(format!("Bearer {wrong_audience}"))),
        ("bad signature", Some(format!("Bearer {bad_signature}"))),
    ];
    for (what, authorization) in cases {
        // The head announces a body that is never sent: a server that read it first would
        // wait (before issue 13: for ever).
        let started = Instant::now();
        let mut stream = send_head(&bot, authorization.as_deref(), 1000).await;
        stream.write_all(b"{\"type\":").await.unwrap();
        let reply = read_reply(&mut stream).await;
        assert_unauthorized(&reply, what);
        assert!(started.elapsed() < GENEROUS, "{what}");
    }
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_valid_token_with_a_good_body_still_passes() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    let (activity, token) = channel(&env);
    let reply = exchange(
        &bot,
        Some(&format!("Bearer {token}")),
        activity.to_string().into_bytes(),
    )
    .await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.body, r#"{"text":"hi"}"#);
    assert_eq!(bot.calls(), 1);
}

#[tokio::test]
async fn service_url_and_endorsement_failures_are_401_once_the_body_is_read() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    let (activity, token) = channel(&env);
    let auth = format!("Bearer {token}");
    let mut other_service = activity.clone();
    other_service["serviceUrl"] = json!("https://evil.example/");
    let mut other_channel = activity.clone();
    other_channel["channelId"] = json!("telegram");
    let mut no_service = activity.clone();
    no_service.as_object_mut().unwrap().remove("serviceUrl");
    for (what, body) in [
        ("serviceUrl", other_service),
        ("channelId", other_channel),
        ("no serviceUrl", no_service),
    ] {
        let reply = exchange(&bot, Some(&auth), body.to_string().into_bytes()).await;
        assert_unauthorized(&reply, what);
    }
    assert_eq!(bot.calls(), 0);
    // The same token on its own activity passes: the failures were the activity's.
    let reply = exchange(&bot, Some(&auth), activity.to_string().into_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}

#[tokio::test]
async fn the_verified_token_cache_path_still_checks_the_activity() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator())).await;
    let (activity, token) = channel(&env);
    let auth = format!("Bearer {token}");
    // Twice: the cache keeps a token from its second verification on.
    for _ in 0..2 {
        let reply = exchange(&bot, Some(&auth), activity.to_string().into_bytes()).await;
        assert_eq!(reply.status, 200, "{reply:?}");
    }
    let fetches = env.sandbox.count(Route::BotServiceJwks);
    // Every request below is a verified-token cache hit (no key fetch); the activity still
    // decides.
    let mut other_service = activity.clone();
    other_service["serviceUrl"] = json!("https://evil.example/");
    let mut other_channel = activity.clone();
    other_channel["channelId"] = json!("telegram");
    for (what, body) in [("serviceUrl", other_service), ("channelId", other_channel)] {
        let reply = exchange(&bot, Some(&auth), body.to_string().into_bytes()).await;
        assert_unauthorized(&reply, what);
    }
    let reply = exchange(&bot, Some(&auth), activity.to_string().into_bytes()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(bot.calls(), 3);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), fetches);
    assert_eq!(fetches, 1);
}

/// Short enough for a quick test; the assertions only bound it from above generously.
const SHORT: Duration = Duration::from_millis(300);

fn assert_timed_out(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 408, "{what}: {reply:?}");
    assert_eq!(
        reply.body,
        r#"{"error":"request_timeout","message":"the activity was not received in time"}"#,
        "{what}"
    );
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("\r\nconnection: close"),
        "{what}: {reply:?}"
    );
}

#[tokio::test]
async fn a_valid_token_whose_body_never_completes_gets_408_after_the_limit() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator()).body_timeout(SHORT)).await;
    let (activity, token) = channel(&env);
    let body = activity.to_string();
    let started = Instant::now();
    // All but the last two bytes: before issue 13 this waited for ever.
    let mut stream = send_head(&bot, Some(&format!("Bearer {token}")), body.len()).await;
    stream
        .write_all(&body.as_bytes()[..body.len() - 2])
        .await
        .unwrap();
    let reply = read_reply(&mut stream).await;
    let elapsed = started.elapsed();
    assert_timed_out(&reply, "stalled body");
    assert!(elapsed >= SHORT, "answered after {elapsed:?}");
    assert!(elapsed < GENEROUS, "answered after {elapsed:?}");
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_trickled_body_gets_408_when_the_limit_runs_out_not_per_read() {
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator()).body_timeout(SHORT)).await;
    let (activity, token) = channel(&env);
    let body = activity.to_string().into_bytes();
    let stream = send_head(&bot, Some(&format!("Bearer {token}")), body.len()).await;
    let started = Instant::now();
    let (mut reader, mut writer) = stream.into_split();
    // One byte every 20 ms: each read is quick, the whole body would take seconds.
    let trickle = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    let mut received = Vec::new();
    let mut buf = [0u8; 1024];
    let reply = loop {
        if let Some(reply) = parse(&received) {
            break reply;
        }
        match tokio::time::timeout(GENEROUS, reader.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            other => panic!("no response: {other:?}"),
        }
    };
    let elapsed = started.elapsed();
    trickle.abort();
    assert_timed_out(&reply, "trickled body");
    assert!(elapsed >= SHORT, "answered after {elapsed:?}");
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_content_length_over_the_limit_is_413_without_waiting_for_the_body() {
    let env = Env::start().await;
    // A body timeout no test waits for: the 413 must come from the announced length.
    let layer = BotAuthLayer::new(env.validator())
        .max_body_bytes(1024)
        .body_timeout(Duration::from_secs(3600));
    let bot = bot(layer).await;
    let (_, token) = channel(&env);
    let mut stream = send_head(&bot, Some(&format!("Bearer {token}")), 10 * 1024 * 1024).await;
    let reply = read_reply(&mut stream).await;
    assert_eq!(reply.status, 413, "{reply:?}");
    assert_eq!(
        reply.body,
        r#"{"error":"payload_too_large","message":"the activity is too large"}"#
    );
    // The same garbage-bearer request is a 401: authentication comes first.
    let mut stream = send_head(&bot, Some("Bearer garbage"), 10 * 1024 * 1024).await;
    assert_unauthorized(&read_reply(&mut stream).await, "garbage bearer");
    assert_eq!(bot.calls(), 0);
}

#[tokio::test]
async fn a_body_that_fails_the_activity_rules_is_read_before_it_is_judged() {
    // serviceurl and endorsements are judged on the activity, so a valid token whose body
    // stalls gets 408 (the body was awaited), and the same body complete gets 401.
    let env = Env::start().await;
    let bot = bot(BotAuthLayer::new(env.validator()).body_timeout(SHORT)).await;
    let (mut activity, token) = channel(&env);
    activity["serviceUrl"] = json!("https://evil.example/");
    let body = activity.to_string();
    let auth = format!("Bearer {token}");
    let mut stream = send_head(&bot, Some(&auth), body.len()).await;
    stream.write_all(&body.as_bytes()[..10]).await.unwrap();
    assert_timed_out(&read_reply(&mut stream).await, "stalled");
    let reply = exchange(&bot, Some(&auth), body.into_bytes()).await;
    assert_unauthorized(&reply, "complete");
    assert_eq!(bot.calls(), 0);
}
