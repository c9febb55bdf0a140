//! `botauth decode`: what a token says, offline, like jwt.ms, and **unverified**.
//!
//! The decoding itself is in [`crate::dangerous`]; this module explains it: times in RFC 3339 and
//! relative to now, and which issuer the token claims to come from. Everything printed comes from
//! the token alone: nothing is fetched, nothing from the environment is added.

use std::ffi::OsString;
use std::io::{IsTerminal as _, Read as _};
use std::process::ExitCode;
use std::time::SystemTime;

use botauth::core::internal::date::{self, UtcDateTime};
use clap::Args;
use serde::Serialize;
use serde_json::Value;

use crate::dangerous::{JsonObject, UnverifiedToken, decode_unverified};

/// The first line on stderr, on every run that read a token.
const BANNER: &str = "UNVERIFIED: the signature was not checked; use `botauth validate` to verify";

/// More than any token; stdin is not trusted to be small.
const MAX_INPUT: u64 = 1024 * 1024;

#[derive(Debug, Args)]
pub(crate) struct DecodeArgs {
    /// The JWT (a `Bearer ` prefix is allowed); read from stdin when absent (preferable:
    /// arguments show in the process list).
    // An `OsString`: bytes that are not UTF-8 are a malformed token to explain, not a usage error.
    #[arg(long, value_name = "JWT")]
    token: Option<OsString>,
}

/// Exit codes: 0 decoded, 1 malformed (what could be decoded is still printed), 2 usage.
pub(crate) fn run(args: DecodeArgs) -> ExitCode {
    let input = match args.token {
        Some(token) => token.to_string_lossy().into_owned(),
        None => match read_stdin() {
            Ok(input) => input,
            Err(message) => {
                eprintln!("botauth: error: {message}");
                return ExitCode::from(2);
            }
        },
    };
    let Some(token) = strip(&input) else {
        eprintln!("botauth: error: no token given: pass --token JWT or write the token to stdin");
        return ExitCode::from(2);
    };
    let decoded = explain(token, SystemTime::now());
    eprintln!("{BANNER}");
    for line in &decoded.malformed {
        eprintln!("malformed: {line}");
    }
    for line in &decoded.notes {
        eprintln!("note: {line}");
    }
    let printed = crate::print_json(&decoded.report);
    if printed != ExitCode::SUCCESS {
        return printed;
    }
    if decoded.malformed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn read_stdin() -> Result<String, String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("botauth: reading the token from stdin (paste it, then Ctrl-D)");
    }
    let mut bytes = Vec::new();
    stdin
        .lock()
        .take(MAX_INPUT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the token from stdin: {e}"))?;
    if bytes.len() as u64 > MAX_INPUT {
        return Err("stdin holds more than 1 MiB, which is not a token".to_owned());
    }
    // A JWT is ASCII; anything else fails in base64url decoding, which names where.
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The token without surrounding whitespace or an `Authorization` scheme; `None` when empty.
fn strip(input: &str) -> Option<&str> {
    let input = input.trim();
    // The scheme matches in any case (docs/protocol.md §6 rule 1).
    let token = match input.get(..7) {
        Some(scheme) if scheme.eq_ignore_ascii_case("bearer ") => input[7..].trim_start(),
        _ if input.eq_ignore_ascii_case("bearer") => "",
        _ => input,
    };
    (!token.is_empty()).then_some(token)
}

/// What `decode` prints for one token.
#[derive(Debug)]
pub(crate) struct Decoded {
    /// The JSON object for stdout.
    pub(crate) report: Report,
    /// `malformed: …` lines: what is wrong with the token's form. Exit 1 when any.
    pub(crate) malformed: Vec<String>,
    /// `note: …` lines: a well-formed token that no Microsoft issuer would make.
    pub(crate) notes: Vec<String>,
}

/// The JSON object on stdout. Its members, in this order, are part of the command's interface
/// (documented in the crate README); add members at the end, never rename.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    header: Option<JsonObject>,
    claims: Option<JsonObject>,
    times: Times,
    issuer: String,
    signature: Signature,
}

#[derive(Debug, Serialize)]
struct Times {
    exp: Option<Time>,
    nbf: Option<Time>,
    iat: Option<Time>,
}

#[derive(Debug, Serialize)]
struct Time {
    /// The claim's value as the token has it (a NumericDate may have a fraction).
    unix: serde_json::Number,
    /// `null` when the value is before 1970 or after 9999.
    utc: Option<String>,
    relative: Option<String>,
}

#[derive(Debug, Serialize)]
struct Signature {
    present: bool,
    bytes: Option<usize>,
}

/// Decodes and explains `token` as of `now`.
pub(crate) fn explain(token: &str, now: SystemTime) -> Decoded {
    let UnverifiedToken {
        header,
        claims,
        signature_present,
        signature_bytes,
        mut malformed,
    } = decode_unverified(token);
    let now = date::unix_seconds(now);
    let mut notes = Vec::new();
    let times = match &claims {
        Some(c) => Times {
            exp: time(c, "exp", now, &mut malformed),
            nbf: time(c, "nbf", now, &mut malformed),
            iat: time(c, "iat", now, &mut malformed),
        },
        None => Times {
            exp: None,
            nbf: None,
            iat: None,
        },
    };
    let issuer = match &claims {
        Some(c) => recognise_issuer(c, &mut notes),
        None => UNKNOWN.to_owned(),
    };
    Decoded {
        report: Report {
            header,
            claims,
            times,
            issuer,
            signature: Signature {
                present: signature_present,
                bytes: signature_bytes,
            },
        },
        malformed,
        notes,
    }
}

/// 9999-12-31T23:59:59Z: RFC 3339 has four-digit years.
pub(crate) const MAX_RFC3339: i64 = 253_402_300_799;

fn time(claims: &JsonObject, name: &str, now: i64, malformed: &mut Vec<String>) -> Option<Time> {
    let value = claims.get(name)?;
    let Value::Number(number) = value else {
        malformed.push(format!(
            "claims: {name} is not a number (a NumericDate: seconds since 1970)"
        ));
        return None;
    };
    // A fraction is allowed (RFC 7519 §2); whole seconds are enough to explain it.
    let seconds = number
        .as_i64()
        .or_else(|| number.as_f64().map(|f| f.floor() as i64))
        .filter(|s| (0..=MAX_RFC3339).contains(s));
    Some(Time {
        unix: number.clone(),
        utc: seconds.map(|s| UtcDateTime::from_unix(s).to_string()),
        relative: seconds.map(|s| relative(name, s - now)),
    })
}

/// `delta` is the claim's time minus now, in seconds.
fn relative(name: &str, delta: i64) -> String {
    let span = span(delta.unsigned_abs());
    match (name, delta > 0) {
        ("exp", true) => format!("valid for {span}"),
        ("exp", false) => format!("expired {span} ago"),
        ("nbf", true) => format!("not valid for another {span}"),
        ("nbf", false) => format!("valid since {span} ago"),
        (_, true) => format!("{span} in the future"),
        (_, false) => format!("{span} ago"),
    }
}

/// `42 s`, `52 min`, `3 h 5 min`, `12 days`: rounded down, as a person would read a clock
/// (also `validate --explain`'s times).
pub(crate) fn span(seconds: u64) -> String {
    let minutes = seconds / 60;
    let hours = minutes / 60;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3_600 => format!("{minutes} min"),
        3_600..172_800 if minutes % 60 == 0 => format!("{hours} h"),
        3_600..172_800 => format!("{hours} h {} min", minutes % 60),
        _ => format!("{} days", hours / 24),
    }
}

const UNKNOWN: &str = "unknown";

/// The Bot Service issuers, one per cloud (docs/protocol.md §6, "Metadata documents").
const BOT_SERVICE: [(&str, &str); 3] = [
    ("https://api.botframework.com", "Bot Service, public cloud"),
    ("https://api.botframework.us", "Bot Service, US Gov"),
    ("https://api.botframework.azure.cn", "Bot Service, China"),
];

/// Entra issuers: `{prefix}{tenant}{suffix}`, the `ver` such a token has, and its name. v2 on each
/// cloud's authority host (docs/protocol.md §2, "Clouds"), v1 on `sts.windows.net` (§6).
const ENTRA: [(&str, &str, &str, &str); 4] = [
    (
        "https://login.microsoftonline.com/",
        "/v2.0",
        "2.0",
        "Entra v2",
    ),
    (
        "https://login.microsoftonline.us/",
        "/v2.0",
        "2.0",
        "Entra v2",
    ),
    (
        "https://login.chinacloudapi.cn/",
        "/v2.0",
        "2.0",
        "Entra v2",
    ),
    ("https://sts.windows.net/", "/", "1.0", "Entra v1"),
];

/// The tenants whose tokens the Bot Framework Emulator (and skills) present (docs/protocol.md §6).
const EMULATOR_TENANTS: [&str; 2] = [
    "d6d49420-f39b-4df7-a1dc-d59a935871db",
    "f8cdef31-a31e-4b4a-93e4-5f571e91255a",
];

/// Who the token claims to come from, by `iss`, checked against `ver` and `tid` as Entra makes
/// them: a token whose `ver` or `tid` contradicts its `iss` was not made by Entra (docs/protocol.md
/// §6), so it is `unknown`, with a note saying why.
fn recognise_issuer(claims: &JsonObject, notes: &mut Vec<String>) -> String {
    let Some(iss) = claims.get_str("iss") else {
        return UNKNOWN.to_owned();
    };
    if let Some((_, name)) = BOT_SERVICE.iter().find(|(issuer, _)| *issuer == iss) {
        return (*name).to_owned();
    }
    let Some((tenant, version, name)) = ENTRA.iter().find_map(|(prefix, suffix, version, name)| {
        let tenant = iss.strip_prefix(prefix)?.strip_suffix(suffix)?;
        // The same tenant syntax botauth accepts in configuration (docs/protocol.md §2).
        let valid = !tenant.is_empty()
            && tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        valid.then_some((tenant, *version, *name))
    }) else {
        return UNKNOWN.to_owned();
    };
    if let Some(ver) = claims.get("ver").filter(|v| v.as_str() != Some(version)) {
        notes.push(format!(
            "iss is an {name} issuer but ver is {}: Entra does not make such a token",
            shown(ver)
        ));
        return UNKNOWN.to_owned();
    }
    if let Some(tid) = claims.get("tid").filter(|t| t.as_str() != Some(tenant)) {
        notes.push(format!(
            "iss names tenant {tenant} but tid is {}: Entra does not make such a token",
            shown(tid)
        ));
        return UNKNOWN.to_owned();
    }
    if EMULATOR_TENANTS
        .iter()
        .any(|t| t.eq_ignore_ascii_case(tenant))
    {
        return "Emulator".to_owned();
    }
    format!("{name}, tenant {tenant}")
}

/// A value from the token in a stderr line, as JSON a terminal can show safely.
fn shown(value: &Value) -> String {
    crate::to_json(value, false).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    const NOW: i64 = 1_750_000_000;

    fn at(unix: i64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(unix.unsigned_abs())
    }

    fn token(claims: Value) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string()),
            URL_SAFE_NO_PAD.encode([1u8; 256])
        )
    }

    fn explain_claims(claims: Value) -> Decoded {
        explain(&token(claims), at(NOW))
    }

    #[test]
    fn the_whole_report_of_a_bot_service_token() {
        let d = explain_claims(serde_json::json!({
            "serviceurl": "https://smba.trafficmanager.net/teams/",
            "nbf": NOW - 300,
            "exp": NOW + 52 * 60 + 10,
            "iss": "https://api.botframework.com",
            "aud": "00000000-0000-0000-0000-00000000b07a",
        }));
        assert!(d.malformed.is_empty() && d.notes.is_empty(), "{d:?}");
        let nbf = NOW - 300;
        let exp = NOW + 3130;
        // The exact text: members in the documented order, header and claims in the token's.
        assert_eq!(
            serde_json::to_string_pretty(&d.report).unwrap(),
            format!(
                r#"{{
  "header": {{
    "alg": "RS256",
    "kid": "k1",
    "typ": "JWT"
  }},
  "claims": {{
    "aud": "00000000-0000-0000-0000-00000000b07a",
    "exp": {exp},
    "iss": "https://api.botframework.com",
    "nbf": {nbf},
    "serviceurl": "https://smba.trafficmanager.net/teams/"
  }},
  "times": {{
    "exp": {{
      "unix": {exp},
      "utc": "2025-06-15T15:58:50Z",
      "relative": "valid for 52 min"
    }},
    "nbf": {{
      "unix": {nbf},
      "utc": "2025-06-15T15:01:40Z",
      "relative": "valid since 5 min ago"
    }},
    "iat": null
  }},
  "issuer": "Bot Service, public cloud",
  "signature": {{
    "present": true,
    "bytes": 256
  }}
}}"#
            )
        );
    }

    #[test]
    fn relative_times() {
        // (claim, seconds from now, text)
        let cases = [
            ("exp", -180, "expired 3 min ago"),
            ("exp", -200, "expired 3 min ago"),
            ("exp", 0, "expired 0 s ago"),
            ("exp", 59, "valid for 59 s"),
            ("exp", 52 * 60, "valid for 52 min"),
            ("exp", 3600, "valid for 1 h"),
            ("exp", 3600 * 3 + 5 * 60 + 59, "valid for 3 h 5 min"),
            ("exp", 3600 * 48, "valid for 2 days"),
            ("exp", -86_400 * 400, "expired 400 days ago"),
            ("nbf", 90, "not valid for another 1 min"),
            ("nbf", -90, "valid since 1 min ago"),
            ("iat", -3700, "1 h 1 min ago"),
            ("iat", 120, "2 min in the future"),
        ];
        for (claim, delta, text) in cases {
            let d = explain_claims(serde_json::json!({ claim: NOW + delta }));
            let report = serde_json::to_value(&d.report).unwrap();
            assert_eq!(report["times"][claim]["relative"], text, "{claim} {delta}");
        }
    }

    #[test]
    fn odd_times() {
        let d = explain_claims(serde_json::json!({
            "exp": 1_750_000_100.75,
            "nbf": -5,
            "iat": 1e15,
        }));
        assert!(d.malformed.is_empty(), "{d:?}");
        let r = serde_json::to_value(&d.report).unwrap();
        assert_eq!(
            r["times"]["exp"],
            serde_json::json!({"unix": 1_750_000_100.75, "utc": "2025-06-15T15:08:20Z", "relative": "valid for 1 min"})
        );
        assert_eq!(
            r["times"]["nbf"],
            serde_json::json!({"unix": -5, "utc": null, "relative": null})
        );
        assert_eq!(
            r["times"]["iat"],
            serde_json::json!({"unix": 1e15, "utc": null, "relative": null})
        );

        let d = explain_claims(serde_json::json!({"exp": "tomorrow"}));
        assert_eq!(
            d.malformed,
            ["claims: exp is not a number (a NumericDate: seconds since 1970)"]
        );
        assert!(serde_json::to_value(&d.report).unwrap()["times"]["exp"].is_null());
    }

    #[test]
    fn issuers() {
        let tenant = "11111111-2222-3333-4444-555555555555";
        let emulator = "d6d49420-f39b-4df7-a1dc-d59a935871db";
        let v2 = |host: &str, t: &str| format!("https://{host}/{t}/v2.0");
        let v1 = |t: &str| format!("https://sts.windows.net/{t}/");
        // (claims, issuer, note)
        let cases: Vec<(Value, String, Option<String>)> = vec![
            (
                serde_json::json!({"iss": "https://api.botframework.com"}),
                "Bot Service, public cloud".into(),
                None,
            ),
            (
                serde_json::json!({"iss": "https://api.botframework.us"}),
                "Bot Service, US Gov".into(),
                None,
            ),
            (
                serde_json::json!({"iss": "https://api.botframework.azure.cn"}),
                "Bot Service, China".into(),
                None,
            ),
            (
                serde_json::json!({"iss": v2("login.microsoftonline.com", tenant), "ver": "2.0", "tid": tenant}),
                format!("Entra v2, tenant {tenant}"),
                None,
            ),
            (
                serde_json::json!({"iss": v2("login.microsoftonline.us", tenant)}),
                format!("Entra v2, tenant {tenant}"),
                None,
            ),
            (
                serde_json::json!({"iss": v2("login.chinacloudapi.cn", tenant), "ver": "2.0"}),
                format!("Entra v2, tenant {tenant}"),
                None,
            ),
            (
                serde_json::json!({"iss": v1(tenant), "ver": "1.0", "tid": tenant}),
                format!("Entra v1, tenant {tenant}"),
                None,
            ),
            (
                serde_json::json!({"iss": v1(emulator), "ver": "1.0", "tid": emulator}),
                "Emulator".into(),
                None,
            ),
            (
                serde_json::json!({"iss": v2("login.microsoftonline.com", "f8cdef31-a31e-4b4a-93e4-5f571e91255a"), "ver": "2.0"}),
                "Emulator".into(),
                None,
            ),
            (
                serde_json::json!({"iss": v1(tenant), "ver": "2.0"}),
                "unknown".into(),
                Some(
                    "iss is an Entra v1 issuer but ver is \"2.0\": Entra does not make such a token"
                        .into(),
                ),
            ),
            (
                serde_json::json!({"iss": v2("login.microsoftonline.com", tenant), "tid": emulator}),
                "unknown".into(),
                Some(format!(
                    "iss names tenant {tenant} but tid is \"{emulator}\": Entra does not make such a token"
                )),
            ),
            // Near misses are not recognised: issuers compare exactly (docs/protocol.md §6 rule 4).
            (
                serde_json::json!({"iss": "https://api.botframework.com/"}),
                "unknown".into(),
                None,
            ),
            (
                serde_json::json!({"iss": "https://login.microsoftonline.com/a/b/v2.0"}),
                "unknown".into(),
                None,
            ),
            (
                serde_json::json!({"iss": "https://login.microsoftonline.com//v2.0"}),
                "unknown".into(),
                None,
            ),
            (
                serde_json::json!({"iss": "https://evil.example/api.botframework.com"}),
                "unknown".into(),
                None,
            ),
            (serde_json::json!({"iss": 42}), "unknown".into(), None),
            (serde_json::json!({}), "unknown".into(), None),
        ];
        for (claims, issuer, note) in cases {
            let d = explain_claims(claims.clone());
            assert_eq!(d.report.issuer, issuer, "{claims}");
            assert_eq!(d.notes, note.into_iter().collect::<Vec<_>>(), "{claims}");
        }
    }

    #[test]
    fn a_token_without_claims_still_reports_the_rest() {
        let d = explain("eyJhbGciOiJub25lIn0.!.", at(NOW));
        let r = serde_json::to_value(&d.report).unwrap();
        assert_eq!(
            r,
            serde_json::json!({
                "header": {"alg": "none"},
                "claims": null,
                "times": {"exp": null, "nbf": null, "iat": null},
                "issuer": "unknown",
                "signature": {"present": false, "bytes": 0},
            })
        );
        assert_eq!(
            d.malformed,
            ["claims: not base64url (Invalid symbol 33, offset 0.)"]
        );
    }

    #[test]
    fn stripping_the_input() {
        assert_eq!(strip("  a.b.c\n"), Some("a.b.c"));
        assert_eq!(strip("Bearer a.b.c"), Some("a.b.c"));
        assert_eq!(strip("bearer   a.b.c \r\n"), Some("a.b.c"));
        assert_eq!(strip("BEARER a.b.c"), Some("a.b.c"));
        assert_eq!(strip("Bearer "), None);
        assert_eq!(strip(" \n"), None);
        assert_eq!(strip("Bearerish"), Some("Bearerish"));
        assert_eq!(strip("é"), Some("é"));
    }
}
