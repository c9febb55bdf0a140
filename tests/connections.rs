//! Several connections (Agents SDK `Connections` + `ConnectionsMap`, issue 12) end to end, over
//! real HTTP on loopback: two app registrations in the sandbox, the facade building a credential
//! for each, and the Connector client picking one per call. The sandbox's Bot Connector records
//! whose token each activity came with (`appid`) and for which audience (`aud`).
//!
//! The two service URLs are the one sandbox reached as `127.0.0.1` and as `localhost`, so that a
//! map can tell them apart by a regular expression.
#![allow(clippy::unwrap_used)]

use botauth::connector::{
    ConnectorClient, ConnectorError, ConnectorErrorKind, Target, inbound_audience_of,
};
use botauth::core::config::{ConnectionConfig, ConnectionMapEntry};
use botauth::validator::{ActivityInfo, Validator};
use botauth::{BotAuth, BotAuthConfig, Cloud, CredentialConfig, Dialect, Error, Secret};
use botauth_sandbox::{AppRegistration, ChannelTokenClaims, DEMO_TENANT_ID, Route, Sandbox};
use serde_json::json;

const APP_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const SECRET_A: &str = "secret~A~0123456789";
const APP_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const SECRET_B: &str = "secret~B~9876543210";
/// The top-level connection's name, as the Agents SDK templates call it.
const SERVICE: &str = "ServiceConnection";
/// The second connection.
const SECOND: &str = "Second";
/// The audience of the Bot Connector: what every reply's token is for unless scopes say otherwise.
const BOT_CONNECTOR: &str = "https://api.botframework.com";

async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.register_app(AppRegistration::new(APP_A, DEMO_TENANT_ID).with_secret(SECRET_A));
    sandbox.register_app(AppRegistration::new(APP_B, DEMO_TENANT_ID).with_secret(SECRET_B));
    sandbox
}

/// The sandbox as service URL A (`127.0.0.1`) and B (`localhost`).
fn urls(sandbox: &Sandbox) -> (String, String) {
    let port = sandbox.addr().port();
    (
        format!("http://127.0.0.1:{port}/"),
        format!("http://localhost:{port}/"),
    )
}

/// The sandbox's cloud: its authority and Bot Service, the public Bot Connector scope.
fn cloud(sandbox: &Sandbox) -> Cloud {
    serde_json::from_value(json!({
        "authority_host": sandbox.url(),
        "bot_connector_scope": "https://api.botframework.com/.default",
        "bot_service_metadata_url": sandbox.bot_service_metadata_url(),
        "bot_service_issuer": sandbox.bot_service_issuer(),
        "federation_audience": "api://AzureADTokenExchange",
    }))
    .unwrap()
}

fn secret(value: &str) -> CredentialConfig {
    CredentialConfig::ClientSecret {
        secret: Secret::new(value),
    }
}

/// `ServiceConnection` is app A (the top-level settings), `Second` app B; `map` picks between them.
fn config(sandbox: &Sandbox, map: Vec<ConnectionMapEntry>) -> BotAuthConfig {
    let (a, b) = urls(sandbox);
    let mut config = BotAuthConfig::new(Dialect::AgentsSdk);
    config.client_id = Some(APP_A.into());
    config.tenant_id = Some(DEMO_TENANT_ID.into());
    config.cloud = cloud(sandbox);
    config.credentials = vec![secret(SECRET_A)];
    config.connection_name = Some(SERVICE.into());
    config.allowed_service_urls = vec![a, b];
    let mut second = ConnectionConfig::new(SECOND);
    second.client_id = Some(APP_B.into());
    second.tenant_id = Some(DEMO_TENANT_ID.into());
    second.cloud = cloud(sandbox);
    second.credentials = vec![secret(SECRET_B)];
    config.connections = vec![second];
    config.connections_map = map;
    config
}

fn rule(service_url: &str, connection: &str) -> ConnectionMapEntry {
    ConnectionMapEntry::new(service_url, connection)
}

fn activity(text: &str) -> serde_json::Value {
    json!({"type": "message", "text": text})
}

/// Sends one activity to `service_url`, with `inbound` as the inbound token's audience.
async fn send(
    client: &ConnectorClient,
    service_url: &str,
    inbound: Option<&str>,
    text: &str,
) -> Result<(), ConnectorError> {
    let mut target = Target::conversation(service_url, "a:1");
    if let Some(audience) = inbound {
        target = target.inbound_audience(audience);
    }
    client.send(&target, &activity(text)).await.map(drop)
}

/// `(appid, aud, text)` of every activity the sandbox's Connector accepted, in order.
fn posts(sandbox: &Sandbox) -> Vec<(String, String, String)> {
    sandbox
        .connector_posts()
        .into_iter()
        .map(|p| {
            (
                p.app_id,
                p.audience,
                p.activity["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn post(app: &str, audience: &str, text: &str) -> (String, String, String) {
    (app.to_owned(), audience.to_owned(), text.to_owned())
}

#[tokio::test]
async fn the_map_sends_each_service_url_through_its_connection() {
    let sandbox = sandbox().await;
    let (a, b) = urls(&sandbox);
    let bot = BotAuth::from_config(config(
        &sandbox,
        vec![rule(r"127\.0\.0\.1", SERVICE), rule("LOCALHOST", "second")],
    ))
    .unwrap();
    assert_eq!(bot.connection_names(), [SERVICE, SECOND]);
    assert_eq!(bot.connection_for(&a, None), Some(SERVICE));
    // The name as configured, whatever case the rule wrote it in.
    assert_eq!(bot.connection_for(&b, None), Some(SECOND));
    let client = bot.connector().unwrap();
    send(&client, &a, None, "to A").await.unwrap();
    send(&client, &b, None, "to B").await.unwrap();
    send(&client, &a, None, "to A again").await.unwrap();
    assert_eq!(
        posts(&sandbox),
        [
            post(APP_A, BOT_CONNECTOR, "to A"),
            post(APP_B, BOT_CONNECTOR, "to B"),
            post(APP_A, BOT_CONNECTOR, "to A again"),
        ]
    );
    // One token per connection, each cached in its own manager.
    assert_eq!(sandbox.count(Route::Token), 2);
    for (name, app) in [("serviceconnection", APP_A), ("SECOND", APP_B)] {
        let tokens = bot.tokens_for(name).unwrap();
        assert_eq!(
            tokens.credential().client_id.as_deref(),
            Some(app),
            "{name}"
        );
    }
    assert!(bot.tokens_for("Third").is_none());
    assert_eq!(
        client.connection_for(&b, None).unwrap().name(),
        SECOND,
        "the client and the facade agree"
    );
}

#[tokio::test]
async fn an_audience_rule_applies_only_to_its_inbound_audience() {
    let sandbox = sandbox().await;
    let (a, _) = urls(&sandbox);
    let bot = BotAuth::from_config(config(
        &sandbox,
        vec![rule("*", SECOND).with_audience(APP_B), rule("*", SERVICE)],
    ))
    .unwrap();
    let client = bot.connector().unwrap();
    let upper = APP_B.to_uppercase();
    send(&client, &a, Some(&upper), "for B, any case")
        .await
        .unwrap();
    send(&client, &a, Some(APP_A), "for A").await.unwrap();
    send(&client, &a, None, "proactive").await.unwrap();
    assert_eq!(
        posts(&sandbox),
        [
            post(APP_B, BOT_CONNECTOR, "for B, any case"),
            post(APP_A, BOT_CONNECTOR, "for A"),
            post(APP_A, BOT_CONNECTOR, "proactive"),
        ]
    );
    assert_eq!(bot.connection_for(&a, Some(&upper)), Some(SECOND));
    assert_eq!(bot.connection_for(&a, None), Some(SERVICE));
    // The audience rule is never the default connection; the `*` rule after it is.
    assert_eq!(bot.default_connection(), SERVICE);

    // The inbound audience of a verified channel token is its `aud`: a message delivered to
    // bot B is answered as bot B.
    let mut inbound = config(&sandbox, Vec::new());
    inbound.inbound.extra_audiences = vec![APP_B.into()];
    let validator = Validator::from_config(&inbound).unwrap();
    let token = sandbox.mint_channel_token(ChannelTokenClaims::new(APP_B, &a));
    let claims = validator
        .validate(&token, ActivityInfo::new(&a, "msteams"))
        .await
        .unwrap();
    assert_eq!(inbound_audience_of(&claims), Some(APP_B));
}

#[tokio::test]
async fn a_star_rule_is_the_default_and_catches_the_rest() {
    let sandbox = sandbox().await;
    let (a, b) = urls(&sandbox);
    let bot = BotAuth::from_config(config(
        &sandbox,
        vec![rule("localhost", SECOND), rule("*", SERVICE)],
    ))
    .unwrap();
    assert_eq!(bot.default_connection(), SERVICE);
    let client = bot.connector().unwrap();
    send(&client, &b, None, "b").await.unwrap();
    send(&client, &a, None, "a").await.unwrap();
    assert_eq!(
        posts(&sandbox),
        [
            post(APP_B, BOT_CONNECTOR, "b"),
            post(APP_A, BOT_CONNECTOR, "a")
        ]
    );
    // An empty ServiceUrl is `*` too, and makes the second connection the default.
    let bot = BotAuth::from_config(config(&sandbox, vec![rule("", SECOND)])).unwrap();
    assert_eq!(bot.default_connection(), SECOND);
    send(&bot.connector().unwrap(), &a, None, "empty")
        .await
        .unwrap();
    assert_eq!(posts(&sandbox)[2], post(APP_B, BOT_CONNECTOR, "empty"));
}

#[tokio::test]
async fn no_matching_rule_is_a_typed_error_and_nothing_is_sent() {
    let sandbox = sandbox().await;
    let (a, _) = urls(&sandbox);
    let bot = BotAuth::from_config(config(
        &sandbox,
        vec![
            rule("localhost", SECOND),
            rule("*", SERVICE).with_audience(APP_A),
        ],
    ))
    .unwrap();
    assert_eq!(bot.connection_for(&a, None), None);
    let client = bot.connector().unwrap();
    let err = send(&client, &a, None, "x").await.unwrap_err();
    assert_eq!(err.kind(), ConnectorErrorKind::NoConnection);
    assert_eq!(
        err.to_string(),
        format!(
            "no ConnectionsMap rule matches the service URL {a} (the call has no inbound \
             audience, so rules with an Audience do not apply): add a ConnectionsMap entry whose \
             ServiceUrl (a regular expression) matches it, or a `*` entry for every other URL"
        )
    );
    assert!(!err.is_retryable());
    let err = send(&client, &a, Some(APP_B), "x").await.unwrap_err();
    assert_eq!(err.kind(), ConnectorErrorKind::NoConnection, "{err:?}");
    assert!(
        err.to_string()
            .contains(&format!("and the inbound audience {APP_B}:")),
        "{err}"
    );
    // The allow-list still comes first: a refused URL is refused as such, whatever the map.
    let err = send(&client, "https://evil.example/", None, "x")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ConnectorErrorKind::ServiceUrl);
    // No token was requested, nothing was posted.
    assert_eq!(sandbox.count(Route::Token), 0);
    assert!(sandbox.connector_posts().is_empty());
}

#[tokio::test]
async fn map_mistakes_are_configuration_errors_at_build_naming_the_key() {
    let sandbox = sandbox().await;
    let key_of = |e: Error| match e {
        Error::Config { key, .. } => key,
        other => panic!("{other:?}"),
    };
    // A .NET look-behind is not a pattern of the regex crate: refused when built, not when used.
    let bad = vec![
        rule("*", SERVICE),
        rule("(?<=smba)\\.trafficmanager", SECOND),
    ];
    let err = BotAuth::from_config(config(&sandbox, bad.clone())).unwrap_err();
    assert!(err.to_string().contains("look-around"), "{err}");
    assert_eq!(key_of(err), "ConnectionsMap:1:ServiceUrl");
    let err = ConnectorClient::from_config(
        &config(&sandbox, bad.clone()),
        BotAuth::from_config(config(&sandbox, Vec::new()))
            .unwrap()
            .tokens()
            .clone(),
    )
    .unwrap_err();
    assert_eq!(key_of(err), "ConnectionsMap:1:ServiceUrl");
    // A client built with only the top-level token manager cannot serve a rule for `Second`:
    // refused when built, saying how to give it the connection.
    let top_only = BotAuth::from_config(config(&sandbox, Vec::new()))
        .unwrap()
        .tokens()
        .clone();
    let err = ConnectorClient::from_config(
        &config(
            &sandbox,
            vec![rule("localhost", SECOND), rule("*", SERVICE)],
        ),
        top_only,
    )
    .unwrap_err();
    assert!(
        err.to_string().contains(
            "names connection `Second`, which this Connector client has no token manager for \
             (it has: `ServiceConnection`); build the client with `BotAuth::connector`"
        ),
        "{err}"
    );
    assert_eq!(key_of(err), "ConnectionsMap:0:Connection");
    // botauth's own files spell the key their way.
    let mut native = config(&sandbox, bad);
    native.dialect = Dialect::Native;
    assert_eq!(
        key_of(BotAuth::from_config(native).unwrap_err()),
        "connections_map[1].service_url"
    );
    // A rule naming a connection that does not exist.
    let err = BotAuth::from_config(config(&sandbox, vec![rule("*", "Thrid")])).unwrap_err();
    assert!(
        err.to_string().contains(
            "`Thrid`, which is not configured (configured: `ServiceConnection`, `Second`)"
        ),
        "{err}"
    );
    assert_eq!(key_of(err), "ConnectionsMap:0:Connection");
    // Two connections with one name.
    let mut twice = config(&sandbox, Vec::new());
    twice.connections.push(ConnectionConfig::new("SECOND"));
    assert_eq!(
        key_of(BotAuth::from_config(twice).unwrap_err()),
        "connections"
    );
    // A connection whose credential cannot be built is named in the error.
    let mut broken = config(&sandbox, Vec::new());
    broken.connections[0].credentials.clear();
    let err = BotAuth::from_config(broken).unwrap_err();
    assert!(err.to_string().contains("(connection `Second`)"), "{err}");
    assert_eq!(key_of(err), "credentials");
    // Nothing was requested while building.
    assert_eq!(sandbox.count(Route::Token), 0);
}

#[tokio::test]
async fn scopes_replace_instance_with_the_targets_scheme_and_host() {
    let sandbox = sandbox().await;
    sandbox.accept_resource("http://localhost");
    sandbox.accept_resource("https://bots.contoso.example");
    let (a, b) = urls(&sandbox);
    let mut config = config(
        &sandbox,
        vec![rule("localhost", SECOND), rule("*", SERVICE)],
    );
    config.connections[0].scopes = vec!["{instance}/.default".into()];
    config.scopes = vec!["https://bots.contoso.example/.default".into()];
    let client = BotAuth::from_config(config).unwrap().connector().unwrap();
    send(&client, &b, None, "instance").await.unwrap();
    send(&client, &a, None, "top-level scopes").await.unwrap();
    assert_eq!(
        posts(&sandbox),
        [
            // scheme://host of the target: no port, no path (the Agents SDK's rule).
            post(APP_B, "http://localhost", "instance"),
            post(APP_A, "https://bots.contoso.example", "top-level scopes"),
        ]
    );
    let base = client.check_service_url(&b).unwrap();
    assert_eq!(
        client
            .connection_for(&b, None)
            .unwrap()
            .token_request(&base)
            .scopes,
        ["http://localhost/.default"]
    );
}

#[tokio::test]
async fn without_a_map_every_call_uses_the_top_level_connection() {
    let sandbox = sandbox().await;
    let (a, b) = urls(&sandbox);
    // Connections but no map: as before issue 12, the top-level identity for every call.
    let bot = BotAuth::from_config(config(&sandbox, Vec::new())).unwrap();
    assert_eq!(bot.connection_for(&b, Some(APP_B)), Some(SERVICE));
    assert_eq!(bot.default_connection(), SERVICE);
    let client = bot.connector().unwrap();
    send(&client, &a, None, "a").await.unwrap();
    send(&client, &b, Some(APP_B), "b").await.unwrap();
    assert_eq!(
        posts(&sandbox),
        [
            post(APP_A, BOT_CONNECTOR, "a"),
            post(APP_A, BOT_CONNECTOR, "b")
        ]
    );
    assert_eq!(sandbox.count(Route::Token), 1);
    // An unnamed top-level connection is `default`.
    let mut unnamed = config(
        &sandbox,
        vec![rule("localhost", SECOND), rule("*", "Default")],
    );
    unnamed.connection_name = None;
    let bot = BotAuth::from_config(unnamed).unwrap();
    assert_eq!(bot.connection_names(), ["default", SECOND]);
    assert_eq!(bot.connection_for(&a, None), Some("default"));
}

/// `BotAuth::check()` gets every connection's token once, so a wrong secret on a second
/// connection fails at start-up too (issue 16's start-up check, with issue 12's connections).
#[tokio::test]
async fn the_start_up_check_covers_every_connection() {
    let sandbox = sandbox().await;
    let auth = BotAuth::from_config(config(&sandbox, vec![])).unwrap();
    auth.check().await.unwrap();
    let issued: Vec<String> = sandbox
        .requests()
        .into_iter()
        .filter(|r| r.route == Route::Token && r.status == 200)
        .filter_map(|r| r.client_id)
        .collect();
    assert!(
        issued.iter().any(|c| c == APP_A) && issued.iter().any(|c| c == APP_B),
        "{issued:?}"
    );

    let mut wrong = config(&sandbox, vec![]);
    wrong.connections[0].credentials = vec![secret("wrong~secret~B")];
    let auth = BotAuth::from_config(wrong).unwrap();
    let error = auth.check().await.unwrap_err();
    assert_eq!(error.kind(), botauth::ErrorKind::Rejected);
    assert!(
        botauth::Report::new(&error)
            .to_string()
            .contains("AADSTS7000215"),
        "{error}"
    );
}
