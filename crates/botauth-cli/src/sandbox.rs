//! `botauth sandbox`.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use botauth_sandbox::{
    AppRegistration, ChatTarget, Console, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MI_CLIENT_ID,
    DEMO_TENANT_ID, LocalCa, Registrations, Route, Sandbox,
};
use clap::Args;

/// How long open connections get to finish once a stop signal arrived: the whole stop must take
/// under 2 s, whatever the bot or stdin are doing.
const STOP_GRACE: Duration = Duration::from_millis(1500);

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Serve Entra ID, the Bot Service and the Bot Connector over https with a certificate from a
    /// local CA (kept in --state-dir); the managed identity endpoints stay plain http, as in Azure.
    #[arg(long)]
    tls: bool,
    /// Where the local CA is kept between runs [default: $XDG_STATE_HOME/botauth/sandbox, else
    /// ~/.local/state/botauth/sandbox].
    #[arg(long, value_name = "DIR", env = "BOTAUTH_SANDBOX_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The registered app's client id, also the audience of the channel tokens sent with --bot.
    #[arg(long, value_name = "ID", default_value = DEMO_CLIENT_ID)]
    app_id: String,
    /// The registered app's tenant.
    #[arg(long, value_name = "ID", default_value = DEMO_TENANT_ID)]
    tenant_id: String,
    /// Register a client secret on the app (repeatable). Without --secret and --certificate the
    /// demo secret is registered.
    #[arg(long, value_name = "VALUE")]
    secret: Vec<String>,
    /// Register an X.509 certificate (PEM or DER) on the app (repeatable): client assertions
    /// signed by its key are accepted by x5t, x5t#S256 or x5c.
    #[arg(long, value_name = "FILE")]
    certificate: Vec<PathBuf>,
    /// A registration file (TOML) with more apps, federated credentials and managed identities
    /// (see the README's "Using the sandbox with other SDKs").
    #[arg(long, value_name = "FILE")]
    registrations: Option<PathBuf>,
    /// Chat with a bot running on this machine: each line typed on stdin is sent to this
    /// messaging endpoint (e.g. http://127.0.0.1:3978/api/messages) as the Bot Service would send
    /// it, and the bot's replies to the sandbox's Bot Connector are printed.
    #[arg(long, value_name = "URL")]
    bot: Option<String>,
    /// Register an OAuth connection on the sandbox's Token Service (repeatable): user sign-in
    /// with a sign-in link, a 6-digit magic code and Teams SSO token exchange.
    #[arg(long, value_name = "NAME")]
    oauth_connection: Vec<String>,
    /// Serve the web console at http://127.0.0.1:PORT/console: a chat with the --bot, every
    /// token of both directions decoded (never a secret or a signature), one-click faults. On by
    /// default with --bot; without --bot it only inspects what bots do.
    #[arg(long, conflicts_with = "no_console")]
    console: bool,
    /// Do not serve the web console (with --bot, chat through stdin only).
    #[arg(long)]
    no_console: bool,
}

impl SandboxArgs {
    /// The console is on with --bot unless --no-console, and with --console.
    fn console_on(&self) -> bool {
        self.console || (self.bot.is_some() && !self.no_console)
    }
}

/// A refusal to start: exit 2 for what the user asked (a bad flag value or file), 1 otherwise.
struct Refusal(u8, String);

pub(crate) async fn run(args: SandboxArgs) -> ExitCode {
    let (sandbox, certificates) = match start(&args).await {
        Ok(started) => started,
        Err(Refusal(code, message)) => {
            eprintln!("botauth: error: {message}");
            return ExitCode::from(code);
        }
    };
    // Handlers first: whoever reads the printed lines may signal at once.
    let stop = match StopSignals::install() {
        Ok(stop) => stop,
        Err(e) => {
            eprintln!("botauth: error: cannot install the Ctrl-C/SIGTERM handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let console = args.console_on().then(|| {
        let target = args
            .bot
            .as_ref()
            .map(|bot| ChatTarget::new(bot.as_str(), args.app_id.trim()));
        Arc::new(sandbox.open_console(target))
    });
    let mut text = environment_text(&sandbox, &args, &certificates);
    if console.is_some() {
        text.push_str(&format!(
            "# Web console: {} (chat, tokens of both directions decoded, faults)\n",
            sandbox.console_url()
        ));
    }
    write_out(&text);
    let sandbox = Arc::new(sandbox);
    let runner = console.clone().map(|console| {
        let sandbox = Arc::clone(&sandbox);
        tokio::spawn(async move { console.run(&sandbox).await })
    });
    // As a channel does, the sandbox tells the bot when the user followed a sign-in link.
    let pushes = args.bot.as_ref().and_then(|bot| {
        let target = ChatTarget::new(bot.as_str(), args.app_id.trim());
        if let Err(e) = sandbox.push_sign_ins_to(Some(target)) {
            write_out(&format!(
                "! sign-in activities will not be sent to the bot: {e}\n"
            ));
            return None;
        }
        let mut watch = sandbox.watch_sign_in_pushes();
        Some(tokio::spawn(async move {
            while let Some(push) = watch.recv().await {
                // Never the code, the token or the link: only what was sent and the answer.
                write_out(&match &push.outcome {
                    Ok(delivery) => format!(
                        "< [sign-in] {} sent to the bot: HTTP {}\n",
                        push.name, delivery.status
                    ),
                    Err(e) => format!(
                        "! [sign-in] {} could not be sent to the bot: {e}\n",
                        push.name
                    ),
                });
            }
        }))
    });
    let chat = args.bot.clone().map(|bot| {
        let lines = stdin_lines();
        tokio::spawn(chat(
            Arc::clone(&sandbox),
            console.clone(),
            bot,
            args.app_id.clone(),
            lines,
        ))
    });
    stop.recv().await;
    for task in [chat, runner, pushes].into_iter().flatten() {
        task.abort();
    }
    if let Ok(sandbox) = Arc::try_unwrap(sandbox) {
        let _ = tokio::time::timeout(STOP_GRACE, sandbox.shutdown()).await;
    }
    ExitCode::SUCCESS
}

/// A registered certificate, for the printed environment.
struct RegisteredCertificate {
    path: PathBuf,
    sha1: String,
}

async fn start(args: &SandboxArgs) -> Result<(Sandbox, Vec<RegisteredCertificate>), Refusal> {
    let usage = |message: String| Refusal(2, message);
    if args.app_id.trim().is_empty() {
        return Err(usage("--app-id must not be empty".into()));
    }
    let tenant_ok = !args.tenant_id.is_empty()
        && args
            .tenant_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    if !tenant_ok {
        return Err(usage(
            "--tenant-id must be a tenant id or domain (letters, digits, '.' and '-')".into(),
        ));
    }
    let mut app = AppRegistration::new(args.app_id.trim(), &args.tenant_id);
    for secret in &args.secret {
        app = app.with_secret(secret.as_str());
    }
    let mut certificates = Vec::new();
    for path in &args.certificate {
        let der = botauth_sandbox::read_certificate(path)
            .map_err(|e| usage(format!("--certificate: {e}")))?;
        certificates.push(RegisteredCertificate {
            path: path.clone(),
            sha1: hex_upper(&openssl::sha::sha1(&der)),
        });
        app = app.with_certificate_der(der);
    }
    if args.secret.is_empty() && args.certificate.is_empty() {
        app = app.with_secret(DEMO_CLIENT_SECRET);
    }
    let registrations = match &args.registrations {
        Some(path) => Some(
            Registrations::from_file(path).map_err(|e| usage(format!("--registrations: {e}")))?,
        ),
        None => None,
    };
    let mut builder = Sandbox::builder().port(args.port).with_demo_app(false);
    if args.tls {
        let dir = match &args.state_dir {
            Some(dir) => dir.clone(),
            None => default_state_dir().ok_or_else(|| {
                usage("--tls needs a state directory for its CA: set --state-dir (neither XDG_STATE_HOME nor HOME is set)".into())
            })?,
        };
        let ca = LocalCa::load_or_create(&dir)
            .map_err(|e| Refusal(1, format!("cannot set up the sandbox's local CA: {e}")))?;
        builder = builder.tls(ca);
    }
    let sandbox = builder.start().await.map_err(|e| {
        Refusal(
            1,
            format!("cannot start the sandbox on 127.0.0.1:{}: {e}", args.port),
        )
    })?;
    sandbox.register_app(app);
    if let Some(registrations) = &registrations {
        sandbox.register(registrations);
    }
    for name in &args.oauth_connection {
        if name.trim().is_empty() {
            return Err(usage("--oauth-connection must not be empty".into()));
        }
        sandbox.register_oauth_connection(name.as_str());
    }
    Ok((sandbox, certificates))
}

fn default_state_dir() -> Option<PathBuf> {
    let from = |var: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_STATE_HOME")
        .or_else(|| from("HOME").map(|home| home.join(".local").join("state")))
        .map(|state| state.join("botauth").join("sandbox"))
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The `export` lines (botas dialect, copy-paste ready) and the comments around them.
fn environment_text(
    sandbox: &Sandbox,
    args: &SandboxArgs,
    certificates: &[RegisteredCertificate],
) -> String {
    let mut text = format!(
        "# botauth sandbox listening on {} (Ctrl-C to stop)\n",
        sandbox.url()
    );
    let export = |text: &mut String, key: &str, value: &str| {
        text.push_str(&format!("export {key}='{value}'\n"));
    };
    if let Some(ca) = sandbox.tls_ca() {
        let path = ca
            .certificate_path()
            .map(Path::display)
            .map(|p| p.to_string())
            .unwrap_or_default();
        text.push_str(&format!(
            "# https with certificates from the local CA {path}; these make OpenSSL (Rust), Node and \
             Python clients trust it (SSL_CERT_FILE and REQUESTS_CA_BUNDLE replace the system roots in \
             this shell). Managed identity endpoints stay plain http on {}.\n",
            sandbox.imds_host()
        ));
        for key in ["SSL_CERT_FILE", "NODE_EXTRA_CA_CERTS", "REQUESTS_CA_BUNDLE"] {
            export(&mut text, key, &path);
        }
    }
    text.push_str("# The registered credentials are test values for this sandbox only.\n");
    export(&mut text, "BOTAUTH_AUTHORITY_HOST", &sandbox.url());
    export(
        &mut text,
        "BOTAUTH_METADATA_URL",
        &sandbox.bot_service_metadata_url(),
    );
    export(
        &mut text,
        "BOTAUTH_ALLOWED_SERVICE_URLS",
        &sandbox.connector_url(),
    );
    export(&mut text, "CLIENT_ID", args.app_id.trim());
    if let Some(secret) = args.secret.first() {
        export(&mut text, "CLIENT_SECRET", secret);
    } else if args.certificate.is_empty() {
        export(&mut text, "CLIENT_SECRET", DEMO_CLIENT_SECRET);
    }
    export(&mut text, "TENANT_ID", &args.tenant_id);
    for certificate in certificates {
        text.push_str(&format!(
            "# Certificate {} registered (SHA-1 thumbprint {}); to use it, instead of CLIENT_SECRET (Agents SDK dialect):\n\
             #   export Connections__ServiceConnection__Settings__AuthType='Certificate' \
             Connections__ServiceConnection__Settings__CertPemFile='{}' \
             Connections__ServiceConnection__Settings__CertKeyFile='<its private key file>'\n",
            certificate.path.display(),
            certificate.sha1,
            certificate.path.display(),
        ));
    }
    text.push_str(
        "# Other dialects take the same values: MicrosoftAppId/MicrosoftAppPassword/MicrosoftAppTenantId, \
         AzureAd__ClientId/AzureAd__ClientSecret/AzureAd__TenantId, or \
         Connections__ServiceConnection__Settings__ClientId/ClientSecret/TenantId; BOTAUTH_AUTHORITY_HOST, \
         BOTAUTH_METADATA_URL and BOTAUTH_ALLOWED_SERVICE_URLS apply to all of them.\n",
    );
    text.push_str(&key_vault_text(sandbox));
    text.push_str(&managed_identity_text(sandbox, &args.tenant_id));
    if !args.oauth_connection.is_empty() {
        text.push_str(&format!(
            "# User sign-in: the Token Service with OAuth connection(s) {}; Bot Framework SDKs read \
             OAuthUrl (JS also OAuthApiEndpoint), the Agents SDK \
             RestChannelServiceClientFactory__TokenServiceEndpoint; sign-in links open a page showing \
             the magic code. In the chat, /sso answers the last OAuth card with Teams single \
             sign-on from two Teams clients, and /consent on|off makes the exchange need consent.\n",
            args.oauth_connection.join(", ")
        ));
        export(&mut text, "BOTAUTH_TOKEN_SERVICE_URL", &sandbox.url());
    }
    if let Some(bot) = &args.bot {
        text.push_str(&format!(
            "# Chat: each line you type is sent to {bot} with a Bot Service channel token for app \
             {}; replies reaching the sandbox's Bot Connector are printed after `<`.\n",
            args.app_id.trim()
        ));
    }
    text
}

/// The vault's URL, as a comment: exported, `BOTAUTH_KEY_VAULT_URL` would make botauth read its
/// certificate from the vault and require `BOTAUTH_KEY_VAULT_CERTIFICATE_NAME`, breaking the secret
/// the lines above configure.
fn key_vault_text(sandbox: &Sandbox) -> String {
    let vault = sandbox.key_vault_url();
    format!(
        "# Key Vault: BOTAUTH_KEY_VAULT_URL='{vault}' (not exported: with \
         BOTAUTH_KEY_VAULT_CERTIFICATE_NAME it makes a bot load its certificate from this vault). \
         Readers need a token for https://vault.azure.net (token endpoint or managed identity); \
         `POST {vault}/_sandbox/certificates/NAME/rotate` adds a certificate version.\n"
    )
}

/// One commented line per managed identity source the sandbox plays, each a working set of
/// variables for a bot that is the demo user-assigned identity.
fn managed_identity_text(sandbox: &Sandbox, tenant: &str) -> String {
    let who = format!(
        "CLIENT_ID='{DEMO_MI_CLIENT_ID}' TENANT_ID='{tenant}' MANAGED_IDENTITY_CLIENT_ID='{DEMO_MI_CLIENT_ID}'"
    );
    let header = sandbox.identity_header();
    let sources = [
        (
            "IMDS",
            format!(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST='{}'",
                sandbox.imds_host()
            ),
        ),
        (
            "App Service",
            format!(
                "IDENTITY_ENDPOINT='{}' IDENTITY_HEADER='{header}'",
                sandbox
                    .managed_identity_endpoint(Route::AppService)
                    .unwrap_or_default()
            ),
        ),
        (
            "Azure ML",
            format!(
                "MSI_ENDPOINT='{}' MSI_SECRET='{header}'",
                sandbox
                    .managed_identity_endpoint(Route::AzureMl)
                    .unwrap_or_default()
            ),
        ),
        (
            "Service Fabric",
            format!(
                "IDENTITY_ENDPOINT='{}' IDENTITY_HEADER='{header}' IDENTITY_SERVER_THUMBPRINT='{}'",
                sandbox
                    .managed_identity_endpoint(Route::ServiceFabric)
                    .unwrap_or_default(),
                sandbox.service_fabric_thumbprint()
            ),
        ),
    ];
    let mut text = String::from(
        "# Or, for a bot that is a managed identity (botas dialect), instead of CLIENT_ID, CLIENT_SECRET and TENANT_ID, one of:\n",
    );
    for (source, vars) in sources {
        text.push_str(&format!("#   {source}: export {who} {vars}\n"));
    }
    text
}

/// Writes in one piece; a reader that stops early (`| head`, a test) is no error.
fn write_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Lines of stdin, read on a thread of their own: a blocking read cannot be cancelled, and on
/// tokio's blocking pool it would keep the process alive after a stop signal until stdin closes.
fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// SIGINT (Ctrl-C) and, on Unix, SIGTERM, registered when installed: a signal that arrives
/// before [`StopSignals::recv`] is awaited is not lost.
struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    async fn recv(mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Plays the Bot Service for a bot on this machine: one message activity per stdin line (sent
/// through the console when it is on, so the page shows it too).
async fn chat(
    sandbox: Arc<Sandbox>,
    console: Option<Arc<Console>>,
    bot: String,
    app_id: String,
    mut lines: tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    let app_id = app_id.trim().to_owned();
    // Replies are printed as they reach the Connector, including late ones from bots that
    // answer after acknowledging the activity.
    let mut seen = sandbox.connector_posts().len();
    while let Some(line) = lines.recv().await {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(said) = sign_in_command(&sandbox, &bot, &app_id, text).await {
            write_out(&format!("{said}{}", replies_since(&sandbox, &mut seen)));
            continue;
        }
        let delivered = match &console {
            Some(console) => console.say(&sandbox, text).await,
            None => {
                let activity = sandbox.channel_activity(&app_id, text);
                let token = sandbox.channel_token(&app_id, &activity);
                sandbox
                    .deliver_activity(&bot, &activity, Some(&token))
                    .await
            }
        };
        let mut out = match delivered {
            Ok(delivery) => format!("> {text}   [the bot answered HTTP {}]\n", delivery.status),
            Err(e) => format!("! the bot cannot be reached at {bot}: {e}\n"),
        };
        out.push_str(&replies_since(&sandbox, &mut seen));
        write_out(&out);
    }
}

/// The bot's replies that reached the Connector since `seen`, one `<` line each. A sign-in card
/// (user sign-in, `--oauth-connection`) shows its link, as a channel would; the page it opens
/// shows the code to type in the chat.
fn replies_since(sandbox: &Sandbox, seen: &mut usize) -> String {
    let posts = sandbox.connector_posts();
    let mut out = String::new();
    for post in posts.iter().skip(*seen) {
        let attachment = &post.activity["attachments"][0];
        let kind = attachment["contentType"].as_str().unwrap_or_default();
        let sign_in = matches!(
            kind,
            "application/vnd.microsoft.card.oauth" | "application/vnd.microsoft.card.signin"
        );
        if let Some(link) = attachment["content"]["buttons"][0]["value"]
            .as_str()
            .filter(|_| sign_in)
        {
            out.push_str(&format!(
                "< [sign-in card] open {link} and type the code it shows\n"
            ));
            continue;
        }
        let said = post.activity["text"]
            .as_str()
            .unwrap_or("(an activity without text)");
        out.push_str(&format!("< {said}\n"));
    }
    *seen = posts.len();
    out
}

/// Chat commands for user sign-in: `/sso` answers the last OAuth card as Teams single sign-on
/// does, with one `signin/tokenExchange` from each of two Teams clients (the bot should answer
/// the second 200 with an empty body); `/consent on|off` makes the Token Service's exchange
/// require consent (the bot should answer 412). `None` for any other line.
async fn sign_in_command(sandbox: &Sandbox, bot: &str, app_id: &str, line: &str) -> Option<String> {
    let mut words = line.split_whitespace();
    match words.next()? {
        "/consent" => {
            let on = words.next() == Some("on");
            sandbox.set_consent_required(on);
            Some(if on {
                "# token exchanges now need consent (the bot should answer 412)\n".into()
            } else {
                "# token exchanges succeed again\n".into()
            })
        }
        "/sso" => {
            let card = sandbox
                .connector_posts()
                .into_iter()
                .rev()
                .find_map(|post| {
                    let attachment = &post.activity["attachments"][0];
                    (attachment["contentType"] == "application/vnd.microsoft.card.oauth")
                        .then(|| attachment["content"].clone())
                });
            let Some(card) = card else {
                return Some("! no OAuth card yet: ask the bot to sign you in first\n".into());
            };
            let (Some(id), Some(connection)) = (
                card["tokenExchangeResource"]["id"].as_str(),
                card["connectionName"].as_str(),
            ) else {
                return Some(
                    "! the last OAuth card has no tokenExchangeResource (SSO is off)\n".into(),
                );
            };
            let mut out = String::new();
            for client in 1..=2 {
                let invoke = sandbox.token_exchange_invoke(app_id, connection, id);
                let token = sandbox.channel_token(app_id, &invoke);
                match sandbox.deliver_activity(bot, &invoke, Some(&token)).await {
                    Ok(d) => out.push_str(&format!(
                        "> signin/tokenExchange from Teams client {client}   [the bot answered HTTP {} {}]\n",
                        d.status,
                        if d.body.is_empty() { "(empty body)" } else { d.body.as_str() }
                    )),
                    Err(e) => out.push_str(&format!("! the bot cannot be reached at {bot}: {e}\n")),
                }
            }
            Some(out)
        }
        _ => None,
    }
}
