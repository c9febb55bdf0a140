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
    let activity = match body
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    {
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
    json_response(
        StatusCode::OK,
        &json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
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
    let aud = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !BOT_CONNECTOR_RESOURCES.contains(&aud) {
        return Err(format!("token audience '{aud}' is not the Bot Connector"));
    }
    Ok(())
}

/// The Bot Connector's error shape: `{"error":{"code":…,"message":…}}`.
fn connector_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({ "error": { "code": code, "message": message } }),
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::testkit::{demo_token, post_form, post_json, secret_form_with};
    use crate::{ChannelTokenClaims, DEMO_TENANT_ID, Route, Sandbox};

    fn activities_url(sandbox: &Sandbox, suffix: &str) -> String {
        format!(
            "{}v3/conversations/a%3Aconv-1/activities{suffix}",
            sandbox.connector_url()
        )
    }

    #[tokio::test]
    async fn accepts_sandbox_tokens_and_records_activities() {
        let sandbox = Sandbox::start().await.unwrap();
        assert_eq!(sandbox.connector_url(), format!("{}/", sandbox.url()));
        let token = demo_token(&sandbox).await;
        let activity = json!({"type": "message", "text": "hello"});
        for suffix in ["", "/act-1"] {
            let reply = post_json(
                &activities_url(&sandbox, suffix),
                &activity.to_string(),
                Some(&token),
            )
            .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            assert!(uuid::Uuid::parse_str(reply.json()["id"].as_str().unwrap()).is_ok());
        }
        assert_eq!(
            sandbox.connector_activities(),
            vec![activity.clone(), activity]
        );
        assert_eq!(sandbox.count(Route::Connector), 2);
    }

    #[tokio::test]
    async fn rejects_everything_else() {
        let sandbox = Sandbox::builder()
            .accept_resource("api://other")
            .start()
            .await
            .unwrap();
        let url = activities_url(&sandbox, "");
        let body = r#"{"type":"message"}"#;
        let other_resource = {
            let reply = post_form(
                &sandbox.token_endpoint(DEMO_TENANT_ID),
                &secret_form_with("scope", Some("api://other/.default")),
                &[],
            )
            .await;
            reply.json()["access_token"].as_str().unwrap().to_owned()
        };
        let channel_token =
            sandbox.mint_channel_token(ChannelTokenClaims::new("bot", sandbox.connector_url()));
        let foreign = demo_token(&Sandbox::start().await.unwrap()).await;
        for bearer in [
            None,
            Some("garbage"),
            Some(other_resource.as_str()),
            Some(channel_token.as_str()),
            Some(foreign.as_str()),
        ] {
            let reply = post_json(&url, body, bearer).await;
            assert_eq!(reply.status, 401, "{bearer:?}: {}", reply.text);
            assert_eq!(reply.json()["error"]["code"], "Unauthorized");
            assert_eq!(reply.headers["www-authenticate"], "Bearer");
        }
        let token = demo_token(&sandbox).await;
        let reply = post_json(&url, "{not json", Some(&token)).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["error"]["code"], "BadArgument");
        assert!(sandbox.connector_activities().is_empty());
    }
}
