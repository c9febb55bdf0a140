//! What the layer hands to handlers: the verified claims and the parsed activity.

use std::sync::Arc;

use serde_json::Value;

use crate::claims::BotClaims;

/// A request that passed validation: its [`BotClaims`] and its activity, parsed once by the
/// [`BotAuthLayer`](crate::BotAuthLayer). The layer puts it in the request's extensions; with the
/// `axum` feature it is also an extractor.
#[derive(Debug, Clone)]
pub struct VerifiedActivity {
    claims: BotClaims,
    activity: Arc<Value>,
}

impl VerifiedActivity {
    pub(crate) fn new(claims: BotClaims, activity: Value) -> Self {
        VerifiedActivity {
            claims,
            activity: Arc::new(activity),
        }
    }

    /// The verified claims.
    pub fn claims(&self) -> &BotClaims {
        &self.claims
    }

    /// The activity as JSON.
    pub fn activity(&self) -> &Value {
        &self.activity
    }

    /// The activity's `type` (`message`, `invoke`, …), what a handler dispatches on. Every other
    /// member is in [`activity`](Self::activity) (`serviceUrl` and `channelId` were checked
    /// against the token).
    pub fn activity_type(&self) -> Option<&str> {
        self.activity.get("type").and_then(Value::as_str)
    }
}
