//! The vault's control endpoint, for `botauth demo` and other processes that cannot call the
//! Rust API: `POST /keyvault/_sandbox/certificates/{name}/rotate` adds a version. It is not vault
//! traffic (served outside the observing middleware: not logged, no faults), it answers
//! thumbprints and never a key, and only loopback callers reach it.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use super::store::{KeyVaultCertificateOptions, KeyVaultContentType, unix};
use super::vault::create;
use crate::error::json_response;
use crate::state::Shared;

/// The control routes (outside the middleware: not vault traffic, like the console's).
pub(crate) fn control_routes() -> Router<Arc<Shared>> {
    Router::new().route(
        "/keyvault/_sandbox/certificates/{name}/rotate",
        post(rotate),
    )
}

/// The optional body of `POST /keyvault/_sandbox/certificates/{name}/rotate`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rotate {
    /// `not_before` = the sandbox clock's now + this (negative: in the past).
    not_before_in_secs: Option<i64>,
    /// `pem` or `pkcs12` (or the MIME types).
    content_type: Option<String>,
    /// Also replace the certificates registered on this app with the new one (the Entra side).
    app_id: Option<String>,
}

fn control_error(status: StatusCode, code: &'static str, message: impl Into<String>) -> Response {
    json_response(
        status,
        &json!({"error": {"code": code, "message": message.into()}}),
    )
}

/// The control endpoint changes the vault, so a web page must not reach it: a loopback `Host`
/// (a DNS-rebinding page has its own host name there) and no foreign `Origin`.
fn refuse_remote(headers: &HeaderMap) -> Option<Response> {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let host_ok = header(HOST).is_some_and(crate::console::is_loopback_host);
    let origin_ok = header(ORIGIN).is_none_or(|origin| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .is_some_and(crate::console::is_loopback_host)
    });
    (!(host_ok && origin_ok)).then(|| {
        control_error(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "sandbox: the control endpoint answers only loopback callers.",
        )
    })
}

/// `POST /keyvault/_sandbox/certificates/{name}/rotate`: a new version (created if need be),
/// answered as `{name, version, sha1_thumbprint, not_before, not_after}`; never its key.
async fn rotate(
    State(shared): State<Arc<Shared>>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Some(refusal) = refuse_remote(&headers) {
        return refusal;
    }
    let bad = |message: String| control_error(StatusCode::BAD_REQUEST, "BadParameter", message);
    let Ok(Path(name)) = path else {
        return bad("The request URI contains an invalid name.".into());
    };
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        Rotate::default()
    } else {
        if !crate::console::http::is_json(&headers) {
            return bad("sandbox: send the body as Content-Type: application/json.".into());
        }
        match serde_json::from_slice::<Rotate>(&body) {
            Ok(request) => request,
            Err(error) => {
                return bad(format!(
                    "sandbox: the body is not a rotate request: {error}"
                ));
            }
        }
    };
    let mut options = KeyVaultCertificateOptions::default();
    if let Some(kind) = &request.content_type {
        options.content_type = match kind.to_ascii_lowercase().as_str() {
            "pem" => KeyVaultContentType::Pem,
            "pkcs12" | "pfx" => KeyVaultContentType::Pkcs12,
            other => match KeyVaultContentType::from_mime(other) {
                Some(t) => t,
                None => return bad(format!("content_type: '{kind}' is not pem or pkcs12.")),
            },
        };
    }
    if let Some(offset) = request.not_before_in_secs {
        let now = shared.lock().mi.now();
        let delta = Duration::from_secs(offset.unsigned_abs());
        let at = if offset >= 0 {
            now.checked_add(delta)
        } else {
            now.checked_sub(delta)
        };
        options.not_before = Some(at.unwrap_or(UNIX_EPOCH));
    }
    if let Some(app) = &request.app_id {
        if !shared.lock().apps.contains_key(&app.to_ascii_lowercase()) {
            return control_error(
                StatusCode::NOT_FOUND,
                "NotFound",
                format!("sandbox: no app '{app}' is registered."),
            );
        }
    }
    let creator = Arc::clone(&shared);
    // RSA key generation is CPU-bound: off the async workers.
    let created = tokio::task::spawn_blocking(move || create(&creator, &name, &options)).await;
    let version = match created {
        Ok(Ok(version)) => version,
        Ok(Err(message)) => return bad(message),
        Err(error) => {
            return control_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                format!("sandbox: key generation failed: {error}"),
            );
        }
    };
    if let Some(app) = &request.app_id {
        shared
            .lock()
            .replace_app_certificates(app, vec![version.certificate_der.clone()]);
    }
    tracing::debug!(
        name = %version.name,
        version = %version.version,
        thumbprint = %version.sha1_thumbprint,
        "botauth sandbox rotated a Key Vault certificate"
    );
    json_response(
        StatusCode::OK,
        &json!({
            "name": version.name,
            "version": version.version,
            "sha1_thumbprint": version.sha1_thumbprint,
            "not_before": unix(version.not_before),
            "not_after": unix(version.not_after),
        }),
    )
}
