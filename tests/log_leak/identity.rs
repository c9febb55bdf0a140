//! Captures every `tracing` event of identity-based runs (all crates, TRACE level) and fails if an
//! endpoint secret (`IDENTITY_HEADER`, `MSI_SECRET`, the Arc key), a managed identity token, a
//! federated assertion or an access token appears in it.

use std::time::Duration;

use botauth::core::config::EnvVars;
use botauth::{BotAuth, BotAuthConfig, CredentialBuilder, ErrorKind};
use botauth_e2e::{CapturedLogs, jwt_and_parts};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_TENANT_ID,
    FederatedCredential, Sandbox,
};

const EXCHANGE: &str = "api://AzureADTokenExchange";

fn auth(vars: Vec<(&str, String)>) -> BotAuth {
    let env: EnvVars = vars.iter().map(|(k, v)| (*k, v.clone())).collect();
    let config = BotAuthConfig::from_vars(vars).expect("configuration");
    BotAuth::with_builder(config, &CredentialBuilder::new().env(env)).expect("credential")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identity_secret_or_token_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.unwrap();
    let subject = "system:serviceaccount:bots:leak-test";
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                DEMO_MI_OBJECT_ID,
                EXCHANGE,
            ))
            .with_federated(FederatedCredential::new(
                sandbox.managed_identity_issuer(),
                subject,
                EXCHANGE,
            )),
    );
    let arc_dir = tempfile::tempdir().unwrap();
    sandbox.set_arc_key_directory(arc_dir.path());
    let secret = sandbox.identity_header();
    let bot = |extra: Vec<(&'static str, String)>| {
        let mut v = vec![
            ("CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
            ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
            ("MANAGED_IDENTITY_CLIENT_ID", "system".to_owned()),
        ];
        v.extend(extra);
        v
    };
    let mut tokens = Vec::new();
    let sources = vec![
        bot(vec![(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            sandbox.imds_host(),
        )]),
        bot(vec![
            ("IDENTITY_ENDPOINT", sandbox.app_service_endpoint()),
            ("IDENTITY_HEADER", secret.clone()),
        ]),
        bot(vec![
            ("IDENTITY_ENDPOINT", sandbox.service_fabric_endpoint()),
            ("IDENTITY_HEADER", secret.clone()),
            (
                "IDENTITY_SERVER_THUMBPRINT",
                sandbox.service_fabric_thumbprint().to_owned(),
            ),
        ]),
        bot(vec![
            ("MSI_ENDPOINT", sandbox.azure_ml_endpoint()),
            ("MSI_SECRET", secret.clone()),
        ]),
        bot(vec![("MSI_ENDPOINT", sandbox.cloud_shell_endpoint())]),
    ];
    for vars in sources {
        let auth = auth(vars);
        tracing::info!(?auth, "auth built");
        let t = auth.connector_token().await.unwrap();
        tracing::info!(token = ?t, header = %t.authorization_header(), "token acquired");
        tokens.push(t);
    }
    // Azure Arc's challenge, with the key directory the sandbox writes to.
    let arc = botauth::managed_identity::ManagedIdentityCredential::builder()
        .env(
            [
                ("IDENTITY_ENDPOINT", sandbox.arc_endpoint()),
                ("IMDS_ENDPOINT", sandbox.imds_host()),
            ]
            .into_iter()
            .collect(),
        )
        .arc_key_directory(arc_dir.path())
        .build()
        .unwrap();
    tracing::info!(?arc, "arc credential built");
    let arc = botauth::TokenManager::new(std::sync::Arc::new(arc));
    tokens.push(
        arc.get_token(&botauth::TokenRequest::new(
            "https://api.botframework.com/.default",
        ))
        .await
        .unwrap(),
    );
    assert_eq!(std::fs::read_dir(arc_dir.path()).unwrap().count(), 1);

    // A wrong App Service header, logged as an application would log the error.
    let wrong = "wrong-identity-header-value";
    let bad = auth(bot(vec![
        ("IDENTITY_ENDPOINT", sandbox.app_service_endpoint()),
        ("IDENTITY_HEADER", wrong.to_owned()),
    ]));
    let e = bad.connector_token().await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    tracing::error!(error = %e, debug = ?e, "as an application would log it");

    // Federated managed identity: the MI token is the assertion.
    let federated = auth(vec![
        ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.to_owned()),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host()),
    ]);
    tokens.push(federated.connector_token().await.unwrap());

    // Workload identity: the file's contents are the assertion.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let assertion =
        sandbox.mint_managed_identity_token(subject, EXCHANGE, Duration::from_secs(3600));
    std::fs::write(&file, &assertion).unwrap();
    let workload = auth(vec![
        ("AZURE_CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
        ("AZURE_TENANT_ID", DEMO_TENANT_ID.to_owned()),
        ("AZURE_FEDERATED_TOKEN_FILE", file.display().to_string()),
        ("AZURE_AUTHORITY_HOST", sandbox.url()),
    ]);
    tokens.push(workload.connector_token().await.unwrap());
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(sandbox);

    let mut forbidden = vec![secret, wrong.to_owned()];
    let mut jwts: Vec<String> = tokens
        .iter()
        .map(|t| t.token.expose_secret().to_owned())
        .collect();
    jwts.push(assertion);
    for jwt in jwts {
        forbidden.extend(jwt_and_parts(&jwt));
    }
    // The Arc keys the sandbox issued (the files it wrote).
    for entry in std::fs::read_dir(arc_dir.path()).unwrap() {
        forbidden.push(std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    logs.assert_clean(&["requesting a managed identity token"], &forbidden);
}
