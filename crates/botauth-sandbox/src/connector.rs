//! A minimal Bot Connector: accepts activities sent with a token this sandbox issued.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::entra::verify_access_token;
use crate::error::json_response;
use crate::state::{BOT_CONNECTOR_RESOURCES, Shared};

/// `POST /v3/conversations/{conversationId}/activities[/{activityId}]`.
pub(crate) async fn post_activity(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(reason) = authorize(&shared, &headers) {
        tracing::debug!(%reason, "sandbox connector rejected the bearer token");
        let mut response = connector_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            &format!("Authorization has been denied for this request: {reason}."),
        );
        response
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return response;
    }
    let activity = match body.ok().and_then(|b| serde_json::from_slice::<Value>(&b).ok()) {
        Some(activity @ Value::Object(_)) => activity,
        _ => {
            return connector_error(
                StatusCode::BAD_REQUEST,
                "BadArgument",
                "The request body must be a JSON activity object.",
            );
        }
    };
    shared.lock().activities.push(activity);
    json_response(StatusCode::OK, &json!({ "id": uuid::Uuid::new_v4().to_string() }))
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), String> {
    let value = headers
        .get(AUTHORIZATION)
        .ok_or("no Authorization header")?
        .to_str()
        .map_err(|_| "Authorization header is not ASCII")?;
    let token = value
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .ok_or("Authorization is not a Bearer token")?;
    let claims = verify_access_token(shared, token)?;
    let aud = claims.get("aud").and_then(Value::as_str).unwrap_or_default();
    if !BOT_CONNECTOR_RESOURCES.contains(&aud) {
        return Err(format!("token audience '{aud}' is not the Bot Connector"));
    }
    Ok(())
}

/// The Bot Connector's error shape: `{"error":{"code":…,"message":…}}`.
fn connector_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(status, &json!({ "error": { "code": code, "message": message } }))
}
