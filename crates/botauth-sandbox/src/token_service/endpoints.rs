//! The Token Service's REST API: user tokens (`api/usertoken/*`), sign-in resources
//! (`api/botsignin/*`), and the sandbox's own Teams SSO token endpoint.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::state::{PendingSignIn, UserToken};
use crate::app::DEMO_TENANT_ID;
use crate::error::{json_response, raw_response};
use crate::state::Shared;
use crate::{clock, managed_identity};

/// How long the user tokens the sandbox issues live.
pub(super) const USER_TOKEN_LIFETIME: i64 = 3600;

/// The `providerId` of sign-in resources.
pub(super) const PROVIDER_ID: &str = "botauth-sandbox";

/// The user's Entra object id in the tokens the sandbox issues (as `from.aadObjectId`).
pub(super) const USER_OBJECT_ID: &str = "55555555-0000-4000-8000-0000000000a1";

/// `GET /api/sandbox/teams-sso-token?botAppId=…`: plays the Teams client, which gets the user's
/// SSO token for the bot (`aud` `api://botid-{botAppId}`) on its own; for SDKs tested out of
/// process (see [`Sandbox::mint_teams_sso_token`]). Answered as text/plain.
pub(super) async fn teams_sso_token(
    State(shared): State<Arc<Shared>>,
    Query(params): Params,
) -> Response {
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

pub(super) fn mint_sso(shared: &Shared, bot_app_id: &str) -> String {
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

pub(super) type Params = Query<HashMap<String, String>>;

/// The Token Service's error shape.
pub(super) fn service_error(status: StatusCode, message: &str) -> Response {
    json_response(
        status,
        &json!({ "error": {
            "code": "ServiceError",
            "message": message,
            "innerHttpError": { "statusCode": status.as_u16(), "body": {} },
        }}),
    )
}

pub(super) fn not_found_connection(name: &str) -> Response {
    service_error(
        StatusCode::BAD_REQUEST,
        &format!("Could not find Connection Setting with name '{name}'"),
    )
}

/// The bot's app id, from a bearer token this sandbox issued for a Bot Connector resource.
pub(super) fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<String, Box<Response>> {
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
        .or_else(|_| managed_identity::endpoints::verify(shared, &token))
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
pub(super) fn admit(
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
pub(super) fn user_operation<'p>(
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

pub(super) fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> &'a str {
    params.get(name).map_or("", String::as_str)
}

pub(super) fn known(shared: &Shared, connection: &str) -> bool {
    shared
        .lock()
        .token_service
        .connections
        .iter()
        .any(|c| c == connection)
}

pub(super) fn token_response(connection: &str, channel: &str, token: &UserToken) -> Value {
    let t = botauth_core::internal::date::UtcDateTime::from_unix(token.expires_unix);
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
pub(super) fn issue_user_token(shared: &Shared, connection: &str, user_id: &str) -> UserToken {
    let token = sign_user_token(shared, connection, user_id);
    shared.lock().token_service.issued.push(token.token.clone());
    token
}

pub(super) fn sign_user_token(shared: &Shared, connection: &str, user_id: &str) -> UserToken {
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
pub(super) async fn get_token(
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
pub(super) async fn get_aad_tokens(
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
pub(super) async fn sign_out(
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
pub(super) async fn get_token_status(
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
pub(super) async fn exchange(
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
pub(super) fn sign_in_resource(
    shared: &Shared,
    app_id: &str,
    state: &str,
) -> Result<Value, Box<Response>> {
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
pub(super) async fn get_sign_in_resource(
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
pub(super) async fn get_sign_in_url(
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
