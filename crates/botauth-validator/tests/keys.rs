//! The key cache over real HTTP: single flight, refresh, rotation, outages, the unknown-kid flood.

mod common;

use std::time::Duration;

use botauth_sandbox::{Fault, Route};
use botauth_validator::ErrorKind;
use common::*;
use serde_json::json;

#[tokio::test]
async fn rotation_new_kid_appears_old_kid_removed() {
    let env = Env::start().await;
    let v = env.validator();
    let old_token = env.token();
    assert!(v.validate(&old_token, teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 1);

    let old_kid = env.sandbox.bot_service_kid();
    let new_kid = env.sandbox.rotate_bot_service_key();
    let new_token = env.token();
    // Within the cooldown of the last fetch, an unknown kid causes no refetch.
    assert_eq!(kind(&v, &new_token).await, ErrorKind::UnknownKeyId);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 1);
    env.clock.advance(Duration::from_secs(300));
    let fresh = env.token();
    assert!(v.validate(&fresh, teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 2);
    // Both keys are published: the old token still verifies (from the verified cache or afresh).
    assert!(v.validate(&old_token, teams()).await.is_ok());

    // The old key is withdrawn; once the keys are refetched, its tokens are refused even though
    // their verification was cached.
    env.sandbox.remove_bot_service_key(&old_kid);
    env.clock.advance(Duration::from_secs(300));
    let probe = env.sign(&json!({"alg": "RS256", "kid": "probe"}), &env.claims());
    assert_eq!(kind(&v, &probe).await, ErrorKind::UnknownKeyId);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 3);
    assert_eq!(kind(&v, &old_token).await, ErrorKind::UnknownKeyId);
    assert!(v.validate(&fresh, teams()).await.is_ok());
    assert_ne!(old_kid, new_kid);
}

#[tokio::test]
async fn scheduled_refresh_every_24_hours() {
    let env = Env::start().await;
    let v = env.validator();
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    env.clock.advance(Duration::from_secs(23 * 3600));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 1);
    env.clock.advance(Duration::from_secs(3600));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 2);
    assert_eq!(v.key_fetches(), 2);

    let hourly = env
        .builder()
        .key_refresh_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert!(hourly.validate(&env.token(), teams()).await.is_ok());
    env.clock.advance(Duration::from_secs(3600));
    assert!(hourly.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(hourly.key_fetches(), 2);
}

#[tokio::test]
async fn metadata_down_at_start_is_503_then_recovers() {
    let env = Env::start().await;
    let v = env.validator();
    env.sandbox
        .inject(Route::BotServiceMetadata, Fault::status(503));
    let token = env.token();
    let e = v.validate(&token, teams()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable);
    assert!(e.is_retryable() && !e.is_rejection());
    let source = std::error::Error::source(&e).unwrap().to_string();
    assert!(source.contains("HTTP 503"), "{source}");
    // No hammering: within the retry interval the failure is answered from memory.
    assert_eq!(kind(&v, &token).await, ErrorKind::KeysUnavailable);
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 1);
    env.clock.advance(Duration::from_secs(30));
    assert!(v.validate(&token, teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 2);

    // A key endpoint that is down (JWKS 500) or garbled at start is the same 503.
    let env = Env::start().await;
    let v = env.validator();
    env.sandbox
        .inject(Route::BotServiceJwks, Fault::status(500));
    assert_eq!(kind(&v, &env.token()).await, ErrorKind::KeysUnavailable);
    env.clock.advance(Duration::from_secs(30));
    env.sandbox
        .inject(Route::BotServiceJwks, Fault::MalformedJson);
    assert_eq!(kind(&v, &env.token()).await, ErrorKind::KeysUnavailable);
    env.clock.advance(Duration::from_secs(30));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
}

#[tokio::test]
async fn outage_mid_life_serves_last_known_good_up_to_max_stale() {
    let env = Env::start().await;
    let v = env
        .builder()
        .max_stale(Duration::from_secs(48 * 3600))
        .build()
        .unwrap();
    assert!(v.validate(&env.token(), teams()).await.is_ok());

    // The refresh is due but the metadata endpoint is down: the good keys keep working.
    env.sandbox
        .inject_n(Route::BotServiceMetadata, Fault::status(503), 1000);
    env.clock.advance(Duration::from_secs(25 * 3600));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    let after_first_failure = env.sandbox.count(Route::BotServiceMetadata);
    assert_eq!(after_first_failure, 2);
    // Failed refreshes are retried at most once per retry interval.
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 2);
    env.clock.advance(Duration::from_secs(30));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 3);

    // Past the max-stale bound the keys are no longer trusted: 503, not a rejection.
    env.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(kind(&v, &env.token()).await, ErrorKind::KeysUnavailable);
    env.sandbox.clear_faults();
    env.clock.advance(Duration::from_secs(30));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
}

#[tokio::test]
async fn a_partial_fetch_never_drops_good_keys() {
    let env = Env::start().await;
    let v = env.validator();
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    env.clock.advance(Duration::from_secs(24 * 3600));
    // Metadata answers, the JWKS is truncated.
    env.sandbox
        .inject(Route::BotServiceJwks, Fault::MalformedJson);
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 2);
    // The JWKS answers with no usable key at all.
    env.clock.advance(Duration::from_secs(30));
    let kid = env.sandbox.bot_service_kid();
    env.sandbox.remove_bot_service_key(&kid);
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 3);
}

#[tokio::test]
async fn unknown_kid_flood_fetches_at_most_once_per_cooldown() {
    let env = Env::start().await;
    let v = env.validator();
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    let claims = env.claims();
    for round in 0..2 {
        for i in 0..500 {
            let token = env.sign(
                &json!({"alg": "RS256", "kid": format!("random-{round}-{i}")}),
                &claims,
            );
            assert_eq!(kind(&v, &token).await, ErrorKind::UnknownKeyId);
        }
        // The first round falls in the cooldown of the initial fetch; the second, a cooldown
        // later, may refetch exactly once.
        assert_eq!(env.sandbox.count(Route::BotServiceJwks), 1 + round);
        env.clock.advance(Duration::from_secs(300));
    }
    // Valid tokens were never disturbed.
    assert!(v.validate(&env.token(), teams()).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_at_start_and_no_stall_during_refresh() {
    let env = Env::start().await;
    let v = env.validator();
    // Cold start: 200 concurrent validations share one metadata + JWKS fetch.
    env.sandbox.inject(
        Route::BotServiceJwks,
        Fault::Delay(Duration::from_millis(200)),
    );
    let tokens: Vec<String> = (0..200).map(|_| env.token()).collect();
    let tasks: Vec<_> = tokens
        .iter()
        .cloned()
        .map(|t| {
            let v = v.clone();
            tokio::spawn(async move { v.validate(&t, teams()).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 1);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 1);

    // A refresh that takes a while: everyone keeps validating with the current keys meanwhile,
    // and exactly one refresh happens.
    env.clock.advance(Duration::from_secs(24 * 3600));
    env.sandbox.inject(
        Route::BotServiceJwks,
        Fault::Delay(Duration::from_millis(300)),
    );
    let tokens: Vec<String> = (0..300).map(|_| env.token()).collect();
    let tasks: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let v = v.clone();
            tokio::spawn(async move { v.validate(&t, teams()).await.map(|_| ()) })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(env.sandbox.count(Route::BotServiceMetadata), 2);
    assert_eq!(env.sandbox.count(Route::BotServiceJwks), 2);
}

#[tokio::test]
async fn jwks_uri_must_be_https_or_loopback() {
    // A metadata document pointing at plain http elsewhere is refused (the key set stays empty).
    let env = Env::start().await;
    let server = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = server.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/meta",
        axum::routing::get(|| async {
            axum::Json(json!({"issuer": "x", "jwks_uri": "http://keys.example.com/keys"}))
        }),
    );
    tokio::spawn(async move { axum::serve(server, app).await });
    let v = botauth_validator::Validator::builder(APP)
        .profile(botauth_validator::BotServiceProfile::custom(
            format!("http://{addr}/meta"),
            env.sandbox.bot_service_issuer(),
        ))
        .settings(botauth_http::ClientSettings::new().clock(env.clock.clone()))
        .build()
        .unwrap();
    let e = v.validate(&env.token(), teams()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable);
    let source = std::error::Error::source(&e).unwrap();
    assert!(source.to_string().contains("jwks_uri"), "{source}");
}

#[tokio::test]
async fn key_fetches_are_bounded_in_size_and_time() {
    use botauth_http::HttpOptions;
    let env = Env::start().await;
    // A JWKS larger than the limit is a failed fetch: 503, not keys.
    let small = env
        .builder()
        .settings(
            botauth_http::ClientSettings::new().http_options(HttpOptions {
                max_response_bytes: 512,
                ..HttpOptions::default()
            }),
        )
        .build()
        .unwrap();
    let e = small.validate(&env.token(), teams()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable);
    let source = std::error::Error::source(&e).unwrap().to_string();
    assert!(source.contains("larger than 512 bytes"), "{source}");

    // An endpoint slower than the timeout: the fetch is abandoned, the request answered.
    let impatient = env
        .builder()
        .settings(
            botauth_http::ClientSettings::new().http_options(HttpOptions {
                timeout: Duration::from_millis(200),
                ..HttpOptions::default()
            }),
        )
        .build()
        .unwrap();
    env.sandbox
        .inject(Route::BotServiceJwks, Fault::Delay(Duration::from_secs(30)));
    let e = impatient.validate(&env.token(), teams()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::KeysUnavailable);
    let source = std::error::Error::source(&e).unwrap();
    assert!(
        matches!(
            source.downcast_ref::<botauth_core::Error>(),
            Some(botauth_core::Error::Timeout { .. })
        ),
        "{source:?}"
    );
}

/// A client that hangs up mid-request drops the request's future; the fetch it started must still
/// count, or every such request would fetch again (the cooldown and single flight bypassed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_that_go_away_mid_fetch_do_not_multiply_fetches() {
    let env = Env::start().await;
    let v = env.validator();
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    env.clock.advance(Duration::from_secs(300));
    let claims = env.claims();
    // Signed before the fetch starts, and a fetch far slower than the 30 requests that give up
    // on it, so that a busy machine cannot finish the fetch before the last of them.
    let tokens: Vec<String> = (0..30)
        .map(|i| {
            env.sign(
                &json!({"alg": "RS256", "kid": format!("gone-{i}")}),
                &claims,
            )
        })
        .collect();
    env.sandbox.inject_n(
        Route::BotServiceMetadata,
        Fault::Delay(Duration::from_secs(3)),
        100,
    );
    for (i, token) in tokens.iter().enumerate() {
        let abandoned =
            tokio::time::timeout(Duration::from_millis(10), v.validate(token, teams())).await;
        assert!(
            abandoned.is_err(),
            "request {i} should still be waiting on the fetch"
        );
    }
    // One refetch for the whole cooldown window, whoever started it and whoever went away.
    assert_eq!(v.key_fetches(), 2);
    let probe = env.sign(&json!({"alg": "RS256", "kid": "probe"}), &claims);
    assert_eq!(kind(&v, &probe).await, ErrorKind::UnknownKeyId);
    assert_eq!(v.key_fetches(), 2);
    assert!(v.validate(&env.token(), teams()).await.is_ok());
}

/// A key rotated in while the key endpoint is down cannot be looked for: that is 503 (the Bot
/// Service retries), not 401 (the activity would be lost).
#[tokio::test]
async fn a_new_kid_during_an_outage_is_keys_unavailable() {
    let env = Env::start().await;
    let v = env.validator();
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    env.sandbox
        .inject_n(Route::BotServiceMetadata, Fault::status(503), 1000);
    env.clock.advance(Duration::from_secs(301));
    env.sandbox.rotate_bot_service_key();
    assert_eq!(kind(&v, &env.token()).await, ErrorKind::KeysUnavailable);
    // A kid nobody publishes, with the endpoint up again, is a plain rejection once more.
    env.sandbox.clear_faults();
    env.clock.advance(Duration::from_secs(301));
    assert!(v.validate(&env.token(), teams()).await.is_ok());
    let probe = env.sign(&json!({"alg": "RS256", "kid": "probe"}), &env.claims());
    assert_eq!(kind(&v, &probe).await, ErrorKind::UnknownKeyId);
}

#[tokio::test]
async fn a_refresh_interval_past_max_stale_is_refused() {
    let env = Env::start().await;
    let e = env
        .builder()
        .key_refresh_interval(Duration::from_secs(100 * 3600))
        .max_stale(Duration::from_secs(3600))
        .build()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Config);
    assert!(e.to_string().contains("key_refresh_interval"), "{e}");
}
