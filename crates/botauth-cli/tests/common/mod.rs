//! Running the `botauth` binary from tests, as a user would: nothing inherited from the test's
//! environment, only the variables a test passes.

// Each test file uses the part it needs.
#![allow(dead_code)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// The binary under test.
pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_botauth");

/// An empty environment.
pub(crate) const NO_ENV: Vec<(String, String)> = Vec::new();

/// The botas-dialect environment for the sandbox's demo app with `secret`, pointed at `sandbox`.
pub(crate) fn botas(sandbox: &botauth_sandbox::Sandbox, secret: &str) -> Vec<(String, String)> {
    vec![
        ("CLIENT_ID".into(), botauth_sandbox::DEMO_CLIENT_ID.into()),
        ("CLIENT_SECRET".into(), secret.into()),
        ("TENANT_ID".into(), botauth_sandbox::DEMO_TENANT_ID.into()),
        ("BOTAUTH_AUTHORITY_HOST".into(), sandbox.url()),
    ]
}

/// The whole answer (status line, headers, body) to `GET url` over plain http on loopback, as a
/// browser fetches it, waiting at most `timeout` for it.
pub(crate) fn http_get(url: &str, timeout: std::time::Duration) -> String {
    use std::io::Read as _;
    let rest = url.strip_prefix("http://").expect("an http URL");
    let (authority, path) = rest.split_once('/').expect("a path");
    let mut stream = std::net::TcpStream::connect(authority).expect("the sandbox listens");
    stream
        .set_read_timeout(Some(timeout))
        .expect("a read timeout");
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("the request is sent");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("the answer is read");
    answer
}

/// Runs `botauth args` with exactly `env`, and waits for it.
pub(crate) fn run_blocking<K, V>(args: &[&str], env: impl IntoIterator<Item = (K, V)>) -> Output
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run botauth")
}

/// [`run_blocking`] with `stdin` written to the process and then closed.
pub(crate) fn run_with_stdin<K, V>(
    args: &[&str],
    env: impl IntoIterator<Item = (K, V)>,
    stdin: &[u8],
) -> Output
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run botauth");
    let mut pipe = child.stdin.take().expect("its stdin");
    // The command may stop reading early (a usage error): a broken pipe is its answer, not ours.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("botauth output")
}

/// Asserts `stdout` follows the command's JSON style (crate README, "JSON output"): exactly one
/// JSON object, pretty-printed with two-space indentation, then a newline, nothing else; its
/// top-level members are `members`, in that order. Returns the object.
pub(crate) fn assert_json_style(stdout: &str, members: &[&str]) -> serde_json::Value {
    let value: serde_json::Value = serde_json::from_str(stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON value ({e}): {stdout}"));
    assert!(value.is_object(), "{stdout}");
    assert!(
        stdout.starts_with("{\n  \"") && stdout.ends_with("\n}\n"),
        "not pretty-printed, or not ending in one newline: {stdout:?}"
    );
    let top: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("  \""))
        .map(|l| l[3..].split_once("\": ").expect("a member line").0)
        .collect();
    assert_eq!(top, members, "{stdout}");
    value
}

/// [`run_blocking`] off the async runtime, so that an in-process sandbox keeps serving meanwhile.
pub(crate) async fn run<K, V>(args: &[&str], env: Vec<(K, V)>) -> Output
where
    K: AsRef<std::ffi::OsStr> + Send + 'static,
    V: AsRef<std::ffi::OsStr> + Send + 'static,
{
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_blocking(&args, env)
    })
    .await
    .expect("the botauth process task")
}

/// Process output as text.
pub(crate) fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts a `botauth demo` run showed the whole two-way flow: the activity in and answered 200,
/// the echo received by the sandbox's Bot Connector with one token request, the cached token
/// reused, the forged activity refused with 401 and no reply, refresh-ahead and single flight.
pub(crate) fn assert_two_way_demo(out: &Output, credential: &str) {
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{credential}\nstdout: {stdout}\nstderr: {}",
        text(&out.stderr)
    );
    for expected in [
        "POST /api/messages with a channel token",
        ") → HTTP 200 in",
        "(token requests: 1), and replied through the Connector",
        "\"echo: hello from the Bot Service\" in reply to activity",
        "the Connector received \"echo: and again\"; token requests so far: 1",
        "HTTP 401 (WWW-Authenticate: Bearer); the handler never ran; replies sent: 0",
        "(source: CacheRefreshing)",
        "token requests made: 1",
        "demo passed",
    ] {
        assert!(
            stdout.contains(expected),
            "{credential}: missing {expected:?}\n{stdout}"
        );
    }
}
