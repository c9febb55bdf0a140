//! `botauth config` and the "waiting for …" line, run as a user would (issues 12 and 16).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use botauth_sandbox::{DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox};
use common::{BIN, assert_json_style, text};

const MEMBERS: [&str; 17] = [
    "dialect",
    "client_id",
    "tenant_id",
    "authority_host",
    "connector_scope",
    "connection",
    "credentials",
    "scopes",
    "connections",
    "connections_map",
    "inbound",
    "allowed_service_urls",
    "token_service_url",
    "http_timeout_seconds",
    "sources",
    "warnings",
    "notes",
];

fn config_in(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(BIN)
        .arg("config")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn config_shows_each_value_with_where_it_came_from_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "MicrosoftAppId=00000000-0000-0000-0000-00000000b07a\n\
         MicrosoftAppPassword='s3cr3t-from-dotenv'\n\
         MicrosoftAppTenantId=contoso.com\n\
         MicrosoftAppPasword=s3cr3t-typo\n",
    )
    .unwrap();
    let out = config_in(
        dir.path(),
        &[],
        &[
            ("MicrosoftAppType", "SingleTenant"),
            ("MicrosoftAppPassword", "s3cr3t-env"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(!stdout.contains("s3cr3t"), "{stdout}");
    let json = assert_json_style(&stdout, &MEMBERS);
    assert_eq!(json["dialect"], "Bot Framework");
    assert_eq!(json["client_id"], "00000000-0000-0000-0000-00000000b07a");
    assert_eq!(json["credentials"][0]["secret"], "[redacted]");
    let from = |key: &str| {
        json["sources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .map(|s| s["from"].as_str().unwrap().to_owned())
    };
    let dotenv = dir.path().join(".env").display().to_string();
    assert_eq!(from("MicrosoftAppId").as_deref(), Some(dotenv.as_str()));
    // The environment wins over the .env file, and says so.
    assert_eq!(
        from("MicrosoftAppPassword").as_deref(),
        Some("environment variable")
    );
    assert_eq!(
        from("MicrosoftAppType").as_deref(),
        Some("environment variable")
    );
    assert_eq!(
        json["warnings"][0],
        "MicrosoftAppPasword is not a key botauth knows and is ignored: did you mean MicrosoftAppPassword?"
    );
}

#[test]
fn config_errors_exit_2_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = config_in(
        dir.path(),
        &[],
        &[
            ("CLIENT_SECRET", "s3cr3t-botas"),
            ("TENANT_ID", "contoso.com"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("`CLIENT_ID`: is required"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");
}

#[test]
fn config_keys_is_the_readme_list() {
    let dir = tempfile::tempdir().unwrap();
    let out = config_in(dir.path(), &["--keys"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        botauth::core::internal::supported_keys_markdown()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_token_endpoint_is_announced_with_its_timeout() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::Delay(Duration::from_millis(3_000)));
    let out = common::run(&["token"], common::botas(&sandbox, DEMO_CLIENT_SECRET)).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "botauth: waiting for the token endpoint at {}/{DEMO_TENANT_ID}/oauth2/v2.0/token \
             (timeout 30 s per request; BOTAUTH_HTTP_TIMEOUT raises it)\n",
            sandbox.url()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_http_timeout_is_configurable_and_named_when_it_expires() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject_n(Route::Token, Fault::Delay(Duration::from_millis(3_000)), 10);
    let mut env = common::botas(&sandbox, DEMO_CLIENT_SECRET);
    env.push(("BOTAUTH_HTTP_TIMEOUT".into(), "1s".into()));
    let out = common::run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("did not answer within 1 s")
            && stderr.contains("raise the timeout with BOTAUTH_HTTP_TIMEOUT"),
        "{stderr}"
    );
}
