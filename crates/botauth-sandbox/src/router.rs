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
        .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
        .route("/{tenant}/oauth2/token", post(entra::token_v1))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(entra::metadata),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            get(entra::metadata_v1),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(entra::jwks))
        .route("/{tenant}/discovery/keys", get(entra::jwks))
        .route("/common/discovery/instance", get(entra::instance_discovery))
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
