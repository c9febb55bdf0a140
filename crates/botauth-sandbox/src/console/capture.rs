//! What the console learns from the requests the sandbox serves: the request body is read
//! before the handler runs (and handed on unchanged), the answer after it, and one event is
//! published per request of interest. Nothing is captured while the console is off.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes, to_bytes};
use axum::extract::Request;
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::event::{Credential, EventKind, TokenError};
use super::redact::{Decoded, REDACTED};
use super::sign_in;
use crate::log::Route;
use crate::state::Shared;

/// The largest body read for the console; axum refuses larger ones with 413 by default anyway.
const MAX_BODY: usize = 2 * 1024 * 1024;

/// The assertion type of a certificate or federated client assertion.
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A request the console will report once it is answered.
#[derive(Debug)]
pub(crate) struct Capture {
    route: Route,
    method: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    body: Bytes,
}

/// Starts capturing `request` when the console is on and the route is one it reports. Errors
/// with the answer to give when the body cannot be read.
pub(crate) async fn capture(
    shared: &Arc<Shared>,
    route: Route,
    request: Request,
) -> Result<(Request, Option<Capture>), Response> {
    if !shared.console.enabled() || describe(route).is_none() {
        return Ok((request, None));
    }
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(_) => return Err(StatusCode::PAYLOAD_TOO_LARGE.into_response()),
    };
    let capture = Capture {
        route,
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    Ok((Request::from_parts(parts, Body::from(body)), Some(capture)))
}

/// What a route is, for the console: `None` for routes it does not report.
fn describe(route: Route) -> Option<&'static str> {
    Some(match route {
        Route::Token => "Entra ID",
        Route::Imds => "IMDS",
        Route::AppService => "App Service",
        Route::AzureArc => "Azure Arc",
        Route::CloudShell => "Cloud Shell",
        Route::ServiceFabric => "Service Fabric",
        Route::AzureMl => "Azure ML",
        Route::Connector => "Bot Connector",
        Route::BotServiceMetadata => "Bot Service metadata",
        Route::BotServiceJwks => "Bot Service keys",
        Route::EntraMetadata => "Entra ID metadata",
        Route::EntraJwks => "Entra ID keys",
        Route::TokenService => "Token Service",
        Route::KeyVault => "Key Vault",
        _ => return None,
    })
}

impl Capture {
    /// Reports the answer and hands it on unchanged.
    pub(crate) async fn finish(
        self,
        shared: &Shared,
        injected: bool,
        response: Response,
    ) -> Response {
        let (parts, body) = response.into_parts();
        // The sandbox's own answers are small and in memory: reading them cannot fail.
        let bytes = to_bytes(body, MAX_BODY).await.unwrap_or_default();
        let status = parts.status.as_u16();
        let answer = serde_json::from_slice::<Value>(&bytes).unwrap_or(Value::Null);
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let what = describe(self.route).unwrap_or_default();
        let hub = &shared.console;
        match self.route {
            Route::Connector => {
                let verdict = match status {
                    200..=299 => "accepted".to_owned(),
                    _ if injected => format!("injected HTTP {status}"),
                    _ => answer
                        .pointer("/error/message")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("HTTP {status}"), str::to_owned),
                };
                let activity = serde_json::from_slice::<Value>(&self.body)
                    .ok()
                    .filter(Value::is_object);
                hub.publish(
                    &shared.secrets(),
                    &EventKind::ConnectorCall {
                        method: self.method,
                        path: self.path,
                        token: bearer(&self.headers).map(Decoded::of),
                        status,
                        injected,
                        verdict,
                        www_authenticate: header(WWW_AUTHENTICATE),
                        activity,
                    },
                );
            }
            Route::TokenService => {
                let event = sign_in::event(
                    hub,
                    sign_in::Exchange {
                        method: self.method,
                        path: self.path,
                        query: self.query.as_deref(),
                        body: &self.body,
                        status,
                        injected,
                        answer: &answer,
                        answer_bytes: &bytes,
                    },
                );
                hub.publish(&shared.secrets(), &event);
            }
            Route::KeyVault => {
                let event = key_vault_event(
                    self,
                    status,
                    injected,
                    &answer,
                    header(WWW_AUTHENTICATE),
                    header(RETRY_AFTER),
                );
                hub.publish(&shared.secrets(), &event);
            }
            Route::BotServiceMetadata
            | Route::BotServiceJwks
            | Route::EntraMetadata
            | Route::EntraJwks => {
                let kids = answer
                    .get("keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|k| k.get("kid").and_then(Value::as_str))
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default();
                hub.publish(
                    &shared.secrets(),
                    &EventKind::KeyFetch {
                        path: self.path,
                        what,
                        status,
                        injected,
                        kids,
                    },
                );
            }
            _ => {
                let request = self.token_request();
                let issued = answer
                    .get("access_token")
                    .and_then(Value::as_str)
                    .map(Decoded::of);
                if let Some(uti) = issued.as_ref().and_then(|d| d.claim_str("uti")) {
                    hub.issued(uti);
                }
                let client = request.client_id.clone().unwrap_or_else(|| what.to_owned());
                let retry_of = hub.take_failure(&client);
                let id = hub.publish(
                    &shared.secrets(),
                    &EventKind::TokenRequest {
                        method: self.method,
                        path: self.path,
                        endpoint: request.endpoint,
                        client_id: request.client_id,
                        resource: request.resource,
                        credential: request.credential,
                        status,
                        injected,
                        retry_after: header(RETRY_AFTER),
                        error: token_error(&answer),
                        issued,
                        retry_of,
                    },
                );
                if status == 429 || status >= 500 {
                    hub.note_failure(&client, id);
                }
            }
        }
        Response::from_parts(parts, Body::from(bytes))
    }

    /// The parameters of a token request: the form for Entra and Cloud Shell, the query for
    /// the other managed identity endpoints.
    fn token_request(&self) -> TokenRequest {
        let is_form = self
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.to_ascii_lowercase()
                    .starts_with("application/x-www-form-urlencoded")
            });
        let mut params: HashMap<String, String> = HashMap::new();
        let mut add = |bytes: &[u8]| {
            for (name, value) in form_urlencoded::parse(bytes) {
                params
                    .entry(name.into_owned())
                    .or_insert_with(|| value.into_owned());
            }
        };
        if let Some(query) = &self.query {
            add(query.as_bytes());
        }
        if is_form {
            add(&self.body);
        }
        let get = |name: &str| params.get(name).cloned();
        if self.route == Route::Token {
            let endpoint = if self.path.contains("/oauth2/v2.0/") {
                "Entra ID v2"
            } else {
                "Entra ID v1"
            };
            let credential = match (get("client_secret"), get("client_assertion")) {
                (Some(_), Some(_)) => Credential::Other {
                    note: "both a secret and an assertion (refused)",
                },
                (Some(secret), None) => Credential::Secret {
                    secret: REDACTED,
                    length: secret.chars().count(),
                },
                (None, Some(assertion)) => {
                    assertion_credential(&assertion, get("client_assertion_type").as_deref())
                }
                (None, None) => Credential::Other {
                    note: "no client credential",
                },
            };
            let resource = get("scope").or_else(|| get("resource"));
            return TokenRequest {
                endpoint,
                client_id: get("client_id"),
                resource,
                credential,
            };
        }
        let source = describe(self.route).unwrap_or_default();
        let identity = [
            "client_id",
            "clientid",
            "object_id",
            "msi_res_id",
            "mi_res_id",
        ]
        .iter()
        .find_map(|name| get(name).map(|value| format!("{name}={value}")));
        let secret_header = ["x-identity-header", "secret", "authorization", "metadata"]
            .iter()
            .any(|name| self.headers.contains_key(*name));
        TokenRequest {
            endpoint: source,
            client_id: None,
            resource: get("resource"),
            credential: Credential::ManagedIdentity {
                source,
                identity,
                secret_header: if secret_header {
                    "present [redacted]"
                } else {
                    "missing"
                },
            },
        }
    }
}

/// A Key Vault request as the console shows it: operation, outcome and the caller's token;
/// a secret's `value` is named as withheld, never copied.
fn key_vault_event(
    capture: Capture,
    status: u16,
    injected: bool,
    answer: &Value,
    www_authenticate: Option<String>,
    retry_after: Option<String>,
) -> EventKind {
    let segments: Vec<&str> = capture.path.split('/').filter(|s| !s.is_empty()).collect();
    let operation = match (segments.get(1).copied(), segments.get(3).copied()) {
        (Some("secrets"), Some("versions")) => "list secret versions",
        (Some("secrets"), _) => "get secret",
        (_, Some("versions")) => "list certificate versions",
        (_, Some("policy")) => "get certificate policy",
        _ => "get certificate",
    };
    let api_version = capture.query.as_deref().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(name, _)| name == "api-version")
            .map(|(_, value)| value.into_owned())
    });
    let text = |pointer: &str| answer.pointer(pointer).and_then(Value::as_str);
    let mut withheld = Vec::new();
    if let Some(value) = text("/value") {
        withheld.push(format!(
            "value: {REDACTED} ({} characters)",
            value.chars().count()
        ));
    }
    let outcome = if injected {
        format!("injected HTTP {status}")
    } else if let Some(code) = text("/error/code") {
        let message = text("/error/message").unwrap_or_default();
        let first_line = message.lines().next().unwrap_or_default();
        format!("{code}: {first_line}")
    } else if !(200..300).contains(&status) {
        format!("HTTP {status}")
    } else if let Some(items) = answer.get("value").and_then(Value::as_array) {
        let more = if text("/nextLink").is_some() {
            ", more pages"
        } else {
            ""
        };
        format!("{} versions{more}", items.len())
    } else if text("/value").is_some() {
        format!(
            "secret released ({})",
            text("/contentType").unwrap_or("no contentType")
        )
    } else if let Some(x5t) = text("/x5t") {
        let version = text("/id")
            .and_then(|id| id.rsplit('/').next())
            .unwrap_or_default();
        let disabled = if answer.pointer("/attributes/enabled") == Some(&Value::Bool(false)) {
            ", disabled"
        } else {
            ""
        };
        format!("certificate version {version} (x5t {x5t}{disabled})")
    } else if answer.is_null() {
        "answer is not JSON".to_owned()
    } else {
        format!("HTTP {status}")
    };
    EventKind::KeyVault {
        token: bearer(&capture.headers).map(Decoded::of),
        method: capture.method,
        path: capture.path,
        operation,
        api_version,
        status,
        injected,
        outcome,
        www_authenticate,
        retry_after,
        withheld,
    }
}

struct TokenRequest {
    endpoint: &'static str,
    client_id: Option<String>,
    resource: Option<String>,
    credential: Credential,
}

/// A certificate assertion names its certificate in the header (docs/sandbox.md §3); any other
/// assertion is federated.
fn assertion_credential(assertion: &str, kind: Option<&str>) -> Credential {
    let decoded = Decoded::of(assertion);
    if kind.is_some_and(|k| k != JWT_BEARER) {
        return Credential::Other {
            note: "client_assertion_type is not jwt-bearer (refused)",
        };
    }
    let certificate = ["x5t", "x5t#S256", "x5c"]
        .iter()
        .any(|name| decoded.header.get(*name).is_some());
    if certificate {
        Credential::Certificate {
            x5t: decoded.header_str("x5t").map(str::to_owned),
            x5t_s256: decoded.header_str("x5t#S256").map(str::to_owned),
            assertion: decoded,
        }
    } else {
        Credential::Federated { assertion: decoded }
    }
}

/// `Bearer <token>`'s token.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// The AADSTS code and description of an Entra error answer.
fn token_error(answer: &Value) -> Option<TokenError> {
    let error = answer.get("error")?;
    let description = answer
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| {
            d.split("\r\n")
                .next()
                .unwrap_or(d)
                .split(" Trace ID")
                .next()
                .unwrap_or(d)
                .to_owned()
        });
    let code = answer
        .get("error_codes")
        .and_then(|codes| codes.get(0))
        .map(|code| format!("AADSTS{code}"));
    Some(TokenError {
        error: error
            .as_str()
            .map(str::to_owned)
            .or_else(|| Some(error.to_string())),
        code,
        description,
    })
}
