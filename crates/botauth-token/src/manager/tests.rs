use super::*;
use botauth_core::{EntraError, ErrorKind, TokioClock};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::time::Instant;

const SCOPE: &str = "https://api.botframework.com/.default";
const HOUR: Duration = Duration::from_secs(3600);

/// What the fake issuer answers next.
enum Next {
    Token {
        lifetime: Duration,
        refresh_in: Option<Duration>,
    },
    Fail(Error),
    /// A one-hour token with exactly this text.
    Text(&'static str),
}

#[derive(Debug)]
struct Fake {
    clock: TokioClock,
    calls: AtomicUsize,
    delay: Duration,
    script: Mutex<VecDeque<NextDebug>>,
    at: Mutex<Vec<Instant>>,
}

#[derive(Debug)]
struct NextDebug(#[allow(dead_code)] String, NextBox);
struct NextBox(Next);
impl fmt::Debug for NextBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("next")
    }
}

impl Fake {
    fn new(delay: Duration) -> Arc<Self> {
        Arc::new(Fake {
            clock: TokioClock::new(),
            calls: AtomicUsize::new(0),
            delay,
            script: Mutex::new(VecDeque::new()),
            at: Mutex::new(Vec::new()),
        })
    }
    fn then(&self, next: Next) -> &Self {
        self.script
            .lock()
            .unwrap()
            .push_back(NextDebug(String::new(), NextBox(next)));
        self
    }
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn call_times(&self) -> Vec<Instant> {
        self.at.lock().unwrap().clone()
    }
}

#[async_trait]
impl CredentialProvider for Fake {
    async fn get_token(&self, _request: &TokenRequest) -> Result<AccessToken> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.at.lock().unwrap().push(Instant::now());
        tokio::time::sleep(self.delay).await;
        let next = self.script.lock().unwrap().pop_front().map(|n| n.1.0);
        let now = self.clock.now();
        match next.unwrap_or(Next::Token {
            lifetime: HOUR,
            refresh_in: None,
        }) {
            Next::Token {
                lifetime,
                refresh_in,
            } => Ok(AccessToken {
                refresh_on: refresh_in.map(|r| now + r),
                ..AccessToken::bearer(format!("token-{n}"), now + lifetime)
            }),
            Next::Fail(e) => Err(e),
            Next::Text(text) => Ok(AccessToken::bearer(text, now + HOUR)),
        }
    }
    fn describe(&self) -> CredentialInfo {
        CredentialInfo {
            client_id: Some("app".into()),
            tenant_id: Some("tenant".into()),
            ..CredentialInfo::new("fake")
        }
    }
}

fn manager(fake: &Arc<Fake>) -> TokenManager {
    TokenManager::builder(fake.clone())
        .clock(Arc::new(fake.clock))
        .options(ManagerOptions {
            max_jitter: Duration::ZERO,
            ..ManagerOptions::default()
        })
        .build()
}

fn req() -> TokenRequest {
    TokenRequest::new(SCOPE)
}

fn token_text(t: &AccessToken) -> &str {
    t.token.expose_secret()
}

fn server_error() -> Error {
    Error::Unavailable {
        endpoint: "e".into(),
        status: Some(500),
        retry_after: None,
        source: None,
    }
}

fn throttled(secs: u64) -> Error {
    Error::Throttled {
        endpoint: "e".into(),
        retry_after: Some(Duration::from_secs(secs)),
    }
}

fn bad_secret() -> Error {
    EntraError::from_body(
        401,
        br#"{"error":"invalid_client","error_codes":[7000215]}"#,
        None,
    )
    .unwrap()
    .into()
}

/// Lets spawned tasks run (paused time advances only when every task is idle).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}

#[tokio::test(start_paused = true)]
async fn thousand_cold_callers_make_one_request() {
    let fake = Fake::new(Duration::from_millis(200));
    let m = manager(&fake);
    let mut tasks = Vec::new();
    for _ in 0..1000 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move { m.get_token(&req()).await }));
    }
    for t in tasks {
        assert_eq!(token_text(&t.await.unwrap().unwrap()), "token-1");
    }
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn second_call_is_a_cache_hit() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    let (_, s1) = m.get_token_with_source(&req()).await.unwrap();
    let (t2, s2) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!((s1, s2), (TokenSource::Fetched, TokenSource::Cache));
    assert_eq!(token_text(&t2), "token-1");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn scopes_are_a_set() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    m.get_token(&TokenRequest::with_scopes(["b", "a"]))
        .await
        .unwrap();
    m.get_token(&TokenRequest::with_scopes(["a", " b", "a"]))
        .await
        .unwrap();
    assert_eq!(fake.calls(), 1);
    m.get_token(&TokenRequest::with_scopes(["a"]))
        .await
        .unwrap();
    m.get_token(&TokenRequest {
        tenant_id: Some("other".into()),
        ..TokenRequest::with_scopes(["a", "b"])
    })
    .await
    .unwrap();
    assert_eq!(fake.calls(), 3);
    assert!(
        m.get_token(&TokenRequest::with_scopes([" "]))
            .await
            .unwrap_err()
            .is_config()
    );
}

#[tokio::test(start_paused = true)]
async fn refreshes_ahead_in_the_background() {
    let fake = Fake::new(Duration::from_millis(100));
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    // One hour token: refresh at expiry - 300 s - 60 s.
    tokio::time::advance(Duration::from_secs(3239)).await;
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::Cache
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    let started = Instant::now();
    let (t, s) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "the caller must not wait"
    );
    assert_eq!(
        (token_text(&t), s),
        ("token-1", TokenSource::CacheRefreshing)
    );
    // Callers during the refresh are served at once and start nothing.
    let (t, s) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(
        (token_text(&t), s),
        ("token-1", TokenSource::CacheRefreshing)
    );
    settle().await;
    assert_eq!(fake.calls(), 2);
    let (t, s) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!((token_text(&t), s), ("token-2", TokenSource::Cache));
}

#[tokio::test(start_paused = true)]
async fn long_tokens_refresh_at_half_life_and_refresh_in_wins() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Token {
        lifetime: 4 * HOUR,
        refresh_in: None,
    })
    .then(Next::Token {
        lifetime: HOUR,
        refresh_in: Some(Duration::from_secs(600)),
    });
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    tokio::time::advance(2 * HOUR - Duration::from_secs(1)).await;
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::Cache
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::CacheRefreshing
    );
    settle().await;
    // The new token said refresh_in = 600 s.
    tokio::time::advance(Duration::from_secs(598)).await;
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::Cache
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::CacheRefreshing
    );
    settle().await;
    assert_eq!(fake.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn failed_refresh_keeps_the_valid_token() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Token {
        lifetime: HOUR,
        refresh_in: None,
    })
    .then(Next::Fail(bad_secret()));
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    tokio::time::advance(Duration::from_secs(3241)).await;
    let (t, _) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(token_text(&t), "token-1");
    settle().await;
    assert_eq!(fake.calls(), 2);
    // Still served, and no new attempt until the background back-off (30 s) has passed.
    for _ in 0..10 {
        assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
    }
    assert_eq!(fake.calls(), 2);
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
    settle().await;
    assert_eq!(fake.calls(), 3);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
}

#[tokio::test(start_paused = true)]
async fn a_token_with_less_than_five_minutes_left_is_expired() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    tokio::time::advance(Duration::from_secs(3241)).await;
    // Background refresh starts here; make it fail so the token ages further.
    fake.then(Next::Fail(server_error()))
        .then(Next::Fail(server_error()));
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::CacheRefreshing
    );
    // The background refresh fails, waits 1 s, fails again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.calls(), 3);
    tokio::time::advance(Duration::from_secs(60)).await;
    // Under 300 s left: expired for callers; they wait for a fresh token.
    let (t, s) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(s, TokenSource::Fetched);
    assert_eq!(token_text(&t), "token-4");
}

#[tokio::test(start_paused = true)]
async fn server_errors_retry_once_after_one_second() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(server_error()));
    let m = manager(&fake);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    let at = fake.call_times();
    assert_eq!(at.len(), 2);
    assert_eq!(at[1] - at[0], Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn two_server_errors_fail_with_the_last_one() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(server_error()))
        .then(Next::Fail(server_error()));
    let m = manager(&fake);
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(fake.calls(), 2);
}

/// A credential with its own retry schedule (managed identity) is not retried a second time.
#[derive(Debug)]
struct SelfRetrying(Arc<Fake>);

#[async_trait]
impl CredentialProvider for SelfRetrying {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        self.0.get_token(request).await
    }
    fn describe(&self) -> CredentialInfo {
        CredentialInfo {
            retries_internally: true,
            ..self.0.describe()
        }
    }
}

#[tokio::test(start_paused = true)]
async fn credentials_that_retry_internally_are_not_retried_again() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(server_error()));
    let m = TokenManager::new(Arc::new(SelfRetrying(fake.clone())));
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert_eq!(fake.calls(), 1);
}

/// A provider that panics on its first call.
#[derive(Debug)]
struct PanicsOnce(Arc<Fake>, AtomicUsize);

#[async_trait]
impl CredentialProvider for PanicsOnce {
    async fn get_token(&self, request: &TokenRequest) -> Result<AccessToken> {
        if self.1.fetch_add(1, Ordering::SeqCst) == 0 {
            panic!("a provider bug");
        }
        self.0.get_token(request).await
    }
    fn describe(&self) -> CredentialInfo {
        self.0.describe()
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_provider_is_an_error_and_the_next_call_recovers() {
    let fake = Fake::new(Duration::ZERO);
    let m = TokenManager::builder(Arc::new(PanicsOnce(fake.clone(), AtomicUsize::new(0))))
        .clock(Arc::new(fake.clock))
        .build();
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(e.to_string().contains("panicked"), "{e}");
    // After the short negative cache, the next call reaches the provider again.
    tokio::time::advance(Duration::from_secs(3)).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
}

#[tokio::test(start_paused = true)]
async fn short_retry_after_is_waited_for() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(throttled(7)));
    let m = manager(&fake);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    let at = fake.call_times();
    assert_eq!(at[1] - at[0], Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn long_retry_after_fails_fast_and_holds_off_requests() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(throttled(120)));
    let m = manager(&fake);
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    tokio::time::advance(Duration::from_secs(119)).await;
    assert_eq!(
        m.get_token(&req()).await.unwrap_err().kind(),
        ErrorKind::Throttled
    );
    assert_eq!(fake.calls(), 1, "no request before Retry-After has passed");
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
}

/// Issue 13: a `Retry-After` answer to a background refresh held off only the next background
/// refresh; once the token stopped being usable, a caller's request went out at once.
#[tokio::test(start_paused = true)]
async fn a_background_retry_after_holds_callers_and_forced_refreshes() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    tokio::time::advance(Duration::from_secs(3241)).await;
    fake.then(Next::Fail(Error::Unavailable {
        endpoint: "e".into(),
        status: Some(503),
        retry_after: Some(HOUR),
        source: None,
    }));
    assert_eq!(
        m.get_token_with_source(&req()).await.unwrap().1,
        TokenSource::CacheRefreshing
    );
    settle().await;
    assert_eq!(fake.calls(), 2);
    // 65 s after the 503 the token has under 300 s left: callers need a new one, but none is
    // requested.
    tokio::time::advance(Duration::from_secs(64)).await;
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    let left = HOUR - Duration::from_millis(64_500);
    assert_eq!(e.retry_after(), Some(left));
    assert!(matches!(
        e,
        Error::RetryAfterPending { status: Some(503), ref endpoint, .. } if endpoint == "e"
    ));
    let e = m.force_refresh(&req()).await.unwrap_err();
    assert_eq!(e.retry_after(), Some(left));
    assert_eq!(fake.calls(), 2, "no request before Retry-After has passed");
    // Neither invalidate nor clear lets a request out early.
    m.invalidate(&req());
    m.clear();
    assert_eq!(
        m.get_token(&req()).await.unwrap_err().kind(),
        ErrorKind::Throttled
    );
    assert_eq!(fake.calls(), 2);
    tokio::time::advance(left).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
}

/// `Retry-After: 0` is not "retry at once": a failed background refresh still waits the
/// background back-off (30 s) before the next one.
#[tokio::test(start_paused = true)]
async fn a_zero_retry_after_keeps_the_background_backoff() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    tokio::time::advance(Duration::from_secs(3241)).await;
    fake.then(Next::Fail(throttled(0)))
        .then(Next::Fail(throttled(0)));
    m.get_token(&req()).await.unwrap();
    // The refresh and its one retry (after the 1 s floor, not at once) both fail.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(fake.calls(), 3);
    let at = fake.call_times();
    assert_eq!(at[2] - at[1], Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(27)).await;
    m.get_token(&req()).await.unwrap();
    settle().await;
    assert_eq!(fake.calls(), 3, "no refresh before the 30 s back-off");
    tokio::time::advance(Duration::from_secs(2)).await;
    m.get_token(&req()).await.unwrap();
    settle().await;
    assert_eq!(fake.calls(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_zero_retry_after_waits_the_retry_delay() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(throttled(0)));
    let m = manager(&fake);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    let at = fake.call_times();
    assert_eq!(at[1] - at[0], Duration::from_secs(1));
}

/// Issue 13: a token that cannot go in a header was cached and failed every reply for its
/// lifetime. The manager refuses it whichever provider produced it.
#[tokio::test(start_paused = true)]
async fn tokens_that_cannot_be_sent_are_refused_from_any_provider() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Text("tok\r\nX-Evil: 1"));
    let m = manager(&fake);
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert!(!e.to_string().contains("X-Evil"), "{e}");
    assert!(e.to_string().contains("the `fake` credential"), "{e}");
    // Not cached; the negative cache answers for 2 s, then a new request is made.
    assert_eq!(
        m.get_token(&req()).await.unwrap_err().kind(),
        ErrorKind::InvalidResponse
    );
    assert_eq!(fake.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    // A background refresh that gets one keeps the valid token.
    tokio::time::advance(Duration::from_secs(3241)).await;
    fake.then(Next::Text("t\u{7f}k"));
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    settle().await;
    assert_eq!(fake.calls(), 3);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
}

#[tokio::test(start_paused = true)]
async fn rejections_are_not_retried_and_are_briefly_remembered() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(bad_secret()));
    let m = manager(&fake);
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.as_entra().and_then(EntraError::code), Some(7000215));
    let e = m.get_token(&req()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert_eq!(fake.calls(), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
}

#[tokio::test(start_paused = true)]
async fn force_refresh_replaces_the_token_once_for_all_callers() {
    let fake = Fake::new(Duration::from_millis(50));
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let m = m.clone();
        tasks.push(tokio::spawn(async move { m.force_refresh(&req()).await }));
    }
    for t in tasks {
        assert_eq!(token_text(&t.await.unwrap().unwrap()), "token-2");
    }
    assert_eq!(fake.calls(), 2);
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
}

#[tokio::test(start_paused = true)]
async fn force_refresh_bypasses_the_negative_cache() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Fail(bad_secret()));
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap_err();
    assert_eq!(
        token_text(&m.force_refresh(&req()).await.unwrap()),
        "token-2"
    );
}

/// The lock-free hit path serves the published snapshot only: never past the refresh time
/// (the slow path then starts the background refresh), and never a token that was dropped,
/// forced out or cleared.
#[tokio::test(start_paused = true)]
async fn the_hit_path_follows_every_change_of_the_token() {
    let fake = Fake::new(Duration::ZERO);
    fake.then(Next::Token {
        lifetime: Duration::from_secs(3600),
        refresh_in: Some(Duration::from_secs(600)),
    });
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    for _ in 0..3 {
        let (t, source) = m.get_token_with_source(&req()).await.unwrap();
        assert_eq!((token_text(&t), source), ("token-1", TokenSource::Cache));
    }
    // One second before the refresh time: still a plain hit. At it: the slow path.
    tokio::time::advance(Duration::from_secs(599)).await;
    let (_, source) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(source, TokenSource::Cache);
    tokio::time::advance(Duration::from_secs(1)).await;
    let (t, source) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!(
        (token_text(&t), source),
        ("token-1", TokenSource::CacheRefreshing)
    );
    settle().await;
    let (t, source) = m.get_token_with_source(&req()).await.unwrap();
    assert_eq!((token_text(&t), source), ("token-2", TokenSource::Cache));
    // Forced out, invalidated, cleared: each time the next caller gets a new token.
    assert_eq!(
        token_text(&m.force_refresh(&req()).await.unwrap()),
        "token-3"
    );
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
    m.invalidate(&req());
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-4");
    m.clear();
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-5");
    assert_eq!(fake.calls(), 5);
}

#[tokio::test(start_paused = true)]
async fn invalidate_drops_the_token() {
    let fake = Fake::new(Duration::ZERO);
    let m = manager(&fake);
    m.get_token(&req()).await.unwrap();
    m.invalidate(&req());
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-2");
    m.clear();
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-3");
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_caller_does_not_cancel_the_request() {
    let fake = Fake::new(Duration::from_secs(1));
    let m = manager(&fake);
    let first = {
        let m = m.clone();
        tokio::spawn(async move { m.get_token(&req()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    first.abort();
    assert_eq!(token_text(&m.get_token(&req()).await.unwrap()), "token-1");
    assert_eq!(fake.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_its_bounds() {
    let fake = Fake::new(Duration::ZERO);
    let m = TokenManager::builder(fake.clone())
        .clock(Arc::new(fake.clock))
        .build();
    let now = fake.clock.now();
    let token = AccessToken::bearer("t", now + HOUR);
    let base = now + HOUR - Duration::from_secs(360);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let at = m.inner.refresh_at(&token, now);
        assert!(at <= base && at >= base - Duration::from_secs(60), "{at:?}");
        seen.insert(at);
    }
    assert!(seen.len() > 100, "jitter should vary");
    // Never more than a tenth of the lead time.
    let short = AccessToken::bearer("t", now + Duration::from_secs(460));
    let at = m.inner.refresh_at(&short, now);
    assert!(at >= now + Duration::from_secs(90) && at <= now + Duration::from_secs(100));
}

#[tokio::test(start_paused = true)]
async fn the_manager_is_itself_a_provider() {
    let fake = Fake::new(Duration::ZERO);
    let m: Arc<dyn CredentialProvider> = Arc::new(manager(&fake));
    m.get_token(&req()).await.unwrap();
    m.get_token(&req()).await.unwrap();
    assert_eq!(fake.calls(), 1);
    assert_eq!(m.describe().kind, "fake");
}

#[test]
fn cache_key_names_all_parts() {
    let fake = Fake::new(Duration::ZERO);
    let m = TokenManager::new(fake);
    assert_eq!(
        m.cache_key(&TokenRequest::with_scopes(["b", "a", "a"])),
        "-|tenant|app|a b"
    );
}
