//! Injected faults: one-shot misbehaviours queued per route and consumed in FIFO order.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::log::Route;

/// A misbehaviour to inject into the next request on a [`Route`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status at once. `body: None` sends an Entra-style JSON error for the status
    /// (on [`Route::KeyVault`], Key Vault's `{"error":{"code","message"}}`);
    /// `retry_after` is sent verbatim as the `Retry-After` header.
    Status {
        /// HTTP status (an invalid code becomes 500).
        status: u16,
        /// Exact response body, or `None` for an Entra-style error body.
        body: Option<String>,
        /// `Retry-After` header value, sent verbatim.
        retry_after: Option<String>,
    },
    /// Answer with this status (an Entra-style error body) to every request on the route for
    /// `duration`, starting with this one: an outage, e.g. IMDS answering 410 while it is updated.
    /// Time is the sandbox's clock ([`Sandbox::set_clock`](crate::Sandbox::set_clock)).
    StatusFor {
        /// HTTP status.
        status: u16,
        /// How long the outage lasts.
        duration: Duration,
    },
    /// Sleep (`tokio::time::sleep`) and then answer normally.
    Delay(Duration),
    /// Replace a successful answer's body with something that is not JSON (any route).
    MalformedJson,
    /// Token route: a successful answer, but with this `token_type`.
    TokenType(String),
    /// Token route: a successful answer without `access_token`.
    MissingAccessToken,
}

impl Fault {
    /// Shorthand for [`Fault::Status`] with an Entra-style body and no `Retry-After`.
    pub fn status(status: u16) -> Self {
        Self::Status {
            status,
            body: None,
            retry_after: None,
        }
    }
}

/// The body that [`Fault::MalformedJson`] sends.
pub(crate) const MALFORMED_BODY: &str = "{\"token_type\":\"Bearer\",\"access_tok";

/// A fault popped by the middleware for the handler to apply to its success body.
#[derive(Debug, Clone)]
pub(crate) struct PendingFault(pub(crate) Fault);

/// Per-route FIFO queues.
#[derive(Debug, Default)]
pub(crate) struct FaultQueues(HashMap<Route, VecDeque<Fault>>);

impl FaultQueues {
    pub(crate) fn push(&mut self, route: Route, fault: Fault, times: usize) {
        let queue = self.0.entry(route).or_default();
        queue.extend(std::iter::repeat_n(fault, times));
    }

    pub(crate) fn pop(&mut self, route: Route) -> Option<Fault> {
        self.0.get_mut(&route).and_then(VecDeque::pop_front)
    }

    pub(crate) fn clear(&mut self) {
        self.0.clear();
    }
}

/// Applies the token-body faults to a successful token response body.
pub(crate) fn shape_token_body(fault: Option<&Fault>, body: &mut Map<String, Value>) {
    match fault {
        Some(Fault::TokenType(token_type)) => {
            body.insert("token_type".into(), Value::String(token_type.clone()));
        }
        Some(Fault::MissingAccessToken) => {
            body.remove("access_token");
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_are_fifo_per_route() {
        let mut q = FaultQueues::default();
        q.push(Route::Token, Fault::status(500), 2);
        q.push(Route::Token, Fault::MalformedJson, 1);
        q.push(Route::Connector, Fault::MissingAccessToken, 1);
        assert_eq!(q.pop(Route::Token), Some(Fault::status(500)));
        assert_eq!(q.pop(Route::Token), Some(Fault::status(500)));
        assert_eq!(q.pop(Route::Token), Some(Fault::MalformedJson));
        assert_eq!(q.pop(Route::Token), None);
        assert_eq!(q.pop(Route::EntraJwks), None);
        q.clear();
        assert_eq!(q.pop(Route::Connector), None);
    }

    #[test]
    fn malformed_body_is_not_json() {
        assert!(serde_json::from_str::<Value>(MALFORMED_BODY).is_err());
    }
}
