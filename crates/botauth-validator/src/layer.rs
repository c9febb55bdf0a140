//! The tower [`Layer`](tower_layer::Layer) that guards a bot's messaging endpoint.

use tower_layer::Layer;

use crate::service::BotAuthService;
use crate::validator::Validator;

/// Default limit on the activity body: Bot Framework activities are a few KiB; attachments are
/// sent by reference.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Validates every request before the inner service sees it (docs/protocol.md §6, "Responses"):
/// buffers the activity (bounded), checks the `Authorization` header against the activity's
/// `serviceUrl` and `channelId`, and answers **401** (`WWW-Authenticate: Bearer`, fixed JSON body)
/// or **503** (keys unavailable) itself. On success the inner service gets the request with a
/// [`VerifiedActivity`](crate::VerifiedActivity) in its extensions.
#[derive(Debug, Clone)]
pub struct BotAuthLayer {
    validator: Validator,
    max_body_bytes: usize,
}

impl BotAuthLayer {
    /// A layer that validates with `validator`.
    pub fn new(validator: Validator) -> Self {
        BotAuthLayer {
            validator,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The largest activity body accepted (default 256 KiB); larger ones get **413**.
    #[must_use]
    pub fn max_body_bytes(mut self, bytes: usize) -> Self {
        self.max_body_bytes = bytes;
        self
    }
}

impl<S> Layer<S> for BotAuthLayer {
    type Service = BotAuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BotAuthService::new(inner, self.validator.clone(), self.max_body_bytes)
    }
}
