//! The Redis de-duplication store against a real `redis-server` on loopback (installed by
//! `.ci/run`). Without `redis-server` the tests are skipped locally and fail in CI (`CI=true`).
#![cfg(feature = "redis")]

mod common;

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use botauth_sandbox::DEMO_CLIENT_ID;
use botauth_usertoken::{ExchangeStore, RedisExchangeStore, SignInFlow, SignInOutcome};
use common::{CONNECTION, Harness};
use tokio::process::{Child, Command};

struct RedisServer {
    child: Child,
    url: String,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

/// Starts `redis-server` on a free loopback port, without persistence.
async fn redis_server() -> Option<RedisServer> {
    let found = std::process::Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed: CI must run the Redis tests (.ci/run installs it)"
        );
        eprintln!("skipping: redis-server is not installed (apt-get install redis-server)");
        return None;
    }
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("redis test");
        listener.local_addr().expect("redis test").port()
    };
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    let url = format!("redis://127.0.0.1:{port}/");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Some(RedisServer { child, url });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis-server did not listen on {port}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_claim_wins_across_replicas_until_the_ttl() {
    let Some(server) = redis_server().await else {
        return;
    };
    // Two replicas, each with its own connection.
    let a = Arc::new(
        RedisExchangeStore::connect(&server.url)
            .await
            .expect("redis test"),
    );
    let b = Arc::new(
        RedisExchangeStore::connect(&server.url)
            .await
            .expect("redis test"),
    );
    let ttl = Duration::from_millis(400);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        tasks.push(tokio::spawn(async move {
            store
                .claim("msteams/conv/exchange-1", ttl)
                .await
                .expect("redis test")
        }));
    }
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.expect("redis test"));
    }
    assert_eq!(
        wins, 1,
        "one winner among 40 concurrent claims on two replicas"
    );
    assert!(
        b.claim("msteams/conv/exchange-2", ttl)
            .await
            .expect("redis test")
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        a.claim("msteams/conv/exchange-1", ttl)
            .await
            .expect("redis test"),
        "the TTL expired the claim"
    );
    // Prefixes keep bots apart.
    let other_bot = RedisExchangeStore::connect(&server.url)
        .await
        .expect("redis test")
        .with_prefix("bot2:");
    assert!(
        other_bot
            .claim("msteams/conv/exchange-2", ttl)
            .await
            .expect("redis test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_exchanges_at_two_replicas_sign_in_once() {
    let Some(server) = redis_server().await else {
        return;
    };
    let h = Harness::start().await;
    let replica = || async {
        let store = Arc::new(
            RedisExchangeStore::connect(&server.url)
                .await
                .expect("redis test"),
        );
        SignInFlow::builder(h.client.clone(), CONNECTION)
            .exchange_store(store)
            .build()
    };
    let (one, two) = (replica().await, replica().await);
    let first = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, "dup-id");
    let second = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, "dup-id");
    let (first, second) = (h.verified(&first).await, h.verified(&second).await);
    let (x, y) = tokio::join!(one.handle(&first), two.handle(&second));
    let signed_in = [&x, &y]
        .iter()
        .filter(|s| matches!(s.outcome, SignInOutcome::SignedIn(_)))
        .count();
    let deduplicated = [&x, &y]
        .iter()
        .filter(|s| matches!(s.outcome, SignInOutcome::Deduplicated))
        .count();
    assert_eq!((signed_in, deduplicated), (1, 1), "{x:?} {y:?}");
    for step in [&x, &y] {
        assert_eq!(step.response.as_ref().expect("redis test").status, 200);
    }
    drop(server);
    // The store gone: the exchange is answered 500 so that Teams resends it.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = h
        .sandbox
        .token_exchange_invoke(DEMO_CLIENT_ID, CONNECTION, "dup-id-3");
    let step = one.handle(&h.verified(&third).await).await;
    assert_eq!(
        step.response.as_ref().expect("redis test").status,
        500,
        "{step:?}"
    );
}
