//! `botauth sandbox --bot URL` serves the web console by default and prints its address;
//! `--no-console` turns it off (docs/console.md).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod common;
use common::BIN;

/// A running `botauth sandbox`, killed on drop.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `botauth sandbox args…`; returns it, its authority host and the printed console URL.
fn start(args: &[&str]) -> (Running, String, Option<String>) {
    let mut child = Command::new(BIN)
        .arg("sandbox")
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start botauth sandbox");
    let stdout = child.stdout.take().expect("its stdout");
    let (mut host, mut console) = (String::new(), None);
    // The output is written in one piece; the chat line comes last but for the console's.
    let mut chat_seen = false;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line of output");
        if let Some(value) = line.strip_prefix("export BOTAUTH_AUTHORITY_HOST=") {
            host = value.trim_matches('\'').to_owned();
        }
        if let Some(rest) = line.strip_prefix("# Web console: ") {
            console = rest.split_whitespace().next().map(str::to_owned);
            break;
        }
        if chat_seen || line.starts_with("# Chat:") {
            if chat_seen {
                break;
            }
            chat_seen = true;
            if args.contains(&"--no-console") {
                break;
            }
        }
    }
    (Running(child), host, console)
}

/// The status line and body of `GET url` (plain http on loopback).
fn get(url: &str) -> (String, String) {
    let answer = common::http_get(url, Duration::from_secs(10));
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

#[test]
fn the_console_is_on_with_bot_and_off_with_no_console() {
    let (_running, host, console) = start(&["--bot", "http://127.0.0.1:9/api/messages"]);
    let console = console.expect("the console URL is printed");
    assert_eq!(console, format!("{host}/console"));
    let (status, body) = get(&console);
    assert!(status.contains(" 200 "), "{status}");
    assert!(body.contains("botauth sandbox console"), "{body}");

    let (_running, host, console) =
        start(&["--bot", "http://127.0.0.1:9/api/messages", "--no-console"]);
    assert_eq!(console, None);
    let (status, _) = get(&format!("{host}/console"));
    assert!(status.contains(" 404 "), "{status}");
}
