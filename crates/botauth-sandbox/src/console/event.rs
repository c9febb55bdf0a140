//! The console's event feed: what happened, in order, as JSON the page renders. Each event is
//! scrubbed (see [`redact::scrub`]) and serialized once, kept in a bounded history so a page that
//! (re)connects catches up, and pushed to every open `/console/events` stream.
//!
//! The feed is open-ended on purpose: `kind` names the event, the page renders the kinds it knows
//! and shows any other as its JSON, so new kinds (the user sign-in flow's OAuth card, magic code
//! and token exchange) are added here and in the page without breaking older pages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use super::command::Command;
use super::redact::{self, Decoded};
use crate::clock;

/// Events kept for pages that connect later.
const HISTORY: usize = 2000;

/// Events buffered per open stream; a page that falls this far behind is disconnected and
/// catches up from the history when its `EventSource` reconnects (with `Last-Event-ID`).
const STREAM_BUFFER: usize = 512;

/// Token ids (`uti`) remembered for "expire the token".
const ISSUED: usize = 1000;

/// Sign-in links remembered, to name the connection when the user's browser follows one.
const SIGN_IN_LINKS: usize = 100;

/// How long after a failed token request the next one from the same client counts as its retry.
const RETRY_WINDOW_SECS: u64 = 60;

/// One thing the console shows.
// Each event is built once, serialized at once and dropped: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum EventKind {
    /// The Bot Service sends an activity to the bot (the console's own, or a forged one).
    Inbound {
        activity: Value,
        /// The channel token, decoded; `None` when none was sent.
        token: Option<Decoded>,
        /// The published `endorsements` of the key that signed it (`None`: not published, or
        /// the key lists none).
        endorsements: Option<Vec<String>>,
        /// What is wrong with it on purpose, for forged activities.
        forged: Option<&'static str>,
    },
    /// The bot's answer to the inbound activity of the same turn.
    Delivery {
        status: Option<u16>,
        www_authenticate: Option<String>,
        body: String,
        error: Option<String>,
        elapsed_ms: u64,
    },
    /// A token request to the sandbox's Entra ID or managed identity endpoints.
    TokenRequest {
        method: String,
        path: String,
        /// `Entra ID v2`, `Entra ID v1`, `IMDS`, `App Service`, …
        endpoint: &'static str,
        client_id: Option<String>,
        resource: Option<String>,
        credential: Credential,
        status: u16,
        /// Answered by an injected fault, not by the endpoint.
        injected: bool,
        retry_after: Option<String>,
        error: Option<TokenError>,
        /// Claims of the access token issued.
        issued: Option<Decoded>,
        /// The event id of the failed request this one retries.
        retry_of: Option<u64>,
    },
    /// A call to the sandbox's Bot Connector.
    ConnectorCall {
        method: String,
        path: String,
        token: Option<Decoded>,
        status: u16,
        injected: bool,
        /// `accepted`, or why not.
        verdict: String,
        www_authenticate: Option<String>,
        activity: Option<Value>,
    },
    /// A fetch of OpenID metadata or signing keys.
    KeyFetch {
        path: String,
        what: &'static str,
        status: u16,
        injected: bool,
        /// The `kid`s a JWKS answer listed.
        kids: Vec<String>,
    },
    /// A request to the sandbox's Token Service (user sign-in, see [`super::sign_in`]): what was
    /// asked and how it ended. Never the user token, the magic code, `state`, the sign-in link,
    /// a SAS URL, the SSO token or the exchange body: `withheld` names those that were present.
    SignIn {
        /// `bot`, `user's browser` or `Teams client`.
        from: &'static str,
        /// `GetToken`, `exchange`, `GetSignInResource`, `sign-in page`, …
        operation: &'static str,
        method: String,
        /// The path only: queries carry `state`, codes and link ids.
        path: String,
        connection: Option<String>,
        channel: Option<String>,
        user: Option<String>,
        status: u16,
        injected: bool,
        /// `token released for the magic code`, `exchange: consent required`, `no token`, …
        outcome: String,
        /// `code: [redacted]` and the like.
        withheld: Vec<String>,
    },
    /// A request to the sandbox's Key Vault: what was asked and how it ended. Never a secret's
    /// value (a private key): `withheld` says one was answered.
    KeyVault {
        method: String,
        /// The path only (no query).
        path: String,
        /// `get certificate`, `get secret`, `list certificate versions`, …
        operation: &'static str,
        api_version: Option<String>,
        /// The bearer token, decoded.
        token: Option<Decoded>,
        status: u16,
        injected: bool,
        /// `certificate 1a2b… (x5t …)`, `secret released (application/x-pkcs12)`, `2 versions`,
        /// or the error code and message.
        outcome: String,
        www_authenticate: Option<String>,
        retry_after: Option<String>,
        withheld: Vec<String>,
    },
    /// A fault the console applied.
    Fault {
        fault: &'static str,
        label: &'static str,
        detail: String,
    },
    /// Anything else worth a line (an action that could not run).
    Note { text: String },
}

/// How a token request proved the client's identity (docs/protocol.md §2–§4).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Credential {
    /// `client_secret`: its value is never shown, only that it was sent.
    Secret { secret: &'static str, length: usize },
    /// A client assertion signed with a certificate's key (`x5t`, `x5t#S256` or `x5c`).
    Certificate {
        x5t: Option<String>,
        #[serde(rename = "x5t#S256")]
        x5t_s256: Option<String>,
        assertion: Decoded,
    },
    /// A client assertion without a certificate: a federated token (managed identity, GitHub,
    /// Kubernetes service account).
    Federated { assertion: Decoded },
    /// A managed identity endpoint: the host's secret header is shown as present or not.
    ManagedIdentity {
        source: &'static str,
        /// `client_id=…`, `object_id=…` or `msi_res_id=…` for a user-assigned identity.
        identity: Option<String>,
        secret_header: &'static str,
    },
    /// Neither, or both (refused).
    Other { note: &'static str },
}

/// An Entra error answer, as the page shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TokenError {
    pub(crate) error: Option<String>,
    /// `AADSTS7000215` and so on.
    pub(crate) code: Option<String>,
    /// The description up to its trace id.
    pub(crate) description: Option<String>,
}

#[derive(Debug, Serialize)]
struct Event<'a> {
    id: u64,
    at: String,
    turn: u64,
    #[serde(flatten)]
    kind: &'a EventKind,
}

/// The console's state inside the sandbox ([`Shared`](crate::state::Shared)).
#[derive(Debug, Default)]
pub(crate) struct Hub {
    enabled: AtomicBool,
    inner: Mutex<HubInner>,
}

#[derive(Debug, Default)]
struct HubInner {
    next_id: u64,
    turn: u64,
    history: VecDeque<(u64, Arc<str>)>,
    streams: Vec<mpsc::Sender<Arc<str>>>,
    commands: Option<mpsc::UnboundedSender<Command>>,
    /// The `hello` event each stream starts with: the chat target and the fault buttons.
    hello: Option<Arc<str>>,
    issued: VecDeque<String>,
    expired: HashSet<String>,
    /// Tokens issued before this Unix second count as expired (0: none).
    expired_before: i64,
    /// Client → (event id, when) of its last failed token request.
    failures: HashMap<String, (u64, Instant)>,
    /// Sign-in link id → (connection, channel) of the `state` it was issued for. Kept here, never
    /// published: the link id signs the user in.
    sign_in_links: VecDeque<(String, SignInFor)>,
}

/// The connection and channel a sign-in link was issued for.
pub(crate) type SignInFor = (Option<String>, Option<String>);

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HubInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// Turns the console on, replacing the command channel of an earlier [`Console`](super::Console).
    pub(crate) fn open(&self, commands: mpsc::UnboundedSender<Command>, hello: &Value) {
        let mut inner = self.lock();
        inner.commands = Some(commands);
        inner.hello = Some(Arc::from(format!("event: hello\ndata: {hello}\n\n")));
        self.enabled.store(true, Ordering::Release);
    }

    /// Hands a page's action to the console's runner; `false` when none is running.
    pub(crate) fn command(&self, command: Command) -> bool {
        self.lock()
            .commands
            .as_ref()
            .is_some_and(|tx| tx.send(command).is_ok())
    }

    /// Starts a new turn (one activity sent to the bot); returns its number.
    pub(crate) fn next_turn(&self) -> u64 {
        let mut inner = self.lock();
        inner.turn += 1;
        inner.turn
    }

    /// Opens a stream: the hello event and the events after `last_id`, then the live ones.
    pub(crate) fn subscribe(&self, last_id: Option<u64>) -> (String, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let mut inner = self.lock();
        let mut backlog = inner.hello.as_deref().unwrap_or_default().to_owned();
        for (id, line) in &inner.history {
            if last_id.is_none_or(|last| *id > last) {
                backlog.push_str(line);
            }
        }
        inner.streams.push(tx);
        (backlog, rx)
    }

    /// Publishes an event of the current turn; returns its id.
    /// `secrets` are the values the feed must never carry ([`Shared::secrets`](crate::state::Shared::secrets)).
    pub(crate) fn publish(&self, secrets: &[String], kind: &EventKind) -> u64 {
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        let event = Event {
            id,
            at: clock::rfc3339_millis(SystemTime::now()),
            turn: inner.turn,
            kind,
        };
        let mut value = serde_json::to_value(&event).unwrap_or(Value::Null);
        redact::scrub(&mut value, secrets);
        let line: Arc<str> = Arc::from(format!("id: {id}\ndata: {value}\n\n"));
        if inner.history.len() == HISTORY {
            inner.history.pop_front();
        }
        inner.history.push_back((id, Arc::clone(&line)));
        // A full or closed stream is dropped: its page reconnects and catches up from history.
        inner
            .streams
            .retain(|tx| tx.try_send(Arc::clone(&line)).is_ok());
        id
    }

    /// The id of the failed token request `client` made in the last minute, now being retried.
    pub(crate) fn take_failure(&self, client: &str) -> Option<u64> {
        let (id, at) = self.lock().failures.remove(client)?;
        (at.elapsed().as_secs() < RETRY_WINDOW_SECS).then_some(id)
    }

    pub(crate) fn note_failure(&self, client: &str, id: u64) {
        self.lock()
            .failures
            .insert(client.to_owned(), (id, Instant::now()));
    }

    /// Remembers whom the sign-in link `id` signs in, for when it is followed.
    pub(crate) fn sign_in_link(&self, id: &str, issued_for: SignInFor) {
        let mut inner = self.lock();
        if inner.sign_in_links.len() == SIGN_IN_LINKS {
            inner.sign_in_links.pop_front();
        }
        inner.sign_in_links.push_back((id.to_owned(), issued_for));
    }

    /// Whom the sign-in link `id` was issued for (links work once: forgotten after).
    pub(crate) fn take_sign_in_link(&self, id: &str) -> Option<SignInFor> {
        let mut inner = self.lock();
        let at = inner.sign_in_links.iter().position(|(l, _)| l == id)?;
        inner
            .sign_in_links
            .remove(at)
            .map(|(_, issued_for)| issued_for)
    }

    /// Remembers an issued token's `uti`, so that "expire the token" can reach it.
    pub(crate) fn issued(&self, uti: &str) {
        let mut inner = self.lock();
        if inner.issued.len() == ISSUED {
            inner.issued.pop_front();
        }
        inner.issued.push_back(uti.to_owned());
    }

    /// Every token issued so far counts as expired at the Bot Connector from now on.
    pub(crate) fn expire_issued(&self) -> usize {
        let mut inner = self.lock();
        let issued: Vec<String> = inner.issued.drain(..).collect();
        let count = issued.len();
        inner.expired.extend(issued);
        inner.expired_before = clock::unix_now();
        count
    }

    /// Whether the console expired the access token with these claims.
    pub(crate) fn is_expired(&self, claims: &Value) -> bool {
        if !self.enabled() {
            return false;
        }
        let inner = self.lock();
        let by_id = claims
            .get("uti")
            .and_then(Value::as_str)
            .is_some_and(|uti| inner.expired.contains(uti));
        let by_time = inner.expired_before > 0
            && claims
                .get("iat")
                .and_then(Value::as_i64)
                .is_some_and(|iat| iat < inner.expired_before);
        by_id || by_time
    }

    /// Undoes [`Hub::expire_issued`].
    pub(crate) fn unexpire(&self) {
        let mut inner = self.lock();
        inner.expired.clear();
        inner.expired_before = 0;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::DEMO_CLIENT_SECRET;

    fn note(text: &str) -> EventKind {
        EventKind::Note { text: text.into() }
    }

    #[tokio::test]
    async fn streams_start_after_the_last_event_id_and_events_are_scrubbed() {
        // What `Shared::secrets` gives a sandbox with the demo app (state.rs tests that).
        let secrets = [DEMO_CLIENT_SECRET.to_owned()];
        let hub = Hub::default();
        let first = hub.publish(&secrets, &note("one"));
        hub.publish(&secrets, &note(&format!("two {DEMO_CLIENT_SECRET}")));
        let (all, _) = hub.subscribe(None);
        assert!(
            all.contains("\"one\"") && all.contains("two [redacted]"),
            "{all}"
        );
        assert!(!all.contains(DEMO_CLIENT_SECRET), "{all}");
        let (later, mut live) = hub.subscribe(Some(first));
        assert!(
            !later.contains("\"one\"") && later.contains("two"),
            "{later}"
        );
        hub.publish(&secrets, &note("three"));
        let line = live.recv().await.unwrap();
        assert!(
            line.starts_with(&format!("id: {}\ndata: {{", first + 2)),
            "{line}"
        );
        assert!(line.ends_with("}\n\n"), "{line}");
    }

    #[tokio::test]
    async fn expiring_reaches_tokens_issued_before_and_only_those() {
        let hub = Hub::default();
        let now = clock::unix_now();
        let old = json!({"uti": "old", "iat": now});
        let new = json!({"uti": "new", "iat": now + 5});
        hub.issued("old");
        // Off: the console expires nothing.
        assert_eq!(hub.expire_issued(), 1);
        assert!(!hub.is_expired(&old));
        let (tx, _rx) = mpsc::unbounded_channel();
        hub.open(tx, &json!({}));
        assert!(hub.is_expired(&old), "by uti");
        assert!(
            hub.is_expired(&json!({"uti": "x", "iat": now - 1})),
            "by time"
        );
        assert!(!hub.is_expired(&new));
        hub.unexpire();
        assert!(!hub.is_expired(&old));
    }

    #[test]
    fn a_retry_is_the_next_request_of_the_same_client() {
        let hub = Hub::default();
        assert_eq!(hub.take_failure("app"), None);
        hub.note_failure("app", 7);
        assert_eq!(hub.take_failure("other"), None);
        assert_eq!(hub.take_failure("app"), Some(7));
        assert_eq!(hub.take_failure("app"), None, "only the first retry");
    }
}
