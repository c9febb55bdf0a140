//! What the Token Service remembers: OAuth connections, user tokens, pending sign-ins, magic
//! codes, and the sign-in activities it sent.

use std::collections::{HashMap, VecDeque};

use serde_json::Value;

use crate::console::command::ChatTarget;
use crate::delivery::Delivery;

/// Who a sign-in link signs in, decoded from the `state` the bot sent.
#[derive(Debug, Clone)]
pub(super) struct PendingSignIn {
    pub(super) user_id: String,
    pub(super) channel_id: String,
    pub(super) connection: String,
    /// The `state`'s conversation reference: where the channel sends the sign-in activity.
    pub(super) conversation: Value,
}

/// A sign-in activity the sandbox sent a bot, as a channel does, after the user followed a
/// sign-in link (see [`Sandbox::push_sign_ins_to`](crate::Sandbox::push_sign_ins_to)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SignInPush {
    /// `signin/verifyState` (an `msteams` conversation: `value.state` is the magic code) or
    /// `tokens/response` (any other channel: `value` is the TokenResponse).
    pub name: &'static str,
    /// The conversation's channel, from the `state`.
    pub channel_id: String,
    /// The bot's answer, or why it could not be reached.
    pub outcome: Result<Delivery, String>,
}

/// A stored user token.
#[derive(Debug, Clone)]
pub(super) struct UserToken {
    pub(super) token: String,
    pub(super) expires_unix: i64,
}

/// The Token Service's state.
#[derive(Debug, Default)]
pub(crate) struct TokenServiceState {
    /// Registered OAuth connection names (case-sensitive, as the service compares them).
    pub(super) connections: Vec<String>,
    /// (user, connection, channel) → token.
    pub(super) tokens: HashMap<(String, String, String), UserToken>,
    /// Sign-in link id → who it signs in (used once).
    pub(super) sign_ins: HashMap<String, PendingSignIn>,
    /// Magic code → the token it releases (used once).
    pub(super) codes: HashMap<String, ((String, String, String), UserToken)>,
    /// Whether exchanges answer 400 "consent required".
    pub(super) consent_required: bool,
    /// Statuses to answer the next Token Service requests with, in order.
    pub(super) faults: VecDeque<(u16, Option<u64>)>,
    /// How many exchanges succeeded.
    pub(super) exchanges: usize,
    /// Every user token issued and every `state` received, for log-leak tests.
    pub(super) issued: Vec<String>,
    pub(super) states: Vec<String>,
    /// The bot that gets the channel's sign-in activities, when one is known.
    pub(super) push_target: Option<ChatTarget>,
    /// Every sign-in activity sent, in order, and who wants to hear of the next ones.
    pub(super) pushes: Vec<SignInPush>,
    pub(super) push_watchers: Vec<tokio::sync::mpsc::UnboundedSender<SignInPush>>,
}
