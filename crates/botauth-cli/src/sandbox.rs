//! `botauth sandbox`.

use std::process::ExitCode;

use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};
use clap::Args;

#[derive(Debug, Args)]
pub(crate) struct SandboxArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

/// The environment (botas dialect) that points botauth at `sandbox`.
pub(crate) fn environment(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
        ("BOTAUTH_METADATA_URL", sandbox.bot_service_metadata_url()),
        ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("CLIENT_SECRET", DEMO_CLIENT_SECRET.to_owned()),
        ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
    ]
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
    println!(
        "# botauth sandbox listening on {} (Ctrl-C to stop)",
        sandbox.url()
    );
    println!("# Its demo app's credentials are public test values, not secrets.");
    for (key, value) in environment(&sandbox) {
        println!("export {key}='{value}'");
    }
    if let Err(e) = tokio::signal::ctrl_c().await {
        eprintln!("botauth: error: cannot wait for Ctrl-C: {e}");
        return ExitCode::from(1);
    }
    sandbox.shutdown().await;
    ExitCode::SUCCESS
}
