//! `botauth validate`: judge one inbound token the way a bot's `/api/messages` would.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use botauth::core::internal::date::{self, UtcDateTime};
use botauth::http::HttpOptions;
use botauth::validator::{Algorithm, BotServiceProfile, Error, ErrorKind, Validator, dangerous};
use clap::Args;
use serde_json::Value;

use crate::dangerous::{JsonObject, decode_unverified};
use crate::decode::{MAX_RFC3339, span};

/// The clock skew tolerated on `exp` and `nbf`, set explicitly so that `--explain` states the
/// value the validator used.
const SKEW: Duration = Duration::from_secs(300);
/// Each key request's timeout (the validator's default) unless BOTAUTH_HTTP_TIMEOUT is set.
const KEYS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The bot's Microsoft App ID (the expected `aud`).
    #[arg(long, value_name = "ID")]
    app_id: String,
    /// OpenID metadata URL of the issuer (default: Bot Service, public cloud). Needs --issuer.
    #[arg(long, value_name = "URL", requires = "issuer")]
    metadata_url: Option<String>,
    /// The exact expected `iss` (default: https://api.botframework.com). Needs --metadata-url.
    #[arg(long, value_name = "ISS", requires = "metadata_url")]
    issuer: Option<String>,
    /// The activity's `serviceUrl`, compared with the `serviceurl` claim (unchecked when absent).
    #[arg(long, value_name = "URL")]
    service_url: Option<String>,
    /// The activity's `channelId`, which the key's endorsements must include (unchecked when absent).
    #[arg(long, value_name = "ID")]
    channel_id: Option<String>,
    /// The JWT; read from stdin when absent (preferable: arguments show in the process list).
    // An `OsString`, so that a token that is not UTF-8 is judged (malformed), not refused as usage.
    #[arg(long, value_name = "JWT")]
    token: Option<OsString>,
    /// On rejection, also say on stderr which rule failed, what was expected and what the token
    /// had (claim and header values only, never the token).
    #[arg(long)]
    explain: bool,
}

/// Exit codes: 0 valid, 1 rejected (a token that is not even UTF-8 included: `rejected: malformed`),
/// 2 usage or configuration error, 3 keys unavailable.
pub(crate) async fn run(args: ValidateArgs) -> ExitCode {
    let profile = match (&args.metadata_url, &args.issuer) {
        (Some(url), Some(issuer)) => BotServiceProfile::custom(url, issuer),
        _ => BotServiceProfile::public(),
    };
    let expected = Expected {
        app_id: &args.app_id,
        issuer: profile.issuer().to_owned(),
        metadata_url: profile.metadata_url().to_owned(),
        service_url: args.service_url.as_deref(),
        channel_id: args.channel_id.as_deref(),
    };
    // The validator's own default, unless BOTAUTH_HTTP_TIMEOUT says otherwise.
    let timeout = match std::env::var("BOTAUTH_HTTP_TIMEOUT") {
        Ok(value) => {
            match botauth::core::internal::parse_duration("BOTAUTH_HTTP_TIMEOUT", &value) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("botauth: error: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        Err(_) => KEYS_TIMEOUT,
    };
    let validator = match Validator::builder(&args.app_id)
        .bot_service(profile)
        .algorithms(Algorithm::DEFAULT)
        .clock_skew(SKEW)
        .settings(
            botauth::http::ClientSettings::new().http_options(HttpOptions {
                timeout,
                ..HttpOptions::default()
            }),
        )
        .build()
    {
        Ok(v) => v,
        Err(e) => return failed(&e),
    };
    // A JWT is ASCII (base64url and dots): bytes that are not even UTF-8 are a malformed token,
    // the caller's input and not a usage error, so they get the rejection contract (exit 1).
    let token = match args.token {
        Some(token) => token.into_string().ok(),
        None => {
            let mut input = Vec::new();
            // At most a little over the token size limit: stdin is not trusted to be small.
            let limit = 64 * 1024;
            if let Err(e) = std::io::stdin().take(limit).read_to_end(&mut input) {
                eprintln!("botauth: error: cannot read the token from stdin: {e}");
                return ExitCode::from(2);
            }
            String::from_utf8(input).ok()
        }
    };
    let Some(token) = token else {
        eprintln!("rejected: {}", ErrorKind::Malformed);
        if args.explain {
            eprintln!("token: not UTF-8 text, where a JWT is base64url segments and dots");
        }
        return ExitCode::from(1);
    };
    // Each check is on only when its value is given: this command judges a token alone.
    let mut activity = dangerous::unchecked_activity();
    if let Some(url) = &args.service_url {
        activity = activity.with_service_url(url);
    }
    if let Some(channel) = &args.channel_id {
        activity = activity.with_channel_id(channel);
    }
    let token = token.trim();
    let keys = format!("the signing keys of {}", expected.metadata_url);
    match crate::waiting::announced(keys, timeout, validator.validate(token, activity)).await {
        Ok(claims) => match serde_json::to_string_pretty(&claims) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("botauth: error: cannot print the claims: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            let code = failed(&e);
            if args.explain && e.is_rejection() {
                eprintln!("{}", explain(&e, token, &expected, SystemTime::now()));
            }
            code
        }
    }
}

fn failed(error: &Error) -> ExitCode {
    if error.is_rejection() {
        eprintln!("rejected: {}", error.kind());
        ExitCode::from(1)
    } else if error.is_retryable() {
        eprintln!("botauth: error: {}", crate::error_line(error));
        ExitCode::from(3)
    } else {
        eprintln!("botauth: error: {}", crate::error_line(error));
        ExitCode::from(2)
    }
}

/// What this run's validator was configured to accept, for `--explain`.
#[derive(Debug)]
struct Expected<'a> {
    app_id: &'a str,
    issuer: String,
    metadata_url: String,
    service_url: Option<&'a str>,
    channel_id: Option<&'a str>,
}

/// One line saying why the validator rejected `token`: the rule, what was expected, what the token
/// had. The decision is the validator's alone; this only reads the token **unverified** (through
/// [`crate::dangerous`]) to show the values that rule compared. Those are claim and header values
/// (`aud`, `iss`, `serviceurl`, `kid`, `alg`, times), never the token or its signature, and they are
/// escaped for the terminal: the token is attacker-controlled.
fn explain(error: &Error, token: &str, expected: &Expected<'_>, now: SystemTime) -> String {
    if let Error::TooLarge { .. } = error {
        // Over the limit: not worth decoding, and the limit is the whole explanation.
        return format!("token: {error}");
    }
    let decoded = decode_unverified(token);
    let header = |name: &str| shown(decoded.header.as_ref(), name);
    let claim = |name: &str| shown(decoded.claims.as_ref(), name);
    match error {
        Error::Audience => format!(
            "aud: expected {}, token has {}",
            expected.app_id,
            claim("aud")
        ),
        Error::Issuer => format!(
            "iss: expected {}, token has {}",
            expected.issuer,
            claim("iss")
        ),
        Error::ServiceUrl => format!(
            "serviceurl: expected {}, token has {}",
            expected.service_url.unwrap_or("(unchecked)"),
            claim("serviceurl")
        ),
        Error::Algorithm => {
            let allowed: Vec<&str> = Algorithm::DEFAULT.iter().map(|a| a.name()).collect();
            format!(
                "alg: {} allowed, token has {}",
                allowed.join("/"),
                header("alg")
            )
        }
        Error::UnknownKeyId => format!(
            "kid: {} is not in the JWKS of {}",
            header("kid"),
            expected.metadata_url
        ),
        Error::Endorsement => format!(
            "endorsements: key {} in the JWKS of {} does not endorse channel {}",
            header("kid"),
            expected.metadata_url,
            expected.channel_id.unwrap_or("(unchecked)")
        ),
        Error::Expired => time_line("exp", decoded.claims.as_ref(), now),
        Error::NotYetValid => time_line("nbf", decoded.claims.as_ref(), now),
        Error::MissingClaim { claim: name } => format!("{name}: required, token has none"),
        Error::ClaimType { claim: name } => {
            format!("{name}: {error}; token has {}", claim(name))
        }
        other => format!("{}: {other}", rule(other.kind())),
    }
}

/// The rule a kind of rejection enforces, as the line's first word.
fn rule(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::Algorithm => "alg",
        ErrorKind::CriticalHeader => "crit",
        ErrorKind::MissingKeyId | ErrorKind::UnknownKeyId | ErrorKind::UnusableKey => "kid",
        ErrorKind::BadSignature => "signature",
        ErrorKind::Issuer => "iss",
        ErrorKind::Audience => "aud",
        ErrorKind::Expired => "exp",
        ErrorKind::NotYetValid => "nbf",
        ErrorKind::ServiceUrl => "serviceurl",
        ErrorKind::Endorsement => "endorsements",
        ErrorKind::Tenant => "tid",
        ErrorKind::Caller => "appid",
        _ => "token",
    }
}

/// `exp: 2026-12-02T10:00:00Z, 12 min ago (skew 300 s)`.
fn time_line(name: &str, claims: Option<&JsonObject>, now: SystemTime) -> String {
    let skew = SKEW.as_secs();
    let Some(seconds) = claims
        .and_then(|c| c.get(name))
        .and_then(|v| v.as_i64().or_else(|| v.as_f64().map(|f| f.floor() as i64)))
        .filter(|s| (0..=MAX_RFC3339).contains(s))
    else {
        return format!("{name}: token has {} (skew {skew} s)", shown(claims, name));
    };
    let now = date::unix_seconds(now).max(0);
    let at = UtcDateTime::from_unix(seconds);
    let delta = seconds - now;
    let when = if delta > 0 {
        format!("in {}", span(delta.unsigned_abs()))
    } else {
        format!("{} ago", span(delta.unsigned_abs()))
    };
    format!("{name}: {at}, {when} (skew {skew} s)")
}

/// The longest value shown, in characters: enough for any URL or id a real token carries.
const SHOWN_MAX: usize = 200;

/// A member of the token's header or claims, for a person: a plain string as it is, anything else
/// (or a string that needs escaping: controls, bidi, quotes) as terminal-safe JSON; `none` when
/// absent; cut at [`SHOWN_MAX`] characters.
fn shown(object: Option<&JsonObject>, name: &str) -> String {
    let Some(value) = object.and_then(|o| o.get(name)) else {
        return "none".to_owned();
    };
    let json = crate::to_json(value, false).unwrap_or_default();
    let text = match value {
        // No escape was needed exactly when the JSON is the string plus its two quotes.
        Value::String(s) if !s.is_empty() && json.len() == s.len() + 2 => s.clone(),
        _ => json,
    };
    if text.chars().count() > SHOWN_MAX {
        let cut: String = text.chars().take(SHOWN_MAX).collect();
        format!("{cut}… ({} bytes)", text.len())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use std::time::UNIX_EPOCH;

    fn token(header: Value, claims: Value) -> String {
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    fn expected() -> Expected<'static> {
        Expected {
            app_id: "bot",
            issuer: "https://api.botframework.com".into(),
            metadata_url: "https://login.botframework.com/v1/.well-known/openidconfiguration"
                .into(),
            service_url: Some("https://smba.trafficmanager.net/teams/"),
            channel_id: Some("msteams"),
        }
    }

    #[test]
    fn values_are_shown_plain_or_escaped_never_raw_controls() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let cases = [
            (
                json!({"aud": "other"}),
                Error::Audience,
                "aud: expected bot, token has other",
            ),
            (
                json!({}),
                Error::Audience,
                "aud: expected bot, token has none",
            ),
            (
                json!({"aud": ["a", "b"]}),
                Error::Audience,
                r#"aud: expected bot, token has ["a","b"]"#,
            ),
            (
                json!({"aud": "x\u{1b}[2Jy\u{202e}"}),
                Error::Audience,
                r#"aud: expected bot, token has "x\u001b[2Jy\u202e""#,
            ),
            (
                json!({"exp": 1_800_000_000 - 750}),
                Error::Expired,
                "exp: 2027-01-15T07:47:30Z, 12 min ago (skew 300 s)",
            ),
            (
                json!({"nbf": 1_800_000_000 + 3_700}),
                Error::NotYetValid,
                "nbf: 2027-01-15T09:01:40Z, in 1 h 1 min (skew 300 s)",
            ),
            (
                json!({}),
                Error::BadSignature,
                "signature: the token's signature does not verify with the issuer's key",
            ),
            (
                json!({}),
                Error::MissingClaim {
                    claim: "serviceurl",
                },
                "serviceurl: required, token has none",
            ),
        ];
        for (claims, error, line) in cases {
            let t = token(json!({"alg": "RS256"}), claims);
            assert_eq!(explain(&error, &t, &expected(), now), line);
        }
        let long = "a".repeat(300);
        let t = token(json!({"alg": "RS256"}), json!({"aud": long}));
        let line = explain(&Error::Audience, &t, &expected(), now);
        assert!(
            line.ends_with(&format!("{}… (300 bytes)", "a".repeat(200))),
            "{line}"
        );
    }
}
