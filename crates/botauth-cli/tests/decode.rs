//! `botauth decode`, run as a user would. Times are made relative to the moment a test starts,
//! with half a minute to spare before a printed "52 min" would become "51 min".

use std::process::Output;
use std::time::SystemTime;

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth::core::internal::date::UtcDateTime;
use botauth_sandbox::{ChannelTokenClaims, Sandbox};
use common::{NO_ENV, assert_json_style, run_blocking, run_with_stdin, text};

const BANNER: &str =
    "UNVERIFIED: the signature was not checked; use `botauth validate` to verify\n";
const MEMBERS: [&str; 5] = ["header", "claims", "times", "issuer", "signature"];
const HEADER: &str = r#"{"alg":"RS256","kid":"k-2024","x5t":"k-2024","typ":"JWT"}"#;
const TENANT: &str = "11111111-2222-3333-4444-555555555555";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn jwt(header: &str, claims: &str) -> String {
    format!("{}.{}.{}", b64(header), b64(claims), b64([9u8; 256]))
}

fn now() -> u64 {
    u64::try_from(botauth::core::internal::date::unix_seconds(
        SystemTime::now(),
    ))
    .expect("a clock after 1970")
}

fn utc(unix: u64) -> String {
    UtcDateTime::from_unix(i64::try_from(unix).expect("a time before year 9999")).to_string()
}

fn decode(token: &str) -> Output {
    run_blocking(&["decode", "--token", token], NO_ENV)
}

#[test]
fn decode_prints_one_pretty_json_object_and_the_unverified_banner() {
    let now = now();
    let (nbf, exp) = (now - 210, now + 52 * 60 + 30);
    let claims = format!(
        r#"{{"serviceurl":"https://smba.trafficmanager.net/teams/","nbf":{nbf},"exp":{exp},"iss":"https://api.botframework.com","aud":"bot-app-id"}}"#
    );
    let token = jwt(HEADER, &claims);
    let out = decode(&token);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), BANNER);
    // Header and claims as the token has them (its order), then what decode adds.
    let expected = format!(
        r#"{{
  "header": {{
    "alg": "RS256",
    "kid": "k-2024",
    "x5t": "k-2024",
    "typ": "JWT"
  }},
  "claims": {{
    "serviceurl": "https://smba.trafficmanager.net/teams/",
    "nbf": {nbf},
    "exp": {exp},
    "iss": "https://api.botframework.com",
    "aud": "bot-app-id"
  }},
  "times": {{
    "exp": {{
      "unix": {exp},
      "utc": "{}",
      "relative": "valid for 52 min"
    }},
    "nbf": {{
      "unix": {nbf},
      "utc": "{}",
      "relative": "valid since 3 min ago"
    }},
    "iat": null
  }},
  "issuer": "Bot Service, public cloud",
  "signature": {{
    "present": true,
    "bytes": 256
  }}
}}
"#,
        utc(exp),
        utc(nbf)
    );
    assert_eq!(text(&out.stdout), expected);
    assert_json_style(&text(&out.stdout), &MEMBERS);
}

#[test]
fn decode_reads_stdin_and_allows_a_bearer_prefix() {
    let token = jwt(HEADER, r#"{"iss":"https://api.botframework.us","aud":"a"}"#);
    let expected = decode(&token);
    assert_eq!(expected.status.code(), Some(0));
    for input in [
        format!("{token}\n"),
        format!("Bearer {token}\n"),
        format!("  bearer   {token} \r\n"),
    ] {
        let out = run_with_stdin(&["decode"], NO_ENV, input.as_bytes());
        assert_eq!(
            out.status.code(),
            Some(0),
            "{input:?}: {}",
            text(&out.stderr)
        );
        assert_eq!(text(&out.stderr), BANNER);
        assert_eq!(out.stdout, expected.stdout, "{input:?}");
    }
    let json: serde_json::Value = serde_json::from_slice(&expected.stdout).unwrap();
    assert_eq!(json["issuer"], "Bot Service, US Gov");
}

/// An expired token is well formed: exit 0, and the times say how long ago.
#[test]
fn decode_an_expired_entra_token() {
    let now = now();
    let (iat, exp) = (now - 3600 - 200, now - 200);
    let token = jwt(
        HEADER,
        &format!(
            r#"{{"aud":"bot-app-id","iss":"https://login.microsoftonline.com/{TENANT}/v2.0","iat":{iat},"exp":{exp},"azp":"caller","tid":"{TENANT}","ver":"2.0"}}"#
        ),
    );
    let out = decode(&token);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), BANNER);
    let json = assert_json_style(&text(&out.stdout), &MEMBERS);
    assert_eq!(json["issuer"], format!("Entra v2, tenant {TENANT}"));
    assert_eq!(
        json["times"],
        serde_json::json!({
            "exp": {"unix": exp, "utc": utc(exp), "relative": "expired 3 min ago"},
            "nbf": null,
            "iat": {"unix": iat, "utc": utc(iat), "relative": "1 h 3 min ago"},
        })
    );
}

/// A token whose `ver` contradicts its `iss` is not recognised, and a note says why.
#[test]
fn decode_names_what_no_microsoft_issuer_would_make() {
    let token = jwt(
        HEADER,
        &format!(r#"{{"iss":"https://sts.windows.net/{TENANT}/","ver":"2.0"}}"#),
    );
    let out = decode(&token);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{BANNER}note: iss is an Entra v1 issuer but ver is \"2.0\": Entra does not make such a token\n"
        )
    );
    let json = assert_json_style(&text(&out.stdout), &MEMBERS);
    assert_eq!(json["issuer"], "unknown");

    let emulator = "d6d49420-f39b-4df7-a1dc-d59a935871db";
    let token = jwt(
        HEADER,
        &format!(r#"{{"iss":"https://sts.windows.net/{emulator}/","ver":"1.0"}}"#),
    );
    let json: serde_json::Value = serde_json::from_slice(&decode(&token).stdout).unwrap();
    assert_eq!(json["issuer"], "Emulator");
}

/// Malformed tokens: what could be decoded on stdout (same JSON shape), each defect on stderr as
/// `malformed: …`, exit 1.
#[test]
fn decode_malformed_tokens_as_far_as_they_go() {
    let header = b64(HEADER);
    let claims = b64(r#"{"iss":"https://api.botframework.com","aud":"a"}"#);
    let signature = b64([9u8; 256]);
    let header_json: serde_json::Value = serde_json::from_str(HEADER).unwrap();
    let claims_json = serde_json::json!({"iss": "https://api.botframework.com", "aud": "a"});
    let null = serde_json::Value::Null;
    // (token, header, claims, signature, stderr after the banner)
    let cases = [
        (
            format!("{header}.{claims}.not*base64"),
            &header_json,
            &claims_json,
            serde_json::json!({"present": true, "bytes": null}),
            "malformed: signature: not base64url (Invalid symbol 42, offset 3.)\n".to_owned(),
        ),
        (
            format!("{header}.{}.{signature}", b64(r#"{"aud": "#)),
            &header_json,
            &null,
            serde_json::json!({"present": true, "bytes": 256}),
            "malformed: claims: not JSON (EOF while parsing a value at line 1 column 8)\n"
                .to_owned(),
        ),
        (
            format!("{header}.{claims}"),
            &header_json,
            &claims_json,
            serde_json::json!({"present": false, "bytes": null}),
            "malformed: 2 segments, where a signed token (JWS) has 3: header.claims.signature\n"
                .to_owned(),
        ),
        (
            format!("{}.{claims}.{signature}", b64("RS256")),
            &null,
            &claims_json,
            serde_json::json!({"present": true, "bytes": 256}),
            "malformed: header: not JSON (expected value at line 1 column 1)\n".to_owned(),
        ),
        (
            format!("{header}.ZW5jcnlwdGVkLWtleQ.aXY.Y2lwaGVydGV4dA.dGFn"),
            &header_json,
            &null,
            serde_json::json!({"present": false, "bytes": null}),
            "malformed: 5 segments: an encrypted token (JWE), whose claims only its recipient can read\n"
                .to_owned(),
        ),
        (
            format!(
                "{header}.{}.{signature}",
                b64(r#"{"aud":"a","exp":"tomorrow","aud":"b"}"#)
            ),
            &header_json,
            &serde_json::json!({"aud": "b", "exp": "tomorrow"}),
            serde_json::json!({"present": true, "bytes": 256}),
            "malformed: claims: member \"aud\" appears more than once (a validator refuses such a token)\n\
             malformed: claims: exp is not a number (a NumericDate: seconds since 1970)\n"
                .to_owned(),
        ),
    ];
    for (token, header, claims, signature, stderr) in cases {
        let out = decode(&token);
        assert_eq!(out.status.code(), Some(1), "{token}");
        assert_eq!(text(&out.stderr), format!("{BANNER}{stderr}"), "{token}");
        let json = assert_json_style(&text(&out.stdout), &MEMBERS);
        assert_eq!(&json["header"], header, "{token}");
        assert_eq!(&json["claims"], claims, "{token}");
        assert_eq!(json["signature"], signature, "{token}");
    }
}

#[test]
fn decode_usage_errors_exit_2() {
    let none = "botauth: error: no token given: pass --token JWT or write the token to stdin\n";
    // (args, stdin, stderr)
    let too_big = vec![b'a'; 1024 * 1024 + 1];
    let cases: [(&[&str], &[u8], &str); 5] = [
        (&["decode"], b"", none),
        (&["decode"], b" \n", none),
        (&["decode", "--token", "Bearer "], b"", none),
        (
            &["decode"],
            &too_big,
            "botauth: error: stdin holds more than 1 MiB, which is not a token\n",
        ),
        (&["decode", "--no-such-flag"], b"", ""),
    ];
    for (args, stdin, stderr) in cases {
        let out = run_with_stdin(args, NO_ENV, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        if !stderr.is_empty() {
            assert_eq!(text(&out.stderr), stderr, "{args:?}");
        }
    }
}

/// A real channel token: decode shows the claims that `validate` verifies, and nothing that is
/// not in the token (the signature only as a length).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_shows_the_claims_validate_verifies() {
    let sandbox = Sandbox::start().await.unwrap();
    let service_url = "https://smba.trafficmanager.net/teams/";
    let token = sandbox.mint_channel_token(ChannelTokenClaims::new("bot-app-id", service_url));
    let decoded = common::run(&["decode", "--token", &token], NO_ENV).await;
    assert_eq!(decoded.status.code(), Some(0), "{}", text(&decoded.stderr));
    let validated = common::run(
        &[
            "validate",
            "--app-id",
            "bot-app-id",
            "--metadata-url",
            &sandbox.bot_service_metadata_url(),
            "--issuer",
            sandbox.bot_service_issuer(),
            "--token",
            &token,
        ],
        NO_ENV,
    )
    .await;
    assert_eq!(
        validated.status.code(),
        Some(0),
        "{}",
        text(&validated.stderr)
    );
    let stdout = text(&decoded.stdout);
    let decoded = assert_json_style(&stdout, &MEMBERS);
    let validated: serde_json::Value = serde_json::from_slice(&validated.stdout).unwrap();
    assert_eq!(decoded["claims"], validated["claims"]);
    assert_eq!(decoded["issuer"], "Bot Service, public cloud");
    assert_eq!(decoded["header"]["alg"], "RS256");
    assert_eq!(decoded["signature"]["bytes"], 256);
    let signature = token.rsplit('.').next().unwrap();
    assert!(!stdout.contains(signature) && !stdout.contains(&token));
}

/// What an untrusted token says cannot drive the terminal: escape sequences and bidirectional
/// controls in claims are printed as JSON escapes.
#[test]
fn decode_escapes_terminal_controls_in_claims() {
    let claims = serde_json::json!({
        "aud": "\u{1b}[2J\u{1b}[31mbot-app-id",
        "iss": "https://api.botframework.com\u{202e}moc.live",
        "\u{9b}1m": "x",
    });
    let out = decode(&jwt(HEADER, &claims.to_string()));
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for raw in ['\u{1b}', '\u{202e}', '\u{9b}'] {
        assert!(!stdout.contains(raw), "{raw:?} in {stdout}");
    }
    assert!(
        stdout.contains(r#""aud": "\u001b[2J\u001b[31mbot-app-id""#),
        "{stdout}"
    );
    assert!(stdout.contains(r#""iss": "https://api.botframework.com\u202emoc.live""#));
    assert!(stdout.contains(r#""\u009b1m": "x""#));
    let json = assert_json_style(&stdout, &MEMBERS);
    assert_eq!(json["claims"], claims);
    // Not the Bot Service issuer, however it looks.
    assert_eq!(json["issuer"], "unknown");
}

/// Bytes that are not UTF-8 in `--token` are a malformed token (exit 1), not a usage error.
#[test]
fn decode_a_token_that_is_not_utf8() {
    use std::os::unix::ffi::OsStrExt as _;
    let mut bytes = format!("{}.{}.", b64(HEADER), b64(r#"{"aud":"a"}"#)).into_bytes();
    bytes.push(0xff);
    let out = std::process::Command::new(common::BIN)
        .arg("decode")
        .arg("--token")
        .arg(std::ffi::OsStr::from_bytes(&bytes))
        .env_clear()
        .output()
        .expect("run botauth");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr),
        format!("{BANNER}malformed: signature: not base64url (Invalid symbol 239, offset 0.)\n")
    );
    let json = assert_json_style(&text(&out.stdout), &MEMBERS);
    assert_eq!(json["claims"]["aud"], "a");
}
