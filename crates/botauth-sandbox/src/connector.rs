//! A minimal Bot Connector (docs/protocol.md §1, outbound): accepts activities sent with a token this
//! sandbox issued, from the Entra token endpoint or a managed identity endpoint, for a resource
//! the sandbox accepts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};

use crate::error::json_response;
use crate::log::ConnectorPost;
use crate::managed_identity;
use crate::state::Shared;

/// Who sent a request, as its bearer token says.
struct Caller {
    app_id: String,
    audience: String,
}

/// `POST /v3/conversations/{conversationId}/activities[/{activityId}]`.
pub(crate) async fn post_activity(
    State(shared): State<Arc<Shared>>,
    ids: Result<Path<HashMap<String, String>>, PathRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let caller = match authorize(&shared, &headers) {
        Ok(caller) => caller,
        Err(reason) => {
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
    };
    // axum percent-decodes the segments; one that decodes to invalid UTF-8 is a rejection.
    let Ok(Path(mut ids)) = ids else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            "The conversation and activity ids must be percent-encoded UTF-8.",
        );
    };
    let Some(conversation_id) = ids.remove("conversation") else {
        return connector_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            "The request names no conversation.",
        );
    };
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
    shared.lock().posts.push(ConnectorPost {
        conversation_id,
        reply_to_id: ids.remove("activity"),
        activity,
        app_id: caller.app_id,
        audience: caller.audience,
    });
    json_response(
        StatusCode::OK,
        &json!({ "id": uuid::Uuid::new_v4().to_string() }),
    )
}

fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<Caller, String> {
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
    // A bot that is itself a managed identity sends the token its managed identity endpoint
    // issued; any other bot sends one from the token endpoint (docs/protocol.md §2, §4).
    let claims = shared.verify_access_token(token).or_else(|entra| {
        managed_identity::endpoints::verify(shared, token).map_err(|mi| {
            format!("not a token this sandbox issued ({entra} with the Entra key, {mi} with the managed identity key)")
        })
    })?;
    if shared.console.is_expired(&claims) {
        return Err("token has expired (sandbox: expired from the console)".into());
    }
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    let audience = claim("aud").unwrap_or_default();
    // Bot Connector resources, plus whatever the sandbox was told to accept: a skill's reply
    // carries the calling bot's app id as its audience.
    if !shared.lock().resources.iter().any(|r| r == audience) {
        return Err(format!(
            "token audience '{audience}' is not a resource this sandbox accepts"
        ));
    }
    // v1 tokens name the caller in `appid`, v2 tokens in `azp` (docs/protocol.md §6 rule 8).
    let app_id = claim("appid")
        .or_else(|| claim("azp"))
        .ok_or("token names no caller (no appid or azp claim)")?;
    Ok(Caller {
        app_id: app_id.to_owned(),
        audience: audience.to_owned(),
    })
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
    use serde_json::{Value, json};

    use super::ConnectorPost;
    use crate::testkit::{demo_token, post_form, post_json, secret_form_with};
    use crate::{
        ChannelTokenClaims, DEMO_CLIENT_ID, DEMO_SYSTEM_MI_CLIENT_ID, DEMO_TENANT_ID, Fault, Route,
        Sandbox,
    };

    const BOT_CONNECTOR: &str = "https://api.botframework.com";
    /// A calling bot's app id, the audience of a skill's reply.
    const PARENT_BOT: &str = "66666666-0000-4000-8000-00000000b07b";

    fn activities_url(sandbox: &Sandbox, suffix: &str) -> String {
        format!(
            "{}v3/conversations/a%3Aconv-1/activities{suffix}",
            sandbox.connector_url()
        )
    }

    fn post(
        conversation_id: &str,
        reply_to_id: Option<&str>,
        activity: &Value,
        app_id: &str,
        audience: &str,
    ) -> ConnectorPost {
        ConnectorPost {
            conversation_id: conversation_id.into(),
            reply_to_id: reply_to_id.map(str::to_owned),
            activity: activity.clone(),
            app_id: app_id.into(),
            audience: audience.into(),
        }
    }

    /// A token from the sandbox's IMDS endpoint for `resource`, issued to the host's
    /// system-assigned identity.
    async fn imds_token(sandbox: &Sandbox, resource: &str) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("api-version", "2018-02-01")
            .append_pair("resource", resource)
            .finish();
        let response = reqwest::Client::new()
            .get(format!(
                "{}/metadata/identity/oauth2/token?{query}",
                sandbox.imds_host()
            ))
            .header("Metadata", "true")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn entra_token(sandbox: &Sandbox, resource: &str) -> String {
        let scope = format!("{resource}/.default");
        let reply = post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with("scope", Some(&scope)),
            &[],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["access_token"].as_str().unwrap().to_owned()
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
            sandbox
                .connector_posts()
                .into_iter()
                .map(|post| post.activity)
                .collect::<Vec<_>>(),
            vec![activity.clone(), activity.clone()]
        );
        assert_eq!(
            sandbox.connector_posts(),
            vec![
                post("a:conv-1", None, &activity, DEMO_CLIENT_ID, BOT_CONNECTOR),
                post(
                    "a:conv-1",
                    Some("act-1"),
                    &activity,
                    DEMO_CLIENT_ID,
                    BOT_CONNECTOR
                ),
            ]
        );
        assert_eq!(sandbox.count(Route::Connector), 2);
    }

    #[tokio::test]
    async fn ids_are_percent_decoded() {
        let sandbox = Sandbox::start().await.unwrap();
        let token = demo_token(&sandbox).await;
        let base = sandbox.connector_url();
        let activity = json!({"type": "message"});
        let cases = [
            ("a%3A1Xyz", None, "a:1Xyz", None),
            (
                "19%3Aabc%40thread.v2%3Bmessageid%3D42",
                Some("1%3A2f%2B%20x"),
                "19:abc@thread.v2;messageid=42",
                Some("1:2f+ x"),
            ),
            // The same ids unencoded: `: @ ; = +` are all legal in a path segment.
            (
                "19:abc@thread.v2;messageid=42",
                Some("1:2f+"),
                "19:abc@thread.v2;messageid=42",
                Some("1:2f+"),
            ),
        ];
        let mut expected = Vec::new();
        for (conversation, reply_to, decoded, decoded_reply_to) in cases {
            let url = match reply_to {
                Some(id) => format!("{base}v3/conversations/{conversation}/activities/{id}"),
                None => format!("{base}v3/conversations/{conversation}/activities"),
            };
            let reply = post_json(&url, &activity.to_string(), Some(&token)).await;
            assert_eq!(reply.status, 200, "{url}: {}", reply.text);
            expected.push(post(
                decoded,
                decoded_reply_to,
                &activity,
                DEMO_CLIENT_ID,
                BOT_CONNECTOR,
            ));
        }
        assert_eq!(sandbox.connector_posts(), expected);

        // A segment that decodes to invalid UTF-8 is refused, not recorded.
        let reply = post_json(
            &format!("{base}v3/conversations/a%FF/activities"),
            &activity.to_string(),
            Some(&token),
        )
        .await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.json()["error"]["code"], "BadArgument");
        assert_eq!(sandbox.connector_posts().len(), 3);
    }

    #[tokio::test]
    async fn accepts_managed_identity_and_accepted_resource_tokens() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.accept_resource(PARENT_BOT);
        let url = activities_url(&sandbox, "/act-9");
        let activity = json!({"type": "message", "text": "from a managed identity"});
        let cases = [
            // The bot is the host's managed identity and asks IMDS for a Bot Connector token.
            (
                imds_token(&sandbox, BOT_CONNECTOR).await,
                DEMO_SYSTEM_MI_CLIENT_ID,
                BOT_CONNECTOR,
            ),
            // A skill replying to its parent bot: the audience is the parent's app id.
            (
                entra_token(&sandbox, PARENT_BOT).await,
                DEMO_CLIENT_ID,
                PARENT_BOT,
            ),
            (
                imds_token(&sandbox, PARENT_BOT).await,
                DEMO_SYSTEM_MI_CLIENT_ID,
                PARENT_BOT,
            ),
            (
                entra_token(&sandbox, "https://api.botframework.us").await,
                DEMO_CLIENT_ID,
                "https://api.botframework.us",
            ),
        ];
        let mut expected = Vec::new();
        for (token, app_id, audience) in &cases {
            let reply = post_json(&url, &activity.to_string(), Some(token)).await;
            assert_eq!(reply.status, 200, "{app_id} {audience}: {}", reply.text);
            expected.push(post("a:conv-1", Some("act-9"), &activity, app_id, audience));
        }
        assert_eq!(sandbox.connector_posts(), expected);
    }

    #[tokio::test]
    async fn v2_tokens_name_the_caller_in_azp() {
        let sandbox = Sandbox::start().await.unwrap();
        let now = crate::clock::unix_now();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": sandbox.entra_kid()});
        let mut claims = json!({
            "aud": BOT_CONNECTOR, "azp": "v2-caller", "ver": "2.0", "iat": now, "exp": now + 600,
        });
        let token = sandbox.sign_with_entra_key(&header, &claims);
        let body = r#"{"type":"message"}"#;
        let reply = post_json(&activities_url(&sandbox, ""), body, Some(&token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(sandbox.connector_posts()[0].app_id, "v2-caller");

        // Neither appid nor azp: nobody to record.
        claims.as_object_mut().unwrap().remove("azp");
        let token = sandbox.sign_with_entra_key(&header, &claims);
        let reply = post_json(&activities_url(&sandbox, ""), body, Some(&token)).await;
        assert_eq!(reply.status, 401, "{}", reply.text);
        assert_eq!(sandbox.connector_posts().len(), 1);
    }

    #[tokio::test]
    async fn rejects_everything_else() {
        let sandbox = Sandbox::start().await.unwrap();
        let url = activities_url(&sandbox, "");
        let body = r#"{"type":"message"}"#;
        let now = crate::clock::unix_now();
        // Signed by the sandbox, but for a resource it does not accept.
        let unaccepted_entra = sandbox.sign_with_entra_key(
            &json!({"alg": "RS256", "typ": "JWT", "kid": sandbox.entra_kid()}),
            &json!({"aud": "api://other", "appid": DEMO_CLIENT_ID, "iat": now, "exp": now + 600}),
        );
        let unaccepted_mi = imds_token(&sandbox, "api://AzureADTokenExchange").await;
        let expired = sandbox.sign_with_entra_key(
            &json!({"alg": "RS256", "typ": "JWT", "kid": sandbox.entra_kid()}),
            &json!({"aud": BOT_CONNECTOR, "appid": DEMO_CLIENT_ID, "iat": now - 600, "exp": now - 1}),
        );
        let channel_token =
            sandbox.mint_channel_token(ChannelTokenClaims::new("bot", sandbox.connector_url()));
        let foreign = demo_token(&Sandbox::start().await.unwrap()).await;
        let token = demo_token(&sandbox).await;
        let wrong_scheme = format!("Basic {token}");
        for (bearer, scheme) in [
            (None, None),
            (Some("garbage"), None),
            (Some(unaccepted_entra.as_str()), None),
            (Some(unaccepted_mi.as_str()), None),
            (Some(expired.as_str()), None),
            (Some(channel_token.as_str()), None),
            (Some(foreign.as_str()), None),
            (None, Some(wrong_scheme.as_str())),
        ] {
            let mut request = reqwest::Client::new()
                .post(&url)
                .header("content-type", "application/json")
                .body(body);
            if let Some(token) = bearer {
                request = request.bearer_auth(token);
            }
            if let Some(value) = scheme {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 401, "{bearer:?} {scheme:?}");
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let reply: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
            assert_eq!(reply["error"]["code"], "Unauthorized");
        }
        let reply = post_json(&url, "{not json", Some(&token)).await;
        assert_eq!(reply.status, 400);
        assert_eq!(reply.json()["error"]["code"], "BadArgument");
        let reply = post_json(&url, "[1]", Some(&token)).await;
        assert_eq!(reply.status, 400);
        assert!(sandbox.connector_posts().is_empty());
        assert!(sandbox.connector_posts().is_empty());
    }

    #[tokio::test]
    async fn injected_faults_come_back_exactly_and_are_not_recorded() {
        let sandbox = Sandbox::start().await.unwrap();
        let token = demo_token(&sandbox).await;
        let url = activities_url(&sandbox, "/act-1");
        let body = r#"{"type":"message","text":"hi"}"#;
        let bad_syntax = r#"{"error":{"code":"BadSyntax","message":"Incorrect conversation creation parameters"}}"#;
        sandbox.inject(
            Route::Connector,
            Fault::Status {
                status: 429,
                body: None,
                retry_after: Some("1".into()),
            },
        );
        sandbox.inject(Route::Connector, Fault::status(503));
        sandbox.inject(
            Route::Connector,
            Fault::Status {
                status: 400,
                body: Some(bad_syntax.into()),
                retry_after: None,
            },
        );

        let throttled = post_json(&url, body, Some(&token)).await;
        assert_eq!(throttled.status, 429, "{}", throttled.text);
        assert_eq!(throttled.headers["retry-after"], "1");

        let unavailable = post_json(&url, body, Some(&token)).await;
        assert_eq!(unavailable.status, 503, "{}", unavailable.text);
        assert!(unavailable.headers.get("retry-after").is_none());

        let bad = post_json(&url, body, Some(&token)).await;
        assert_eq!(bad.status, 400);
        assert_eq!(bad.text, bad_syntax);
        assert_eq!(
            bad.headers["content-type"],
            "application/json; charset=utf-8"
        );

        assert!(sandbox.connector_posts().is_empty());
        let ok = post_json(&url, body, Some(&token)).await;
        assert_eq!(ok.status, 200, "{}", ok.text);
        assert_eq!(
            sandbox.connector_posts(),
            vec![post(
                "a:conv-1",
                Some("act-1"),
                &serde_json::from_str(body).unwrap(),
                DEMO_CLIENT_ID,
                BOT_CONNECTOR
            )]
        );
        let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
        assert_eq!(statuses[statuses.len() - 4..], [429, 503, 400, 200]);
        assert_eq!(sandbox.count(Route::Connector), 4);
    }
}
