//! The sandbox as the Bot Framework Token Service (docs/user-sign-in.md, docs/protocol.md §8):
//! OAuth connections, user tokens behind a sign-in link and a 6-digit magic code, Teams SSO token
//! exchange, and the channel's sign-in activities. Written from the protocol, not from botauth's
//! client: it is the oracle that client is judged by.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::botservice::ChannelTokenClaims;
use crate::error::{json_response, raw_response};
use crate::state::Shared;
use crate::{
    ChatTarget, DEMO_CONVERSATION_ID, DEMO_TENANT_ID, DEMO_USER_ID, Delivery, Sandbox, clock,
    managed_identity,
};

/// How long the user tokens the sandbox issues live.
const USER_TOKEN_LIFETIME: i64 = 3600;

/// The `providerId` of sign-in resources.
const PROVIDER_ID: &str = "botauth-sandbox";

/// The user's Entra object id in the tokens the sandbox issues (as `from.aadObjectId`).
const USER_OBJECT_ID: &str = "55555555-0000-4000-8000-0000000000a1";

/// How long a sign-in push waits for the bot's answer (as [`Sandbox::deliver_activity`]).
const PUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Who a sign-in link signs in, decoded from the `state` the bot sent.
#[derive(Debug, Clone)]
struct PendingSignIn {
    user_id: String,
    channel_id: String,
    connection: String,
    /// The `state`'s conversation reference: where the channel sends the sign-in activity.
    conversation: Value,
}

/// A sign-in activity the sandbox sent a bot, as a channel does, after the user followed a
/// sign-in link (see [`Sandbox::push_sign_ins_to`]).
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
struct UserToken {
    token: String,
    expires_unix: i64,
}

/// The Token Service's state.
#[derive(Debug, Default)]
pub(crate) struct TokenServiceState {
    /// Registered OAuth connection names (case-sensitive, as the service compares them).
    connections: Vec<String>,
    /// (user, connection, channel) → token.
    tokens: HashMap<(String, String, String), UserToken>,
    /// Sign-in link id → who it signs in (used once).
    sign_ins: HashMap<String, PendingSignIn>,
    /// Magic code → the token it releases (used once).
    codes: HashMap<String, ((String, String, String), UserToken)>,
    /// Whether exchanges answer 400 "consent required".
    consent_required: bool,
    /// Statuses to answer the next Token Service requests with, in order.
    faults: VecDeque<(u16, Option<u64>)>,
    /// How many exchanges succeeded.
    exchanges: usize,
    /// Every user token issued and every `state` received, for log-leak tests.
    issued: Vec<String>,
    states: Vec<String>,
    /// The bot that gets the channel's sign-in activities, when one is known.
    push_target: Option<ChatTarget>,
    /// Every sign-in activity sent, in order, and who wants to hear of the next ones.
    pushes: Vec<SignInPush>,
    push_watchers: Vec<tokio::sync::mpsc::UnboundedSender<SignInPush>>,
}

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/usertoken/GetToken", get(get_token))
        .route("/api/usertoken/GetAadTokens", post(get_aad_tokens))
        .route("/api/usertoken/SignOut", delete(sign_out))
        .route("/api/usertoken/GetTokenStatus", get(get_token_status))
        .route("/api/usertoken/exchange", post(exchange))
        .route(
            "/api/botsignin/GetSignInResource",
            get(get_sign_in_resource),
        )
        .route("/api/botsignin/GetSignInUrl", get(get_sign_in_url))
        .route("/api/sandbox/signin", get(sign_in_page))
        .route("/api/sandbox/teams-sso-token", get(teams_sso_token))
}

/// `GET /api/sandbox/teams-sso-token?botAppId=…`: plays the Teams client, which gets the user's
/// SSO token for the bot (`aud` `api://botid-{botAppId}`) on its own; for SDKs tested out of
/// process (see [`Sandbox::mint_teams_sso_token`]). Answered as text/plain.
async fn teams_sso_token(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
    let app_id = param(&params, "botAppId");
    if app_id.is_empty() || app_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return service_error(
            StatusCode::BAD_REQUEST,
            "The 'botAppId' parameter is required.",
        );
    }
    raw_response(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        mint_sso(&shared, app_id),
    )
}

fn mint_sso(shared: &Shared, bot_app_id: &str) -> String {
    let now = clock::unix_now();
    shared.entra_key.sign(&json!({
        "iss": format!("{}/{DEMO_TENANT_ID}/v2.0", shared.url),
        "aud": format!("api://botid-{bot_app_id}"),
        "oid": USER_OBJECT_ID,
        "tid": DEMO_TENANT_ID,
        "scp": "access_as_user",
        "name": "Sandbox User",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
    }))
}

type Params = Query<HashMap<String, String>>;

/// The Token Service's error shape.
fn service_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({ "error": {
            "code": "ServiceError",
            "message": message,
            "innerHttpError": { "statusCode": status.as_u16(), "body": {} },
        }}),
    )
}

fn not_found_connection(name: &str) -> Response {
    service_error(
        StatusCode::BAD_REQUEST,
        &format!("Could not find Connection Setting with name '{name}'"),
    )
}

/// The bot's app id, from a bearer token this sandbox issued for a Bot Connector resource.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<String, Box<Response>> {
    let unauthorized = |reason: &str| {
        let mut response = service_error(
            StatusCode::UNAUTHORIZED,
            &format!("Authorization has been denied for this request: {reason}."),
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        Box::new(response)
    };
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim().to_owned())
        .ok_or_else(|| unauthorized("no Bearer token"))?;
    let claims = shared
        .entra_key
        .verify_unexpired(&token)
        .or_else(|_| managed_identity::verify(shared, &token))
        .map_err(|_| unauthorized("not an unexpired token this sandbox issued"))?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    // The Token Service takes the bot's channel token (docs/protocol.md §8): a Bot Connector
    // audience, never a skill's.
    let audience = claim("aud").unwrap_or_default();
    if !crate::state::BOT_CONNECTOR_RESOURCES.contains(&audience) {
        return Err(unauthorized(&format!(
            "sandbox: the token's audience '{audience}' is not a Bot Connector resource"
        )));
    }
    claim("appid")
        .or_else(|| claim("azp"))
        .map(str::to_owned)
        .ok_or_else(|| unauthorized("the token names no caller"))
}

/// Authorizes, applies a queued fault, and checks the required query parameters.
fn admit(
    shared: &Shared,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    required: &[&str],
) -> Result<String, Box<Response>> {
    let app_id = authorize(shared, headers)?;
    if let Some((status, retry_after)) = shared.lock().token_service.faults.pop_front() {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = service_error(status, "sandbox: injected fault");
        if let Some(secs) = retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert("retry-after", v);
            }
        }
        return Err(Box::new(response));
    }
    for name in required {
        if params.get(*name).is_none_or(|v| v.is_empty()) {
            return Err(Box::new(service_error(
                StatusCode::BAD_REQUEST,
                &format!("The '{name}' parameter is required."),
            )));
        }
    }
    Ok(app_id)
}

/// [`admit`], then the user, connection and channel of the query, the connection registered:
/// how every operation on one user's token starts. Returns the caller's app id with them.
fn user_operation<'p>(
    shared: &Shared,
    headers: &HeaderMap,
    params: &'p HashMap<String, String>,
    required: &[&str],
) -> Result<(String, &'p str, &'p str, &'p str), Box<Response>> {
    let app_id = admit(shared, headers, params, required)?;
    let connection = param(params, "connectionName");
    if !known(shared, connection) {
        return Err(Box::new(not_found_connection(connection)));
    }
    Ok((
        app_id,
        param(params, "userId"),
        connection,
        param(params, "channelId"),
    ))
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

fn known(shared: &Shared, connection: &str) -> bool {
    shared
        .lock()
        .token_service
        .connections
        .iter()
        .any(|c| c == connection)
}

fn token_response(connection: &str, channel: &str, token: &UserToken) -> Value {
    let t = botauth_core::UtcDateTime::from_unix(token.expires_unix);
    json!({
        "channelId": channel,
        "connectionName": connection,
        "token": token.token,
        "expiration": format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}+00:00",
            t.year, t.month, t.day, t.hour, t.minute, t.second
        ),
    })
}

/// A user token: a JWT signed by the sandbox's Entra key, for a Graph-like resource, naming the
/// sandbox's user (so a bot can show who signed in).
fn issue_user_token(shared: &Shared, connection: &str, user_id: &str) -> UserToken {
    let token = sign_user_token(shared, connection, user_id);
    shared.lock().token_service.issued.push(token.token.clone());
    token
}

fn sign_user_token(shared: &Shared, connection: &str, user_id: &str) -> UserToken {
    let now = clock::unix_now();
    let expires_unix = now + USER_TOKEN_LIFETIME;
    let token = shared.entra_key.sign(&json!({
        "iss": format!("{}/{DEMO_TENANT_ID}/v2.0", shared.url),
        "aud": "https://graph.microsoft.com",
        "sub": user_id,
        "oid": USER_OBJECT_ID,
        "tid": DEMO_TENANT_ID,
        "name": "Sandbox User",
        "preferred_username": "sandbox.user@contoso.example",
        "scp": "User.Read",
        "connection": connection,
        "iat": now,
        "nbf": now,
        "exp": expires_unix,
        "uti": uuid::Uuid::new_v4().to_string(),
    }));
    UserToken {
        token,
        expires_unix,
    }
}

/// `GET api/usertoken/GetToken`: 200 with the token, or 404 with an empty body. With `code`, the
/// token that magic code stands for is released (once) and stored.
async fn get_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let (_, user, connection, channel) =
        match user_operation(&shared, &headers, &params, &["userId", "connectionName"]) {
            Ok(found) => found,
            Err(r) => return *r,
        };
    let key = (user.to_owned(), connection.to_owned(), channel.to_owned());
    let mut inner = shared.lock();
    let state = &mut inner.token_service;
    if let Some(code) = params.get("code").filter(|c| !c.is_empty()) {
        // A code is good for the user, connection and channel it was shown for, once.
        match state.codes.get(code) {
            Some((for_key, _)) if *for_key == key => {
                if let Some((_, token)) = state.codes.remove(code) {
                    state.tokens.insert(key.clone(), token);
                }
            }
            _ => return StatusCode::NOT_FOUND.into_response(),
        }
    }
    match state.tokens.get(&key) {
        Some(token) if token.expires_unix > clock::unix_now() => {
            json_response(StatusCode::OK, &token_response(connection, channel, token))
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `POST api/usertoken/GetAadTokens`: one token per resource URL for a signed-in user.
async fn get_aad_tokens(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let (_, user, connection, channel) =
        match user_operation(&shared, &headers, &params, &["userId", "connectionName"]) {
            Ok(found) => found,
            Err(r) => return *r,
        };
    let Some(urls) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("resourceUrls").and_then(Value::as_array).cloned())
    else {
        return service_error(
            StatusCode::BAD_REQUEST,
            "The body must be {\"resourceUrls\":[…]}.",
        );
    };
    let key = (user.to_owned(), connection.to_owned(), channel.to_owned());
    let signed_in = shared.lock().token_service.tokens.contains_key(&key);
    let mut out = Map::new();
    if signed_in {
        for url in urls.iter().filter_map(Value::as_str) {
            let token = issue_user_token(&shared, connection, user);
            out.insert(url.to_owned(), token_response(connection, channel, &token));
        }
    }
    json_response(StatusCode::OK, &Value::Object(out))
}

/// `DELETE api/usertoken/SignOut`: drops the user's tokens (of one connection, or all); 200 `{}`.
async fn sign_out(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = admit(&shared, &headers, &params, &["userId"]) {
        return *r;
    }
    let user = param(&params, "userId");
    let connection = params.get("connectionName").filter(|c| !c.is_empty());
    let channel = params.get("channelId").filter(|c| !c.is_empty());
    if let Some(connection) = connection {
        if !known(&shared, connection) {
            return not_found_connection(connection);
        }
    }
    shared.lock().token_service.tokens.retain(|(u, c, ch), _| {
        !(u == user
            && connection.is_none_or(|conn| conn == c)
            && channel.is_none_or(|chan| chan == ch))
    });
    json_response(StatusCode::OK, &json!({}))
}

/// `GET api/usertoken/GetTokenStatus`: one entry per connection (filtered by `include`).
async fn get_token_status(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    if let Err(r) = admit(&shared, &headers, &params, &["userId"]) {
        return *r;
    }
    let user = param(&params, "userId");
    let channel = param(&params, "channelId");
    let include: Option<Vec<&str>> = params
        .get("include")
        .filter(|i| !i.is_empty())
        .map(|i| i.split(',').map(str::trim).collect());
    let inner = shared.lock();
    let state = &inner.token_service;
    let list: Vec<Value> = state
        .connections
        .iter()
        .filter(|c| include.as_ref().is_none_or(|inc| inc.contains(&c.as_str())))
        .map(|c| {
            let key = (user.to_owned(), c.clone(), channel.to_owned());
            json!({
                "channelId": channel,
                "connectionName": c,
                "hasToken": state.tokens.contains_key(&key),
                "serviceProviderDisplayName": "Sandbox Identity Provider",
            })
        })
        .collect();
    json_response(StatusCode::OK, &Value::Array(list))
}

/// `POST api/usertoken/exchange`: a Teams SSO token (signed by this sandbox, `aud`
/// `api://botid-{bot app id}`) for the user's token. 400 for a wrapped body, an SSO token for
/// another audience, or while consent is required; 404 for a `{"uri":…}` exchange (the sandbox
/// has none); 500 injected as a fault stands for a misconfigured connection.
async fn exchange(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
    body: Bytes,
) -> Response {
    let required = ["userId", "connectionName", "channelId"];
    let (app_id, user, connection, channel) =
        match user_operation(&shared, &headers, &params, &required) {
            Ok(found) => found,
            Err(r) => return *r,
        };
    let Some(request) = serde_json::from_slice::<Value>(&body)
        .ok()
        .filter(Value::is_object)
    else {
        return service_error(StatusCode::BAD_REQUEST, "The body must be a JSON object.");
    };
    if request.get("exchangeRequest").is_some() {
        return service_error(
            StatusCode::BAD_REQUEST,
            "sandbox: the exchange body must be flat {\"token\":…}, not wrapped in exchangeRequest.",
        );
    }
    let Some(sso) = request.get("token").and_then(Value::as_str) else {
        if request.get("uri").is_some() {
            return StatusCode::NOT_FOUND.into_response();
        }
        return service_error(StatusCode::BAD_REQUEST, "The body has no token or uri.");
    };
    let expected = format!("api://botid-{app_id}");
    let audience_ok = shared
        .entra_key
        .verify_unexpired(sso)
        .ok()
        .and_then(|claims| {
            claims
                .get("aud")
                .and_then(Value::as_str)
                .map(|a| a == expected)
        })
        .unwrap_or(false);
    if !audience_ok {
        return service_error(
            StatusCode::BAD_REQUEST,
            &format!(
                "sandbox: the SSO token is not a token of this sandbox for {expected} (the connection's Token Exchange URL)."
            ),
        );
    }
    if shared.lock().token_service.consent_required {
        return service_error(
            StatusCode::BAD_REQUEST,
            "AADSTS65001: The user or administrator has not consented to use the application (sandbox: consent required).",
        );
    }
    let token = issue_user_token(&shared, connection, user);
    let answer = token_response(connection, channel, &token);
    let mut inner = shared.lock();
    inner.token_service.exchanges += 1;
    inner.token_service.tokens.insert(
        (user.to_owned(), connection.to_owned(), channel.to_owned()),
        token,
    );
    json_response(StatusCode::OK, &answer)
}

/// The sign-in link, token exchange resource and SAS URL for a `state`, or the error response.
fn sign_in_resource(shared: &Shared, app_id: &str, state: &str) -> Result<Value, Box<Response>> {
    let bad = |m: &str| Box::new(service_error(StatusCode::BAD_REQUEST, m));
    shared.lock().token_service.states.push(state.to_owned());
    // Standard padded base64 is what the SDKs send; URL-safe or unpadded state is refused, as a
    // strict reading of the service would.
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .ok_or_else(|| bad("sandbox: state must be standard base64 of a JSON object."))?;
    let text = |pointer: &str| {
        decoded
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let connection =
        text("/connectionName").ok_or_else(|| bad("sandbox: state has no connectionName."))?;
    if !known(shared, &connection) {
        return Err(Box::new(not_found_connection(&connection)));
    }
    let user_id = text("/conversation/user/id")
        .ok_or_else(|| bad("sandbox: state has no conversation.user.id."))?;
    let channel_id = text("/conversation/channelId")
        .ok_or_else(|| bad("sandbox: state has no conversation.channelId."))?;
    let ms_app_id = text("/msAppId").unwrap_or_else(|| app_id.to_owned());
    let conversation = decoded.get("conversation").cloned().unwrap_or(Value::Null);
    let id = uuid::Uuid::new_v4().simple().to_string();
    shared.lock().token_service.sign_ins.insert(
        id.clone(),
        PendingSignIn {
            user_id,
            channel_id,
            connection,
            conversation,
        },
    );
    Ok(json!({
        "signInLink": format!("{}/api/sandbox/signin?id={id}", shared.url),
        "tokenExchangeResource": {
            "id": uuid::Uuid::new_v4().to_string(),
            "uri": format!("api://botid-{ms_app_id}"),
            "providerId": PROVIDER_ID,
        },
        "tokenPostResource": { "sasUrl": format!("{}/api/sandbox/sas/{id}?sig={}", shared.url, uuid::Uuid::new_v4().simple()) },
    }))
}

/// `GET api/botsignin/GetSignInResource`.
async fn get_sign_in_resource(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let app_id = match admit(&shared, &headers, &params, &["state"]) {
        Ok(app_id) => app_id,
        Err(r) => return *r,
    };
    match sign_in_resource(&shared, &app_id, param(&params, "state")) {
        Ok(resource) => json_response(StatusCode::OK, &resource),
        Err(r) => *r,
    }
}

/// `GET api/botsignin/GetSignInUrl`: the link as text/plain (JSON when the client accepts only
/// JSON, as some SDK versions ask).
async fn get_sign_in_url(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(params): Params,
) -> Response {
    let app_id = match admit(&shared, &headers, &params, &["state"]) {
        Ok(app_id) => app_id,
        Err(r) => return *r,
    };
    match sign_in_resource(&shared, &app_id, param(&params, "state")) {
        Ok(resource) => {
            let link = resource["signInLink"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let wants_text = headers
                .get(ACCEPT)
                .and_then(|v| v.to_str().ok())
                .is_none_or(|a| a.contains("text/plain") || a.contains("*/*"));
            if wants_text {
                raw_response(StatusCode::OK, "text/plain; charset=utf-8", link)
            } else {
                json_response(StatusCode::OK, &Value::String(link))
            }
        }
        Err(r) => *r,
    }
}

/// `GET /api/sandbox/signin?id=…`: the user's browser following the sign-in link. Signs in the
/// user the `state` named and shows the 6-digit magic code in `id="magic-code"`. Links work once.
async fn sign_in_page(State(shared): State<Arc<Shared>>, Query(params): Params) -> Response {
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
async fn push_sign_in(
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
async fn post_activity(endpoint: &str, activity: &Value, bearer: &str) -> Result<Delivery, String> {
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
fn loopback(endpoint: &str) -> Result<reqwest::Url, String> {
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

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

    /// The OAuth connections registered.
    pub fn oauth_connections(&self) -> Vec<String> {
        self.shared.lock().token_service.connections.clone()
    }

    /// The Token Service base URL (the sandbox's URL: `api/usertoken/…` and `api/botsignin/…`
    /// are served below it).
    pub fn token_service_url(&self) -> String {
        self.shared.url.clone()
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

    /// The user and conversation the sign-in activities come from.
    pub fn sign_in_user(&self) -> (&'static str, &'static str) {
        (DEMO_USER_ID, DEMO_CONVERSATION_ID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html() {
        assert_eq!(escape("<a&\">"), "&lt;a&amp;&quot;&gt;");
    }
}
