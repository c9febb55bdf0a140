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

/// Issue 16 §1, `--explain`: runs `args` with and without `--explain`. Both exit 1 with an empty
/// stdout; without it stderr is exactly `rejected: <kind>`, with it that same first line and then
/// exactly `line`. Neither shows the token.
async fn assert_explained(args: Vec<String>, token: &str, kind: &str, line: &str) {
    let plain = run(args.clone(), None).await;
    assert_eq!(
        (plain.status.code(), text(&plain.stderr)),
        (Some(1), format!("rejected: {kind}\n")),
        "without --explain"
    );
    assert!(plain.stdout.is_empty());

    let mut explained = args;
    explained.push("--explain".into());
    let out = run(explained, None).await;
    let stderr = text(&out.stderr);
    assert_eq!(
        (out.status.code(), stderr.as_str()),
        (Some(1), format!("rejected: {kind}\n{line}\n").as_str()),
        "with --explain"
    );
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains(token), "the token itself is not shown");
    // Nor its signature, the part that makes it a credential.
    let signature = token.rsplit('.').next().expect("a signature segment");
    assert!(!stderr.contains(signature), "the signature is not shown");
}

fn now() -> i64 {
    botauth::core::internal::date::unix_seconds(std::time::SystemTime::now())
}

/// `2026-12-02T10:00:00Z` for Unix seconds.
fn rfc3339(secs: i64) -> String {
    botauth::core::internal::date::UtcDateTime::from_unix(secs).to_string()
}

#[test]
fn rfc3339_in_these_tests_is_right() {
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(1_800_000_000), "2027-01-15T08:00:00Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_aud_names_the_app_id_and_the_tokens_audience() {
    let sandbox = Sandbox::start().await.unwrap();
    let bot = "00000000-0000-0000-0000-00000000b07a";
    let other = "11111111-1111-1111-1111-111111111111";
    let t = sandbox.mint_channel_token(ChannelTokenClaims::new(other, TEAMS));
    let mut a = args(&sandbox, &["--token", &t]);
    a[1] = bot.into();
    assert_explained(
        a,
        &t,
        "audience",
        &format!("aud: expected {bot}, token has {other}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_iss_names_the_trusted_issuer_and_the_tokens() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut claims = ChannelTokenClaims::new(APP, TEAMS);
    claims.issuer = Some("https://evil.example".into());
    let t = sandbox.mint_channel_token(claims);
    assert_explained(
        args(&sandbox, &["--token", &t]),
        &t,
        "issuer",
        "iss: expected https://api.botframework.com, token has https://evil.example",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_exp_gives_the_time_how_long_ago_and_the_skew() {
    let sandbox = Sandbox::start().await.unwrap();
    // 12 min 30 s ago: "12 min" for the next 29 s, however slow the run.
    let exp = now() - 750;
    let mut claims = ChannelTokenClaims::new(APP, TEAMS);
    claims.extra.insert("exp".into(), exp.into());
    claims.extra.insert("nbf".into(), (exp - 3_600).into());
    claims.extra.insert("iat".into(), (exp - 3_600).into());
    let t = sandbox.mint_channel_token(claims);
    assert_explained(
        args(&sandbox, &["--token", &t]),
        &t,
        "expired",
        &format!("exp: {}, 12 min ago (skew 300 s)", rfc3339(exp)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_serviceurl_names_the_activitys_and_the_tokens() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    assert_explained(
        args(
            &sandbox,
            &["--token", &t, "--service-url", "https://evil.example/"],
        ),
        &t,
        "service_url",
        &format!("serviceurl: expected https://evil.example/, token has {TEAMS}"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_kid_names_the_key_and_the_metadata_it_is_missing_from() {
    let sandbox = Sandbox::start().await.unwrap();
    // A new signer, then unpublished: its tokens name a kid the JWKS (still holding the first
    // key) does not list.
    let kid = sandbox.rotate_bot_service_key();
    sandbox.remove_bot_service_key(&kid);
    let t = token(&sandbox);
    assert_explained(
        args(&sandbox, &["--token", &t]),
        &t,
        "unknown_key_id",
        &format!(
            "kid: {kid} is not in the JWKS of {}",
            sandbox.bot_service_metadata_url()
        ),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_alg_lists_the_allowed_algorithms_and_the_tokens() {
    let sandbox = Sandbox::start().await.unwrap();
    let now = now();
    let t = sandbox.sign_with_bot_service_key(
        &serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": sandbox.bot_service_kid()}),
        &serde_json::json!({
            "iss": sandbox.bot_service_issuer(),
            "aud": APP,
            "serviceurl": TEAMS,
            "nbf": now,
            "iat": now,
            "exp": now + 3_600,
        }),
    );
    assert_explained(
        args(&sandbox, &["--token", &t]),
        &t,
        "algorithm",
        "alg: RS256/RS384/RS512 allowed, token has HS256",
    )
    .await;
}

/// `--explain` changes nothing for a valid token (exit 0, the claims, an empty stderr) nor for
/// keys that cannot be fetched (exit 3, the one error line).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_adds_nothing_when_the_token_is_valid_or_the_keys_unavailable() {
    let sandbox = Sandbox::start().await.unwrap();
    let t = token(&sandbox);
    let out = run(
        args(
            &sandbox,
            &["--token", &t, "--service-url", TEAMS, "--explain"],
        ),
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["audience"], APP);

    sandbox.inject(Route::BotServiceMetadata, Fault::status(503));
    let out = run(args(&sandbox, &["--token", &t, "--explain"]), None).await;
    assert_eq!(out.status.code(), Some(3), "stderr: {}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("botauth: error: the signing keys from") && stderr.lines().count() == 1,
        "{stderr}"
    );
}
