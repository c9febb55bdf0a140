//! `botauth token --service-url URL [--audience ID]` (issue 12): the connection the
//! `ConnectionsMap` picks for the URL, and that connection's token, against an in-process sandbox
//! with two app registrations.
#![allow(clippy::unwrap_used)]

mod common;

use botauth_sandbox::{AppRegistration, DEMO_TENANT_ID, Sandbox};
use common::{NO_ENV, assert_json_style, run, text};

const APP_A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const SECRET_A: &str = "secret~A~0123456789";
const APP_B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";
const SECRET_B: &str = "secret~B~9876543210";

const MEMBERS: [&str; 9] = [
    "connection",
    "credential",
    "client_id",
    "tenant_id",
    "scope",
    "token_type",
    "expires_on",
    "refresh_on",
    "access_token",
];

/// A botauth TOML file: `ServiceConnection` is app A, `Second` app B, with `rules` as the map.
fn write_config(dir: &std::path::Path, sandbox: &Sandbox, rules: &str) -> String {
    let port = sandbox.addr().port();
    let cloud = sandbox.cloud_toml();
    let text = format!(
        r#"client_id = "{APP_A}"
tenant_id = "{DEMO_TENANT_ID}"
connection_name = "ServiceConnection"
allowed_service_urls = ["http://127.0.0.1:{port}/", "http://localhost:{port}/"]
{cloud}

[[credentials]]
type = "client_secret"
secret = "{SECRET_A}"

[[connections]]
name = "Second"
client_id = "{APP_B}"
tenant_id = "{DEMO_TENANT_ID}"
scopes = ["{{instance}}/.default"]
{cloud}
credentials = [{{ type = "client_secret", secret = "{SECRET_B}" }}]

{rules}
"#
    );
    let path = dir.join("botauth.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

const RULES: &str = r#"
[[connections_map]]
service_url = "localhost"
connection = "Second"

[[connections_map]]
service_url = "*"
audience = "bbbbbbbb-0000-4000-8000-00000000000B"
connection = "second"

[[connections_map]]
service_url = "127\\.0\\.0\\.1"
connection = "ServiceConnection"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_a_service_url_prints_the_chosen_connection_and_its_token() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.register_app(AppRegistration::new(APP_A, DEMO_TENANT_ID).with_secret(SECRET_A));
    sandbox.register_app(AppRegistration::new(APP_B, DEMO_TENANT_ID).with_secret(SECRET_B));
    sandbox.accept_resource("http://localhost");
    sandbox.accept_resource("http://127.0.0.1");
    let port = sandbox.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &sandbox, RULES);
    let a = format!("http://127.0.0.1:{port}/");
    let b = format!("http://localhost:{port}/");

    for (url, audience, connection, app, scope) in [
        (
            &a,
            None,
            "ServiceConnection",
            APP_A,
            "https://api.botframework.com/.default",
        ),
        (&b, None, "Second", APP_B, "http://localhost/.default"),
        // The audience rule, compared without regard to case; `Second`'s scopes with
        // `{instance}` = this URL's scheme and host.
        (
            &a,
            Some(APP_B),
            "Second",
            APP_B,
            "http://127.0.0.1/.default",
        ),
    ] {
        let mut args = vec!["token", "--config", &config, "--service-url", url];
        if let Some(audience) = audience {
            args.extend(["--audience", audience]);
        }
        let out = run(&args, NO_ENV).await;
        let what = format!("{url} {audience:?}");
        assert_eq!(out.status.code(), Some(0), "{what}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr), "", "{what}");
        let json = assert_json_style(&text(&out.stdout), &MEMBERS);
        assert_eq!(json["connection"], connection, "{what}");
        assert_eq!(json["credential"], "client_secret", "{what}");
        assert_eq!(json["client_id"], app, "{what}");
        assert_eq!(json["scope"], scope, "{what}");
        let claims = sandbox
            .verify_access_token(json["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims["appid"], app, "{what}");
        assert_eq!(claims["aud"], scope.trim_end_matches("/.default"), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_for_a_service_url_no_rule_covers_exits_2_naming_the_map() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.register_app(AppRegistration::new(APP_A, DEMO_TENANT_ID).with_secret(SECRET_A));
    sandbox.register_app(AppRegistration::new(APP_B, DEMO_TENANT_ID).with_secret(SECRET_B));
    let port = sandbox.addr().port();
    let dir = tempfile::tempdir().unwrap();
    let only_b = "[[connections_map]]\nservice_url = \"localhost\"\nconnection = \"Second\"\n";
    let config = write_config(dir.path(), &sandbox, only_b);
    let a = format!("http://127.0.0.1:{port}/");
    let out = run(&["token", "--config", &config, "--service-url", &a], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "botauth: error: no ConnectionsMap rule matches the service URL {a} (the call has no \
             inbound audience, so rules with an Audience do not apply): add a ConnectionsMap \
             entry whose ServiceUrl (a regular expression) matches it, or a `*` entry for every \
             other URL\n"
        )
    );
    // The allow-list is checked first.
    let out = run(
        &[
            "token",
            "--config",
            &config,
            "--service-url",
            "https://evil.example/",
        ],
        NO_ENV,
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("botauth: error: refusing to send the bot's token"),
        "{}",
        text(&out.stderr)
    );
    // An invalid pattern is a configuration error naming the key.
    let bad = "[[connections_map]]\nservice_url = \"(?<=x)y\"\nconnection = \"Second\"\n";
    let config = write_config(dir.path(), &sandbox, bad);
    let out = run(&["token", "--config", &config, "--service-url", &a], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("connections_map[0].service_url"),
        "{}",
        text(&out.stderr)
    );
    // `--audience` means nothing without `--service-url`.
    let out = run(&["token", "--audience", APP_B], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--service-url"),
        "{}",
        text(&out.stderr)
    );
    // Nothing reached the token endpoint.
    assert_eq!(sandbox.count(botauth_sandbox::Route::Token), 0);
}
