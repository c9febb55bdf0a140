//! The identity-based demo credentials: managed identity, federated managed identity and workload
//! identity, each configured by environment variables alone, pointed at the sandbox.

use std::path::PathBuf;
use std::time::Duration;

use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID,
    DEMO_TENANT_ID, FederatedCredential, Sandbox,
};

/// The workload identity demo's Kubernetes service account: the `sub` of its projected token.
pub(crate) const DEMO_SERVICE_ACCOUNT: &str = "system:serviceaccount:bots:botauth-demo";

/// The federation audience of the public cloud.
const EXCHANGE: &str = "api://AzureADTokenExchange";

/// botas: a user-assigned managed identity *is* the bot (`MANAGED_IDENTITY_CLIENT_ID` = `CLIENT_ID`);
/// IMDS is the sandbox (`AZURE_POD_IDENTITY_AUTHORITY_HOST`).
pub(crate) fn managed_identity(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    vec![
        ("CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
        ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host()),
    ]
}

/// botas: the demo app trusts the demo managed identity through a federated identity credential
/// (`MANAGED_IDENTITY_CLIENT_ID` ≠ `CLIENT_ID`).
pub(crate) fn federated(sandbox: &Sandbox) -> Vec<(&'static str, String)> {
    trust(sandbox, DEMO_MI_OBJECT_ID);
    vec![
        ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host()),
    ]
}

/// AKS workload identity: the projected token file holds a token of the service account, which the
/// demo app trusts. Returns the variables and the file (remove it when done).
pub(crate) fn workload_identity(
    sandbox: &Sandbox,
) -> std::io::Result<(Vec<(&'static str, String)>, PathBuf)> {
    trust(sandbox, DEMO_SERVICE_ACCOUNT);
    let dir = std::env::temp_dir().join(format!("botauth-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("azure-identity-token");
    let token = sandbox.mint_managed_identity_token(
        DEMO_SERVICE_ACCOUNT,
        EXCHANGE,
        Duration::from_secs(86_400),
    );
    std::fs::write(&file, token)?;
    let env = vec![
        ("AZURE_CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("AZURE_TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_AUTHORITY_HOST", sandbox.url()),
    ];
    Ok((env, file))
}

/// Registers a federated identity credential for `subject` on the demo app.
fn trust(sandbox: &Sandbox, subject: &str) {
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_secret(DEMO_CLIENT_SECRET)
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                subject,
                EXCHANGE,
            )),
    );
}
