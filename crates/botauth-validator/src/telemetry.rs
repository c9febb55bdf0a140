//! The validator's span and metrics (docs/observability.md).
//!
//! Every validation that [`Validator::validate`](crate::Validator::validate),
//! [`validate_header`](crate::Validator::validate_header) or the layer runs is a
//! `botauth.validate` span at DEBUG level: `profile` (the trust profile that accepted the token),
//! `source` (`memo`, `cache` or `verified`: the per-thread memo, the shared verified-token cache,
//! or a full verification), `outcome` (`accepted`, `rejected`, `unavailable`, `error`) and `reason` (the
//! [`ErrorKind`]). A key-set fetch it waits for is a `botauth.keys.fetch` span inside it. No field
//! holds the token or a value read from it.

use botauth_core::internal::telemetry::{self, Counter};
use tracing::Span;

use crate::error::{Error, ErrorKind};

/// The span's name.
pub(crate) const VALIDATE: &str = "botauth.validate";

/// A new `botauth.validate` span, or `None` when no subscriber takes DEBUG spans: then the
/// validation runs without one (creating and entering a disabled span cost a cache hit a tenth
/// of its time).
pub(crate) fn validate_span() -> Option<Span> {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let span = tracing::debug_span!(
        "botauth.validate",
        profile = tracing::field::Empty,
        source = tracing::field::Empty,
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty,
    );
    (!span.is_disabled()).then_some(span)
}

/// The current span when it is a `botauth.validate` span (an application's own span with a
/// field of the same name is never written to).
fn current() -> Option<Span> {
    if !tracing::level_enabled!(tracing::Level::DEBUG) {
        return None;
    }
    let span = Span::current();
    span.metadata()
        .is_some_and(|m| m.name() == VALIDATE)
        .then_some(span)
}

/// Where the verification came from, on the current validation's span.
pub(crate) fn source(source: &'static str) {
    if let Some(span) = current() {
        span.record("source", source);
    }
}

/// How the validation ended, on the current validation's span.
pub(crate) fn outcome(profile: Option<&'static str>, error: Option<&Error>) {
    if let Some(span) = current() {
        if let Some(profile) = profile {
            span.record("profile", profile);
        }
        match error {
            None => {
                span.record("outcome", "accepted");
                span.record("reason", "none");
            }
            Some(e) => {
                span.record("outcome", outcome_of(e));
                span.record("reason", e.kind().as_str());
            }
        }
    }
}

/// `rejected` (a 401), `unavailable` (a 503: no keys could be had) or `error` (the validator was
/// used wrongly: a configuration error).
fn outcome_of(e: &Error) -> &'static str {
    match e.kind() {
        ErrorKind::KeysUnavailable => "unavailable",
        ErrorKind::Config => "error",
        _ => "rejected",
    }
}

/// A validator's metric handles, registered when it is built: the hot path bumps a counter and
/// builds no label.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    memo: Counter,
    hit: Counter,
    miss: Counter,
    accepted: Counter,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let lookups =
            |result| telemetry::counter(telemetry::VERIFIED_CACHE_LOOKUPS, &[("result", result)]);
        Metrics {
            memo: lookups("memo"),
            hit: lookups("hit"),
            miss: lookups("miss"),
            accepted: telemetry::counter(
                telemetry::VALIDATIONS,
                &[("outcome", "accepted"), ("reason", "none")],
            ),
        }
    }

    /// The per-thread memo answered.
    pub(crate) fn memo(&self) {
        self.memo.increment(1);
        source("memo");
    }

    /// The shared verified-token cache answered.
    pub(crate) fn hit(&self) {
        self.hit.increment(1);
        source("cache");
    }

    /// Neither did: the token is verified.
    pub(crate) fn miss(&self) {
        self.miss.increment(1);
        source("verified");
    }

    /// A validation ended: accepted, or refused with `error`.
    pub(crate) fn ended(&self, error: Option<&Error>) {
        match error {
            None => self.accepted.increment(1),
            Some(e) => refused(e.kind(), outcome_of(e)),
        }
    }
}

/// Counts a refusal (the label is built per refusal: refusals are not the hot path).
fn refused(kind: ErrorKind, outcome: &'static str) {
    telemetry::counter(
        telemetry::VALIDATIONS,
        &[("outcome", outcome), ("reason", kind.as_str())],
    )
    .increment(1);
}
