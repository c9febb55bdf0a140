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

use std::time::Duration;

use crate::{Clock, CredentialProvider, SystemClock, TokenRequest};

/// Runs the conformance checks against `provider`, which must be able to obtain a token for
/// `request`. `secrets` are values that must never appear in the provider's `Debug`, its
/// description or its token's `Debug` (its client secret, key passphrase, …).
///
/// Returns every failed check, so one run shows all problems.
pub async fn check_provider(
    provider: &dyn CredentialProvider,
    request: &TokenRequest,
    secrets: &[&str],
) -> Result<(), Vec<String>> {
    let mut failures = Vec::new();
    let mut fail = |what: String| failures.push(what);

    let info = provider.describe();
    if info.kind.trim().is_empty() {
        fail("describe().kind is empty".into());
    }
    let printed = [
        format!("{provider:?}"),
        format!("{info:?}"),
        format!("{info}"),
    ];
    for secret in secrets.iter().filter(|s| !s.is_empty()) {
        if printed.iter().any(|p| p.contains(secret)) {
            fail("a secret appears in the provider's Debug or its description".into());
        }
    }

    // Several requests at once must all succeed: providers are shared behind an Arc.
    let (a, b, c) = tokio::join!(
        provider.get_token(request),
        provider.get_token(request),
        provider.get_token(request)
    );
    let now = SystemClock.now();
    for (i, result) in [a, b, c].into_iter().enumerate() {
        match result {
            Err(e) => fail(format!("get_token #{i} failed: {e}")),
            Ok(token) => {
                if token.token.is_empty() {
                    fail("the token is empty".into());
                }
                if !token.token_type.eq_ignore_ascii_case("bearer") {
                    fail(format!("token_type is `{}`, not Bearer", token.token_type));
                }
                if token.remaining(now) < Duration::from_secs(60) {
                    fail("the token expires within a minute of being issued".into());
                }
                if token.refresh_on.is_some_and(|r| r >= token.expires_on) {
                    fail("refresh_on is not before expires_on".into());
                }
                let debug = format!("{token:?}");
                if debug.contains(token.token.expose_secret()) {
                    fail("the token's Debug shows the token".into());
                }
                if secrets.iter().any(|s| !s.is_empty() && debug.contains(s)) {
                    fail("a secret appears in the token's Debug".into());
                }
            }
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures)
    }
}
