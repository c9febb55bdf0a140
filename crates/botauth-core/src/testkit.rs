//! A conformance suite every [`CredentialProvider`] should pass (feature `testkit`).
//!
//! botauth runs it against each of its own providers; run it against yours:
//!
//! ```
//! # use std::time::{Duration, SystemTime};
//! # use botauth_core::{async_trait, AccessToken, CredentialInfo, CredentialProvider, Result, TokenRequest};
//! # #[derive(Debug)] struct Mine;
//! # #[async_trait] impl CredentialProvider for Mine {
//! #     async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
//! #         Ok(AccessToken::bearer("eyJ.mine", SystemTime::now() + Duration::from_secs(3600)))
//! #     }
//! #     fn describe(&self) -> CredentialInfo { CredentialInfo::new("mine") }
//! # }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use botauth_core::testkit::check_provider;
//! let request = TokenRequest::new("https://api.botframework.com/.default");
//! let report = check_provider(&Mine, &request, &["my-signing-secret"]).await;
//! assert!(report.is_ok(), "{report:?}");
//! # }
//! ```
//!
//! [`check_provider`] covers the success path and cancellation. The error path needs a provider
//! that fails (a wrong secret, an unregistered certificate, a missing file): hand one to
//! [`ProviderCheck::failing`] with the [`ErrorKind`] it must report, and the suite checks that its
//! error has that kind and shows none of the secrets:
//!
//! ```
//! # use std::time::{Duration, SystemTime};
//! # use botauth_core::{async_trait, AccessToken, CredentialInfo, CredentialProvider, Error, Result, TokenRequest};
//! # struct Mine { secret: &'static str }
//! # impl std::fmt::Debug for Mine {
//! #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("Mine") }
//! # }
//! # #[async_trait] impl CredentialProvider for Mine {
//! #     async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
//! #         if self.secret != "right-s3cret" { return Err(Error::credential("the signing secret is wrong")); }
//! #         Ok(AccessToken::bearer("eyJ.mine", SystemTime::now() + Duration::from_secs(3600)))
//! #     }
//! #     fn describe(&self) -> CredentialInfo { CredentialInfo::new("mine") }
//! # }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use botauth_core::ErrorKind;
//! use botauth_core::testkit::ProviderCheck;
//!
//! let request = TokenRequest::new("https://api.botframework.com/.default");
//! let wrong = Mine { secret: "wrong-s3cret" };
//! let report = ProviderCheck::new()
//!     .secrets(&["right-s3cret", "wrong-s3cret"])
//!     .failing(&wrong, ErrorKind::Credential)
//!     .run(&Mine { secret: "right-s3cret" }, &request)
//!     .await;
//! assert!(report.is_ok(), "{report:?}");
//! # }
//! ```
//!
//! The suite uses tokio timers (the cancellation points and [`ProviderCheck::call_timeout`]). Run
//! it on a runtime with real time when the provider does real I/O: with paused time, tokio jumps
//! the clock forward while a request waits for the network, and the timeouts fire at once.

use std::fmt;
use std::time::Duration;

use crate::{Clock, CredentialProvider, Error, ErrorKind, SystemClock, TokenRequest};

/// Runs the conformance checks against `provider`, which must be able to obtain a token for
/// `request`. `secrets` are values that must never appear in the provider's `Debug`, its
/// description or its token's `Debug` (its client secret, key passphrase, …).
///
/// The same as `ProviderCheck::new().secrets(secrets).run(provider, request)`: it also checks
/// that cancelling a pending `get_token` leaves the provider usable. For the error path, use
/// [`ProviderCheck::failing`].
///
/// Returns every failed check, so one run shows all problems.
pub async fn check_provider(
    provider: &dyn CredentialProvider,
    request: &TokenRequest,
    secrets: &[&str],
) -> Result<(), Vec<String>> {
    ProviderCheck::new()
        .secrets(secrets)
        .run(provider, request)
        .await
}

/// The conformance suite with its options: the secrets to look for, failing providers whose
/// errors are checked, the cancellation points and the time each call may take.
///
/// ```
/// # use std::time::Duration;
/// use botauth_core::testkit::ProviderCheck;
/// let check = ProviderCheck::new()
///     .secrets(&["my-client-secret"])
///     .cancel_after([Duration::ZERO, Duration::from_millis(5)])
///     .call_timeout(Duration::from_secs(10));
/// # let _ = check;
/// ```
#[derive(Clone)]
pub struct ProviderCheck<'a> {
    secrets: Vec<&'a str>,
    failing: Vec<(&'a dyn CredentialProvider, ErrorKind)>,
    cancel_after: Vec<Duration>,
    call_timeout: Duration,
}

impl fmt::Debug for ProviderCheck<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the secrets nor the providers' `Debug` (the provider under test may be the
        // leaky one) are printed.
        let failing: Vec<_> = self
            .failing
            .iter()
            .map(|(p, kind)| format!("{} -> {kind}", p.describe().kind))
            .collect();
        f.debug_struct("ProviderCheck")
            .field("secrets", &self.secrets.len())
            .field("failing", &failing)
            .field("cancel_after", &self.cancel_after)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for ProviderCheck<'_> {
    fn default() -> Self {
        Self::new()
    }
}

/// The cancellation points used unless [`ProviderCheck::cancel_after`] says otherwise: right after
/// the first poll, and a little later, when an HTTP request is usually in flight.
const DEFAULT_CANCEL_AFTER: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_millis(10),
];

/// How long one `get_token` may take unless [`ProviderCheck::call_timeout`] says otherwise.
const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl<'a> ProviderCheck<'a> {
    /// The suite with no secrets, no failing provider and the default cancellation points.
    pub fn new() -> Self {
        ProviderCheck {
            secrets: Vec::new(),
            failing: Vec::new(),
            cancel_after: DEFAULT_CANCEL_AFTER.to_vec(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
        }
    }

    /// Values that must never appear in a provider's `Debug` or description, in a token's
    /// `Debug`, or anywhere in a failing provider's error (its `Display`, `Debug` and every
    /// source): client secrets, key passphrases, a line of a private key, `IDENTITY_HEADER`.
    /// Adds to those given before; empty strings are ignored.
    pub fn secrets(mut self, secrets: &[&'a str]) -> Self {
        self.secrets
            .extend(secrets.iter().copied().filter(|s| !s.is_empty()));
        self
    }

    /// A provider that must fail for the request given to [`run`](Self::run) (a wrong secret, an
    /// unregistered certificate, an unreachable endpoint), with an error of kind `expected`.
    /// Its error must show no secret, and its `Debug` and description are checked like the
    /// provider's. Call again to check several failures.
    pub fn failing(mut self, provider: &'a dyn CredentialProvider, expected: ErrorKind) -> Self {
        self.failing.push((provider, expected));
        self
    }

    /// The delays after which a pending `get_token` is dropped (default: right after the first
    /// poll, after 1 ms and after 10 ms, when an HTTP request is usually in flight). At each, a call started alongside
    /// the dropped one and a call started after it must both succeed. Empty skips the check.
    pub fn cancel_after(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.cancel_after = delays.into_iter().collect();
        self
    }

    /// How long one `get_token` may take before the suite reports it as hanging (default 30 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Runs the checks against `provider`, which must be able to obtain a token for `request`.
    ///
    /// Returns every failed check, so one run shows all problems. The messages never contain a
    /// secret given to [`secrets`](Self::secrets): where an error's text is quoted, each secret
    /// in it is replaced by `[secret]`.
    pub async fn run(
        &self,
        provider: &dyn CredentialProvider,
        request: &TokenRequest,
    ) -> Result<(), Vec<String>> {
        let mut failures = Vec::new();
        self.check_printing(provider, "the provider", &mut failures);
        self.check_tokens(provider, request, &mut failures).await;
        self.check_cancellation(provider, request, &mut failures)
            .await;
        for (i, (failing, expected)) in self.failing.iter().enumerate() {
            let what = format!("failing provider #{i}");
            self.check_printing(*failing, &what, &mut failures);
            self.check_failure(*failing, *expected, request, &what, &mut failures)
                .await;
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures)
        }
    }

    fn check_printing(
        &self,
        provider: &dyn CredentialProvider,
        what: &str,
        failures: &mut Vec<String>,
    ) {
        let info = provider.describe();
        if info.kind.trim().is_empty() {
            failures.push(format!("{what}: describe().kind is empty"));
        }
        let printed = [
            format!("{provider:?}"),
            format!("{info:?}"),
            format!("{info}"),
        ];
        if self.any_secret_in(printed.iter().map(String::as_str)) {
            failures.push(format!(
                "{what}: a secret appears in the provider's Debug or its description"
            ));
        }
    }

    async fn check_tokens(
        &self,
        provider: &dyn CredentialProvider,
        request: &TokenRequest,
        failures: &mut Vec<String>,
    ) {
        // Several requests at once must all succeed: providers are shared behind an Arc.
        let (a, b, c) = tokio::join!(
            provider.get_token(request),
            provider.get_token(request),
            provider.get_token(request)
        );
        let now = SystemClock.now();
        for (i, result) in [a, b, c].into_iter().enumerate() {
            match result {
                Err(e) => failures.push(format!("get_token #{i} failed: {}", self.quote(&e))),
                Ok(token) => {
                    if token.token.is_empty() {
                        failures.push("the token is empty".into());
                    }
                    if !token.token_type.eq_ignore_ascii_case("bearer") {
                        failures.push(format!("token_type is `{}`, not Bearer", token.token_type));
                    }
                    if token.remaining(now) < Duration::from_secs(60) {
                        failures.push("the token expires within a minute of being issued".into());
                    }
                    if token.refresh_on.is_some_and(|r| r >= token.expires_on) {
                        failures.push("refresh_on is not before expires_on".into());
                    }
                    let debug = format!("{token:?}");
                    if debug.contains(token.token.expose_secret()) {
                        failures.push("the token's Debug shows the token".into());
                    }
                    if self.any_secret_in([debug.as_str()]) {
                        failures.push("a secret appears in the token's Debug".into());
                    }
                }
            }
        }
    }

    /// A caller that gives up (a client hanging up, a `select!` on shutdown, a timeout) drops the
    /// future of `get_token` wherever it is. A provider that marks itself busy, holds a lock
    /// across an await, or leads a single flight must not be left wedged by that: the token
    /// manager's own incident list has each of these.
    async fn check_cancellation(
        &self,
        provider: &dyn CredentialProvider,
        request: &TokenRequest,
        failures: &mut Vec<String>,
    ) {
        for &after in &self.cancel_after {
            // `join!` drops the first call as soon as its timeout fires, while the second one
            // (which may be waiting on the first, as a single flight's followers do) goes on.
            let (_, alongside) = tokio::join!(
                tokio::time::timeout(after, provider.get_token(request)),
                tokio::time::timeout(self.call_timeout, provider.get_token(request)),
            );
            self.expect_token(
                alongside,
                &format!("a get_token started alongside one cancelled after {after:?}"),
                failures,
            );
            let later = tokio::time::timeout(self.call_timeout, provider.get_token(request)).await;
            self.expect_token(
                later,
                &format!("a get_token after one cancelled after {after:?}"),
                failures,
            );
        }
    }

    fn expect_token(
        &self,
        outcome: Result<crate::Result<crate::AccessToken>, tokio::time::error::Elapsed>,
        what: &str,
        failures: &mut Vec<String>,
    ) {
        match outcome {
            Err(_) => failures.push(format!(
                "{what} did not return within {:?}",
                self.call_timeout
            )),
            Ok(Err(e)) => failures.push(format!("{what} failed: {}", self.quote(&e))),
            Ok(Ok(token)) if token.token.is_empty() => {
                failures.push(format!("{what} returned an empty token"));
            }
            Ok(Ok(_)) => {}
        }
    }

    async fn check_failure(
        &self,
        provider: &dyn CredentialProvider,
        expected: ErrorKind,
        request: &TokenRequest,
        what: &str,
        failures: &mut Vec<String>,
    ) {
        let error = match tokio::time::timeout(self.call_timeout, provider.get_token(request)).await
        {
            Err(_) => {
                failures.push(format!(
                    "{what}: get_token did not return within {:?}",
                    self.call_timeout
                ));
                return;
            }
            Ok(Ok(_)) => {
                failures.push(format!(
                    "{what}: get_token returned a token; expected a `{expected}` error"
                ));
                return;
            }
            Ok(Err(e)) => e,
        };
        if error.kind() != expected {
            failures.push(format!(
                "{what}: the error's kind is `{}`, expected `{expected}`: {}",
                error.kind(),
                self.quote(&error)
            ));
        }
        if error.to_string().trim().is_empty() {
            failures.push(format!("{what}: the error's message is empty"));
        }
        // Errors end up in logs, HTTP 500 bodies and bug reports: no secret anywhere in the
        // chain, however it is printed.
        let mut printed = vec![
            error.to_string(),
            format!("{error:?}"),
            format!("{error:#?}"),
        ];
        let mut source = std::error::Error::source(&error);
        while let Some(s) = source {
            printed.push(s.to_string());
            printed.push(format!("{s:?}"));
            source = s.source();
        }
        if self.any_secret_in(printed.iter().map(String::as_str)) {
            failures.push(format!(
                "{what}: a secret appears in the error (its Display, Debug or source chain)"
            ));
        }
    }

    fn any_secret_in<'t>(&self, texts: impl IntoIterator<Item = &'t str>) -> bool {
        texts
            .into_iter()
            .any(|t| self.secrets.iter().any(|s| t.contains(s)))
    }

    /// An error's message for a failure report, with the secrets replaced: the report is
    /// printed by the test that fails.
    fn quote(&self, error: &Error) -> String {
        let mut text = error.to_string();
        for secret in &self.secrets {
            text = text.replace(secret, "[secret]");
        }
        text
    }
}

/// Everything `tracing` writes, kept in memory: how botauth's tests check that no secret, token
/// or assertion reaches a log line, and how yours can check a provider of your own.
///
/// ```
/// use botauth_core::testkit::LogCapture;
///
/// let ((), text) = LogCapture::capture(|| tracing::info!(user = "alice", "signed in"));
/// assert!(text.contains("signed in"));
/// assert!(!text.contains("the-client-secret"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct LogCapture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    /// An empty capture.
    pub fn new() -> Self {
        LogCapture::default()
    }

    /// A subscriber writing every event and span of every crate, at TRACE level and without
    /// colours, into this capture. Install it for a scope (`tracing::subscriber::with_default`,
    /// `set_default`) or for the process (`set_global_default`).
    pub fn subscriber(&self) -> impl tracing::Subscriber + Send + Sync + 'static {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// Runs `f` with a capture installed on this thread; returns its result and what it logged.
    pub fn capture<R>(f: impl FnOnce() -> R) -> (R, String) {
        let capture = LogCapture::new();
        let r = tracing::subscriber::with_default(capture.subscriber(), f);
        (r, capture.text())
    }

    /// What was captured so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    /// What was captured after the first `from` bytes (a mark taken with [`len`](Self::len)).
    pub fn text_from(&self, from: usize) -> String {
        let bytes = self.bytes();
        String::from_utf8_lossy(&bytes[from.min(bytes.len())..]).into_owned()
    }

    /// How many bytes were captured so far.
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Whether nothing was captured yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bytes(&self) -> std::sync::MutexGuard<'_, Vec<u8>> {
        // A writer that panicked mid-line leaves whole bytes behind: the buffer is still usable.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::SystemTime;

    use async_trait::async_trait;

    use super::*;
    use crate::{AccessToken, CredentialInfo, Result};

    const SECRET: &str = "s3cret~value-0123";

    fn request() -> TokenRequest {
        TokenRequest::new("https://api.botframework.com/.default")
    }

    fn hour() -> SystemTime {
        SystemTime::now() + Duration::from_secs(3600)
    }

    /// Answers after `delay`, holding nothing across the await.
    #[derive(Debug)]
    struct Good {
        delay: Duration,
        calls: AtomicUsize,
    }

    impl Good {
        fn new(delay: Duration) -> Self {
            Good {
                delay,
                calls: AtomicUsize::new(0),
            }
        }
    }

    #[async_trait]
    impl CredentialProvider for Good {
        async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(self.delay).await;
            Ok(AccessToken::bearer("eyJ.good", hour()))
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("good")
        }
    }

    /// Fails with the error `make` builds.
    struct Failing {
        make: fn() -> Error,
    }

    impl fmt::Debug for Failing {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.debug_struct("Failing").finish_non_exhaustive()
        }
    }

    #[async_trait]
    impl CredentialProvider for Failing {
        async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
            Err((self.make)())
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("failing")
        }
    }

    fn wrong_secret() -> Error {
        Error::credential("the client secret is wrong: check its value")
    }

    #[tokio::test]
    async fn a_provider_that_fails_with_a_typed_clean_error_passes() {
        let failing = Failing { make: wrong_secret };
        ProviderCheck::new()
            .secrets(&[SECRET])
            .failing(&failing, ErrorKind::Credential)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn check_provider_is_the_suite_without_a_failing_provider() {
        check_provider(&Good::new(Duration::ZERO), &request(), &[SECRET])
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn an_error_of_another_kind_is_reported() {
        let failing = Failing { make: wrong_secret };
        let failures = ProviderCheck::new()
            .failing(&failing, ErrorKind::Rejected)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            [
                "failing provider #0: the error's kind is `credential`, expected `rejected`: \
              the client secret is wrong: check its value"
            ]
        );
    }

    #[tokio::test]
    async fn a_secret_in_the_errors_message_is_caught_and_not_repeated() {
        let failing = Failing {
            make: || Error::credential(format!("AADSTS7000215: invalid secret {SECRET}")),
        };
        let failures = ProviderCheck::new()
            .secrets(&[SECRET])
            .failing(&failing, ErrorKind::Rejected)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            [
                "failing provider #0: the error's kind is `credential`, expected `rejected`: \
                 AADSTS7000215: invalid secret [secret]",
                "failing provider #0: a secret appears in the error (its Display, Debug or source chain)",
            ]
        );
        assert!(failures.iter().all(|f| !f.contains(SECRET)));
    }

    #[tokio::test]
    async fn a_secret_deep_in_the_source_chain_is_caught() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the request failed")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let failing = Failing {
            make: || Error::Unavailable {
                endpoint: "https://login.example/token".into(),
                status: None,
                retry_after: None,
                source: Some(Arc::new(Outer(std::io::Error::other(format!(
                    "body: client_secret={SECRET}"
                ))))),
            },
        };
        let failures = ProviderCheck::new()
            .secrets(&[SECRET])
            .failing(&failing, ErrorKind::Unavailable)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            [
                "failing provider #0: a secret appears in the error (its Display, Debug or source chain)"
            ]
        );
    }

    #[tokio::test]
    async fn a_failing_provider_that_succeeds_is_reported() {
        let failures = ProviderCheck::new()
            .failing(&Good::new(Duration::ZERO), ErrorKind::Rejected)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            ["failing provider #0: get_token returned a token; expected a `rejected` error"]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_provider_that_hangs_is_reported() {
        #[derive(Debug)]
        struct Hangs;
        #[async_trait]
        impl CredentialProvider for Hangs {
            async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
                std::future::pending().await
            }
            fn describe(&self) -> CredentialInfo {
                CredentialInfo::new("hangs")
            }
        }
        let failures = ProviderCheck::new()
            .failing(&Hangs, ErrorKind::Timeout)
            .call_timeout(Duration::from_secs(5))
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            ["failing provider #0: get_token did not return within 5s"]
        );
    }

    #[tokio::test]
    async fn a_leaky_failing_providers_debug_is_caught() {
        #[derive(Debug)]
        struct LeakyDebug {
            #[allow(dead_code)]
            secret: &'static str,
        }
        #[async_trait]
        impl CredentialProvider for LeakyDebug {
            async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
                Err(wrong_secret())
            }
            fn describe(&self) -> CredentialInfo {
                CredentialInfo::new("leaky")
            }
        }
        let failing = LeakyDebug { secret: SECRET };
        let failures = ProviderCheck::new()
            .secrets(&[SECRET])
            .failing(&failing, ErrorKind::Credential)
            .run(&Good::new(Duration::ZERO), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            ["failing provider #0: a secret appears in the provider's Debug or its description"]
        );
    }

    /// Marks itself busy for the length of a call and refuses calls while busy — but clears the
    /// flag only when a call completes, so a dropped call leaves it busy for good.
    #[derive(Debug, Default)]
    struct WedgedByCancellation {
        busy: AtomicBool,
        guarded: bool,
    }

    struct ClearOnDrop<'a>(&'a AtomicBool);
    impl Drop for ClearOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(false, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl CredentialProvider for WedgedByCancellation {
        async fn get_token(&self, _: &TokenRequest) -> Result<AccessToken> {
            // Followers wait for the leader, as a single flight would.
            while self.busy.swap(true, Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let guard = self.guarded.then(|| ClearOnDrop(&self.busy));
            tokio::time::sleep(Duration::from_millis(20)).await;
            drop(guard);
            self.busy.store(false, Ordering::SeqCst);
            Ok(AccessToken::bearer("eyJ.wedged", hour()))
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("wedged")
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_wedged_by_a_cancelled_call_is_reported() {
        let failures = ProviderCheck::new()
            .cancel_after([Duration::from_millis(5)])
            .call_timeout(Duration::from_secs(2))
            .run(&WedgedByCancellation::default(), &request())
            .await
            .unwrap_err();
        assert_eq!(
            failures,
            [
                "a get_token started alongside one cancelled after 5ms did not return within 2s",
                "a get_token after one cancelled after 5ms did not return within 2s",
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_provider_that_cleans_up_when_cancelled_passes() {
        let provider = WedgedByCancellation {
            guarded: true,
            ..Default::default()
        };
        ProviderCheck::new()
            .cancel_after([Duration::ZERO, Duration::from_millis(5)])
            .run(&provider, &request())
            .await
            .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn every_cancellation_point_starts_a_call_and_two_more_follow() {
        let provider = Good::new(Duration::from_millis(10));
        ProviderCheck::new()
            .cancel_after([Duration::ZERO, Duration::from_millis(1)])
            .run(&provider, &request())
            .await
            .unwrap();
        // Three concurrent calls, then three per cancellation point (the dropped one included).
        assert_eq!(provider.calls.load(Ordering::SeqCst), 3 + 2 * 3);
    }

    #[tokio::test]
    async fn empty_secrets_are_ignored_and_debug_shows_no_secret() {
        let failing = Failing { make: wrong_secret };
        let check = ProviderCheck::new()
            .secrets(&["", SECRET])
            .failing(&failing, ErrorKind::Credential);
        let debug = format!("{check:?}");
        assert!(!debug.contains(SECRET), "{debug}");
        assert!(debug.contains("secrets: 1"), "{debug}");
        assert!(debug.contains("failing -> credential"), "{debug}");
    }
}
