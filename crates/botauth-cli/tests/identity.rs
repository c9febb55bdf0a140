//! `botauth token` and `botauth demo` with identity-based credentials, configured by environment
//! variables alone, against an in-process sandbox.

mod common;

use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_TENANT_ID,
    FederatedCredential, Route, Sandbox,
};
use common::{NO_ENV, assert_two_way_demo, run, text};

const EXCHANGE: &str = "api://AzureADTokenExchange";

/// Runs `botauth token` and returns its JSON, failing with stderr on a non-zero exit.
async fn token(env: Vec<(&'static str, String)>) -> serde_json::Value {
    let out = run(&["token"], env).await;
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("botauth token prints JSON")
}

fn trust(sandbox: &Sandbox, subject: &str) {
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID).with_federated(
            FederatedCredential::new(sandbox.managed_identity_issuer(), subject, EXCHANGE),
        ),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_a_managed_identity_that_is_the_bot() {
    let sandbox = Sandbox::start().await.unwrap();
    // botas: MANAGED_IDENTITY_CLIENT_ID equal to CLIENT_ID, IMDS pointed at the sandbox.
    let json = token(vec![
        ("CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
        ("TENANT_ID", DEMO_TENANT_ID.into()),
        ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host()),
    ])
    .await;
    assert_eq!(json["credential"], "managed_identity");
    assert_eq!(json["client_id"], DEMO_MI_CLIENT_ID);
    let claims = sandbox
        .verify_managed_identity_token(json["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims["sub"], DEMO_MI_OBJECT_ID);
    assert_eq!(claims["aud"], "https://api.botframework.com");
    assert_eq!(sandbox.count(Route::Imds), 1);

    // Managed identity endpoints are never reached through a proxy, even when one is configured.
    let json = token(vec![
        ("CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
        ("TENANT_ID", DEMO_TENANT_ID.into()),
        ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
        ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host()),
        ("HTTP_PROXY", "http://127.0.0.1:9".into()),
        ("http_proxy", "http://127.0.0.1:9".into()),
        ("ALL_PROXY", "http://127.0.0.1:9".into()),
    ])
    .await;
    assert_eq!(json["credential"], "managed_identity");
    assert_eq!(sandbox.count(Route::Imds), 2);

    // Bot Framework: MicrosoftAppType=UserAssignedMSI, on App Service.
    let json = token(vec![
        ("MicrosoftAppId", DEMO_MI_CLIENT_ID.into()),
        ("MicrosoftAppType", "UserAssignedMSI".into()),
        ("MicrosoftAppTenantId", DEMO_TENANT_ID.into()),
        (
            "IDENTITY_ENDPOINT",
            sandbox
                .managed_identity_endpoint(Route::AppService)
                .unwrap(),
        ),
        ("IDENTITY_HEADER", sandbox.identity_header()),
    ])
    .await;
    assert_eq!(json["credential"], "managed_identity");
    assert_eq!(sandbox.count(Route::AppService), 1);

    // Agents SDK: SystemManagedIdentity, on Service Fabric with its pinned certificate.
    let json = token(vec![
        (
            "Connections__ServiceConnection__Settings__AuthType",
            "SystemManagedIdentity".into(),
        ),
        (
            "Connections__ServiceConnection__Settings__ClientId",
            DEMO_CLIENT_ID.into(),
        ),
        (
            "IDENTITY_ENDPOINT",
            sandbox
                .managed_identity_endpoint(Route::ServiceFabric)
                .unwrap(),
        ),
        ("IDENTITY_HEADER", sandbox.identity_header()),
        (
            "IDENTITY_SERVER_THUMBPRINT",
            sandbox.service_fabric_thumbprint().into(),
        ),
    ])
    .await;
    assert_eq!(json["credential"], "managed_identity");
    assert_eq!(sandbox.count(Route::ServiceFabric), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_a_federated_managed_identity_in_three_dialects() {
    let sandbox = Sandbox::start().await.unwrap();
    trust(&sandbox, DEMO_MI_OBJECT_ID);
    let imds = ("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.imds_host());
    let dialects = vec![
        vec![
            ("CLIENT_ID", DEMO_CLIENT_ID.into()),
            ("TENANT_ID", DEMO_TENANT_ID.into()),
            ("MANAGED_IDENTITY_CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
            ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
            imds.clone(),
        ],
        vec![
            ("AzureAd__Instance", sandbox.url()),
            ("AzureAd__TenantId", DEMO_TENANT_ID.into()),
            ("AzureAd__ClientId", DEMO_CLIENT_ID.into()),
            (
                "AzureAd__ClientCredentials__0__SourceType",
                "SignedAssertionFromManagedIdentity".into(),
            ),
            (
                "AzureAd__ClientCredentials__0__ManagedIdentityClientId",
                DEMO_MI_CLIENT_ID.into(),
            ),
            imds.clone(),
        ],
        vec![
            (
                "Connections__ServiceConnection__Settings__AuthType",
                "FederatedCredentials".into(),
            ),
            (
                "Connections__ServiceConnection__Settings__ClientId",
                DEMO_CLIENT_ID.into(),
            ),
            (
                "Connections__ServiceConnection__Settings__TenantId",
                DEMO_TENANT_ID.into(),
            ),
            (
                "Connections__ServiceConnection__Settings__FederatedClientId",
                DEMO_MI_CLIENT_ID.into(),
            ),
            ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
            imds,
        ],
    ];
    for env in dialects {
        let json = token(env).await;
        assert_eq!(json["credential"], "federated_managed_identity");
        assert_eq!(json["client_id"], DEMO_CLIENT_ID);
        let claims = sandbox
            .verify_access_token(json["access_token"].as_str().unwrap())
            .unwrap();
        assert_eq!(claims["appid"], DEMO_CLIENT_ID);
    }
    assert_eq!(sandbox.count(Route::Imds), 3);
    assert_eq!(sandbox.count(Route::Token), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_with_workload_identity() {
    let sandbox = Sandbox::start().await.unwrap();
    let subject = "system:serviceaccount:bots:cli-test";
    trust(&sandbox, subject);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    let day = std::time::Duration::from_secs(86_400);
    std::fs::write(
        &file,
        sandbox.mint_managed_identity_token(subject, EXCHANGE, day),
    )
    .unwrap();
    let path = file.display().to_string();
    let json = token(vec![
        ("AZURE_CLIENT_ID", DEMO_CLIENT_ID.into()),
        ("AZURE_TENANT_ID", DEMO_TENANT_ID.into()),
        ("AZURE_FEDERATED_TOKEN_FILE", path.clone()),
        ("AZURE_AUTHORITY_HOST", sandbox.url()),
    ])
    .await;
    assert_eq!(json["credential"], "workload_identity");
    let json = token(vec![
        ("AzureAd__Instance", sandbox.url()),
        ("AzureAd__TenantId", DEMO_TENANT_ID.into()),
        ("AzureAd__ClientId", DEMO_CLIENT_ID.into()),
        (
            "AzureAd__ClientCredentials__0__SourceType",
            "SignedAssertionFilePath".into(),
        ),
        (
            "AzureAd__ClientCredentials__0__SignedAssertionFileDiskPath",
            path.clone(),
        ),
    ])
    .await;
    assert_eq!(json["credential"], "workload_identity");
    let json = token(vec![
        (
            "Connections__ServiceConnection__Settings__AuthType",
            "WorkloadIdentity".into(),
        ),
        (
            "Connections__ServiceConnection__Settings__ClientId",
            DEMO_CLIENT_ID.into(),
        ),
        (
            "Connections__ServiceConnection__Settings__TenantId",
            DEMO_TENANT_ID.into(),
        ),
        ("AZURE_FEDERATED_TOKEN_FILE", path),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
    ])
    .await;
    assert_eq!(json["credential"], "workload_identity");
    assert_eq!(sandbox.count(Route::Token), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_managed_identity_endpoint_is_one_line_and_exit_1() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = run(
        &["token"],
        vec![
            ("CLIENT_ID", DEMO_MI_CLIENT_ID.into()),
            ("MANAGED_IDENTITY_CLIENT_ID", "system".into()),
            ("TENANT_ID", DEMO_TENANT_ID.into()),
            (
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                format!("http://127.0.0.1:{port}"),
            ),
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("botauth: error: no managed identity endpoint is available"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_runs_with_each_identity_credential() {
    for credential in ["managed-identity", "federated", "workload-identity"] {
        let out = run(
            &["demo", "--credential", credential, "--callers", "100"],
            NO_ENV,
        )
        .await;
        assert_two_way_demo(&out, credential);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_with_a_key_vault_certificate_follows_two_rotations() {
    let out = run(
        &["demo", "--credential", "key-vault", "--callers", "50"],
        NO_ENV,
    )
    .await;
    assert_two_way_demo(&out, "key-vault");
    let stdout = text(&out.stdout);
    for expected in [
        "configuration (Microsoft.Identity.Web dialect): ",
        "AzureAd__ClientCredentials__0__SourceType=KeyVault",
        "credential: key_vault_certificate",
        "7. The vault rotates the certificate; the bot picks it up on its schedule",
        "the cached token is kept (source: Cache)",
        "signs with the new one: 1 request, accepted",
        "8. The vault rotates again and Entra drops the old certificate at once",
        "reloaded from the vault and retried once: 2 token requests, no restart",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?}\n{stdout}");
    }
    // Neither the vault's secret nor a key is printed.
    assert!(
        !stdout.contains("PRIVATE KEY") && !stdout.contains("MII"),
        "{stdout}"
    );
}
