//! `botauth sandbox`.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_MI_CLIENT_ID, DEMO_TENANT_ID, DemoCredential, Sandbox};
use clap::Args;
use tokio::io::AsyncBufReadExt as _;

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Chat with a bot running on this machine: each line typed on stdin is sent to this
    /// messaging endpoint (e.g. http://127.0.0.1:3978/api/messages) as the Bot Service would send
    /// it, and the bot's replies to the sandbox's Bot Connector are printed.
    #[arg(long, value_name = "URL")]
    bot: Option<String>,
    /// The bot's app id: the audience of the channel tokens sent with `--bot`.
    #[arg(long, value_name = "ID", default_value = DEMO_CLIENT_ID)]
    app_id: String,
}

pub(crate) async fn run(args: SandboxArgs) -> ExitCode {
    let sandbox = match Sandbox::builder().port(args.port).start().await {
        Ok(s) => s,
        Err(e) => {
            eprintln!(
                "botauth: error: cannot start the sandbox on 127.0.0.1:{}: {e}",
                args.port
            );
            return ExitCode::from(1);
        }
    };
    // Written in one piece, and a reader that stops early (`| head`, a test) is no error: the
    // sandbox keeps serving until Ctrl-C either way.
    let mut text = format!(
        "# botauth sandbox listening on {} (Ctrl-C to stop)\n\
         # Its demo app's credentials are public test values, not secrets.\n",
        sandbox.url()
    );
    let environment = match sandbox.demo_environment(DemoCredential::Secret) {
        Ok(environment) => environment,
        Err(e) => {
            eprintln!("botauth: error: cannot set up the sandbox's demo app: {e}");
            return ExitCode::from(1);
        }
    };
    // bot_vars: also the Bot Service metadata and the Connector allow-list, so the echo bot works too.
    for (key, value) in environment.bot_vars() {
        text.push_str(&format!("export {key}='{value}'\n"));
    }
    // The sandbox also plays IMDS, with a user-assigned identity assigned to the "host".
    text.push_str(&format!(
        "# Or, for a managed identity that is the bot (botas dialect), instead of CLIENT_ID, CLIENT_SECRET and TENANT_ID:\n\
         #   export CLIENT_ID='{DEMO_MI_CLIENT_ID}' TENANT_ID='{DEMO_TENANT_ID}' \
         MANAGED_IDENTITY_CLIENT_ID='{DEMO_MI_CLIENT_ID}' AZURE_POD_IDENTITY_AUTHORITY_HOST='{}'\n",
        sandbox.imds_host()
    ));
    if let Some(bot) = &args.bot {
        text.push_str(&format!(
            "# Chat: each line you type is sent to {bot} with a Bot Service channel token for app \
             {}; replies reaching the sandbox's Bot Connector are printed after `<`.\n",
            args.app_id
        ));
    }
    write_out(&text);
    let sandbox = Arc::new(sandbox);
    let chat = args
        .bot
        .map(|bot| tokio::spawn(chat(Arc::clone(&sandbox), bot, args.app_id)));
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("botauth: error: cannot wait for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    if let Some(chat) = chat {
        chat.abort();
        let _ = chat.await;
    }
    if let Ok(sandbox) = Arc::try_unwrap(sandbox) {
        sandbox.shutdown().await;
    }
    ExitCode::SUCCESS
}

/// Writes in one piece; a reader that stops early (`| head`, a test) is no error.
fn write_out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
}

/// Plays the Bot Service for a bot on this machine: one message activity per stdin line.
async fn chat(sandbox: Arc<Sandbox>, bot: String, app_id: String) {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    // Replies are printed as they reach the Connector, including late ones from bots that
    // answer after acknowledging the activity.
    let mut seen = sandbox.connector_posts().len();
    while let Ok(Some(line)) = lines.next_line().await {
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        let activity = sandbox.channel_activity(&app_id, text);
        let token = sandbox.channel_token(&app_id, &activity);
        let mut out = match sandbox
            .deliver_activity(&bot, &activity, Some(&token))
            .await
        {
            Ok(delivery) => format!("> {text}   [the bot answered HTTP {}]\n", delivery.status),
            Err(e) => format!("! the bot cannot be reached at {bot}: {e}\n"),
        };
        let posts = sandbox.connector_posts();
        for post in posts.iter().skip(seen) {
            let said = post.activity["text"]
                .as_str()
                .unwrap_or("(an activity without text)");
            out.push_str(&format!("< {said}\n"));
        }
        seen = posts.len();
        write_out(&out);
    }
}
