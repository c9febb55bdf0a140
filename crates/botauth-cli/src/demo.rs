//! `botauth demo`: the two-way flow, end to end, against an in-process sandbox: the sandbox plays
//! the Bot Service and the Bot Connector, the echo bot validates and replies.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use std::net::{Ipv4Addr, SocketAddr};

use botauth::{BotAuthConfig, TokenSource};
use botauth_echo_bot::{EchoBot, MESSAGES_PATH, SetupError};
use botauth_sandbox::{ChannelTokenClaims, Delivery, DemoCredential, Route, Sandbox};
use clap::{Args, ValueEnum};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CredentialKind {
    /// A client secret (botas dialect: CLIENT_ID, CLIENT_SECRET, TENANT_ID).
    Secret,
    /// A certificate (Agents SDK dialect: AuthType=Certificate, CertPemFile, CertKeyFile).
    Certificate,
    /// A user-assigned managed identity that is the bot (botas: MANAGED_IDENTITY_CLIENT_ID = CLIENT_ID).
    ManagedIdentity,
    /// A managed identity as the app's federated credential (botas: MANAGED_IDENTITY_CLIENT_ID ≠ CLIENT_ID).
    Federated,
    /// AKS workload identity (AZURE_CLIENT_ID, AZURE_TENANT_ID, AZURE_FEDERATED_TOKEN_FILE).
    WorkloadIdentity,
    /// A certificate in the sandbox's Key Vault, read with a managed identity (Identity.Web:
    /// SourceType=KeyVault); the demo then rotates it twice.
    KeyVault,
}

impl CredentialKind {
    /// Where the bot's outbound tokens come from: IMDS for a managed identity that is the bot,
    /// the Entra token endpoint (client credentials) for the others.
    fn token_route(self) -> Route {
        match self {
            CredentialKind::ManagedIdentity => Route::Imds,
            _ => Route::Token,
        }
    }

    fn demo(self) -> DemoCredential {
        match self {
            CredentialKind::Secret => DemoCredential::Secret,
            CredentialKind::Certificate => DemoCredential::Certificate,
            CredentialKind::ManagedIdentity => DemoCredential::ManagedIdentity,
            CredentialKind::Federated => DemoCredential::Federated,
            CredentialKind::WorkloadIdentity => DemoCredential::WorkloadIdentity,
            CredentialKind::KeyVault => DemoCredential::KeyVault,
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Which credential the bot uses.
    #[arg(long, value_enum, default_value_t = CredentialKind::Secret)]
    credential: CredentialKind,
    /// Concurrent callers in the single-flight step.
    #[arg(long, default_value_t = 1000)]
    callers: usize,
    /// User sign-in instead: OAuth card, magic code, Teams SSO exchange (de-duplicated, and
    /// 412 without consent) and sign-out, against the sandbox's Token Service.
    #[arg(long)]
    sso: bool,
}

pub(crate) async fn run(args: DemoArgs) -> ExitCode {
    if args.sso {
        return crate::demo_sso::run().await;
    }
    match demo(args).await {
        Ok(()) => {
            println!("\ndemo passed: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Err(DemoError::Botauth(e)) => crate::fail(&e),
        Err(DemoError::Check(what)) => {
            eprintln!("botauth: demo failed: {what}");
            ExitCode::from(1)
        }
    }
}

pub(crate) enum DemoError {
    Botauth(botauth::Error),
    Check(String),
}

impl From<botauth::Error> for DemoError {
    fn from(e: botauth::Error) -> Self {
        DemoError::Botauth(e)
    }
}

impl From<SetupError> for DemoError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Outbound(e) => DemoError::Botauth(e),
            other => DemoError::Check(format!("cannot build the echo bot: {other}")),
        }
    }
}

fn check(ok: bool, what: impl Into<String>) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what.into()))
    }
}

/// The audience of the forged activity's token: some other bot.
const FORGED_AUDIENCE: &str = "99999999-0000-0000-0000-00000000f0f0";

async fn deliver(
    sandbox: &Sandbox,
    bot_url: &str,
    activity: &Value,
    bearer: Option<&str>,
) -> Result<Delivery, DemoError> {
    sandbox
        .deliver_activity(bot_url, activity, bearer)
        .await
        .map_err(|e| DemoError::Check(format!("the bot cannot be reached: {e}")))
}

fn micros(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{} µs", d.as_micros())
    } else {
        format!("{:.1} ms", d.as_secs_f64() * 1000.0)
    }
}

async fn demo(args: DemoArgs) -> Result<(), DemoError> {
    let sandbox = Sandbox::start()
        .await
        .map_err(|e| DemoError::Check(format!("cannot start the sandbox: {e}")))?;
    println!("botauth demo: a Teams message in, verified, and answered, against the local sandbox");
    println!(
        "  sandbox (Entra ID, Bot Service and Bot Connector stand-in): {}",
        sandbox.url()
    );

    // Kept alive until the end of the demo: its files are removed when it is dropped.
    let environment = sandbox
        .demo_environment(args.credential.demo())
        .map_err(|e| {
            DemoError::Check(format!(
                "cannot set up the {} credential: {e}",
                args.credential.demo()
            ))
        })?;
    if let Some(thumbprint) = environment.certificate_thumbprint() {
        println!("  the sandbox app has this certificate registered (thumbprint {thumbprint})");
    }
    // The bot trusts the sandbox's Bot Service keys and may reply to the sandbox's Connector:
    // the two settings a real deployment gets from the cloud defaults.
    let mut env = environment.bot_vars().to_vec();
    if args.credential == CredentialKind::KeyVault {
        // Short enough to watch the scheduled check (the default is an hour).
        env.push((
            "BOTAUTH_KEY_VAULT_ROTATION_CHECK".into(),
            format!("{}s", ROTATION_CHECK.as_secs()),
        ));
    }
    let vars = || env.iter().map(|(k, v)| (k.as_str(), v.clone()));
    let config = BotAuthConfig::from_vars(vars())?;
    let shown: Vec<String> = env
        .iter()
        .map(|(k, v)| match k.as_str() {
            "CLIENT_SECRET" => format!("{k}=[redacted]"),
            _ => format!("{k}={v}"),
        })
        .collect();
    println!(
        "  configuration ({} dialect): {}",
        config.dialect,
        shown.join(" ")
    );
    let app_id = config
        .client_id
        .clone()
        .ok_or_else(|| DemoError::Check("the configuration has no app id".into()))?;
    // The managed identity endpoint is detected from the same variables, not the process's.
    let builder = botauth::CredentialBuilder::new().env(vars().collect());
    let bot = EchoBot::from_config(config, &builder)?;
    // The bot's own token manager: the cache steps below look at the cache its replies use.
    let auth = bot.auth().clone();
    println!(
        "  credential: {}; scope: {}",
        auth.tokens().credential(),
        auth.connector_request().scopes.join(" ")
    );
    let request = auth.connector_request().clone();
    // A managed identity that is the bot gets its tokens from IMDS, the others from Entra.
    let route = args.credential.token_route();
    let requests = || sandbox.count(route);
    let issuer = match args.credential {
        CredentialKind::ManagedIdentity => "the managed identity endpoint (IMDS)",
        _ => "Entra's token endpoint (client credentials)",
    };

    let addr = bot
        .spawn(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))
        .await
        .map_err(|e| DemoError::Check(format!("cannot start the echo bot: {e}")))?;
    let bot_url = format!("http://{addr}{MESSAGES_PATH}");
    println!("  echo bot (templates/echo-bot): {bot_url}");

    println!("\n1. The Bot Service (the sandbox) sends a message activity to the bot");
    let activity = sandbox.channel_activity(&app_id, "hello from the Bot Service");
    let token = sandbox.channel_token(&app_id, &activity);
    let started = Instant::now();
    let delivery = deliver(&sandbox, &bot_url, &activity, Some(&token)).await?;
    println!(
        "   POST /api/messages with a channel token (iss={}, aud={app_id}, serviceurl={}) → HTTP {} in {}",
        sandbox.bot_service_issuer(),
        sandbox.connector_url(),
        delivery.status,
        micros(started.elapsed())
    );
    check(
        delivery.status == 200,
        format!(
            "the bot should answer 200, not {} ({})",
            delivery.status, delivery.body
        ),
    )?;
    let posts = sandbox.connector_posts();
    let reply = posts
        .first()
        .ok_or_else(|| DemoError::Check("no reply reached the Bot Connector".into()))?;
    println!(
        "\n2. The bot verified the token (signature, issuer, audience, expiry, serviceurl, endorsements),"
    );
    println!(
        "   got its own token from {issuer} (token requests: {}), and replied through the Connector",
        requests()
    );
    println!(
        "   the sandbox's Bot Connector verified that token (aud={}, caller={}) and received:",
        reply.audience, reply.app_id
    );
    println!(
        "     {:?} in reply to activity {}",
        reply.activity["text"].as_str().unwrap_or_default(),
        reply.reply_to_id.as_deref().unwrap_or("-")
    );
    check(
        posts.len() == 1
            && reply.activity["text"] == "echo: hello from the Bot Service"
            && reply.reply_to_id.as_deref() == activity["id"].as_str()
            && reply.app_id.eq_ignore_ascii_case(&app_id)
            && requests() == 1,
        "exactly one echo, in reply to the activity, with one token request",
    )?;

    println!("\n3. A second message: the reply reuses the cached token");
    let activity = sandbox.channel_activity(&app_id, "and again");
    let token = sandbox.channel_token(&app_id, &activity);
    let delivery = deliver(&sandbox, &bot_url, &activity, Some(&token)).await?;
    let posts = sandbox.connector_posts();
    println!(
        "   HTTP {}; the Connector received {:?}; token requests so far: {}",
        delivery.status,
        posts
            .last()
            .and_then(|p| p.activity["text"].as_str())
            .unwrap_or_default(),
        requests()
    );
    check(
        delivery.status == 200 && posts.len() == 2 && requests() == 1,
        "the second reply should go out with the cached token",
    )?;

    println!(
        "\n4. A forged activity: a genuine Bot Service signature, but for another bot's app id"
    );
    let activity = sandbox.channel_activity(&app_id, "let me in");
    let forged = sandbox.mint_channel_token(ChannelTokenClaims::new(
        FORGED_AUDIENCE,
        sandbox.connector_url(),
    ));
    let delivery = deliver(&sandbox, &bot_url, &activity, Some(&forged)).await?;
    println!(
        "   HTTP {} (WWW-Authenticate: {}); the handler never ran; replies sent: {}",
        delivery.status,
        delivery.www_authenticate.as_deref().unwrap_or("-"),
        sandbox.connector_posts().len() - 2
    );
    check(
        delivery.status == 401
            && delivery.www_authenticate.as_deref() == Some("Bearer")
            && sandbox.connector_posts().len() == 2,
        "the forged activity should be refused with 401 and get no reply",
    )?;

    // From here on, the outbound cache on its own: the same token manager the bot uses.
    sandbox.set_refresh_in(Some(Duration::from_secs(2)));
    auth.tokens().invalidate(&request);
    let before = requests();
    let (fresh, source) = auth.tokens().get_token_with_source(&request).await?;
    check(
        source == TokenSource::Fetched && requests() == before + 1,
        "a dropped token should be fetched again",
    )?;
    let first = fresh;
    println!(
        "\n5. Refresh ahead: a new token came with refresh_in=2s; after that, callers still get the cached token at once"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let started = Instant::now();
    let (third, source) = auth.tokens().get_token_with_source(&request).await?;
    println!(
        "   cached token in {} (source: {source:?}) while one background refresh runs",
        micros(started.elapsed())
    );
    check(
        third.token == first.token && source == TokenSource::CacheRefreshing,
        "the call after refresh_in should be served from the cache and start a refresh",
    )?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let refreshed = loop {
        let (t, _) = auth.tokens().get_token_with_source(&request).await?;
        if t.token != first.token {
            break t;
        }
        if Instant::now() > deadline {
            return Err(DemoError::Check(
                "the background refresh did not finish".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "   background refresh done: new token expiring at {}; token requests so far: {}",
        refreshed.expires_on_unix(),
        requests()
    );
    check(
        requests() == before + 2,
        "exactly one background refresh should run",
    )?;

    println!(
        "\n6. Single flight: the token is dropped and {} callers ask at once",
        args.callers
    );
    sandbox.set_refresh_in(None);
    auth.tokens().invalidate(&request);
    let before = requests();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.callers);
    for _ in 0..args.callers {
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move { auth.connector_token().await }));
    }
    let mut tokens = Vec::with_capacity(args.callers);
    for task in tasks {
        let token = task
            .await
            .map_err(|e| DemoError::Check(format!("a caller task failed: {e}")))??;
        tokens.push(token);
    }
    let made = requests() - before;
    println!(
        "   {} callers served in {}; token requests made: {made}",
        tokens.len(),
        micros(started.elapsed())
    );
    check(
        made == 1,
        format!(
            "{} callers should cause one request, not {made}",
            args.callers
        ),
    )?;
    check(
        tokens.windows(2).all(|w| w[0].token == w[1].token),
        "every caller should get the same token",
    )?;
    if args.credential == CredentialKind::KeyVault {
        // The certificate the bot reads: the one its configuration names.
        let name = env
            .iter()
            .find(|(k, _)| k.ends_with("__KeyVaultCertificateName"))
            .map(|(_, v)| v.as_str())
            .ok_or_else(|| DemoError::Check("the configuration names no certificate".into()))?;
        key_vault_rotation(&sandbox, name, &auth, &request, &requests).await?;
    }
    drop(environment);
    sandbox.shutdown().await;
    Ok(())
}

/// How often the demo bot checks its vault (`BOTAUTH_KEY_VAULT_ROTATION_CHECK`).
const ROTATION_CHECK: Duration = Duration::from_secs(2);

/// Steps 7 and 8 of `--credential key-vault`: the vault rotates the certificate, the bot follows
/// without a restart; first on its schedule, then after Entra refuses the old certificate.
async fn key_vault_rotation(
    sandbox: &Sandbox,
    name: &str,
    auth: &botauth::BotAuth,
    request: &botauth::TokenRequest,
    requests: &dyn Fn() -> usize,
) -> Result<(), DemoError> {
    let der = |v: &botauth_sandbox::KeyVaultVersion| v.certificate_der.clone();
    let first = sandbox
        .key_vault_versions(name)
        .last()
        .cloned()
        .ok_or_else(|| DemoError::Check("the vault has no demo certificate".into()))?;

    println!("\n7. The vault rotates the certificate; the bot picks it up on its schedule");
    let second = sandbox.create_key_vault_certificate(name, Default::default());
    sandbox.set_app_certificates(
        botauth_sandbox::DEMO_CLIENT_ID,
        vec![der(&first), der(&second)],
    );
    println!(
        "   new version {} (thumbprint {}); the Entra registration gets it next to the old one",
        second.version, second.sha1_thumbprint
    );
    let cached = auth.tokens().get_token(request).await?;
    tokio::time::sleep(ROTATION_CHECK + ROTATION_CHECK / 5).await;
    let vault_reads = sandbox.count(botauth_sandbox::Route::KeyVault);
    auth.tokens().invalidate(request);
    let before = requests();
    let renewed = auth.tokens().get_token(request).await?;
    println!(
        "   a token request after {} s starts the vault check in the background (it signs with the old certificate meanwhile)",
        ROTATION_CHECK.as_secs()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sandbox.count(botauth_sandbox::Route::KeyVault) < vault_reads + 2 {
        if Instant::now() > deadline {
            return Err(DemoError::Check(
                "the bot never read the vault's new version".into(),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The check swaps the version in once it has parsed the secret: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (kept, source) = auth.tokens().get_token_with_source(request).await?;
    println!(
        "   the vault was read (certificate, then its secret); the cached token is kept (source: {source:?})"
    );
    check(
        kept.token == renewed.token
            && source == TokenSource::Cache
            && renewed.token != cached.token,
        "a rotation must not throw the cached token away",
    )?;
    sandbox.set_app_certificates(botauth_sandbox::DEMO_CLIENT_ID, vec![der(&second)]);
    auth.tokens().invalidate(request);
    let mid = requests();
    auth.tokens().get_token(request).await?;
    println!(
        "   the registration drops the old certificate; the next token request signs with the new one: {} request, accepted",
        requests() - mid
    );
    check(
        requests() == before + 2,
        "the new certificate should be used without a rejection or a retry",
    )?;

    println!("\n8. The vault rotates again and Entra drops the old certificate at once");
    let third = sandbox.create_key_vault_certificate(name, Default::default());
    sandbox.set_app_certificates(botauth_sandbox::DEMO_CLIENT_ID, vec![der(&third)]);
    auth.tokens().invalidate(request);
    let before = requests();
    auth.tokens().get_token(request).await?;
    println!(
        "   version {} (thumbprint {}): Entra answered AADSTS700027 to the old certificate, the bot \
         reloaded from the vault and retried once: {} token requests, no restart",
        third.version,
        third.sha1_thumbprint,
        requests() - before
    );
    check(
        requests() == before + 2,
        "AADSTS700027 should cause one reload from the vault and one retry",
    )?;
    Ok(())
}
