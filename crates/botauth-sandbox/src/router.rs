//! The router: every endpoint's route, and the middleware that observes each request (faults,
//! `client-request-id`, the console, the request log).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};

use crate::error::{EntraError, client_request_id, raw_response};
use crate::faults::{Fault, MALFORMED_BODY, PendingFault};
use crate::log::{FormInfo, RequestRecord, Route};
use crate::state::Shared;
use crate::{botservice, connector, entra, key_vault, managed_identity, token_service};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token::token))
        .route("/{tenant}/oauth2/token", post(entra::token::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::discovery::metadata),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra::discovery::metadata_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::discovery::jwks))
        .route("/{tenant}/discovery/keys", get(entra::discovery::jwks))
        .route(
            "/common/discovery/instance",
            get(entra::discovery::instance_discovery),
        )
        .route(
            "/botservice/v1/.well-known/openidconfiguration",
            get(botservice::endpoints::metadata),
        )
        .route(
            "/botservice/v1/.well-known/keys",
            get(botservice::endpoints::jwks),
        )
        .route(
            "/v3/conversations/{conversation}/activities",
            post(connector::post_activity),
        )
        .route(
            "/v3/conversations/{conversation}/activities/{activity}",
            post(connector::post_activity),
        )
        .merge(managed_identity::endpoints::routes())
        .merge(token_service::routes())
        .merge(key_vault::rest::routes())
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(Arc::clone(&shared), observe))
        // The console's own page and stream, and the Key Vault's control endpoint, are not
        // sandbox traffic: outside `observe`.
        .merge(crate::console::router())
        .merge(key_vault::control::control_routes())
        .with_state(shared)
}

async fn not_found(headers: HeaderMap) -> Response {
    EntraError::for_status(StatusCode::NOT_FOUND, "sandbox: no such endpoint.")
        .into_response(&headers)
}

/// Applies injected faults, echoes `client-request-id`, and logs every request.
async fn observe(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let route = Route::classify(request.uri().path());
    let (mut request, capture) = match crate::console::capture(&shared, route, request).await {
        Ok(captured) => captured,
        Err(response) => return response,
    };
    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let headers = request.headers().clone();
    // An open outage window answers like a queued status fault, without consuming one.
    let fault = {
        let mut inner = shared.lock();
        match inner.mi.outage(route) {
            Some(status) => Some(Fault::status(status)),
            None => inner.faults.pop(route),
        }
    };

    let injected = matches!(fault, Some(Fault::Status { .. } | Fault::StatusFor { .. }));
    let mut response = match fault {
        Some(Fault::StatusFor { status, duration }) => {
            shared.lock().mi.open_outage(route, status, duration);
            status_response(&shared, route, status, None, None, &headers)
        }
        Some(Fault::Status {
            status,
            body,
            retry_after,
        }) => status_response(
            &shared,
            route,
            status,
            body,
            retry_after.as_deref(),
            &headers,
        ),
        Some(Fault::Delay(delay)) => {
            tokio::time::sleep(delay).await;
            next.run(request).await
        }
        Some(Fault::MalformedJson) => {
            let mut response = next.run(request).await;
            if response.status().is_success() {
                *response.body_mut() = Body::from(MALFORMED_BODY);
            }
            response
        }
        Some(fault) => {
            request.extensions_mut().insert(PendingFault(fault));
            next.run(request).await
        }
        None => next.run(request).await,
    };

    let client_request_id = client_request_id(&headers);
    let echo = headers
        .get("return-client-request-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if let Some(id) = client_request_id.as_deref().filter(|_| echo) {
        if let Ok(value) = HeaderValue::from_str(id) {
            response.headers_mut().insert("client-request-id", value);
        }
    }

    if let Some(capture) = capture {
        response = capture.finish(&shared, injected, response).await;
    }
    let form = response
        .extensions_mut()
        .remove::<FormInfo>()
        .unwrap_or_default();
    let record = RequestRecord {
        route,
        method,
        path,
        status: response.status().as_u16(),
        at,
        client_id: form.client_id,
        client_request_id,
        grant_type: form.grant_type,
    };
    tracing::debug!(
        method = %record.method,
        path = %record.path,
        status = record.status,
        route = ?route,
        "botauth sandbox request"
    );
    shared.lock().log.push(record);
    response
}

/// The answer to a [`Fault::Status`]. Without a body, the error shape of the route's service:
/// Key Vault's on [`Route::KeyVault`], Entra's elsewhere.
fn status_response(
    shared: &Shared,
    route: Route,
    status: u16,
    body: Option<String>,
    retry_after: Option<&str>,
    request_headers: &HeaderMap,
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match body {
        Some(body) => raw_response(status, "application/json; charset=utf-8", body),
        None if route == Route::KeyVault => key_vault::rest::injected_error(shared, status),
        None => EntraError::for_status(status, format!("sandbox: injected HTTP {status}."))
            .into_response(request_headers),
    };
    if let Some(value) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
        response.headers_mut().insert(RETRY_AFTER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::testkit::{demo_token, demo_token_reply, get, post_form, secret_form_with};
    use crate::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox};

    #[tokio::test]
    async fn status_faults_are_fifo_one_shot_with_retry_after() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.inject(
            Route::Token,
            Fault::Status {
                status: 429,
                body: None,
                retry_after: Some("7".into()),
            },
        );
        sandbox.inject_n(Route::Token, Fault::status(503), 2);
        sandbox.inject(
            Route::Token,
            Fault::Status {
                status: 500,
                body: Some("<html>oops</html>".into()),
                retry_after: None,
            },
        );

        let reply = demo_token_reply(&sandbox).await;
        reply.assert_entra_error(429, "temporarily_unavailable", 50196);
        assert_eq!(reply.headers["retry-after"], "7");
        for _ in 0..2 {
            let reply = demo_token_reply(&sandbox).await;
            reply.assert_entra_error(503, "temporarily_unavailable", 90033);
            assert!(reply.headers.get("retry-after").is_none());
        }
        let reply = demo_token_reply(&sandbox).await;
        assert_eq!(
            (reply.status, reply.text.as_str()),
            (500, "<html>oops</html>")
        );
        assert_eq!(demo_token_reply(&sandbox).await.status, 200);

        // Faults are per route, and clear_faults drops them.
        sandbox.inject(Route::EntraJwks, Fault::status(500));
        assert_eq!(demo_token_reply(&sandbox).await.status, 200);
        sandbox.clear_faults();
        assert_eq!(
            get(&format!(
                "{}/{DEMO_TENANT_ID}/discovery/v2.0/keys",
                sandbox.url()
            ))
            .await
            .status,
            200
        );
    }

    #[tokio::test]
    async fn body_faults_replace_the_success_body() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.inject(Route::Token, Fault::MalformedJson);
        let reply = demo_token_reply(&sandbox).await;
        assert_eq!(reply.status, 200);
        assert!(serde_json::from_str::<serde_json::Value>(&reply.text).is_err());

        sandbox.inject(Route::Token, Fault::TokenType("pop".into()));
        let body = demo_token_reply(&sandbox).await.json();
        assert_eq!(body["token_type"], "pop");
        assert!(body["access_token"].is_string());

        sandbox.inject(Route::Token, Fault::MissingAccessToken);
        let body = demo_token_reply(&sandbox).await.json();
        assert_eq!(body["token_type"], "Bearer");
        assert!(body.get("access_token").is_none());

        // A body fault is consumed by a failing request without changing the error.
        sandbox.inject(Route::Token, Fault::MalformedJson);
        post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with("client_secret", Some("x")),
            &[],
        )
        .await
        .assert_entra_error(401, "invalid_client", 7_000_215);
        assert_eq!(demo_token_reply(&sandbox).await.status, 200);
    }

    #[tokio::test]
    async fn delay_fault_answers_late_but_normally() {
        let sandbox = Sandbox::start().await.unwrap();
        sandbox.inject(Route::Token, Fault::Delay(Duration::from_millis(300)));
        let started = std::time::Instant::now();
        let reply = demo_token_reply(&sandbox).await;
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(reply.status, 200);
    }

    #[tokio::test]
    async fn log_counts_requests_and_holds_no_secrets() {
        let sandbox = Sandbox::start().await.unwrap();
        let token = demo_token(&sandbox).await;
        let request_id = "7d3c1c9e-2b4f-4a8e-9f3b-1a2b3c4d5e6f";
        post_form(
            &sandbox.token_endpoint(DEMO_TENANT_ID),
            &secret_form_with("client_secret", Some("wrong-secret-value")),
            &[("client-request-id", request_id)],
        )
        .await;
        get(&format!("{}/nowhere", sandbox.url()))
            .await
            .assert_entra_error(404, "invalid_request", 90100);
        get(&sandbox.bot_service_metadata_url()).await;

        let log = sandbox.requests();
        assert_eq!(log.len(), 4);
        assert_eq!(sandbox.count(Route::Token), 2);
        assert_eq!(sandbox.count(Route::Other), 1);
        assert_eq!(sandbox.count(Route::BotServiceMetadata), 1);
        assert_eq!(log[0].route, Route::Token);
        assert_eq!(log[0].method, "POST");
        assert_eq!(log[0].path, format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"));
        assert_eq!(log[0].status, 200);
        assert_eq!(log[0].client_id.as_deref(), Some(DEMO_CLIENT_ID));
        assert_eq!(log[0].grant_type.as_deref(), Some("client_credentials"));
        assert_eq!(log[1].status, 401);
        assert_eq!(log[1].client_request_id.as_deref(), Some(request_id));
        assert_eq!(log[2].status, 404);
        assert!(log.windows(2).all(|w| w[0].at <= w[1].at));

        let debug = format!("{log:?} {sandbox:?}");
        for secret in [DEMO_CLIENT_SECRET, "wrong-secret-value", token.as_str()] {
            assert!(!debug.contains(secret), "log leaks {secret}");
        }

        sandbox.clear_log();
        assert!(sandbox.requests().is_empty());
        assert_eq!(sandbox.count(Route::Token), 0);
    }
}
