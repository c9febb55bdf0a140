//! What the console's page can ask for: the bot it chats with, and the faults it applies with
//! one click, one row of [`FAULTS`] each.

use serde::Serialize;
use serde_json::{Value, json};

/// The bot the console chats with.
#[derive(Debug, Clone)]
pub struct ChatTarget {
    /// The bot's messaging endpoint on this machine, e.g. `http://127.0.0.1:3978/api/messages`.
    pub(crate) endpoint: String,
    /// The bot's app id: the `aud` of the channel tokens.
    pub(crate) app_id: String,
}

impl ChatTarget {
    /// A bot at `endpoint` with app id `app_id`.
    pub fn new(endpoint: impl Into<String>, app_id: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            app_id: app_id.into(),
        }
    }
}

/// A fault the console applies with one click.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub(crate) enum ConsoleFault {
    /// The Bot Service metadata and key endpoints answer 503 for a minute.
    KeyEndpointDown,
    /// The next token request is answered 429 with `Retry-After: 2`.
    TokenThrottled,
    /// The next token request is answered 503.
    TokenUnavailable,
    /// A new Bot Service signing key signs from now on, published next to the old one.
    RotateSigningKey,
    /// A message whose channel token is addressed to another bot.
    ForgedAudience,
    /// A message whose channel token names another `serviceurl` than the activity.
    ForgedServiceUrl,
    /// The Bot Connector refuses every access token issued so far as expired.
    ExpireToken,
    /// Drops queued faults, ends outages and un-expires tokens.
    Clear,
}

/// One row per fault: its id on the page and in the feed, its button label, what it does.
pub(super) struct FaultSpec {
    pub(super) fault: ConsoleFault,
    pub(super) id: &'static str,
    pub(super) label: &'static str,
    pub(super) help: &'static str,
}

pub(super) const FAULTS: &[FaultSpec] = &[
    FaultSpec {
        fault: ConsoleFault::KeyEndpointDown,
        id: "keys-down",
        label: "Key endpoint down (60 s)",
        help: "The Bot Service metadata and JWKS answer 503 for 60 s: a bot with cached keys keeps validating, a cold one answers 503.",
    },
    FaultSpec {
        fault: ConsoleFault::TokenThrottled,
        id: "token-429",
        label: "Token endpoint 429",
        help: "The next token request is answered 429 with Retry-After: 2.",
    },
    FaultSpec {
        fault: ConsoleFault::TokenUnavailable,
        id: "token-503",
        label: "Token endpoint 503",
        help: "The next token request is answered 503; the bot should retry once after 1 s. Expire the token to make the bot ask now.",
    },
    FaultSpec {
        fault: ConsoleFault::RotateSigningKey,
        id: "rotate-key",
        label: "Rotate the Bot Service signing key",
        help: "A new key signs the next activities; the old one stays published. The bot must fetch the keys again for the unknown kid.",
    },
    FaultSpec {
        fault: ConsoleFault::ForgedAudience,
        id: "forged-audience",
        label: "Forged activity: wrong audience",
        help: "Sends a message whose genuine channel token is addressed to another bot: expect 401.",
    },
    FaultSpec {
        fault: ConsoleFault::ForgedServiceUrl,
        id: "forged-serviceurl",
        label: "Forged activity: wrong serviceurl",
        help: "Sends a message whose channel token names another service URL than the activity: expect 401.",
    },
    FaultSpec {
        fault: ConsoleFault::ExpireToken,
        id: "expire-token",
        label: "Expire the token",
        help: "The Bot Connector refuses every access token issued so far as expired: the bot should refresh once and retry.",
    },
    FaultSpec {
        fault: ConsoleFault::Clear,
        id: "clear",
        label: "Clear faults",
        help: "Drops queued faults, ends outages and un-expires tokens.",
    },
];

impl ConsoleFault {
    /// Every fault, in the order the page shows them.
    #[cfg(test)]
    pub(crate) const ALL: [ConsoleFault; 8] = [
        ConsoleFault::KeyEndpointDown,
        ConsoleFault::TokenThrottled,
        ConsoleFault::TokenUnavailable,
        ConsoleFault::RotateSigningKey,
        ConsoleFault::ForgedAudience,
        ConsoleFault::ForgedServiceUrl,
        ConsoleFault::ExpireToken,
        ConsoleFault::Clear,
    ];

    pub(super) fn spec(self) -> &'static FaultSpec {
        FAULTS
            .iter()
            .find(|spec| spec.fault == self)
            .unwrap_or(&FAULTS[FAULTS.len() - 1])
    }

    /// The id the page and the feed use, e.g. `token-503`.
    #[cfg(test)]
    pub(crate) fn id(self) -> &'static str {
        self.spec().id
    }

    /// The fault with this id.
    pub(crate) fn from_id(id: &str) -> Option<Self> {
        FAULTS
            .iter()
            .find(|spec| spec.id == id)
            .map(|spec| spec.fault)
    }
}

#[derive(Debug, Serialize)]
struct FaultButton {
    id: &'static str,
    label: &'static str,
    help: &'static str,
}

/// The `hello` event: who the console chats with and which faults it offers.
pub(crate) fn hello(target: Option<&ChatTarget>) -> Value {
    let faults: Vec<FaultButton> = FAULTS
        .iter()
        .map(|s| FaultButton {
            id: s.id,
            label: s.label,
            help: s.help,
        })
        .collect();
    json!({
        "bot": target.map(|t| &t.endpoint),
        "app_id": target.map(|t| &t.app_id),
        "faults": faults,
    })
}

/// An action from the page, carried out by [`Console::run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Command {
    Say(String),
    Join,
    Fault(ConsoleFault),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_one_row_and_round_trips_its_id() {
        assert_eq!(FAULTS.len(), ConsoleFault::ALL.len());
        for fault in ConsoleFault::ALL {
            assert_eq!(fault.spec().fault, fault);
            assert_eq!(ConsoleFault::from_id(fault.id()), Some(fault));
        }
        assert_eq!(ConsoleFault::from_id("nope"), None);
    }
}
