//! The `echo-bot` binary checks its credential and the signing keys before it listens, against
//! the sandbox: a bad secret or unreachable keys stop it with the reason (exit 1).

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};

use botauth_sandbox::{DemoCredential, Sandbox};

const BIN: &str = env!("CARGO_BIN_EXE_echo-bot");

/// Runs the bot with `vars` (and PORT=0 on 127.0.0.1) until it exits, off the async runtime so the
/// in-process sandbox keeps serving.
async fn run(vars: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(BIN)
            .env_clear()
            .envs(vars)
            .envs([("PORT", "0"), ("BIND_ADDRESS", "127.0.0.1")])
            .stdin(Stdio::null())
            .output()
            .expect("run echo-bot")
    })
    .await
    .expect("the echo-bot task")
}

fn with(vars: &[(String, String)], key: &str, value: &str) -> Vec<(String, String)> {
    let mut vars: Vec<(String, String)> = vars.iter().filter(|(k, _)| k != key).cloned().collect();
    vars.push((key.to_owned(), value.to_owned()));
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_stops_the_bot_with_the_aadsts_hint() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let env = sandbox
        .demo_environment(DemoCredential::Secret)
        .expect("env");
    let out = run(with(env.bot_vars(), "CLIENT_SECRET", "wrong~secret~value")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("echo-bot: start-up check failed: outbound set-up failed"),
        "{stderr}"
    );
    assert!(stderr.contains("AADSTS7000215"), "{stderr}");
    assert!(!stderr.contains("wrong~secret~value"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_signing_keys_stop_the_bot_naming_the_endpoint() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let env = sandbox
        .demo_environment(DemoCredential::Secret)
        .expect("env");
    // A port nothing listens on (bound, then released).
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let metadata = format!(
        "http://{}/botservice/v1/.well-known/openidconfiguration",
        closed.local_addr().expect("addr")
    );
    drop(closed);
    let out = run(with(env.bot_vars(), "BOTAUTH_METADATA_URL", &metadata)).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("echo-bot: start-up check failed: inbound set-up failed"),
        "{stderr}"
    );
    assert!(stderr.contains("127.0.0.1"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_working_configuration_passes_the_check_and_listens() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let env = sandbox
        .demo_environment(DemoCredential::Secret)
        .expect("env");
    let vars = env.bot_vars().to_vec();
    let line = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .env_clear()
            .envs(vars)
            .envs([("PORT", "0"), ("BIND_ADDRESS", "127.0.0.1")])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start echo-bot");
        let stdout = child.stdout.take().expect("stdout");
        let line = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("listening on"));
        let _ = child.kill();
        let _ = child.wait();
        line
    })
    .await
    .expect("the echo-bot task");
    assert!(line.is_some(), "the bot never listened");
    assert_eq!(sandbox.count(botauth_sandbox::Route::Token), 1);
    assert_eq!(sandbox.count(botauth_sandbox::Route::BotServiceJwks), 1);
}

#[test]
fn startup_check_takes_true_or_false_only() {
    let out = Command::new(BIN)
        .env_clear()
        .envs([
            ("CLIENT_ID", "00000000-0000-0000-0000-0000000000b0"),
            ("TENANT_ID", "00000000-0000-0000-0000-0000000000c0"),
            ("CLIENT_SECRET", "echo-bot-binary-test-secret"),
            ("STARTUP_CHECK", "maybe"),
        ])
        .output()
        .expect("run echo-bot");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "echo-bot: STARTUP_CHECK must be true or false, not \"maybe\"\n"
    );
}
