//! "waiting for …" on stderr when an operation takes a while (issue 16): a user whose command
//! hangs sees what it waits for and how long it may take, instead of a silent terminal.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

/// How long an operation runs before it is announced.
pub(crate) const ANNOUNCE_AFTER: Duration = Duration::from_secs(2);

/// The timeout of each HTTP request when nothing configures one (botauth-token's default).
pub(crate) const DEFAULT_HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `operation`; if it has not finished after [`ANNOUNCE_AFTER`], prints once on stderr
/// `botauth: waiting for {what} (timeout {timeout}; BOTAUTH_HTTP_TIMEOUT raises it)`.
pub(crate) async fn announced<F: Future>(
    what: impl Display,
    timeout: Duration,
    operation: F,
) -> F::Output {
    let mut operation = std::pin::pin!(operation);
    tokio::select! {
        done = &mut operation => return done,
        () = tokio::time::sleep(ANNOUNCE_AFTER) => {}
    }
    eprintln!(
        "botauth: waiting for {what} (timeout {} per request; BOTAUTH_HTTP_TIMEOUT raises it)",
        seconds(timeout)
    );
    operation.await
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// What a token request waits for, from the credential's description.
pub(crate) fn token_endpoint(info: &botauth::CredentialInfo) -> String {
    match (&info.authority_host, &info.tenant_id) {
        (Some(host), Some(tenant)) => {
            format!("the token endpoint at {host}/{tenant}/oauth2/v2.0/token")
        }
        _ => format!("the {} token endpoint", info.kind.replace('_', " ")),
    }
}
