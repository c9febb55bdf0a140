//! `botauth validate`, run as a user would, against an in-process sandbox.

use std::ffi::OsString;
use std::io::Write;
use std::process::{Command, Output, Stdio};

mod common;

use botauth_sandbox::{ChannelTokenClaims, Fault, Route, Sandbox};
use common::{BIN, text};

const APP: &str = "bot-app-id";
const TEAMS: &str = "https://smba.trafficmanager.net/teams/";

async fn run(args: Vec<String>, stdin: Option<String>) -> Output {
    run_raw(
        args.into_iter().map(OsString::from).collect(),
        stdin.map(String::into_bytes),
    )
    .await
}

/// [`run`] with arguments and stdin that need not be UTF-8.
async fn run_raw(args: Vec<OsString>, stdin: Option<Vec<u8>>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(BIN)
            .arg("validate")
            .args(&args)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run botauth");
        let mut pipe = child.stdin.take().expect("stdin");
        if let Some(input) = stdin {
            pipe.write_all(&input).expect("write stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("botauth output")
    })
    .await
    .expect("the botauth process task")
}

fn args(sandbox: &Sandbox, extra: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = vec![
        "--app-id".into(),
        APP.into(),
        "--metadata-url".into(),
        sandbox.bot_service_metadata_url(),
        "--issuer".into(),
        sandbox.bot_service_issuer().into(),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn token(sandbox: &Sandbox) -> String {
    sandbox.mint_channel_token(ChannelTokenClaims::new(APP, TEAMS))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_token_prints_its_claims_and_exits_0() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    let out = run(
        args(
            &sandbox,
            &[
                "--token",
                &t,
                "--service-url",
                TEAMS,
                "--channel-id",
                "msteams",
            ],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["profile"], "bot_service");
    assert_eq!(json["audience"], APP);
    assert_eq!(json["service_url"], TEAMS);
    assert_eq!(json["claims"]["iss"], "https://api.botframework.com");
    assert!(
        !text(&out.stdout).contains(&t),
        "the token itself is not echoed"
    );

    // From stdin, with a trailing newline as `echo` gives.
    let out = run(args(&sandbox, &[]), Some(format!("{t}\n"))).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_exit_1_with_one_line_naming_the_kind() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    let cases: Vec<(Vec<String>, Option<String>, &str)> = vec![
        (
            args(&sandbox, &["--token", "not.a.jwt"]),
            None,
            "rejected: malformed\n",
        ),
        (
            args(&sandbox, &[]),
            Some(String::new()),
            "rejected: malformed\n",
        ),
        (
            args(
                &sandbox,
                &["--token", &t, "--service-url", "https://evil.example/"],
            ),
            None,
            "rejected: service_url\n",
        ),
        (
            args(&sandbox, &["--token", &t, "--channel-id", "telegram"]),
            None,
            "rejected: endorsement\n",
        ),
        (
            vec![
                "--app-id".into(),
                "other-bot".into(),
                "--metadata-url".into(),
                sandbox.bot_service_metadata_url(),
                "--issuer".into(),
                sandbox.bot_service_issuer().into(),
                "--token".into(),
                t.clone(),
            ],
            None,
            "rejected: audience\n",
        ),
        (
            vec![
                "--app-id".into(),
                APP.into(),
                "--metadata-url".into(),
                sandbox.bot_service_metadata_url(),
                "--issuer".into(),
                "https://other.example".into(),
                "--token".into(),
                t.clone(),
            ],
            None,
            "rejected: issuer\n",
        ),
    ];
    for (i, (a, stdin, expected)) in cases.into_iter().enumerate() {
        let out = run(a, stdin).await;
        assert_eq!(
            out.status.code(),
            Some(1),
            "case {i}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), expected, "case {i}");
        assert!(out.stdout.is_empty(), "case {i}");
    }
}

/// Issue 13 §4: a token that is not UTF-8 exited 2 (a usage error). It is a malformed token,
/// whether it comes on stdin or on the command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_is_not_utf8_is_rejected_as_malformed_with_exit_1() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    let mut one_byte_off = t.clone().into_bytes();
    one_byte_off[t.len() / 2] = 0xff;
    let mut trailing = t.clone().into_bytes();
    trailing.extend_from_slice(b"\xc3\x28\n");
    let inputs: Vec<Vec<u8>> = vec![
        b"\xff\xfe".to_vec(),
        b"\x80".to_vec(),
        one_byte_off,
        trailing,
        // A truncated UTF-8 sequence at the very end.
        b"eyJhbGciOiJSUzI1NiJ9.e30.AA\xe2\x82".to_vec(),
    ];
    let plain = |extra: &[&str]| -> Vec<OsString> {
        args(&sandbox, extra)
            .into_iter()
            .map(OsString::from)
            .collect()
    };
    for (i, input) in inputs.into_iter().enumerate() {
        let out = run_raw(plain(&[]), Some(input.clone())).await;
        assert_eq!(
            (out.status.code(), text(&out.stderr).as_str()),
            (Some(1), "rejected: malformed\n"),
            "stdin case {i}"
        );
        assert!(out.stdout.is_empty(), "stdin case {i}");

        // Only Unix lets an argument be arbitrary bytes.
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStringExt as _;
            let mut argv = plain(&[]);
            argv.push("--token".into());
            argv.push(OsString::from_vec(input));
            let out = run_raw(argv, None).await;
            assert_eq!(
                (out.status.code(), text(&out.stderr).as_str()),
                (Some(1), "rejected: malformed\n"),
                "argument case {i}"
            );
            assert!(out.stdout.is_empty(), "argument case {i}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_unavailable_exit_3_and_usage_errors_exit_2() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    sandbox.inject(Route::BotServiceMetadata, Fault::status(503));
    let out = run(args(&sandbox, &["--token", &t]), None).await;
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with("botauth: error: the signing keys from"),
        "{}",
        text(&out.stderr)
    );

    for usage in [
        vec!["--token".to_owned(), t.clone()],
        vec![
            "--app-id".into(),
            APP.into(),
            "--metadata-url".into(),
            sandbox.bot_service_metadata_url(),
            "--token".into(),
            t.clone(),
        ],
        vec!["--app-id".into(), APP.into(), "--bogus".into()],
        vec![
            "--app-id".into(),
            APP.into(),
            "--metadata-url".into(),
            "http://example.com/meta".into(),
            "--issuer".into(),
            "i".into(),
            "--token".into(),
            t.clone(),
        ],
        vec!["--app-id".into(), " ".into(), "--token".into(), t.clone()],
    ] {
        let out = run(usage.clone(), None).await;
        assert_eq!(
            out.status.code(),
            Some(2),
            "{usage:?}: {}",
            text(&out.stderr)
        );
    }
}
