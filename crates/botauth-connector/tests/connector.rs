//! The connector client against the sandbox's Bot Connector and Entra stand-in, over real HTTP on
//! 127.0.0.1, plus a hand-written Connector for behaviours the sandbox cannot show.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use botauth_connector::{
    Audience, Connection, ConnectorClient, ConnectorError, ConnectorErrorKind, ServiceUrlAllowList,
    ServiceUrlError, ServiceUrlErrorKind, Target, reply_activity,
};
use botauth_core::{BotAuthConfig, Clock, ErrorKind, ManualClock};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox};
use botauth_secret::ClientSecretCredential;
use botauth_token::TokenManager;
use serde_json::{Value, json};

fn config(sandbox: &Sandbox, extra: &[(&str, &str)]) -> BotAuthConfig {
    let mut vars = vec![
        ("CLIENT_ID".to_owned(), DEMO_CLIENT_ID.to_owned()),
        ("CLIENT_SECRET".to_owned(), DEMO_CLIENT_SECRET.to_owned()),
        ("TENANT_ID".to_owned(), DEMO_TENANT_ID.to_owned()),
        ("BOTAUTH_AUTHORITY_HOST".to_owned(), sandbox.url()),
        ("ALLOWED_SERVICE_URLS".to_owned(), sandbox.connector_url()),
    ];
    vars.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    BotAuthConfig::from_vars(vars).unwrap()
}

fn tokens(config: &BotAuthConfig) -> TokenManager {
    TokenManager::new(Arc::new(
        ClientSecretCredential::from_entry(config, &config.credentials[0]).unwrap(),
    ))
}

/// The Bot Service hosts plus `url`.
fn allow(url: &str) -> ServiceUrlAllowList {
    let mut list = ServiceUrlAllowList::with_defaults();
    list.allow(url).unwrap();
    list
}

async fn setup() -> (Sandbox, ConnectorClient, Arc<ManualClock>) {
    let sandbox = Sandbox::start().await.unwrap();
    let config = config(&sandbox, &[]);
    let clock = Arc::new(ManualClock::new());
    let client = ConnectorClient::builder(
        Connection::from(tokens(&config)).with_cloud(config.cloud.clone()),
    )
    .allow_list(allow(&sandbox.connector_url()))
    .settings(botauth_http::ClientSettings::new().clock(Arc::clone(&clock) as Arc<dyn Clock>))
    .build()
    .unwrap();
    (sandbox, client, clock)
}

fn incoming(sandbox: &Sandbox) -> Value {
    json!({
        "type": "message", "id": "1700000000000", "text": "hello", "channelId": "msteams",
        "serviceUrl": sandbox.connector_url(),
        "from": {"id": "29:user"}, "recipient": {"id": format!("28:{DEMO_CLIENT_ID}")},
        "conversation": {"id": "a:1Xyz;messageid=42"}
    })
}

/// A reply to the standard incoming activity that is expected to fail.
async fn reply_err(client: &ConnectorClient, sandbox: &Sandbox) -> ConnectorError {
    client
        .reply(&incoming(sandbox), json!({"type": "message"}))
        .await
        .unwrap_err()
}

#[tokio::test]
async fn replies_and_sends_with_a_token_the_connector_accepts() {
    let (sandbox, client, _) = setup().await;
    let incoming = incoming(&sandbox);
    let reply = reply_activity(&incoming, "echo: hello");
    let sent = client.reply(&incoming, reply.clone()).await.unwrap();
    assert!(sent.id.is_some());
    let sent = client
        .send(
            &Target::conversation(sandbox.connector_url(), "a:1Xyz;messageid=42"),
            &json!({"type": "message", "text": "proactive"}),
        )
        .await
        .unwrap();
    assert!(sent.id.is_some());
    let posted = sandbox.connector_posts();
    assert_eq!(posted.len(), 2);
    assert_eq!(posted[0].activity, reply);
    assert_eq!(posted[1].activity["text"], "proactive");
    // One token served both: the manager is the one cache.
    assert_eq!(sandbox.count(Route::Token), 1);
    assert_eq!(sandbox.count(Route::Connector), 2);
    // The path carries the encoded ids.
    let paths: Vec<String> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Connector)
        .map(|r| r.path)
        .collect();
    assert_eq!(
        paths,
        [
            "/v3/conversations/a%3A1Xyz%3Bmessageid%3D42/activities/1700000000000",
            "/v3/conversations/a%3A1Xyz%3Bmessageid%3D42/activities",
        ]
    );
}

#[tokio::test]
async fn from_config_uses_the_configured_allow_list() {
    let sandbox = Sandbox::start().await.unwrap();
    let config = config(&sandbox, &[]);
    let client = ConnectorClient::from_config(&config, tokens(&config)).unwrap();
    client
        .reply(
            &incoming(&sandbox),
            reply_activity(&incoming(&sandbox), "x"),
        )
        .await
        .unwrap();
    // Without the entry the sandbox is not an allowed Connector.
    let mut bare = config.clone();
    bare.allowed_service_urls.clear();
    let client = ConnectorClient::from_config(&bare, tokens(&bare)).unwrap();
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::ServiceUrl);
    // A bad entry is a configuration error naming the key.
    let mut bad = config.clone();
    bad.allowed_service_urls = vec!["http://bots.example".into()];
    let err = ConnectorClient::from_config(&bad, tokens(&config)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("allowed_service_urls"), "{err}");
}

#[tokio::test]
async fn hostile_service_urls_get_no_token() {
    let (sandbox, client, _) = setup().await;
    let activity = json!({"type": "message", "text": "x"});
    for (url, want) in [
        (
            "https://evil.example?.botframework.com/",
            ServiceUrlErrorKind::QueryOrFragment,
        ),
        (
            "https://botframework.com@evil.example/",
            ServiceUrlErrorKind::Malformed,
        ),
        (
            "https://evil.example#.botframework.com",
            ServiceUrlErrorKind::QueryOrFragment,
        ),
        ("https://evil%2eexample/", ServiceUrlErrorKind::Malformed),
        (
            "https://smba.trafficmanager.net\u{3002}evil.example/",
            ServiceUrlErrorKind::Malformed,
        ),
        (
            "https://xn--smb-8cd.trafficmanager.net/",
            ServiceUrlErrorKind::NotAllowed,
        ),
        ("https://evil.example/", ServiceUrlErrorKind::NotAllowed),
        (
            "http://smba.trafficmanager.net/",
            ServiceUrlErrorKind::NotHttps,
        ),
        // The sandbox on another port is another service.
        ("http://127.0.0.1:1/", ServiceUrlErrorKind::NotAllowed),
    ] {
        let err = client
            .send(&Target::conversation(url, "a:1"), &activity)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ConnectorErrorKind::ServiceUrl, "{url}: {err:?}");
        let source = std::error::Error::source(&err)
            .and_then(|e| e.downcast_ref::<ServiceUrlError>())
            .unwrap_or_else(|| panic!("{url}: {err:?}"));
        assert_eq!(source.kind(), want, "{url}");
        assert!(!err.is_retryable());
    }
    // Refused before a token was even requested.
    assert_eq!(sandbox.count(Route::Token), 0);
    assert!(sandbox.requests().is_empty());
}

#[tokio::test]
async fn a_401_forces_one_refresh_and_one_retry() {
    let (sandbox, client, clock) = setup().await;
    let incoming = incoming(&sandbox);
    // Warm the cache, then make the Connector refuse the cached token once.
    client
        .reply(&incoming, json!({"type": "message", "text": "1"}))
        .await
        .unwrap();
    assert_eq!(sandbox.count(Route::Token), 1);
    sandbox.inject(Route::Connector, Fault::status(401));
    client
        .reply(&incoming, json!({"type": "message", "text": "2"}))
        .await
        .unwrap();
    assert_eq!(sandbox.count(Route::Token), 2, "one forced refresh");
    assert_eq!(sandbox.count(Route::Connector), 3);
    assert_eq!(sandbox.connector_posts().len(), 2);

    // Refused twice, after the cooldown: a typed error with the status and the Connector's
    // body, and no third try.
    clock.advance(Duration::from_secs(31));
    let body = r#"{"error":{"code":"Unauthorized","message":"Authorization has been denied"}}"#;
    sandbox.inject_n(
        Route::Connector,
        Fault::Status {
            status: 401,
            body: Some(body.into()),
            retry_after: None,
        },
        2,
    );
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Unauthorized);
    assert_eq!(err.status(), Some(401));
    let got = err.body().unwrap();
    assert_eq!(got.code(), Some("Unauthorized"));
    assert_eq!(got.message(), Some("Authorization has been denied"));
    assert!(
        err.to_string()
            .contains("https://api.botframework.com/.default"),
        "{err}"
    );
    assert_eq!(sandbox.count(Route::Token), 3);
    assert_eq!(sandbox.count(Route::Connector), 5);
}

#[tokio::test]
async fn a_connector_refusing_every_token_gets_one_forced_refresh_per_cooldown() {
    let (sandbox, client, clock) = setup().await;
    sandbox.inject_n(Route::Connector, Fault::status(401), 10);
    // First reply: refused, one forced refresh, refused again.
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Unauthorized);
    assert_eq!(sandbox.count(Route::Token), 2);
    assert_eq!(sandbox.count(Route::Connector), 2);
    // Within the cooldown: refused, no new token request.
    for _ in 0..3 {
        let err = reply_err(&client, &sandbox).await;
        assert_eq!(err.kind(), ConnectorErrorKind::Unauthorized);
    }
    assert_eq!(sandbox.count(Route::Token), 2);
    assert_eq!(sandbox.count(Route::Connector), 5);
    // After it, one more forced refresh.
    clock.advance(Duration::from_secs(31));
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Unauthorized);
    assert_eq!(sandbox.count(Route::Token), 3);
    assert_eq!(sandbox.count(Route::Connector), 7);
}

#[tokio::test]
async fn a_zero_retry_after_still_backs_off() {
    let (sandbox, client, clock) = setup().await;
    let t0 = clock.now();
    sandbox.inject_n(Route::Connector, throttle(429, Some("0")), 2);
    client
        .reply(&incoming(&sandbox), json!({"type": "message"}))
        .await
        .unwrap();
    assert_eq!(
        clock.now().duration_since(t0).unwrap(),
        Duration::from_secs(3)
    );
    assert_eq!(sandbox.count(Route::Connector), 3);
}

#[tokio::test]
async fn a_403_is_not_retried() {
    let (sandbox, client, _) = setup().await;
    sandbox.inject(Route::Connector, Fault::status(403));
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Forbidden);
    assert_eq!(err.status(), Some(403));
    assert_eq!(sandbox.count(Route::Connector), 1);
    assert_eq!(sandbox.count(Route::Token), 1);
}

fn throttle(status: u16, retry_after: Option<&str>) -> Fault {
    Fault::Status {
        status,
        body: Some(r#"{"error":{"code":"Throttled","message":"slow down"}}"#.into()),
        retry_after: retry_after.map(str::to_owned),
    }
}

#[tokio::test]
async fn throttling_honours_retry_after() {
    let (sandbox, client, clock) = setup().await;
    let incoming = incoming(&sandbox);
    let t0 = clock.now();
    sandbox.inject(Route::Connector, throttle(429, Some("7")));
    sandbox.inject(Route::Connector, throttle(503, Some("2")));
    client
        .reply(&incoming, json!({"type": "message"}))
        .await
        .unwrap();
    assert_eq!(
        clock.now().duration_since(t0).unwrap(),
        Duration::from_secs(9)
    );
    assert_eq!(sandbox.count(Route::Connector), 3);
    assert_eq!(sandbox.connector_posts().len(), 1);

    // An HTTP date works too.
    let t1 = clock.now();
    let date = httpdate(clock.now() + Duration::from_secs(5));
    sandbox.inject(Route::Connector, throttle(429, Some(&date)));
    client
        .reply(&incoming, json!({"type": "message"}))
        .await
        .unwrap();
    let waited = clock.now().duration_since(t1).unwrap();
    assert!(
        waited >= Duration::from_secs(4) && waited <= Duration::from_secs(5),
        "{waited:?}"
    );
}

fn httpdate(at: SystemTime) -> String {
    httpdate::fmt_http_date(at)
}

#[tokio::test]
async fn throttling_without_retry_after_backs_off_then_gives_up() {
    let (sandbox, client, clock) = setup().await;
    let t0 = clock.now();
    sandbox.inject_n(Route::Connector, throttle(503, None), 4);
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Throttled);
    assert_eq!(err.status(), Some(503));
    assert!(err.is_retryable());
    assert_eq!(err.body().unwrap().code(), Some("Throttled"));
    assert_eq!(err.retry_after(), None);
    assert!(err.to_string().contains("after 3 retries;"), "{err}");
    // 1 + 2 + 4 seconds between four attempts.
    assert_eq!(
        clock.now().duration_since(t0).unwrap(),
        Duration::from_secs(7)
    );
    assert_eq!(sandbox.count(Route::Connector), 4);
    assert!(sandbox.connector_posts().is_empty());
}

#[tokio::test]
async fn a_long_retry_after_is_handed_back_at_once() {
    let (sandbox, client, clock) = setup().await;
    let t0 = clock.now();
    sandbox.inject(Route::Connector, throttle(429, Some("120")));
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(clock.now(), t0, "no wait");
    assert_eq!(sandbox.count(Route::Connector), 1);
}

#[tokio::test]
async fn other_failures_are_typed_and_not_retried() {
    let (sandbox, client, _) = setup().await;
    for (status, body, code) in [
        (
            400,
            Some(r#"{"error":{"code":"BadSyntax","message":"bad activity"}}"#),
            Some("BadSyntax"),
        ),
        (
            404,
            Some(r#"{"error":{"code":"ConversationNotFound","message":"no"}}"#),
            Some("ConversationNotFound"),
        ),
        (500, None, None),
        (502, Some("<html>bad gateway</html>"), None),
    ] {
        let before = sandbox.count(Route::Connector);
        sandbox.inject(
            Route::Connector,
            Fault::Status {
                status,
                body: body.map(str::to_owned),
                retry_after: None,
            },
        );
        let err = reply_err(&client, &sandbox).await;
        assert_eq!(err.kind(), ConnectorErrorKind::Status, "{status}");
        assert_eq!(err.status(), Some(status));
        assert!(!err.is_retryable(), "{status}");
        assert_eq!(err.body().unwrap().code(), code, "{status}");
        if status == 502 {
            assert_eq!(err.body().unwrap().raw(), "<html>bad gateway</html>");
        }
        assert_eq!(
            sandbox.count(Route::Connector),
            before + 1,
            "{status}: not retried"
        );
    }
    assert!(sandbox.connector_posts().is_empty());
}

#[tokio::test]
async fn token_failures_are_typed() {
    let (sandbox, client, _) = setup().await;
    sandbox.inject(Route::Token, Fault::status(400));
    let err = reply_err(&client, &sandbox).await;
    assert_eq!(err.kind(), ConnectorErrorKind::Token);
    let source = std::error::Error::source(&err).unwrap();
    assert!(source.downcast_ref::<botauth_core::Error>().is_some());
    assert_eq!(sandbox.count(Route::Connector), 0, "no token, no request");
}

#[tokio::test]
async fn unreachable_and_bad_arguments() {
    let (sandbox, client, _) = setup().await;
    // A closed port on loopback, allowed explicitly.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{closed}/");
    let sandbox_config = config(&sandbox, &[]);
    let client2 = ConnectorClient::builder(tokens(&sandbox_config))
        .allow_list(allow(&url))
        .build()
        .unwrap();
    let err = client2
        .send(
            &Target::conversation(&url, "a:1"),
            &json!({"type": "message"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ConnectorErrorKind::Unavailable);
    assert!(err.is_retryable());

    for (conversation, activity) in [("", json!({})), ("..", json!({})), ("a:1", json!("text"))] {
        let err = client
            .send(
                &Target::conversation(sandbox.connector_url(), conversation),
                &activity,
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ConnectorErrorKind::InvalidArgument,
            "{conversation:?}"
        );
    }
    let err = client
        .reply(&json!({"conversation": {"id": "a"}}), json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ConnectorErrorKind::InvalidArgument);
    assert_eq!(sandbox.count(Route::Connector), 0);
}

#[tokio::test]
async fn skill_replies_use_the_callers_app_id_as_audience() {
    let parent = "99999999-8888-7777-6666-555555555555";
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.accept_resource(parent);
    let config = config(&sandbox, &[]);
    let client = ConnectorClient::from_config(&config, tokens(&config)).unwrap();
    let target = Target::reply_to_activity(&incoming(&sandbox))
        .unwrap()
        .audience(Audience::Skill(parent.into()));
    client
        .send(&target, &json!({"type": "message"}))
        .await
        .unwrap();
    let posts = sandbox.connector_posts();
    assert_eq!(posts.len(), 1);
    assert_eq!(posts[0].audience, parent);
    assert_eq!(posts[0].app_id, DEMO_CLIENT_ID);
    assert_eq!(posts[0].reply_to_id.as_deref(), Some("1700000000000"));
    // A skill app id that cannot be an audience is refused before any token is asked for.
    let token_requests = sandbox.count(Route::Token);
    for bad in ["", "a b", "x\n"] {
        let target = Target::reply_to_activity(&incoming(&sandbox))
            .unwrap()
            .audience(Audience::Skill(bad.into()));
        assert_eq!(
            client
                .send(&target, &json!({"type": "message"}))
                .await
                .unwrap_err()
                .kind(),
            ConnectorErrorKind::InvalidArgument
        );
    }
    assert_eq!(sandbox.count(Route::Token), token_requests);
    assert_eq!(sandbox.connector_posts().len(), 1);
}

/// A Connector that checks the exact request: method, content type, sensitive bearer header,
/// and the JSON body.
#[tokio::test]
async fn request_shape() {
    use axum::Router;
    use axum::http::HeaderMap;
    use axum::routing::post;
    type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;
    let seen: Seen = Arc::default();
    let app = Router::new()
        .route(
            "/v3/conversations/{c}/activities/{a}",
            post(
                |axum::extract::State(seen): axum::extract::State<Seen>,
                 headers: HeaderMap,
                 body: String| async move {
                    seen.lock().unwrap().push((headers, body));
                    (axum::http::StatusCode::CREATED, "")
                },
            ),
        )
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let sandbox = Sandbox::start().await.unwrap();
    let config = config(&sandbox, &[]);
    let client = ConnectorClient::builder(tokens(&config))
        .allow_list(allow(&url))
        .build()
        .unwrap();
    let activity = json!({"type": "message", "text": "é ✓"});
    // An empty 201 body is a success without an id.
    let sent = client
        .send(&Target::reply_to(&url, "a:1", "9"), &activity)
        .await
        .unwrap();
    assert_eq!(sent.id, None);
    let (headers, body) = seen.lock().unwrap().pop().unwrap();
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    let auth = headers["authorization"].to_str().unwrap();
    let token = auth.strip_prefix("Bearer ").unwrap();
    let claims = sandbox.verify_access_token(token).unwrap();
    assert_eq!(claims["aud"], "https://api.botframework.com");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), activity);
    // The client's Debug never shows a token.
    assert!(!format!("{client:?}").contains(token));
}

/// A handler that prints the error with `Report` shows the AADSTS hint behind "could not get a
/// token"; the top-level message alone does not carry it (it leaves the cause to `source()`).
#[tokio::test]
async fn a_token_failure_keeps_its_hint_in_the_report() {
    let sandbox = Sandbox::start().await.unwrap();
    let config = config(&sandbox, &[("CLIENT_SECRET", "wrong~secret~value")]);
    let client = ConnectorClient::builder(
        Connection::from(tokens(&config)).with_cloud(config.cloud.clone()),
    )
    .allow_list(allow(&sandbox.connector_url()))
    .build()
    .unwrap();
    let error = reply_err(&client, &sandbox).await;
    assert_eq!(error.kind(), ConnectorErrorKind::Token);
    let top = error.to_string();
    assert!(!top.contains("AADSTS"), "{top}");
    let line = botauth_core::Report::new(&error).to_string();
    assert!(
        line.starts_with("could not get a token for the Bot Connector"),
        "{line}"
    );
    assert!(line.contains("AADSTS7000215"), "{line}");
    assert!(
        line.contains("not the client secret ID") || line.contains("secret's value"),
        "{line}"
    );
    assert!(
        !line.contains('\n') && !line.contains("wrong~secret~value"),
        "{line}"
    );
}
