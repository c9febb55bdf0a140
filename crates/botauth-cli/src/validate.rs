//! `botauth validate`: judge one inbound token the way a bot's `/api/messages` would.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use botauth::validator::{BotServiceProfile, Error, ErrorKind, Validator, dangerous};
use clap::Args;

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
}

/// Exit codes: 0 valid, 1 rejected (a token that is not even UTF-8 included: `rejected: malformed`),
/// 2 usage or configuration error, 3 keys unavailable.
pub(crate) async fn run(args: ValidateArgs) -> ExitCode {
    let profile = match (&args.metadata_url, &args.issuer) {
        (Some(url), Some(issuer)) => BotServiceProfile::custom(url, issuer),
        _ => BotServiceProfile::public(),
    };
    let validator = match Validator::builder(&args.app_id)
        .bot_service(profile)
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
    match validator.validate(token.trim(), activity).await {
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
        Err(e) => failed(&e),
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
