//! The tower [`Layer`](tower_layer::Layer) that guards a bot's messaging endpoint.

use std::time::Duration;

use tower_layer::Layer;

use crate::service::{BodyLimits, BotAuthService};
use crate::validator::Validator;

/// Default limit on the activity body: Bot Framework activities are a few KiB; attachments are
/// sent by reference.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Default time limit on reading the activity body, counted from the moment the token has
/// passed: the Bot Service sends an activity of a few KiB at once, so ten seconds only ever
/// runs out for a client that trickles or stalls.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Validates every request before the inner service sees it (docs/protocol.md §6, "Responses").
///
/// In this order, so that a caller who cannot authenticate costs no more than its headers:
/// 1. the `Authorization` header: its size (at most the token limit, 16 KiB by default, plus the
///    scheme), then the token's signature, `iss`, `aud`, `exp`/`nbf` and profile rules — no body
///    byte is read before this passes; a failure is **401** (`WWW-Authenticate: Bearer`, fixed
///    JSON body), or **503** when the signing keys cannot be had;
/// 2. the body, bounded in size ([`max_body_bytes`](Self::max_body_bytes), **413** beyond) and in
///    time ([`body_timeout`](Self::body_timeout), **408** when it has not all arrived), then
///    parsed as a JSON activity (**400** otherwise);
/// 3. the activity rules (`serviceurl`, endorsements) and the validator's claims checks: **401**.
///
/// On success the inner service gets the request with a
/// [`VerifiedActivity`](crate::VerifiedActivity) in its extensions; on any failure it never runs
/// and the reason goes to `tracing`. The body timer needs a Tokio runtime with its time driver
/// enabled, as `#[tokio::main]` and `#[tokio::test]` build.
#[derive(Debug, Clone)]
pub struct BotAuthLayer {
    validator: Validator,
    body: BodyLimits,
}

impl BotAuthLayer {
    /// A layer that validates with `validator`.
    pub fn new(validator: Validator) -> Self {
        BotAuthLayer {
            validator,
            body: BodyLimits {
                max_bytes: DEFAULT_MAX_BODY_BYTES,
                timeout: DEFAULT_BODY_TIMEOUT,
            },
        }
    }

    /// The largest activity body accepted (default 256 KiB); larger ones get **413**.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.body.max_bytes = bytes;
        self
    }

    /// How long the whole body may take to arrive once the token has passed (default 10 s);
    /// a body still incomplete then gets **408** and the connection is closed.
    #[must_use]
    pub fn body_timeout(mut self, timeout: Duration) -> Self {
        self.body.timeout = timeout;
        self
    }
}

impl<S> Layer<S> for BotAuthLayer {
    type Service = BotAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BotAuthService::new(inner, self.validator.clone(), self.body)
    }
}
