//! What the console shows of a Token Service request (docs/user-sign-in.md): the operation, the
//! connection and channel, the status and a short outcome.
//!
//! The user sign-in flow is made of bearer values: the user token, the magic code (it releases
//! the token), `state` (it names the conversation a sign-in is completed into), the sign-in link
//! and its id (following it signs the user in), the SAS URL, and the Teams SSO token in the
//! exchange body. Issue #15 keeps them out of every log; here they are named as present
//! (`code: [redacted]`), never copied, so the event cannot carry them even before the scrub.

use std::collections::HashMap;

use base64::Engine as _;
use serde_json::Value;

use super::event::{EventKind, Hub, SignInFor};
use super::redact::REDACTED;

/// One Token Service request and its answer, as [`super::capture`] saw them.
pub(super) struct Exchange<'a> {
    pub(super) method: String,
    pub(super) path: String,
    pub(super) query: Option<&'a str>,
    pub(super) body: &'a [u8],
    pub(super) status: u16,
    pub(super) injected: bool,
    /// The answer as JSON (`Null` when it is not).
    pub(super) answer: &'a Value,
    /// The answer as sent (the sign-in URL may be text/plain).
    pub(super) answer_bytes: &'a [u8],
}

/// The `sign_in` event of `exchange`.
pub(super) fn event(hub: &Hub, exchange: Exchange<'_>) -> EventKind {
    let query: HashMap<String, String> = exchange
        .query
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let get = |name: &str| query.get(name).filter(|v| !v.is_empty()).cloned();
    let operation_name = exchange.path.rsplit('/').next().unwrap_or_default();
    let status = exchange.status;
    let answer = exchange.answer;
    let mut withheld = Vec::new();
    let mut withhold = |what: &str| withheld.push(format!("{what}: {REDACTED}"));
    for name in ["code", "state", "id"] {
        if get(name).is_some() {
            withhold(match name {
                "id" => "sign-in link id",
                other => other,
            });
        }
    }
    let mut from = "bot";
    let mut connection = get("connectionName");
    let mut channel = get("channelId");
    let refused = || -> String {
        if exchange.injected {
            return format!("injected HTTP {status}");
        }
        answer
            .pointer("/error/message")
            .and_then(Value::as_str)
            .map_or_else(|| format!("HTTP {status}"), str::to_owned)
    };
    let ok = (200..300).contains(&status);
    let (operation, outcome) = match operation_name {
        "GetToken" => {
            let with_code = get("code").is_some();
            let outcome = match (status, with_code) {
                (200, true) => "token released for the magic code".to_owned(),
                (200, false) => "token returned (signed in already)".to_owned(),
                (404, true) => "no token: the magic code was not accepted".to_owned(),
                (404, false) => "no token".to_owned(),
                _ => refused(),
            };
            ("GetToken", outcome)
        }
        "exchange" => {
            let request = serde_json::from_slice::<Value>(exchange.body).unwrap_or(Value::Null);
            let sso = request.get("token").is_some();
            if sso {
                withhold("SSO token");
            } else if !exchange.body.is_empty() {
                withhold("exchange body");
            }
            let consent = answer
                .pointer("/error/message")
                .and_then(Value::as_str)
                .is_some_and(|m| m.contains("AADSTS65001") || m.contains("consent"));
            let outcome = match status {
                200 if sso => "Teams SSO exchange → token".to_owned(),
                200 => "exchange → token".to_owned(),
                400 if consent && !exchange.injected => "exchange: consent required".to_owned(),
                404 => "exchange: no token".to_owned(),
                _ => format!("exchange refused: {}", refused()),
            };
            ("exchange", outcome)
        }
        "GetAadTokens" => {
            let outcome = match (status, answer.as_object()) {
                (200, Some(tokens)) if tokens.is_empty() => "no token (not signed in)".to_owned(),
                (200, Some(tokens)) => format!("{} token(s)", tokens.len()),
                _ => refused(),
            };
            ("GetAadTokens", outcome)
        }
        "SignOut" => (
            "SignOut",
            if ok {
                "signed out".to_owned()
            } else {
                refused()
            },
        ),
        "GetTokenStatus" => {
            let outcome = match answer.as_array() {
                Some(list) if ok => list
                    .iter()
                    .map(|entry| {
                        let name = entry["connectionName"].as_str().unwrap_or("?");
                        let has = if entry["hasToken"] == true {
                            "token"
                        } else {
                            "no token"
                        };
                        format!("{name}: {has}")
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => refused(),
            };
            let outcome = if outcome.is_empty() {
                "no connection".to_owned()
            } else {
                outcome
            };
            ("GetTokenStatus", outcome)
        }
        "GetSignInResource" | "GetSignInUrl" => {
            let issued_for = get("state").map(|s| state_target(&s)).unwrap_or_default();
            connection = issued_for.0.clone();
            channel = issued_for.1.clone();
            let link = answer
                .get("signInLink")
                .and_then(Value::as_str)
                .or_else(|| answer.as_str())
                .map(str::to_owned)
                .or_else(|| {
                    (ok && answer.is_null())
                        .then(|| String::from_utf8_lossy(exchange.answer_bytes).into_owned())
                });
            if let Some(link) = link.filter(|_| ok) {
                withhold("sign-in link");
                if let Some(id) = link_id(&link) {
                    hub.sign_in_link(&id, issued_for);
                }
            }
            if answer.pointer("/tokenPostResource/sasUrl").is_some() {
                withhold("SAS URL");
            }
            let outcome = if ok {
                if answer.get("tokenExchangeResource").is_some() {
                    "sign-in link and token exchange resource issued".to_owned()
                } else {
                    "sign-in link issued".to_owned()
                }
            } else {
                refused()
            };
            (
                if operation_name == "GetSignInUrl" {
                    "GetSignInUrl"
                } else {
                    "GetSignInResource"
                },
                outcome,
            )
        }
        "signin" => {
            from = "user's browser";
            if let Some((c, ch)) = get("id").and_then(|id| hub.take_sign_in_link(&id)) {
                connection = c;
                channel = ch;
            }
            let outcome = match status {
                200 => {
                    withhold("magic code");
                    "signed in; the page shows the magic code".to_owned()
                }
                404 => "the sign-in link is unknown or was used already".to_owned(),
                _ => refused(),
            };
            ("sign-in page followed", outcome)
        }
        "teams-sso-token" => {
            from = "Teams client";
            let outcome = if ok {
                withhold("SSO token");
                format!(
                    "SSO token minted for api://botid-{}",
                    get("botAppId").unwrap_or_default()
                )
            } else {
                refused()
            };
            ("Teams SSO token", outcome)
        }
        _ => ("Token Service", refused()),
    };
    if answer.get("token").is_some() {
        withheld.push(format!("user token: {REDACTED}"));
    } else if operation == "GetAadTokens" && answer.as_object().is_some_and(|m| !m.is_empty()) {
        withheld.push(format!("user tokens: {REDACTED}"));
    }
    EventKind::SignIn {
        from,
        operation,
        method: exchange.method,
        path: exchange.path,
        connection,
        channel,
        user: get("userId"),
        status,
        injected: exchange.injected,
        outcome,
        withheld,
    }
}

/// The connection and channel a `state` names (standard base64 of the SDKs' JSON).
fn state_target(state: &str) -> SignInFor {
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(state)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    let text = |pointer: &str| {
        decoded
            .pointer(pointer)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    (text("/connectionName"), text("/conversation/channelId"))
}

/// The `id` of a sandbox sign-in link.
fn link_id(link: &str) -> Option<String> {
    let (_, query) = link.split_once('?')?;
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "id")
        .map(|(_, id)| id.into_owned())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn exchange<'a>(
        path: &str,
        query: Option<&'a str>,
        status: u16,
        answer: &'a Value,
    ) -> Exchange<'a> {
        Exchange {
            method: "GET".into(),
            path: path.into(),
            query,
            body: b"",
            status,
            injected: false,
            answer,
            answer_bytes: b"",
        }
    }

    #[test]
    fn a_followed_link_names_the_connection_of_its_state_and_nothing_secret() {
        let hub = Hub::default();
        let state = base64::engine::general_purpose::STANDARD.encode(
            json!({"connectionName": "graph", "conversation": {"channelId": "msteams"}})
                .to_string(),
        );
        let query = format!(
            "state={}",
            form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
        );
        let answer = json!({
            "signInLink": "http://127.0.0.1:1/api/sandbox/signin?id=abc123",
            "tokenPostResource": {"sasUrl": "http://127.0.0.1:1/api/sandbox/sas/abc123?sig=s"},
        });
        let issued = event(
            &hub,
            exchange(
                "/api/botsignin/GetSignInResource",
                Some(&query),
                200,
                &answer,
            ),
        );
        let page = event(
            &hub,
            exchange("/api/sandbox/signin", Some("id=abc123"), 200, &Value::Null),
        );
        let shown = serde_json::to_string(&[&issued, &page]).unwrap();
        assert!(
            !shown.contains("abc123") && !shown.contains(&state),
            "{shown}"
        );
        let page = serde_json::to_value(&page).unwrap();
        assert_eq!(page["connection"], "graph");
        assert_eq!(page["channel"], "msteams");
        assert_eq!(page["outcome"], "signed in; the page shows the magic code");
        assert_eq!(
            page["withheld"],
            json!(["sign-in link id: [redacted]", "magic code: [redacted]"])
        );
        // Links work once.
        assert_eq!(hub.take_sign_in_link("abc123"), None);
    }
}
