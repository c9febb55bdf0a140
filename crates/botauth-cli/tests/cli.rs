//! The `botauth` binary, run as a user would, against an in-process sandbox.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

mod common;

use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};
use common::{BIN, NO_ENV, assert_json_style, assert_two_way_demo, botas, run, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_one_json_object() {
    let sandbox = Sandbox::start().await.unwrap();
    let out = run(&["token"], botas(&sandbox, DEMO_CLIENT_SECRET)).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    // A normal run says nothing on stderr, although warnings are on by default.
    assert_eq!(text(&out.stderr), "");
    let json = assert_json_style(
        &text(&out.stdout),
        &[
            "credential",
            "client_id",
            "tenant_id",
            "scope",
            "token_type",
            "expires_on",
            "refresh_on",
            "access_token",
        ],
    );
    assert_eq!(json["credential"], "client_secret");
    assert_eq!(json["client_id"], DEMO_CLIENT_ID);
    assert_eq!(json["tenant_id"], DEMO_TENANT_ID);
    assert_eq!(json["scope"], "https://api.botframework.com/.default");
    assert_eq!(json["token_type"], "Bearer");
    assert!(json["expires_on"].as_u64().unwrap() > 1_700_000_000);
    assert!(json["refresh_on"].is_null());
    let claims = sandbox
        .verify_access_token(json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_reads_a_config_file() {
    let sandbox = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appsettings.json");
    let json = serde_json::json!({"AzureAd": {
        "Instance": sandbox.url(), "TenantId": DEMO_TENANT_ID, "ClientId": DEMO_CLIENT_ID,
        "ClientCredentials": [{"SourceType": "ClientSecret", "ClientSecret": DEMO_CLIENT_SECRET}]
    }});
    std::fs::write(&path, json.to_string()).unwrap();
    let out = run(&["token", "--config", path.to_str().unwrap()], NO_ENV).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_one_actionable_line_and_exit_1() {
    let sandbox = Sandbox::start().await.unwrap();
    let out = run(&["token"], botas(&sandbox, "wrong~secret")).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "botauth: error: Entra ID rejected the token request (invalid_client, AADSTS7000215)"
        ),
        "{err}"
    );
    assert!(err.contains("not its Secret ID"));
    assert!(!err.contains("wrong~secret"));
}

/// Default level `warn`, but a failing one-shot command prints only its own line (the test above);
/// `-v` and `RUST_LOG` show the library's lines as they happen, as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbose_and_rust_log_show_the_library_warnings() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut with_rust_log = botas(&sandbox, "wrong~secret");
    with_rust_log.push(("RUST_LOG".into(), "warn".into()));
    for (args, env) in [
        (vec!["token", "-v"], botas(&sandbox, "wrong~secret")),
        (vec!["token"], with_rust_log),
    ] {
        let out = run(&args, env).await;
        assert_eq!(out.status.code(), Some(1));
        let err = text(&out.stderr);
        let lines: Vec<&str> = err.lines().collect();
        // With `-v` the line carries its spans' context (`botauth.token.get{…}:
        // botauth.token.acquire{…}: token request failed …`).
        assert!(
            lines
                .iter()
                .any(|l| l.contains(" WARN ") && l.contains("token request failed")),
            "{args:?}: {err}"
        );
        assert!(
            lines
                .last()
                .unwrap()
                .starts_with("botauth: error: Entra ID rejected the token request"),
            "{args:?}: {err}"
        );
        assert!(!err.contains("wrong~secret"), "{err}");
    }
}

/// The top-level description names every command (`botauth --help`'s first line).
#[test]
fn the_description_names_every_command() {
    let out = common::run_blocking(&["--help"], NO_ENV);
    assert_eq!(out.status.code(), Some(0));
    let help = text(&out.stdout);
    let about = help.lines().next().unwrap();
    let commands: Vec<&str> = help
        .split_once("Commands:\n")
        .unwrap()
        .1
        .lines()
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .collect();
    assert_eq!(
        commands,
        [
            "token",
            "config",
            "sandbox",
            "demo",
            "thumbprint",
            "validate",
            "decode"
        ]
    );
    for command in commands {
        assert!(about.contains(command), "{command} missing from: {about}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_scope_fails_with_its_code() {
    let sandbox = Sandbox::start().await.unwrap();
    let out = run(
        &["token", "--scope", "https://graph.microsoft.com/.default"],
        botas(&sandbox, DEMO_CLIENT_SECRET),
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("AADSTS1002012"));
}

#[tokio::test]
async fn no_configuration_is_exit_2_naming_the_keys() {
    let out = run(&["token"], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("CLIENT_ID") && err.contains("MicrosoftAppId"),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_config_file_is_exit_2() {
    let out = run(&["token", "--config", "/nonexistent/botauth.toml"], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
}

#[tokio::test]
async fn usage_errors_are_exit_2() {
    let out = run(&["token", "--no-such-flag"], NO_ENV).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn demo_runs_end_to_end() {
    let out = run(&["demo", "--callers", "200"], NO_ENV).await;
    assert_two_way_demo(&out, "secret");
    let stdout = text(&out.stdout);
    assert!(stdout.contains("CLIENT_SECRET=[redacted]"), "{stdout}");
    assert!(!stdout.contains(DEMO_CLIENT_SECRET));
}

/// `botauth sandbox` as a child process, with its output to read.
fn start_sandbox_command() -> (std::process::Child, std::process::ChildStdout) {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0"])
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start botauth sandbox");
    let stdout = child.stdout.take().expect("its stdout");
    (child, stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_command_prints_a_working_environment() {
    let (mut child, stdout) = start_sandbox_command();
    let env = tokio::task::spawn_blocking(move || {
        let mut env = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(rest) = line.strip_prefix("export ") {
                let (k, v) = rest.split_once('=').unwrap();
                env.push((k.to_owned(), v.trim_matches('\'').to_owned()));
                if k == "TENANT_ID" {
                    break;
                }
            }
        }
        env
    })
    .await
    .unwrap();
    let keys: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.contains(&"BOTAUTH_AUTHORITY_HOST") && keys.contains(&"CLIENT_SECRET"),
        "{keys:?}"
    );
    let out = run(&["token"], env).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

/// The managed identity line `botauth sandbox` prints is a working configuration too.
#[tokio::test]
async fn sandbox_prints_a_working_managed_identity_environment() {
    let (mut child, stdout) = start_sandbox_command();
    let line = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map(|l| l.unwrap())
            .find(|l| l.contains("AZURE_POD_IDENTITY_AUTHORITY_HOST="))
            .expect("a managed identity line")
    })
    .await
    .unwrap();
    let exports = line.split_once("export ").expect("an export").1;
    let env: Vec<(String, String)> = exports
        .split_whitespace()
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect();
    let out = run(&["token"], env).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["credential"], "managed_identity");
}

/// `botauth sandbox --bot URL`: a line typed on stdin reaches a locally running echo bot as a Bot
/// Service activity, and the bot's reply through the sandbox's Connector is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sandbox_chats_with_a_local_bot() {
    use std::io::Write as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bot_url = format!(
        "http://{}{}",
        listener.local_addr().unwrap(),
        botauth_echo_bot::MESSAGES_PATH
    );
    let mut child = Command::new(BIN)
        .args(["sandbox", "--port", "0", "--bot", &bot_url])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start botauth sandbox");
    let mut stdin = child.stdin.take().unwrap();
    let (env_tx, env_rx) = std::sync::mpsc::channel();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    // One reader for the whole output: the exports first, then the chat lines.
    std::thread::spawn(move || {
        let mut env = Vec::new();
        let mut env_tx = Some(env_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("export ") {
                let (k, v) = rest.split_once('=').unwrap();
                env.push((k.to_owned(), v.trim_matches('\'').to_owned()));
            } else if line.starts_with("# Chat:") {
                if let Some(tx) = env_tx.take() {
                    let _ = tx.send(std::mem::take(&mut env));
                }
            } else if line.starts_with('>') || line.starts_with('<') || line.starts_with('!') {
                let _ = line_tx.send(line);
            }
        }
    });
    let env = tokio::task::spawn_blocking(move || env_rx.recv().unwrap())
        .await
        .unwrap();
    let config = botauth::BotAuthConfig::from_vars(env).unwrap();
    let bot =
        botauth_echo_bot::EchoBot::from_config(config, &botauth::CredentialBuilder::new()).unwrap();
    tokio::spawn(bot.serve(listener));

    stdin.write_all(b"hello there\n").unwrap();
    stdin.flush().unwrap();
    let lines = tokio::task::spawn_blocking(move || {
        let timeout = std::time::Duration::from_secs(60);
        [line_rx.recv_timeout(timeout), line_rx.recv_timeout(timeout)]
    })
    .await
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        lines.map(Result::unwrap),
        [
            "> hello there   [the bot answered HTTP 200]".to_owned(),
            "< echo: hello there".to_owned()
        ]
    );
}

/// A configuration that names a certificate file that is not there is a configuration error:
/// exit 2 before any request, one line naming the file.
#[test]
fn a_missing_certificate_file_is_a_configuration_error() {
    let key = |k: &str| format!("Connections__ServiceConnection__Settings__{k}");
    let env = vec![
        (key("AuthType"), "Certificate".to_owned()),
        (key("ClientId"), DEMO_CLIENT_ID.to_owned()),
        (key("TenantId"), DEMO_TENANT_ID.to_owned()),
        (key("CertPemFile"), "/nonexistent/bot.pem".to_owned()),
        (key("CertKeyFile"), "/nonexistent/bot.key".to_owned()),
        (
            "BOTAUTH_AUTHORITY_HOST".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
    ];
    let out = common::run_blocking(&["token"], env);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/bot.pem does not exist"), "{err}");
    assert!(out.stdout.is_empty());
}
