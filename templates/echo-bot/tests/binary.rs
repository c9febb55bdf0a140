//! The `echo-bot` binary: bad listening variables exit 2 with one line naming the variable;
//! `HEADER_READ_TIMEOUT_SECS` and `MAX_CONNECTIONS` reach the server; SIGTERM stops it
//! gracefully.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_echo-bot");
/// An upper bound that only a broken binary (or a machine far past overloaded) reaches.
const GENEROUS: Duration = Duration::from_secs(30);

/// A bot configuration that needs no network at start-up (botas dialect, a client secret).
const BOT_VARS: [(&str, &str); 3] = [
    ("CLIENT_ID", "00000000-0000-0000-0000-0000000000b0"),
    ("TENANT_ID", "00000000-0000-0000-0000-0000000000c0"),
    ("CLIENT_SECRET", "echo-bot-binary-test-secret"),
];

/// Kills the bot if the test fails half-way, so that no stray server outlives it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn run(vars: &[(&str, &str)]) -> Output {
    Command::new(BIN)
        .env_clear()
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run echo-bot")
}

fn assert_refused(vars: &[(&str, &str)], expected_stderr: &str) {
    let output = run(vars);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stderr), expected_stderr);
    assert!(output.stdout.is_empty(), "{output:?}");
}

#[test]
fn a_host_name_as_bind_address_exits_2_naming_the_variable() {
    assert_refused(
        &[("BIND_ADDRESS", "localhost")],
        "echo-bot: BIND_ADDRESS must be an IPv4 or IPv6 address, e.g. 0.0.0.0 (all interfaces, \
         the default) or 127.0.0.1 / ::1 (this machine only), not \"localhost\"\n",
    );
}

#[test]
fn a_bind_address_with_a_port_exits_2_pointing_at_port() {
    assert_refused(
        &[("BIND_ADDRESS", "127.0.0.1:3978")],
        "echo-bot: BIND_ADDRESS takes the address alone, not \"127.0.0.1:3978\": put the port in PORT\n",
    );
}

#[test]
fn a_bad_header_read_timeout_exits_2_naming_the_variable() {
    assert_refused(
        &[("HEADER_READ_TIMEOUT_SECS", "10s")],
        "echo-bot: HEADER_READ_TIMEOUT_SECS must be whole seconds from 1 to 3600, e.g. 10, not \"10s\"\n",
    );
}

#[test]
fn a_bad_max_connections_exits_2_naming_the_variable() {
    assert_refused(
        &[("MAX_CONNECTIONS", "0")],
        "echo-bot: MAX_CONNECTIONS must be a whole number from 1 to 100000, e.g. 256, not \"0\"\n",
    );
}

#[test]
fn a_bad_port_exits_2_naming_the_variable() {
    assert_refused(
        &[("PORT", "70000")],
        "echo-bot: PORT must be a port number from 0 to 65535, e.g. 3978, not \"70000\"\n",
    );
}

#[cfg(unix)]
#[test]
fn the_binary_applies_the_timeout_and_stops_on_sigterm() {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .env_clear()
            .envs(BOT_VARS)
            .envs([
                ("PORT", "0"),
                ("BIND_ADDRESS", "127.0.0.1"),
                ("HEADER_READ_TIMEOUT_SECS", "1"),
                ("MAX_CONNECTIONS", "64"),
                // BOT_VARS point at nothing reachable: the check has tests of its own.
                ("STARTUP_CHECK", "false"),
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo-bot"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(GENEROUS)
            .expect("echo-bot logs another line")
    };

    // The first line with the address (a WARN that the start-up check is off comes before it).
    let listening = loop {
        let line = next_line();
        if line.contains("listening on") {
            break line;
        }
    };
    let addr = listening
        .split_once("listening on http://")
        .and_then(|(_, rest)| rest.split_once("/api/messages"))
        .map(|(addr, _)| addr.to_owned())
        .unwrap_or_else(|| panic!("no listening line: {listening}"));
    assert!(addr.starts_with("127.0.0.1:"), "{listening}");
    assert!(listening.contains("header_read_timeout=1s"), "{listening}");
    assert!(listening.contains("max_connections=64"), "{listening}");

    // A client that never finishes its headers is closed by the configured timeout.
    let started = Instant::now();
    let mut stream = TcpStream::connect(&addr).expect("connect to echo-bot");
    stream
        .set_read_timeout(Some(GENEROUS))
        .expect("set timeout");
    stream
        .write_all(b"POST /api/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("write the partial header");
    let mut buf = [0u8; 256];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        other => panic!("expected the connection to be closed, got {other:?}"),
    }
    assert!(started.elapsed() >= Duration::from_secs(1));

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let mut after_kill = Vec::new();
    while !after_kill
        .iter()
        .any(|line: &String| line.contains("echo bot stopped"))
    {
        after_kill.push(next_line());
    }
    assert!(
        after_kill
            .iter()
            .any(|line| line.contains("SIGTERM received")),
        "{after_kill:?}"
    );
    let deadline = Instant::now() + GENEROUS;
    let exit = loop {
        if let Some(exit) = child.0.try_wait().expect("wait for echo-bot") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "echo-bot did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    reader.join().expect("the reader thread");
    let mut stderr = String::new();
    child
        .0
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(stderr, "");
}
