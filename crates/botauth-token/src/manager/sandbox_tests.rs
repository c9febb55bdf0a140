//! The token manager in front of the client-credentials client, against the sandbox's Entra token
//! endpoint over real HTTP on 127.0.0.1 (issue 13: `Retry-After` holds, poisoned tokens).
//!
//! One `ManualClock` drives the client (token expiry, `Retry-After` dates) and the manager
//! (refresh times, holds, retry waits), so an hour passes in a call and the I/O stays real.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::{ClientAuth, ClientCredentialsClient};
use botauth_core::{ErrorKind, ManualClock, Secret};
use botauth_http::HttpOptions;
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox};

const SCOPE: &str = "https://api.botframework.com/.default";
/// The sandbox's `expires_in`; the manager refreshes 360 s before expiry.
const LIFETIME: Duration = Duration::from_secs(3599);
const REFRESH_AT: Duration = Duration::from_secs(3599 - 360);

struct Rig {
    sandbox: Sandbox,
    clock: Arc<ManualClock>,
    tokens: TokenManager,
}

async fn rig() -> Rig {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.set_token_lifetime(LIFETIME);
    let clock = Arc::new(ManualClock::new());
    let client = ClientCredentialsClient::builder(
        sandbox.url(),
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        ClientAuth::Secret(Secret::new(DEMO_CLIENT_SECRET)),
    )
    .settings(
        botauth_http::ClientSettings::new()
            .clock(clock.clone())
            .http_options(HttpOptions {
                timeout: Duration::from_secs(10),
                ..HttpOptions::default()
            }),
    )
    .build()
    .unwrap();
    let tokens = TokenManager::builder(Arc::new(client))
        .clock(clock.clone())
        .options(ManagerOptions {
            max_jitter: Duration::ZERO,
            ..ManagerOptions::default()
        })
        .build();
    Rig {
        sandbox,
        clock,
        tokens,
    }
}

fn req() -> TokenRequest {
    TokenRequest::new(SCOPE)
}

fn text(t: &AccessToken) -> String {
    t.token.expose_secret().to_owned()
}

impl Rig {
    fn requests(&self) -> usize {
        self.sandbox.count(Route::Token)
    }

    /// Waits (in real time) until no token request is in flight for the key.
    async fn landed(&self) {
        let slot = self.tokens.inner.find(&req()).unwrap();
        for _ in 0..1000 {
            if slot.lock().flight.is_none() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the token request did not finish");
    }

    fn answer_503(&self, retry_after: &str) {
        self.sandbox.inject(
            Route::Token,
            Fault::Status {
                status: 503,
                body: None,
                retry_after: Some(retry_after.into()),
            },
        );
    }
}

/// Issue 13: the token endpoint answers a background refresh with 503 and `Retry-After: 3600`.
/// Once the cached token was no longer usable, a request went out ~65 s later. Now nothing is
/// sent for that key until the hour has passed, and callers get `Throttled` with the time left.
#[tokio::test]
async fn a_retry_after_to_a_background_refresh_holds_every_request_past_expiry() {
    let r = rig().await;
    let first = r.tokens.get_token(&req()).await.unwrap();
    assert_eq!(r.requests(), 1);

    r.clock.advance(REFRESH_AT + Duration::from_secs(1));
    r.answer_503("3600");
    let (served, source) = r.tokens.get_token_with_source(&req()).await.unwrap();
    assert_eq!(
        (text(&served), source),
        (text(&first), TokenSource::CacheRefreshing)
    );
    r.landed().await;
    assert_eq!(r.requests(), 2);

    // While the token is usable it is served, and no background refresh starts (not even after
    // the usual 30 s back-off).
    r.clock.advance(Duration::from_secs(40));
    assert_eq!(
        text(&r.tokens.get_token(&req()).await.unwrap()),
        text(&first)
    );
    r.landed().await;
    assert_eq!(r.requests(), 2);

    // 65 s after the 503 the token has under 300 s left: it is expired for callers.
    r.clock.advance(Duration::from_secs(25));
    let left = Duration::from_secs(3600 - 65);
    let e = r.tokens.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
    assert_eq!(e.retry_after(), Some(left));
    assert!(e.is_retryable());
    assert!(
        matches!(
            e,
            Error::RetryAfterPending { status: Some(503), ref endpoint, .. }
                if *endpoint == r.sandbox.token_endpoint(DEMO_TENANT_ID)
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("3535s"), "{e}");
    let e = r.tokens.force_refresh(&req()).await.unwrap_err();
    assert_eq!(
        (e.kind(), e.retry_after()),
        (ErrorKind::Throttled, Some(left))
    );
    assert_eq!(r.requests(), 2, "no request before Retry-After has passed");

    // Up to the last second.
    r.clock.advance(left - Duration::from_secs(1));
    let e = r.tokens.get_token(&req()).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)));
    assert_eq!(r.requests(), 2);

    r.clock.advance(Duration::from_secs(1));
    let (fresh, source) = r.tokens.get_token_with_source(&req()).await.unwrap();
    assert_eq!(source, TokenSource::Fetched);
    assert_ne!(text(&fresh), text(&first));
    assert_eq!(r.requests(), 3);
    assert_eq!(
        text(&r.tokens.get_token(&req()).await.unwrap()),
        text(&fresh)
    );
}

/// A caller's own request that gets a long `Retry-After` fails at once; a forced refresh (what
/// the connector client does after a 401) does not get past it either, and `Retry-After` is
/// capped at one hour (docs/protocol.md §5).
#[tokio::test]
async fn a_retry_after_to_a_caller_holds_forced_refreshes_and_is_capped_at_an_hour() {
    let r = rig().await;
    r.answer_503("86400");
    let e = r.tokens.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(86400)));
    r.clock.advance(Duration::from_secs(10));
    for e in [
        r.tokens.force_refresh(&req()).await.unwrap_err(),
        r.tokens.get_token(&req()).await.unwrap_err(),
    ] {
        assert_eq!(e.kind(), ErrorKind::Throttled, "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3590)));
    }
    assert_eq!(r.requests(), 1);
    r.clock.advance(Duration::from_secs(3590));
    r.tokens.force_refresh(&req()).await.unwrap();
    assert_eq!(r.requests(), 2);
}

/// `Retry-After: 0`, or a date in the past, is not "retry at once": the retry waits the normal
/// 1 s floor, as the connector client's retries do.
#[tokio::test]
async fn a_zero_or_past_retry_after_waits_the_backoff_floor() {
    let past = httpdate::fmt_http_date(SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000));
    for retry_after in ["0", past.as_str()] {
        let r = rig().await;
        r.answer_503(retry_after);
        let started = r.clock.now();
        r.tokens.get_token(&req()).await.unwrap();
        assert_eq!(r.requests(), 2, "{retry_after}");
        // The retry waited through the manager's clock: exactly the floor.
        assert_eq!(
            r.clock.now().duration_since(started).unwrap(),
            Duration::from_secs(1),
            "{retry_after}"
        );
    }
}

/// Issue 13: an `access_token` that cannot go in an HTTP header was cached, and every reply
/// failed for the token's lifetime. It is now refused when the response is parsed.
#[tokio::test]
async fn an_access_token_that_cannot_be_sent_is_refused_and_not_cached() {
    let r = rig().await;
    let poisoned = [
        "tok\r\nX-Evil: 1",
        "tok\nX-Evil: 1",
        "tok\0",
        "tok\u{7f}",
        "tok\t",
        "\u{1b}[2Jtok",
        "t ok",
        "tök",
        "",
    ];
    for (i, token) in poisoned.iter().enumerate() {
        let body = serde_json::json!({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token,
        });
        r.sandbox.inject(
            Route::Token,
            Fault::Status {
                status: 200,
                body: Some(body.to_string()),
                retry_after: None,
            },
        );
        let e = r.tokens.get_token(&req()).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidResponse, "{token:?}: {e}");
        assert!(
            matches!(e, Error::InvalidResponse { status: 200, .. }),
            "{token:?}: {e:?}"
        );
        let message = e.to_string();
        // The message never quotes the token.
        assert!(!message.contains("X-Evil"), "{message}");
        assert!(token.is_empty() || !message.contains(token), "{message}");
        assert_eq!(r.requests(), i + 1);
        // The negative cache answers for 2 s; then the next caller gets a new request.
        let again = r.tokens.get_token(&req()).await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::InvalidResponse);
        assert_eq!(r.requests(), i + 1);
        r.clock.advance(Duration::from_secs(2));
    }
    let good = r.tokens.get_token(&req()).await.unwrap();
    assert_eq!(r.requests(), poisoned.len() + 1);
    assert!(
        reqwest::header::HeaderValue::from_str(good.authorization_header().expose_secret()).is_ok()
    );

    // A background refresh that receives one keeps serving the valid token.
    r.clock.advance(REFRESH_AT + Duration::from_secs(1));
    let body = serde_json::json!({
        "token_type": "Bearer", "expires_in": 3599, "access_token": "tok\r\nX-Evil: 1",
    });
    r.sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 200,
            body: Some(body.to_string()),
            retry_after: None,
        },
    );
    assert_eq!(
        text(&r.tokens.get_token(&req()).await.unwrap()),
        text(&good)
    );
    r.landed().await;
    assert_eq!(r.requests(), poisoned.len() + 2);
    assert_eq!(
        text(&r.tokens.get_token(&req()).await.unwrap()),
        text(&good)
    );
}
