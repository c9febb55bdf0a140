//! The sandbox as the Bot Service's sender (docs/protocol.md §1, inbound): a Teams activity, the channel
//! token for it, and its delivery to a bot's `/api/messages` on loopback.

use std::error::Error as _;
use std::io;
use std::time::{Duration, SystemTime};

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, USER_AGENT, WWW_AUTHENTICATE};
use serde_json::{Value, json};

use crate::botservice::keys::ChannelTokenClaims;
use crate::delivery::Delivery;
use crate::{DEMO_TENANT_ID, Sandbox, clock};

/// The conversation of [`Sandbox::channel_activity`]: a Teams personal (one-to-one) chat id. Its
/// `:` must be percent-encoded, or at least survive, on the way back to the Bot Connector.
pub const DEMO_CONVERSATION_ID: &str = "a:1pV8KZ0eRh2Ld-sandbox_personal_chat-3Qy7Tb9Wm4Xc";

/// The sender of [`Sandbox::channel_activity`]: a Teams user id (`29:` prefix).
pub const DEMO_USER_ID: &str = "29:1AbCdEfGhSandboxUser-0123456789_KlMnOpQrStUv";

/// The user's Entra object id (`from.aadObjectId`).
const DEMO_USER_OBJECT_ID: &str = "55555555-0000-4000-8000-0000000000a1";

/// How long [`Sandbox::deliver_activity`] waits for the bot's whole answer.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a bot's answer [`Sandbox::deliver_activity`] reads.
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The Bot Service's `User-Agent` on activity deliveries.
const BOT_SERVICE_USER_AGENT: &str = "Microsoft-SkypeBotApi (Microsoft-BotFramework 3.0)";

impl Sandbox {
    /// A Teams message activity as the Bot Service delivers it to the bot `bot_app_id`:
    ///
    /// | field | value |
    /// |---|---|
    /// | `type` | `"message"` |
    /// | `id` | a fresh UUID |
    /// | `timestamp` | now, RFC 3339 UTC with milliseconds (`2024-05-01T12:34:56.789Z`) |
    /// | `localTimestamp` | the same instant (the sandbox's user lives in UTC) |
    /// | `serviceUrl` | [`Sandbox::connector_url`]: replies go to this sandbox's Bot Connector |
    /// | `channelId` | `"msteams"` |
    /// | `from` | `{id: DEMO_USER_ID ("29:…"), name: "Sandbox User", aadObjectId}` |
    /// | `recipient` | `{id: "28:{bot_app_id}", name: "Sandbox Bot"}` |
    /// | `conversation` | `{id: DEMO_CONVERSATION_ID ("a:…"), conversationType: "personal", tenantId: DEMO_TENANT_ID}` |
    /// | `textFormat` | `"plain"` |
    /// | `text` | `text` |
    /// | `locale` | `"en-US"` |
    /// | `channelData` | `{tenant: {id: DEMO_TENANT_ID}}`, as Teams sends it |
    ///
    /// See [`DEMO_USER_ID`], [`DEMO_CONVERSATION_ID`] and [`DEMO_TENANT_ID`].
    pub fn channel_activity(&self, bot_app_id: &str, text: &str) -> Value {
        let now = clock::rfc3339_millis(SystemTime::now());
        json!({
            "type": "message",
            "id": uuid::Uuid::new_v4().to_string(),
            "timestamp": now,
            "localTimestamp": now,
            "serviceUrl": self.connector_url(),
            "channelId": "msteams",
            "from": {
                "id": DEMO_USER_ID,
                "name": "Sandbox User",
                "aadObjectId": DEMO_USER_OBJECT_ID,
            },
            "recipient": {
                "id": format!("28:{bot_app_id}"),
                "name": "Sandbox Bot",
            },
            "conversation": {
                "id": DEMO_CONVERSATION_ID,
                "conversationType": "personal",
                "tenantId": DEMO_TENANT_ID,
            },
            "textFormat": "plain",
            "text": text,
            "locale": "en-US",
            "channelData": { "tenant": { "id": DEMO_TENANT_ID } },
        })
    }

    /// The Bot Service channel token for delivering `activity` to the bot `bot_app_id`: `aud` is
    /// `bot_app_id`, `serviceurl` the activity's `serviceUrl` (empty when it has none), signed by
    /// the current Bot Service key (see [`Sandbox::mint_channel_token`]).
    pub fn channel_token(&self, bot_app_id: &str, activity: &Value) -> String {
        let service_url = activity
            .get("serviceUrl")
            .and_then(Value::as_str)
            .unwrap_or_default();
        self.mint_channel_token(ChannelTokenClaims::new(bot_app_id, service_url))
    }

    /// POSTs `activity` as JSON to a bot's endpoint (e.g. `http://127.0.0.1:3978/api/messages`),
    /// with `Authorization: Bearer {bearer}` when given, as the Bot Service does, and returns the
    /// bot's answer. Redirects are not followed and no proxy is used; the whole exchange must end
    /// within 30 s.
    ///
    /// Errors: [`io::ErrorKind::InvalidInput`] for an endpoint that is not an `http(s)` URL on a
    /// loopback host (`127.0.0.0/8`, `[::1]`, `localhost`: the sandbox only talks to its own
    /// machine) or a bearer that cannot be a header value; the transport's kind (e.g.
    /// [`io::ErrorKind::ConnectionRefused`], [`io::ErrorKind::TimedOut`]) when the bot cannot be
    /// reached; [`io::ErrorKind::InvalidData`] for an answer over 1 MiB.
    pub async fn deliver_activity(
        &self,
        bot_endpoint: &str,
        activity: &Value,
        bearer: Option<&str>,
    ) -> io::Result<Delivery> {
        let url = loopback_endpoint(bot_endpoint)?;
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| io::Error::other(format!("could not build an HTTP client: {e}")))?;
        let mut request = client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(USER_AGENT, BOT_SERVICE_USER_AGENT)
            .body(activity.to_string());
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the bearer token cannot be sent in an Authorization header",
                )
            })?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let mut response = request
            .send()
            .await
            .map_err(|e| transport_error(bot_endpoint, e))?;
        let status = response.status().as_u16();
        let www_authenticate = response
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| transport_error(bot_endpoint, e))?
        {
            if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!(
                        "the answer from {bot_endpoint} is larger than {MAX_ANSWER_BYTES} bytes"
                    ),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        tracing::debug!(endpoint = %bot_endpoint, status, "botauth sandbox delivered an activity");
        Ok(Delivery {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
            www_authenticate,
        })
    }
}

/// Parses a bot endpoint, refusing anything but `http(s)` on a loopback host.
fn loopback_endpoint(endpoint: &str) -> io::Result<reqwest::Url> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
    let url = reqwest::Url::parse(endpoint)
        .map_err(|e| invalid(format!("bot endpoint '{endpoint}' is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "bot endpoint '{endpoint}' is not an http or https URL"
        )));
    }
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        None => false,
    };
    if !loopback {
        return Err(invalid(format!(
            "bot endpoint '{endpoint}' is not on a loopback host; the sandbox only delivers to 127.0.0.1, [::1] or localhost"
        )));
    }
    Ok(url)
}

/// An io::Error for a failed exchange: the kind of the underlying I/O error where there is one,
/// and the whole cause chain in the message (reqwest's top-level text alone says little).
fn transport_error(endpoint: &str, error: reqwest::Error) -> io::Error {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut message = format!("could not deliver the activity to {endpoint}: {error}");
    let mut kind = None;
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        if let Some(io) = cause.downcast_ref::<io::Error>() {
            kind = kind.or(Some(io.kind()));
        }
        source = cause.source();
    }
    let kind = match kind {
        _ if timed_out => io::ErrorKind::TimedOut,
        Some(kind) => kind,
        None => io::ErrorKind::Other,
    };
    io::Error::new(kind, message)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::extract::Request;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::Response;

    use super::*;
    use crate::testkit::{get, verify_with_jwks};

    const BOT_APP_ID: &str = "77777777-0000-4000-8000-00000000b07c";

    /// One request as the test bot saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        headers: HeaderMap,
        body: Vec<u8>,
    }

    /// A bot on 127.0.0.1 that records requests. It answers `/redirect` with a 307, a request
    /// without `Authorization` with a 401 challenge, and anything else with 200.
    async fn test_bot() -> (String, Arc<Mutex<Vec<Seen>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let app = Router::new().fallback(move |request: Request| {
            let log = Arc::clone(&log);
            async move {
                let (parts, body) = request.into_parts();
                let body = to_bytes(body, usize::MAX).await.unwrap().to_vec();
                let authorized = parts.headers.contains_key("authorization");
                log.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    path: parts.uri.path().to_owned(),
                    headers: parts.headers,
                    body,
                });
                let builder = Response::builder();
                let builder = if parts.uri.path() == "/redirect" {
                    builder
                        .status(StatusCode::TEMPORARY_REDIRECT)
                        .header("location", "/api/messages")
                } else if authorized {
                    builder.status(StatusCode::OK)
                } else {
                    builder
                        .status(StatusCode::UNAUTHORIZED)
                        .header("www-authenticate", r#"Bearer error="invalid_token""#)
                };
                let text = if authorized {
                    r#"{"ok":true}"#
                } else {
                    "no token"
                };
                builder.body(Body::from(text)).unwrap()
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (url, seen)
    }

    fn is_rfc3339_millis_utc(s: &str) -> bool {
        let b = s.as_bytes();
        b.len() == 24
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b'T',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                23 => *c == b'Z',
                _ => c.is_ascii_digit(),
            })
    }

    #[tokio::test]
    async fn channel_activity_is_a_teams_message() {
        let sandbox = Sandbox::start().await.unwrap();
        let activity = sandbox.channel_activity(BOT_APP_ID, "hello, bot");
        let id = activity["id"].as_str().unwrap().to_owned();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
        let timestamp = activity["timestamp"].as_str().unwrap().to_owned();
        assert!(is_rfc3339_millis_utc(&timestamp), "{timestamp}");
        let mut expected = json!({
            "type": "message",
            "id": id,
            "timestamp": timestamp,
            "localTimestamp": timestamp,
            "serviceUrl": format!("{}/", sandbox.url()),
            "channelId": "msteams",
            "from": {
                "id": DEMO_USER_ID,
                "name": "Sandbox User",
                "aadObjectId": "55555555-0000-4000-8000-0000000000a1",
            },
            "recipient": { "id": format!("28:{BOT_APP_ID}"), "name": "Sandbox Bot" },
            "conversation": {
                "id": DEMO_CONVERSATION_ID,
                "conversationType": "personal",
                "tenantId": DEMO_TENANT_ID,
            },
            "textFormat": "plain",
            "text": "hello, bot",
            "locale": "en-US",
            "channelData": { "tenant": { "id": DEMO_TENANT_ID } },
        });
        assert_eq!(activity, expected);
        assert!(DEMO_CONVERSATION_ID.starts_with("a:"));
        assert!(DEMO_USER_ID.starts_with("29:"));

        let next = sandbox.channel_activity(BOT_APP_ID, "again");
        assert_ne!(next["id"], activity["id"]);
        expected["text"] = json!("again");
        expected["id"] = next["id"].clone();
        expected["timestamp"] = next["timestamp"].clone();
        expected["localTimestamp"] = next["timestamp"].clone();
        assert_eq!(next, expected);
    }

    #[tokio::test]
    async fn channel_token_verifies_against_served_jwks() {
        let sandbox = Sandbox::start().await.unwrap();
        let activity = sandbox.channel_activity(BOT_APP_ID, "hi");
        let token = sandbox.channel_token(BOT_APP_ID, &activity);
        let metadata = get(&sandbox.bot_service_metadata_url()).await.json();
        let jwks = get(metadata["jwks_uri"].as_str().unwrap()).await.json();
        let (claims, jwk) = verify_with_jwks(&token, &jwks).unwrap();
        assert_eq!(claims["iss"], "https://api.botframework.com");
        assert_eq!(claims["aud"], BOT_APP_ID);
        assert_eq!(claims["serviceurl"], sandbox.connector_url());
        assert_eq!(claims["serviceurl"], activity["serviceUrl"]);
        assert_eq!(jwk["kid"], sandbox.bot_service_kid());
        assert!(
            claims["exp"].as_i64().unwrap() > clock::unix_now(),
            "{claims}"
        );

        let elsewhere = json!({"serviceUrl": "https://smba.trafficmanager.net/teams/"});
        let token = sandbox.channel_token("other-bot", &elsewhere);
        let (claims, _) = verify_with_jwks(&token, &jwks).unwrap();
        assert_eq!(
            (claims["aud"].as_str(), claims["serviceurl"].as_str()),
            (
                Some("other-bot"),
                Some("https://smba.trafficmanager.net/teams/")
            )
        );
    }

    #[tokio::test]
    async fn delivers_the_activity_and_returns_the_answer() {
        let sandbox = Sandbox::start().await.unwrap();
        let (bot, seen) = test_bot().await;
        let endpoint = format!("{bot}/api/messages");
        let activity = sandbox.channel_activity(BOT_APP_ID, "hello");
        let token = sandbox.channel_token(BOT_APP_ID, &activity);

        let delivery = sandbox
            .deliver_activity(&endpoint, &activity, Some(&token))
            .await
            .unwrap();
        assert_eq!(
            delivery,
            Delivery {
                status: 200,
                body: r#"{"ok":true}"#.into(),
                www_authenticate: None,
            }
        );
        let delivery = sandbox
            .deliver_activity(&endpoint, &activity, None)
            .await
            .unwrap();
        assert_eq!(
            delivery,
            Delivery {
                status: 401,
                body: "no token".into(),
                www_authenticate: Some(r#"Bearer error="invalid_token""#.into()),
            }
        );

        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2);
        for request in &seen {
            assert_eq!(
                (request.method.as_str(), request.path.as_str()),
                ("POST", "/api/messages")
            );
            assert_eq!(request.headers["content-type"], "application/json");
            assert_eq!(request.headers["user-agent"], BOT_SERVICE_USER_AGENT);
            assert_eq!(
                serde_json::from_slice::<Value>(&request.body).unwrap(),
                activity
            );
        }
        assert_eq!(
            seen[0].headers["authorization"],
            format!("Bearer {token}").as_str()
        );
        assert_eq!(seen[0].headers.get_all("authorization").iter().count(), 1);
        assert!(seen[1].headers.get("authorization").is_none());
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let sandbox = Sandbox::start().await.unwrap();
        let (bot, seen) = test_bot().await;
        let activity = sandbox.channel_activity(BOT_APP_ID, "hello");
        let delivery = sandbox
            .deliver_activity(&format!("{bot}/redirect"), &activity, Some("t"))
            .await
            .unwrap();
        assert_eq!(delivery.status, 307);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn refuses_endpoints_off_loopback_and_reports_transport_failures() {
        let sandbox = Sandbox::start().await.unwrap();
        let activity = sandbox.channel_activity(BOT_APP_ID, "hello");
        for endpoint in [
            "http://example.com/api/messages",
            "https://10.0.0.1/api/messages",
            "http://127.0.0.1.example.com/api/messages",
            "http://[::2]/api/messages",
            "ftp://127.0.0.1/api/messages",
            "not a url",
            "",
        ] {
            let error = sandbox
                .deliver_activity(endpoint, &activity, None)
                .await
                .unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::InvalidInput, "{endpoint}");
            assert!(error.to_string().contains(endpoint), "{error}");
        }
        for endpoint in [
            "http://127.0.0.1/",
            "https://127.1.2.3:8443/api/messages",
            "http://[::1]:3978/api/messages",
            "http://LOCALHOST:3978/api/messages",
        ] {
            assert!(loopback_endpoint(endpoint).is_ok(), "{endpoint}");
        }

        let (bot, _) = test_bot().await;
        let error = sandbox
            .deliver_activity(&format!("{bot}/api/messages"), &activity, Some("a\nb"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(!error.to_string().contains("a\nb"), "{error}");

        // A port nobody listens on (bound, then released).
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let endpoint = format!("http://{closed}/api/messages");
        let error = sandbox
            .deliver_activity(&endpoint, &activity, Some("token"))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused, "{error}");
        assert!(
            error
                .to_string()
                .starts_with(&format!("could not deliver the activity to {endpoint}: ")),
            "{error}"
        );
    }
}
