//! The Token Service part of the [`Sandbox`] handle.

use serde_json::{Value, json};

use super::endpoints::mint_sso;
use super::sign_in::loopback;
use super::state::SignInPush;
use crate::console::command::ChatTarget;
use crate::sandbox::Sandbox;

impl Sandbox {
    /// Registers an OAuth connection on the Token Service (names are case-sensitive).
    pub fn register_oauth_connection(&self, name: impl Into<String>) {
        let name = name.into();
        let mut inner = self.shared.lock();
        if !inner.token_service.connections.contains(&name) {
            inner.token_service.connections.push(name);
        }
    }

    /// Sends the bot at `target` what a channel sends when the user follows a sign-in link of
    /// this sandbox: for an `msteams` conversation a `signin/verifyState` invoke whose
    /// `value.state` is the magic code, for any other channel a `tokens/response` event whose
    /// `value` is the TokenResponse. The conversation comes from the link's `state`; the channel
    /// token is minted as for any activity (`aud` = `target.app_id`). The sign-in page answers
    /// once the bot has answered, and still shows the code. `None` stops the pushes.
    ///
    /// # Errors
    ///
    /// [`std::io::ErrorKind::InvalidInput`] for an endpoint that is not `http(s)` on a loopback
    /// host.
    pub fn push_sign_ins_to(&self, target: Option<ChatTarget>) -> std::io::Result<()> {
        if let Some(target) = &target {
            loopback(&target.endpoint)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        }
        self.shared.lock().token_service.push_target = target;
        Ok(())
    }

    /// Every sign-in activity sent so far (see [`Sandbox::push_sign_ins_to`]), in order.
    pub fn sign_in_pushes(&self) -> Vec<SignInPush> {
        self.shared.lock().token_service.pushes.clone()
    }

    /// The sign-in activities sent from now on, as they are answered.
    pub fn watch_sign_in_pushes(&self) -> tokio::sync::mpsc::UnboundedReceiver<SignInPush> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        self.shared.lock().token_service.push_watchers.push(tx);
        rx
    }

    /// When on, every token exchange answers 400 "consent required" (the Teams 412 path).
    pub fn set_consent_required(&self, on: bool) {
        self.shared.lock().token_service.consent_required = on;
    }

    /// Answers the next `times` Token Service requests (after their bearer is checked) with
    /// `status` and the service's error body, with `Retry-After: {retry_after}` when given.
    pub fn inject_token_service_status(&self, status: u16, retry_after: Option<u64>, times: usize) {
        let mut inner = self.shared.lock();
        for _ in 0..times {
            inner.token_service.faults.push_back((status, retry_after));
        }
    }

    /// Every user token the Token Service issued so far (for tests that check none is logged).
    pub fn issued_user_tokens(&self) -> Vec<String> {
        self.shared.lock().token_service.issued.clone()
    }

    /// Every `state` the sign-in endpoints received, as sent.
    pub fn received_sign_in_states(&self) -> Vec<String> {
        self.shared.lock().token_service.states.clone()
    }

    /// How many token exchanges succeeded.
    pub fn token_exchanges(&self) -> usize {
        self.shared.lock().token_service.exchanges
    }

    /// Whether the Token Service holds a token for the user, connection and channel.
    pub fn has_user_token(&self, user_id: &str, connection: &str, channel_id: &str) -> bool {
        let key = (
            user_id.to_owned(),
            connection.to_owned(),
            channel_id.to_owned(),
        );
        self.shared.lock().token_service.tokens.contains_key(&key)
    }

    /// The SSO token a Teams client sends in `signin/tokenExchange` for the bot `bot_app_id`:
    /// signed by the sandbox's Entra key, `aud` `api://botid-{bot_app_id}`, the sandbox user's
    /// `oid`, one hour.
    pub fn mint_teams_sso_token(&self, bot_app_id: &str) -> String {
        mint_sso(&self.shared, bot_app_id)
    }

    /// Follows a sign-in link as the user's browser and returns the magic code the page shows.
    ///
    /// # Errors
    ///
    /// A message for a link that is not this sandbox's, fails, or shows no code.
    pub async fn follow_sign_in_link(&self, link: &str) -> Result<String, String> {
        if !link.starts_with(&format!("{}/", self.shared.url)) {
            return Err("the sign-in link is not this sandbox's".into());
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("http client: {e}"))?;
        let response =
            client.get(link).send().await.map_err(|e| {
                format!("the sign-in page could not be fetched: {}", e.without_url())
            })?;
        let status = response.status().as_u16();
        let page = response
            .text()
            .await
            .map_err(|e| e.without_url().to_string())?;
        if status != 200 {
            return Err(format!("the sign-in page answered HTTP {status}"));
        }
        let start = page
            .find("id=\"magic-code\">")
            .ok_or("the sign-in page shows no magic code")?
            + "id=\"magic-code\">".len();
        Ok(page[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect())
    }

    /// A sign-in invoke from Teams to the bot `bot_app_id`, in the conversation of
    /// [`Sandbox::channel_activity`]: `name` is `signin/verifyState`, `signin/tokenExchange` or
    /// `signin/failure`, `value` its value.
    pub fn sign_in_invoke(&self, bot_app_id: &str, name: &str, value: Value) -> Value {
        let mut activity = self.channel_activity(bot_app_id, "");
        if let Some(map) = activity.as_object_mut() {
            map.remove("text");
            map.remove("textFormat");
            map.insert("type".into(), json!("invoke"));
            map.insert("name".into(), json!(name));
            map.insert("value".into(), value);
        }
        activity
    }

    /// `signin/verifyState` with `value.state` = `state` (a magic code or `CancelledByUser`).
    pub fn verify_state_invoke(&self, bot_app_id: &str, state: &str) -> Value {
        self.sign_in_invoke(bot_app_id, "signin/verifyState", json!({ "state": state }))
    }

    /// `signin/tokenExchange` as a Teams client sends it after an OAuth card with
    /// `tokenExchangeResource.id` = `id`: `value {id, connectionName, token}` with a fresh
    /// [`Sandbox::mint_teams_sso_token`]. Multi-client Teams sends one per client, same `id`.
    pub fn token_exchange_invoke(&self, bot_app_id: &str, connection: &str, id: &str) -> Value {
        let token = self.mint_teams_sso_token(bot_app_id);
        self.sign_in_invoke(
            bot_app_id,
            "signin/tokenExchange",
            json!({ "id": id, "connectionName": connection, "token": token }),
        )
    }
}
