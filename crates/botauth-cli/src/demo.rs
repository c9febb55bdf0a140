//! `botauth demo`: the outbound flow, end to end, against an in-process sandbox.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use botauth::{BotAuth, BotAuthConfig, TokenSource};
use botauth_sandbox::{Route, Sandbox};
use clap::{Args, ValueEnum};

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
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Which credential the bot uses.
    #[arg(long, value_enum, default_value_t = CredentialKind::Secret)]
    credential: CredentialKind,
    /// Concurrent callers in the single-flight step.
    #[arg(long, default_value_t = 1000)]
    callers: usize,
}

pub(crate) async fn run(args: DemoArgs) -> ExitCode {
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

fn check(ok: bool, what: impl Into<String>) -> Result<(), DemoError> {
    if ok {
        Ok(())
    } else {
        Err(DemoError::Check(what.into()))
    }
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
    // Ask for refresh after 2 s so that refresh-ahead shows within the demo.
    sandbox.set_refresh_in(Some(Duration::from_secs(2)));
    println!("botauth demo: outbound Bot Connector tokens against the local sandbox");
    println!("  sandbox (Entra ID stand-in): {}", sandbox.url());

    // Kept alive until the end of the demo: the certificate files are removed when it is dropped.
    let mut _certificate = None;
    let mut token_file = None;
    let owned = |env: Vec<(&'static str, String)>| -> Vec<(String, String)> {
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    };
    let env = match args.credential {
        CredentialKind::Secret => owned(crate::sandbox::environment(&sandbox)),
        CredentialKind::Certificate => {
            let files = crate::demo_certificate::DemoCertificate::install(&sandbox)?;
            println!(
                "  the sandbox app has this certificate registered (thumbprint {})",
                files.thumbprint()
            );
            let env = files.environment(&sandbox);
            _certificate = Some(files);
            env
        }
        CredentialKind::ManagedIdentity => owned(crate::identity::managed_identity(&sandbox)),
        CredentialKind::Federated => owned(crate::identity::federated(&sandbox)),
        CredentialKind::WorkloadIdentity => {
            let (env, file) = crate::identity::workload_identity(&sandbox)
                .map_err(|e| DemoError::Check(format!("cannot write the token file: {e}")))?;
            token_file = Some(file);
            owned(env)
        }
    };
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
    // The managed identity endpoint is detected from the same variables, not the process's.
    let builder = botauth::CredentialBuilder::new().env(vars().collect());
    let auth = BotAuth::with_builder(config, &builder)?;
    println!(
        "  credential: {}; scope: {}",
        auth.tokens().credential(),
        auth.connector_request().scopes.join(" ")
    );
    let request = auth.connector_request().clone();
    // A managed identity that is the bot gets its tokens from IMDS, the others from Entra.
    let route = match args.credential {
        CredentialKind::ManagedIdentity => Route::Imds,
        _ => Route::Token,
    };
    let requests = || sandbox.count(route);

    let issuer = match args.credential {
        CredentialKind::ManagedIdentity => "the managed identity endpoint (IMDS)",
        _ => "Entra's token endpoint (client credentials)",
    };
    println!("\n1. First call: nothing cached, so one request goes to {issuer}");
    let started = Instant::now();
    let (first, source) = auth.tokens().get_token_with_source(&request).await?;
    println!(
        "   got a {} token in {} (source: {source:?}); token requests so far: {}",
        first.token_type,
        micros(started.elapsed()),
        requests()
    );
    let claims = match args.credential {
        CredentialKind::ManagedIdentity => {
            sandbox.verify_managed_identity_token(first.token.expose_secret())
        }
        _ => sandbox.verify_access_token(first.token.expose_secret()),
    }
    .map_err(|e| DemoError::Check(format!("the sandbox does not accept its own token: {e}")))?;
    println!(
        "   the token verifies: aud={} appid={} tid={}",
        claims["aud"], claims["appid"], claims["tid"]
    );
    check(
        source == TokenSource::Fetched && requests() == 1,
        "the first call should fetch once",
    )?;

    println!("\n2. Second call: served from the cache, no request");
    let started = Instant::now();
    let (second, source) = auth.tokens().get_token_with_source(&request).await?;
    println!(
        "   same token in {} (source: {source:?}); token requests so far: {}",
        micros(started.elapsed()),
        requests()
    );
    check(
        second.token == first.token && source == TokenSource::Cache && requests() == 1,
        "the second call should be a cache hit",
    )?;

    println!(
        "\n3. Refresh ahead: the sandbox said refresh_in=2s; after that, callers still get the cached token at once"
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
    check(requests() == 2, "exactly one background refresh should run")?;

    println!(
        "\n4. Single flight: the token is dropped and {} callers ask at once",
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
    if let Some(file) = token_file {
        let _ = std::fs::remove_file(&file);
        if let Some(dir) = file.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    sandbox.shutdown().await;
    Ok(())
}
