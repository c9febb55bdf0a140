//! `botauth sandbox --bot URL --oauth-connection NAME`: opening the sign-in link the chat prints
//! sends the bot `signin/verifyState` as Teams does, and prints one line without the code.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

mod common;
use common::BIN;

/// The answer to `GET url` (plain http on loopback), as the user's browser fetches it.
fn get(url: &str) -> String {
    common::http_get(url, Duration::from_secs(30))
}

fn next(lines: &Receiver<String>) -> String {
    lines
        .recv_timeout(Duration::from_secs(60))
        .expect("a chat line within 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn following_the_link_sends_verify_state_and_prints_one_line() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("set-up");
    let addr = listener.local_addr().expect("set-up");
    drop(listener);
    let bot_url = format!("http://{addr}{}", botauth_sso_bot::MESSAGES_PATH);
    let mut child = Command::new(BIN)
        .args([
            "sandbox",
            "--port",
            "0",
            "--bot",
            &bot_url,
            "--oauth-connection",
            "graph",
            "--no-console",
        ])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start botauth sandbox");
    let mut stdin = child.stdin.take().expect("set-up");
    let stdout = child.stdout.take().expect("set-up");
    let (env_tx, env_rx) = std::sync::mpsc::channel();
    let (line_tx, line_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut env = Vec::new();
        let mut env_tx = Some(env_tx);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("export ") {
                if let Some((k, v)) = rest.split_once('=') {
                    env.push((k.to_owned(), v.trim_matches('\'').to_owned()));
                }
            } else if line.starts_with("# Chat:") {
                if let Some(tx) = env_tx.take() {
                    let _ = tx.send(std::mem::take(&mut env));
                }
            } else if line.starts_with('>') || line.starts_with('<') || line.starts_with('!') {
                let _ = line_tx.send(line);
            }
        }
    });
    let env = tokio::task::spawn_blocking(move || env_rx.recv().expect("the exports"))
        .await
        .expect("set-up");
    let config = botauth::BotAuthConfig::from_vars(env).expect("the printed environment");
    let bot = botauth_sso_bot::SsoBot::from_config(config, "graph", None).expect("set-up");
    bot.spawn(addr).await.expect("set-up");

    let mut say = |text: &str| {
        stdin
            .write_all(format!("{text}\n").as_bytes())
            .expect("stdin");
        stdin.flush().expect("stdin");
    };
    say("whoami");
    let (lines, code) = tokio::task::spawn_blocking(move || {
        let mut lines = vec![next(&line_rx), next(&line_rx)];
        let link = lines[1]
            .strip_prefix("< [sign-in card] open ")
            .and_then(|rest| rest.strip_suffix(" and type the code it shows"))
            .unwrap_or_else(|| panic!("a sign-in card line: {lines:?}"))
            .to_owned();
        let page = get(&link);
        let start = page.find("id=\"magic-code\">").expect("a code on the page") + 16;
        let code: String = page[start..].chars().take(6).collect();
        lines.push(next(&line_rx));
        (lines, (code, line_rx))
    })
    .await
    .expect("set-up");
    let (code, line_rx) = code;
    assert_eq!(lines[0], "> whoami   [the bot answered HTTP 200]");
    assert_eq!(
        lines[2],
        "< [sign-in] signin/verifyState sent to the bot: HTTP 200"
    );
    assert_eq!(code.len(), 6);

    say("whoami");
    let lines =
        tokio::task::spawn_blocking(move || [next(&line_rx), next(&line_rx), next(&line_rx)])
            .await
            .expect("set-up");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        lines,
        [
            "> whoami   [the bot answered HTTP 200]".to_owned(),
            "< signed in as Sandbox User".to_owned(),
            "< you are Sandbox User".to_owned(),
        ]
    );
    assert!(lines.iter().all(|l| !l.contains(&code)));
}
