//! The sign-in link's page (the user's browser signing in) and the sign-in activity the channel
//! then sends the bot.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::endpoints::{Params, issue_user_token, param, token_response};
use super::state::UserToken;
use super::state::{PendingSignIn, SignInPush};
use crate::botservice::keys::ChannelTokenClaims;
use crate::clock;
use crate::console::command::ChatTarget;
use crate::delivery::Delivery;
use crate::state::Shared;

/// How long a sign-in push waits for the bot's answer (as [`Sandbox::deliver_activity`]).
pub(super) const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// `GET /api/sandbox/signin?id=…`: the user's browser following the sign-in link. Signs in the
/// user the `state` named and shows the 6-digit magic code in `id="magic-code"`. Links work once.
pub(super) async fn sign_in_page(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
) -> Response {
    let id = param(&params, "id");
    let html = |status: StatusCode, body: String| {
        (
            status,
            [(
                CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            )],
            body,
        )
            .into_response()
    };
    let Some(pending) = shared.lock().token_service.sign_ins.remove(id) else {
        return html(
            StatusCode::NOT_FOUND,
            "<!doctype html><title>Sign-in link expired</title><p>This sign-in link is unknown or was used already.</p>".into(),
        );
    };
    let token = issue_user_token(&shared, &pending.connection, &pending.user_id);
    let code = loop {
        let n = u32::from_be_bytes(
            *uuid::Uuid::new_v4()
                .as_bytes()
                .first_chunk::<4>()
                .unwrap_or(&[0; 4]),
        );
        let code = format!("{:06}", n % 1_000_000);
        if !shared.lock().token_service.codes.contains_key(&code) {
            break code;
        }
    };
    let key = (
        pending.user_id.clone(),
        pending.connection.clone(),
        pending.channel_id.clone(),
    );
    shared
        .lock()
        .token_service
        .codes
        .insert(code.clone(), (key.clone(), token.clone()));
    // As a channel does once the user is back: the code still works when typed, and the bot
    // takes whichever of code and activity comes first.
    let target = shared.lock().token_service.push_target.clone();
    if let Some(target) = target {
        let push = push_sign_in(&shared, &target, &pending, &key, &code, &token).await;
        let mut inner = shared.lock();
        let state = &mut inner.token_service;
        state
            .push_watchers
            .retain(|watcher| watcher.send(push.clone()).is_ok());
        state.pushes.push(push);
    }
    html(
        StatusCode::OK,
        format!(
            "<!doctype html><title>Signed in</title><p>Signed in to {} as Sandbox User.</p>\
             <p>Type this code in the chat: <strong id=\"magic-code\">{code}</strong></p>",
            escape(&pending.connection)
        ),
    )
}

/// Sends the bot what a channel sends once the user is signed in: Teams sends
/// `signin/verifyState` with the magic code (the bot redeems it); Web Chat / Direct Line send a
/// `tokens/response` event carrying the token (which the service now holds for the user). The
/// activity goes to the `state`'s conversation, with a channel token like any other activity.
pub(super) async fn push_sign_in(
    shared: &Shared,
    target: &ChatTarget,
    pending: &PendingSignIn,
    key: &(String, String, String),
    code: &str,
    token: &UserToken,
) -> SignInPush {
    let teams = pending.channel_id == "msteams";
    let (kind, name, value) = if teams {
        ("invoke", "signin/verifyState", json!({ "state": code }))
    } else {
        shared
            .lock()
            .token_service
            .tokens
            .insert(key.clone(), token.clone());
        (
            "event",
            "tokens/response",
            token_response(&pending.connection, &pending.channel_id, token),
        )
    };
    let reference = &pending.conversation;
    let service_url = reference
        .get("serviceUrl")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map_or_else(|| format!("{}/", shared.url), str::to_owned);
    let now = clock::rfc3339_millis(std::time::SystemTime::now());
    let mut activity = json!({
        "type": kind,
        "name": name,
        "id": uuid::Uuid::new_v4().to_string(),
        "timestamp": now,
        "localTimestamp": now,
        "serviceUrl": service_url,
        "channelId": pending.channel_id,
        "from": reference.get("user").cloned().unwrap_or_else(|| json!({ "id": pending.user_id })),
        "recipient": reference.get("bot").cloned().unwrap_or(Value::Null),
        "conversation": reference.get("conversation").cloned().unwrap_or(Value::Null),
        "locale": reference.get("locale").cloned().unwrap_or_else(|| json!("en-US")),
        "value": value,
    });
    if let Some(tenant) = reference
        .pointer("/conversation/tenantId")
        .and_then(Value::as_str)
        .filter(|_| teams)
    {
        activity["channelData"] = json!({ "tenant": { "id": tenant } });
    }
    if let Some(id) = reference.get("activityId").filter(|v| v.is_string()) {
        activity["replyToId"] = id.clone();
    }
    let bearer = shared
        .lock()
        .bot
        .current()
        .sign(&ChannelTokenClaims::new(&target.app_id, &service_url).into_claims());
    let outcome = post_activity(&target.endpoint, &activity, &bearer).await;
    tracing::debug!(
        activity = name,
        status = outcome.as_ref().ok().map(|d| d.status),
        "botauth sandbox sent a sign-in activity to the bot"
    );
    SignInPush {
        name,
        channel_id: pending.channel_id.clone(),
        outcome,
    }
}

/// POSTs a channel activity to the bot as the Bot Service does (loopback only, no redirects, no
/// proxy, the bearer marked sensitive, 30 s for the whole exchange).
pub(super) async fn post_activity(
    endpoint: &str,
    activity: &Value,
    bearer: &str,
) -> Result<Delivery, String> {
    let url = loopback(endpoint)?;
    let client = reqwest::Client::builder()
        .timeout(PUSH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .map_err(|e| format!("could not build an HTTP client: {e}"))?;
    let mut authorization = HeaderValue::from_str(&format!("Bearer {bearer}"))
        .map_err(|_| "the channel token cannot be sent in a header".to_owned())?;
    authorization.set_sensitive(true);
    let response = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            "Microsoft-SkypeBotApi (Microsoft-BotFramework 3.0)",
        )
        .header(AUTHORIZATION, authorization)
        .body(activity.to_string())
        .send()
        .await
        .map_err(|e| {
            format!(
                "could not deliver the activity to {endpoint}: {}",
                e.without_url()
            )
        })?;
    let status = response.status().as_u16();
    let www_authenticate = response
        .headers()
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = response.bytes().await.map_err(|e| {
        format!(
            "could not read the answer of {endpoint}: {}",
            e.without_url()
        )
    })?;
    let body = String::from_utf8_lossy(&body[..body.len().min(1024 * 1024)]).into_owned();
    Ok(Delivery {
        status,
        body,
        www_authenticate,
    })
}

/// The endpoint as a URL, when it is `http(s)` on a loopback host (the sandbox only talks to its
/// own machine).
pub(super) fn loopback(endpoint: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| format!("bot endpoint '{endpoint}' is not a URL: {e}"))?;
    let loopback = matches!(url.scheme(), "http" | "https")
        && match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
    if loopback {
        Ok(url)
    } else {
        Err(format!(
            "bot endpoint '{endpoint}' is not an http(s) URL on 127.0.0.1, [::1] or localhost"
        ))
    }
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
