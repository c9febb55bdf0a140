//! `botauth sandbox`.

use std::io::Write as _;
use std::process::ExitCode;

use botauth_sandbox::{DEMO_MI_CLIENT_ID, DEMO_TENANT_ID, DemoCredential, Sandbox};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
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
    let mut stdout = std::io::stdout().lock();
    let _ = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("botauth: error: cannot wait for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
