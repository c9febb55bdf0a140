//! The sign-in flow for handlers: the card, then every activity that can finish it, with the
//! exact invoke answers of docs/protocol.md §8 and the choices of docs/protocol.md §10.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use botauth_core::{Clock, Secret};
use botauth_validator::VerifiedActivity;
use serde_json::{Value, json};

use crate::card::sign_in_attachment;
use crate::client::UserTokenClient;
use crate::context::SignInContext;
use crate::error::{UserTokenError, UserTokenErrorKind};
use crate::store::{ExchangeStore, MemoryExchangeStore};
use crate::types::TokenResponse;

/// The default flow timeout, as the SDKs' OAuth prompt.
pub(crate) const DEFAULT_FLOW_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The `value.state` Teams sends in `signin/verifyState` when the user closed the sign-in window.
pub(crate) const CANCELLED_BY_USER: &str = "CancelledByUser";

/// What the bot answers an invoke with: the HTTP status and JSON body of its response to the
/// channel's POST.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct InvokeResponse {
    /// The HTTP status.
    pub status: u16,
    /// The JSON body, `None` for an empty body.
    pub body: Option<Value>,
}

impl InvokeResponse {
    fn empty(status: u16) -> Self {
        InvokeResponse { status, body: None }
    }
}

/// How a sign-in activity ended (or did not).
#[derive(Debug)]
#[non_exhaustive]
pub enum SignInOutcome {
    /// Not a sign-in activity (or a message while no sign-in is pending): the handler's own.
    NotSignIn,
    /// The user is signed in: here is the token.
    SignedIn(TokenResponse),
    /// A magic code or `signin/verifyState` the service did not accept; the flow goes on.
    CodeRefused,
    /// The user closed the sign-in window (`CancelledByUser`): the flow ended.
    Cancelled,
    /// The channel reported a failure (`signin/failure`): the flow ended.
    Failed {
        /// `value.code`, e.g. `resourcematchfailed`.
        code: String,
        /// `value.message`.
        message: String,
    },
    /// Teams SSO: the exchange needs consent or found no token; answered 412 so Teams prompts.
    ConsentRequired,
    /// Teams SSO: a duplicate of an exchange another request (or replica) already handled.
    Deduplicated,
    /// The sign-in was started longer than the flow timeout ago: the flow ended.
    TimedOut,
    /// A sign-in activity that could not be processed (the response says how it was answered).
    Error(UserTokenError),
}

/// A handled activity: what to answer (invokes only) and what happened.
#[derive(Debug)]
#[non_exhaustive]
pub struct SignInStep {
    /// The invoke answer to send as the HTTP response; `None` for messages and events (answer
    /// 200) and for activities that are not the flow's.
    pub response: Option<InvokeResponse>,
    /// What happened.
    pub outcome: SignInOutcome,
}

impl SignInStep {
    fn new(response: Option<InvokeResponse>, outcome: SignInOutcome) -> Self {
        SignInStep { response, outcome }
    }
}

/// The start of a sign-in.
#[derive(Debug)]
#[non_exhaustive]
pub enum Begin {
    /// The user has a token already.
    SignedIn(TokenResponse),
    /// Send this message (an OAuth or sign-in card; it holds the sign-in link, never log it).
    Card(Value),
}

type FlowKey = (String, String, String);

/// One OAuth connection's sign-in flow, shared by all requests (cheap to clone).
///
/// [`begin`](Self::begin) returns the token or the card to send and records the start;
/// [`handle`](Self::handle) takes every verified activity and finishes the flow from a
/// `signin/verifyState`, `signin/tokenExchange` or `signin/failure` invoke, a `tokens/response`
/// event, or a 6-digit magic code typed while a sign-in is pending.
#[derive(Clone)]
pub struct SignInFlow {
    inner: Arc<FlowInner>,
}

struct FlowInner {
    client: UserTokenClient,
    connection: String,
    text: String,
    title: String,
    sso: bool,
    timeout: Duration,
    dedup_ttl: Duration,
    store: Arc<dyn ExchangeStore>,
    clock: Arc<dyn Clock>,
    /// When each pending sign-in began, by (channel, conversation, user).
    pending: Mutex<HashMap<FlowKey, SystemTime>>,
}

impl fmt::Debug for SignInFlow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInFlow")
            .field("connection", &self.inner.connection)
            .field("sso", &self.inner.sso)
            .field("timeout", &self.inner.timeout)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SignInFlow`].
#[must_use]
pub struct SignInFlowBuilder {
    client: UserTokenClient,
    connection: String,
    text: String,
    title: String,
    sso: bool,
    timeout: Duration,
    dedup_ttl: Duration,
    store: Arc<dyn ExchangeStore>,
}

impl fmt::Debug for SignInFlowBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignInFlowBuilder")
            .field("connection", &self.connection)
            .field("sso", &self.sso)
            .finish_non_exhaustive()
    }
}

impl SignInFlowBuilder {
    /// The card's text (default "Please sign in").
    pub fn text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }

    /// The button's title (default "Sign in").
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Teams SSO: put `tokenExchangeResource` in the card (default on; the connection needs a
    /// Token Exchange URL `api://botid-{appId}`).
    pub fn sso(mut self, on: bool) -> Self {
        self.sso = on;
        self
    }

    /// How long a sign-in may take (default 15 min).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The store of SSO de-duplication claims (default: in memory, this process only).
    pub fn exchange_store(mut self, store: Arc<dyn ExchangeStore>) -> Self {
        self.store = store;
        self
    }

    /// How long a de-duplication claim lives (default 15 min).
    pub fn dedup_ttl(mut self, ttl: Duration) -> Self {
        self.dedup_ttl = ttl;
        self
    }

    /// Builds the flow.
    pub fn build(self) -> SignInFlow {
        let clock = self.client.clock();
        SignInFlow {
            inner: Arc::new(FlowInner {
                client: self.client,
                connection: self.connection,
                text: self.text,
                title: self.title,
                sso: self.sso,
                timeout: self.timeout,
                dedup_ttl: self.dedup_ttl,
                clock,
                store: self.store,
                pending: Mutex::default(),
            }),
        }
    }
}

/// Whether `text` is a magic code: exactly six ASCII digits once surrounding white space is
/// trimmed. The SDKs match an unanchored `\d{6}`, which turns "my number is 0612345678" into a
/// code attempt (docs/protocol.md §10).
pub fn magic_code(text: &str) -> Option<&str> {
    let code = text.trim();
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then_some(code)
}

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

impl SignInFlow {
    /// A flow for `connection` with the defaults. The flow timeout follows the client's clock
    /// (its [`ClientSettings`](botauth_http::ClientSettings)).
    pub fn builder(client: UserTokenClient, connection: impl Into<String>) -> SignInFlowBuilder {
        SignInFlowBuilder {
            client,
            connection: connection.into(),
            text: "Please sign in".into(),
            title: "Sign in".into(),
            sso: true,
            timeout: DEFAULT_FLOW_TIMEOUT,
            dedup_ttl: DEFAULT_FLOW_TIMEOUT,
            store: Arc::new(MemoryExchangeStore::default()),
        }
    }

    fn key(ctx: &SignInContext) -> FlowKey {
        (
            ctx.channel_id().to_owned(),
            ctx.conversation_id().to_owned(),
            ctx.user_id().to_owned(),
        )
    }

    fn end(&self, ctx: &SignInContext) {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&Self::key(ctx));
    }

    /// `Some(true)`: pending and in time; `Some(false)`: pending but timed out (and now ended);
    /// `None`: no sign-in pending here.
    fn pending(&self, ctx: &SignInContext) -> Option<bool> {
        let now = self.inner.clock.now();
        let mut pending = self
            .inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let started = *pending.get(&Self::key(ctx))?;
        let in_time = now
            .duration_since(started)
            .map_or(true, |age| age < self.inner.timeout);
        if !in_time {
            pending.remove(&Self::key(ctx));
        }
        Some(in_time)
    }

    /// Starts a sign-in for the user of `verified`: their token if they have one, else the card
    /// to send (the flow is then pending for this user and conversation).
    ///
    /// # Errors
    ///
    /// The client's errors (an unknown connection is `ConnectionNotFound`).
    pub async fn begin(&self, verified: &VerifiedActivity) -> Result<Begin, UserTokenError> {
        let ctx = SignInContext::from_verified(verified)?;
        let inner = &self.inner;
        if let Some(token) = inner
            .client
            .get_user_token(&ctx, &inner.connection, None)
            .await?
        {
            self.end(&ctx);
            return Ok(Begin::SignedIn(token));
        }
        let resource = inner
            .client
            .get_sign_in_resource(&ctx, &inner.connection, None)
            .await?;
        let attachment = sign_in_attachment(
            ctx.channel_id(),
            &inner.connection,
            &resource,
            &inner.text,
            &inner.title,
            inner.sso,
        );
        inner
            .pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(Self::key(&ctx), inner.clock.now());
        tracing::debug!(
            channel = ctx.channel_id(),
            connection = %inner.connection,
            "sign-in card prepared"
        );
        Ok(Begin::Card(json!({
            "type": "message",
            "attachments": [attachment],
        })))
    }

    /// Signs the user out of the connection and ends any pending sign-in.
    ///
    /// # Errors
    ///
    /// The client's errors.
    pub async fn sign_out(&self, verified: &VerifiedActivity) -> Result<(), UserTokenError> {
        let ctx = SignInContext::from_verified(verified)?;
        self.end(&ctx);
        self.inner
            .client
            .sign_out(&ctx, Some(&self.inner.connection))
            .await
    }

    /// Handles a verified activity: a sign-in activity finishes (or fails) the flow with the
    /// answer the channel expects; anything else is [`SignInOutcome::NotSignIn`].
    pub async fn handle(&self, verified: &VerifiedActivity) -> SignInStep {
        let activity = verified.activity();
        let kind = (
            str_at(activity, "/type").unwrap_or_default(),
            str_at(activity, "/name").unwrap_or_default(),
        );
        let is_sign_in = matches!(
            kind,
            (
                "invoke",
                "signin/verifyState" | "signin/tokenExchange" | "signin/failure"
            ) | ("event", "tokens/response")
        );
        let is_message = kind.0 == "message";
        if !is_sign_in && !is_message {
            return SignInStep::new(None, SignInOutcome::NotSignIn);
        }
        let ctx = match SignInContext::from_verified(verified) {
            Ok(ctx) => ctx,
            Err(e) if is_sign_in && kind.0 == "invoke" => {
                return SignInStep::new(Some(InvokeResponse::empty(400)), SignInOutcome::Error(e));
            }
            Err(_) => return SignInStep::new(None, SignInOutcome::NotSignIn),
        };
        let pending = self.pending(&ctx);
        if is_message {
            let code = activity
                .get("text")
                .and_then(Value::as_str)
                .and_then(magic_code);
            return match (pending, code) {
                (Some(true), Some(code)) => self.verify_code(&ctx, code, false).await,
                (Some(false), _) => SignInStep::new(None, SignInOutcome::TimedOut),
                _ => SignInStep::new(None, SignInOutcome::NotSignIn),
            };
        }
        // Invokes and events are handled whether or not this process began the flow (another
        // replica may have sent the card; the Token Service decides), but a flow known to have
        // timed out is over.
        if pending == Some(false) {
            let response = match kind.1 {
                // 404: no token, and Teams does not retry.
                "signin/verifyState" => Some(InvokeResponse::empty(404)),
                // 400 stops Teams' retries (a 412 would make it prompt again).
                "signin/tokenExchange" => Some(self.exchange_failure(
                    400,
                    activity,
                    "The sign-in timed out; ask the bot to sign in again.",
                )),
                "signin/failure" => Some(InvokeResponse::empty(200)),
                _ => None,
            };
            return SignInStep::new(response, SignInOutcome::TimedOut);
        }
        match kind.1 {
            "signin/verifyState" => {
                let state = str_at(activity, "/value/state");
                match state {
                    Some(CANCELLED_BY_USER) => {
                        self.end(&ctx);
                        SignInStep::new(Some(InvokeResponse::empty(200)), SignInOutcome::Cancelled)
                    }
                    Some(code) => self.verify_code(&ctx, code, true).await,
                    None => SignInStep::new(
                        Some(InvokeResponse::empty(404)),
                        SignInOutcome::CodeRefused,
                    ),
                }
            }
            "signin/tokenExchange" => self.token_exchange(&ctx, activity).await,
            "signin/failure" => {
                self.end(&ctx);
                let code = str_at(activity, "/value/code")
                    .unwrap_or("unknown")
                    .to_owned();
                let message = str_at(activity, "/value/message")
                    .unwrap_or_default()
                    .to_owned();
                tracing::warn!(code = %code, "the channel reported a sign-in failure");
                SignInStep::new(
                    Some(InvokeResponse::empty(200)),
                    SignInOutcome::Failed { code, message },
                )
            }
            _ => self.tokens_response(&ctx, activity),
        }
    }

    /// A magic code, from message text or `signin/verifyState`.
    async fn verify_code(&self, ctx: &SignInContext, code: &str, invoke: bool) -> SignInStep {
        let answer = |status| invoke.then(|| InvokeResponse::empty(status));
        match self
            .inner
            .client
            .get_user_token(ctx, &self.inner.connection, Some(code))
            .await
        {
            Ok(Some(token)) => {
                self.end(ctx);
                SignInStep::new(answer(200), SignInOutcome::SignedIn(token))
            }
            Ok(None) => SignInStep::new(answer(404), SignInOutcome::CodeRefused),
            // 500: Teams sends the verifyState again.
            Err(e) => SignInStep::new(answer(500), SignInOutcome::Error(e)),
        }
    }

    fn exchange_failure(&self, status: u16, activity: &Value, detail: &str) -> InvokeResponse {
        InvokeResponse {
            status,
            body: Some(json!({
                "id": str_at(activity, "/value/id"),
                "connectionName": self.inner.connection,
                "failureDetail": detail,
            })),
        }
    }

    /// The exchange found no token or needs consent: 412, so that Teams shows its consent prompt.
    fn consent_required(&self, activity: &Value) -> SignInStep {
        SignInStep::new(
            Some(self.exchange_failure(
                412,
                activity,
                "The bot is unable to exchange token. Proceed with regular login.",
            )),
            SignInOutcome::ConsentRequired,
        )
    }

    async fn token_exchange(&self, ctx: &SignInContext, activity: &Value) -> SignInStep {
        let inner = &self.inner;
        let (Some(id), Some(token)) = (
            str_at(activity, "/value/id"),
            str_at(activity, "/value/token"),
        ) else {
            return SignInStep::new(
                Some(self.exchange_failure(
                    400,
                    activity,
                    "The bot received an InvokeActivity that is missing a TokenExchangeInvokeRequest value. This is required to be sent with the InvokeActivity.",
                )),
                SignInOutcome::Error(UserTokenError::invalid(
                    "signin/tokenExchange",
                    "the value has no id or token",
                )),
            );
        };
        let connection = str_at(activity, "/value/connectionName");
        if connection != Some(inner.connection.as_str()) {
            return SignInStep::new(
                Some(self.exchange_failure(
                    400,
                    activity,
                    "The bot is unable to exchange token. Ensure you have the correct connection name.",
                )),
                SignInOutcome::Error(UserTokenError::invalid(
                    "signin/tokenExchange",
                    "the value names another connection",
                )),
            );
        }
        let sso = Secret::new(token);
        // Exchange first, so that every duplicate also gets the 412 when consent is needed
        // (docs/protocol.md §8, de-duplication), then claim.
        let exchanged = inner
            .client
            .exchange_token(ctx, &inner.connection, &sso)
            .await;
        let token = match exchanged {
            Ok(Some(token)) => token,
            Ok(None) => return self.consent_required(activity),
            Err(e) if e.kind() == UserTokenErrorKind::ConsentRequired => {
                return self.consent_required(activity);
            }
            // A misconfigured connection will not heal on a retry: 400 stops Teams' retries.
            Err(e)
                if matches!(
                    e.kind(),
                    UserTokenErrorKind::ConnectionMisconfigured
                        | UserTokenErrorKind::ConnectionNotFound
                ) =>
            {
                return SignInStep::new(
                    Some(self.exchange_failure(
                        400,
                        activity,
                        "The bot's OAuth connection is misconfigured.",
                    )),
                    SignInOutcome::Error(e),
                );
            }
            Err(e) => {
                return SignInStep::new(
                    Some(self.exchange_failure(
                        412,
                        activity,
                        "The bot is unable to exchange token. Proceed with regular login.",
                    )),
                    SignInOutcome::Error(e),
                );
            }
        };
        let key = format!("{}/{}/{id}", ctx.channel_id(), ctx.conversation_id());
        match inner.store.claim(&key, inner.dedup_ttl).await {
            Ok(true) => {
                self.end(ctx);
                SignInStep::new(
                    Some(InvokeResponse {
                        status: 200,
                        body: Some(json!({ "id": id, "connectionName": inner.connection })),
                    }),
                    SignInOutcome::SignedIn(token),
                )
            }
            // The SDKs' middleware answers losers 200 with an empty body.
            Ok(false) => SignInStep::new(
                Some(InvokeResponse::empty(200)),
                SignInOutcome::Deduplicated,
            ),
            Err(e) => SignInStep::new(Some(InvokeResponse::empty(500)), SignInOutcome::Error(e)),
        }
    }

    fn tokens_response(&self, ctx: &SignInContext, activity: &Value) -> SignInStep {
        let Some(value) = activity.get("value") else {
            return SignInStep::new(None, SignInOutcome::CodeRefused);
        };
        match TokenResponse::from_body(value.to_string().as_bytes()) {
            Some(token) if token.connection_name == self.inner.connection => {
                self.end(ctx);
                SignInStep::new(None, SignInOutcome::SignedIn(token))
            }
            Some(_) => SignInStep::new(None, SignInOutcome::NotSignIn),
            None => SignInStep::new(None, SignInOutcome::CodeRefused),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_codes_are_exactly_six_digits() {
        assert_eq!(magic_code("123456"), Some("123456"));
        assert_eq!(magic_code("  123456\n"), Some("123456"));
        assert_eq!(magic_code("12345"), None);
        assert_eq!(magic_code("1234567"), None);
        assert_eq!(magic_code("code 123456"), None);
        assert_eq!(magic_code("０１２３４５"), None);
        assert_eq!(magic_code("12345a"), None);
    }
}
