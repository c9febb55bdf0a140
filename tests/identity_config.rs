//! Every configuration mapping of the identity credentials (issue 4 §3), end to end: the dialect's
//! variables alone, read by `BotAuthConfig::from_vars`, build a credential that gets a token from
//! the sandbox for the expected identity.

use botauth::core::config::EnvVars;
use botauth::{BotAuth, BotAuthConfig, CredentialBuilder, Dialect};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID,
    DEMO_SYSTEM_MI_OBJECT_ID, DEMO_TENANT_ID, FederatedCredential, Route, Sandbox,
};

const EXCHANGE: &str = "api://AzureADTokenExchange";
const AGENTS: &str = "Connections__ServiceConnection__Settings__";

/// What a configuration should end up as.
enum Expect {
    /// A managed identity token whose `sub` is this object id.
    Direct(&'static str),
    /// The app's token, obtained with a federated assertion.
    Federated,
}

async fn check(sandbox: &Sandbox, dialect: Dialect, vars: Vec<(String, String)>, expect: Expect) {
    let env: EnvVars = vars.iter().cloned().collect();
    let config = BotAuthConfig::from_vars(vars.clone()).expect("configuration");
    assert_eq!(config.dialect, dialect, "{vars:?}");
    let auth =
        BotAuth::with_builder(config, &CredentialBuilder::new().env(env)).expect("credential");
    let token = auth
        .connector_token()
        .await
        .unwrap_or_else(|e| panic!("{vars:?}: {e}"));
    let kind = auth.tokens().credential().kind.clone();
    match expect {
        Expect::Direct(object_id) => {
            assert_eq!(kind, "managed_identity", "{vars:?}");
            let claims = sandbox
                .verify_managed_identity_token(token.token.expose_secret())
                .expect("an MI token");
            assert_eq!(claims["sub"], object_id, "{vars:?}");
        }
        Expect::Federated => {
            assert!(
                kind == "federated_managed_identity" || kind == "workload_identity",
                "{kind}"
            );
            let claims = sandbox
                .verify_access_token(token.token.expose_secret())
                .expect("an Entra token");
            assert_eq!(claims["appid"], DEMO_CLIENT_ID, "{vars:?}");
        }
    }
}

fn vars(pairs: &[(&str, &str)], sandbox: &Sandbox) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.push((
        "AZURE_POD_IDENTITY_AUTHORITY_HOST".into(),
        sandbox.imds_host(),
    ));
    v.push(("BOTAUTH_AUTHORITY_HOST".into(), sandbox.url()));
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_identity_mapping_gets_a_token() {
    let sandbox = Sandbox::start().await.expect("sandbox");
    let subject = "system:serviceaccount:bots:config-test";
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                DEMO_MI_OBJECT_ID,
                EXCHANGE,
            ))
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                DEMO_SYSTEM_MI_OBJECT_ID,
                EXCHANGE,
            ))
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                subject,
                EXCHANGE,
            )),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("token");
    std::fs::write(
        &file,
        sandbox.mint_managed_identity_token(
            subject,
            EXCHANGE,
            std::time::Duration::from_secs(3600),
        ),
    )
    .expect("token file");
    let file = file.display().to_string();
    let (app, tenant, mi) = (DEMO_CLIENT_ID, DEMO_TENANT_ID, DEMO_MI_CLIENT_ID);

    // botas: equal ids → the identity is the bot; `system`; different ids → federated.
    let botas = |m: &str, c: &str| {
        vars(
            &[
                ("CLIENT_ID", c),
                ("TENANT_ID", tenant),
                ("MANAGED_IDENTITY_CLIENT_ID", m),
            ],
            &sandbox,
        )
    };
    check(
        &sandbox,
        Dialect::Botas,
        botas(mi, mi),
        Expect::Direct(DEMO_MI_OBJECT_ID),
    )
    .await;
    check(
        &sandbox,
        Dialect::Botas,
        botas("system", app),
        Expect::Direct(DEMO_SYSTEM_MI_OBJECT_ID),
    )
    .await;
    check(&sandbox, Dialect::Botas, botas(mi, app), Expect::Federated).await;

    // Bot Framework: MicrosoftAppType=UserAssignedMSI.
    let bf = vars(
        &[
            ("MicrosoftAppId", mi),
            ("MicrosoftAppType", "UserAssignedMSI"),
            ("MicrosoftAppTenantId", tenant),
        ],
        &sandbox,
    );
    check(
        &sandbox,
        Dialect::BotFramework,
        bf,
        Expect::Direct(DEMO_MI_OBJECT_ID),
    )
    .await;

    // Microsoft.Identity.Web: SignedAssertionFromManagedIdentity (with and without a client id),
    // SignedAssertionFilePath.
    let idweb = |fields: &[(&str, &str)]| {
        let mut pairs = vec![("AzureAd__ClientId", app), ("AzureAd__TenantId", tenant)];
        pairs.extend_from_slice(fields);
        vars(&pairs, &sandbox)
    };
    let source = "AzureAd__ClientCredentials__0__SourceType";
    for fields in [
        vec![
            (source, "SignedAssertionFromManagedIdentity"),
            ("AzureAd__ClientCredentials__0__ManagedIdentityClientId", mi),
        ],
        vec![(source, "SignedAssertionFromManagedIdentity")],
        vec![
            (source, "SignedAssertionFilePath"),
            (
                "AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath",
                &file,
            ),
        ],
    ] {
        check(
            &sandbox,
            Dialect::IdentityWeb,
            idweb(&fields),
            Expect::Federated,
        )
        .await;
    }

    // Agents SDK: the four identity AuthTypes.
    let agents = |fields: &[(&str, &str)]| {
        let owned: Vec<(String, &str)> = fields
            .iter()
            .map(|(k, v)| (format!("{AGENTS}{k}"), *v))
            .collect();
        let pairs: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        vars(&pairs, &sandbox)
    };
    let cases = [
        (
            agents(&[("AuthType", "UserManagedIdentity"), ("ClientId", mi)]),
            Expect::Direct(DEMO_MI_OBJECT_ID),
        ),
        (
            agents(&[("AuthType", "SystemManagedIdentity"), ("ClientId", app)]),
            Expect::Direct(DEMO_SYSTEM_MI_OBJECT_ID),
        ),
        (
            agents(&[
                ("AuthType", "FederatedCredentials"),
                ("ClientId", app),
                ("TenantId", tenant),
                ("FederatedClientId", mi),
            ]),
            Expect::Federated,
        ),
        (
            agents(&[
                ("AuthType", "WorkloadIdentity"),
                ("ClientId", app),
                ("TenantId", tenant),
                ("FederatedTokenFile", &file),
            ]),
            Expect::Federated,
        ),
    ];
    for (vars, expect) in cases {
        check(&sandbox, Dialect::AgentsSdk, vars, expect).await;
    }

    // AKS workload identity's own variables.
    let aks = vec![
        ("AZURE_CLIENT_ID".to_owned(), app.to_owned()),
        ("AZURE_TENANT_ID".to_owned(), tenant.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE".to_owned(), file.clone()),
        ("AZURE_AUTHORITY_HOST".to_owned(), sandbox.url()),
    ];
    check(&sandbox, Dialect::WorkloadIdentity, aks, Expect::Federated).await;
    // Direct: botas ×2, Bot Framework, Agents ×2; federated by MI: botas, Identity.Web ×2, Agents.
    assert_eq!(sandbox.count(Route::Imds), 9);
}
