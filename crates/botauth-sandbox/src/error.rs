//! Entra ID's error response shape, built in one place for every failure the sandbox reports.

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::clock;

/// AADSTS codes the sandbox answers with (see docs/protocol.md §2 for what clients make of them).
pub(crate) mod code {
    pub(crate) const TENANT_NOT_FOUND: u32 = 90002;
    pub(crate) const CONFLICTING_PARAMETERS: u32 = 90014;
    pub(crate) const INVALID_PARAMETER: u32 = 90100;
    pub(crate) const MISSING_PARAMETER: u32 = 900_144;
    pub(crate) const UNSUPPORTED_GRANT_TYPE: u32 = 70003;
    pub(crate) const APP_NOT_FOUND: u32 = 700_016;
    pub(crate) const INVALID_SCOPE: u32 = 1_002_012;
    pub(crate) const NO_CLIENT_CREDENTIAL: u32 = 7_000_216;
    pub(crate) const INVALID_SECRET: u32 = 7_000_215;
    pub(crate) const INVALID_JWT: u32 = 50027;
    pub(crate) const CERTIFICATE_NOT_FOUND: u32 = 700_027;
    pub(crate) const INVALID_SIGNATURE: u32 = 7_000_274;
    pub(crate) const CERTIFICATE_EXPIRED: u32 = 1_000_502;
    pub(crate) const WRONG_ISSUER: u32 = 700_021;
    pub(crate) const WRONG_AUDIENCE: u32 = 700_023;
    pub(crate) const OUTSIDE_TIME_WINDOW: u32 = 700_024;
    pub(crate) const JTI_REPLAY: u32 = 700_025;
    pub(crate) const NO_FEDERATED_MATCH: u32 = 70021;
    pub(crate) const FEDERATED_ISSUER: u32 = 700_211;
    pub(crate) const FEDERATED_AUDIENCE: u32 = 700_212;
    pub(crate) const FEDERATED_SUBJECT: u32 = 700_213;
    pub(crate) const FEDERATED_LIFETIME: u32 = 70023;
    pub(crate) const THROTTLED: u32 = 50196;
    pub(crate) const UNAVAILABLE: u32 = 90033;
}

/// An Entra-style failure: HTTP status, OAuth `error`, AADSTS code and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntraError {
    status: StatusCode,
    error: &'static str,
    code: u32,
    message: String,
}

impl EntraError {
    pub(crate) fn new(
        status: StatusCode,
        error: &'static str,
        code: u32,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`.
    pub(crate) fn invalid_request(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", code, message)
    }

    /// 401 `invalid_client`.
    pub(crate) fn invalid_client(code: u32, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", code, message)
    }

    /// A generic error body for `status` (injected faults, unknown endpoints).
    pub(crate) fn for_status(status: StatusCode, message: impl Into<String>) -> Self {
        let (error, code) = match status.as_u16() {
            401 => ("invalid_client", code::NO_CLIENT_CREDENTIAL),
            429 => ("temporarily_unavailable", code::THROTTLED),
            500..=599 => ("temporarily_unavailable", code::UNAVAILABLE),
            _ => ("invalid_request", code::INVALID_PARAMETER),
        };
        Self::new(status, error, code, message)
    }

    /// The response, with `correlation_id` taken from the request's `client-request-id` when present.
    pub(crate) fn into_response(self, request_headers: &HeaderMap) -> Response {
        let trace_id = uuid::Uuid::new_v4().to_string();
        let correlation_id =
            client_request_id(request_headers).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        let timestamp = clock::entra_timestamp(clock::unix_now());
        let description = format!(
            "AADSTS{}: {}\r\nTrace ID: {trace_id}\r\nCorrelation ID: {correlation_id}\r\nTimestamp: {timestamp}",
            self.code, self.message
        );
        let body = json!({
            "error": self.error,
            "error_description": description,
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={}", self.code),
        });
        json_response(self.status, &body)
    }
}

/// A JSON response with Entra's content type.
pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    raw_response(status, "application/json; charset=utf-8", body.to_string())
}

pub(crate) fn raw_response(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response {
    (
        status,
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        body,
    )
        .into_response()
}

/// The request's `client-request-id`, if it is a short printable value.
pub(crate) fn client_request_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_owned)
}
