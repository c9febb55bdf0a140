//! Managed identity and workload identity as federated credentials of an app registration, through
//! the token crate's client-credentials client, against the sandbox's token endpoint.

// Helpers shared by the tests panic like the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use botauth_core::testkit::check_provider;
use botauth_core::{
    AssertionRequest, BotAuthConfig, ClientAssertionSource, Cloud, CredentialConfig,
    CredentialProvider, Dialect, EntraError, Error, TokenRequest,
};
use botauth_managed_identity::{
    ManagedIdentityAssertion, ManagedIdentityCredential, ManagedIdentityId,
};
use botauth_sandbox::{
    AppRegistration, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, FederatedCredential, Route, Sandbox,
};
use common::*;

const APP: &str = "55555555-0000-4000-8000-0000000000a1";
const TENANT: &str = "66666666-0000-4000-8000-0000000000d1";
const EXCHANGE: &str = "api://AzureADTokenExchange";

fn config(sandbox: &Sandbox, cloud: Cloud, credential: CredentialConfig) -> BotAuthConfig {
    let mut c = BotAuthConfig::new(Dialect::Native);
    c.client_id = Some(APP.into());
    c.tenant_id = Some(TENANT.into());
    c.cloud = cloud.with_authority_host(sandbox.url());
    c.credentials = vec![credential];
    c
}

fn register(sandbox: &Sandbox, issuer: &str, subject: &str, audience: &str) {
    sandbox.register_app(
        AppRegistration::new(APP, TENANT)
            .with_federated(FederatedCredential::new(issuer, subject, audience)),
    );
}

fn federated(sandbox: &Sandbox) -> Arc<dyn CredentialProvider> {
    let entry = CredentialConfig::FederatedManagedIdentity {
        id: ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
    };
    ManagedIdentityCredential::from_entry(
        &config(sandbox, Cloud::Public, entry.clone()),
        &entry,
        Some(imds_env(sandbox)),
    )
    .unwrap()
}

#[tokio::test]
async fn federated_managed_identity_gets_the_apps_token_and_caches_the_assertion() {
    let sandbox = Sandbox::start().await.unwrap();
    register(
        &sandbox,
        &sandbox.managed_identity_issuer(),
        DEMO_MI_OBJECT_ID,
        EXCHANGE,
    );
    let provider = federated(&sandbox);
    assert_eq!(provider.describe().kind, "federated_managed_identity");
    assert_eq!(provider.describe().client_id.as_deref(), Some(APP));
    for _ in 0..3 {
        let token = provider
            .get_token(&TokenRequest::new(BOT_SCOPE))
            .await
            .unwrap();
        let claims = sandbox
            .verify_access_token(token.token.expose_secret())
            .unwrap();
        assert_eq!(claims["appid"], APP);
    }
    // Three app tokens, one managed identity token: the assertion is cached.
    assert_eq!(sandbox.count(Route::Token), 3);
    assert_eq!(sandbox.count(Route::Imds), 1);
    check_provider(&*provider, &TokenRequest::new(BOT_SCOPE), &[])
        .await
        .unwrap();
}

async fn code_for(sandbox: &Sandbox, cloud: Cloud) -> Option<u32> {
    match outcome(sandbox, cloud).await {
        Ok(()) => panic!("the token request succeeded"),
        Err(e) => e.as_entra().and_then(EntraError::code),
    }
}

async fn outcome(sandbox: &Sandbox, cloud: Cloud) -> Result<(), Error> {
    let entry = CredentialConfig::FederatedManagedIdentity {
        id: ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
    };
    let provider = ManagedIdentityCredential::from_entry(
        &config(sandbox, cloud, entry.clone()),
        &entry,
        Some(imds_env(sandbox)),
    )
    .unwrap();
    provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .map(|_| ())
}

#[tokio::test]
async fn an_assertion_rejected_by_the_token_endpoint_is_replaced_for_one_retry() {
    let sandbox = Sandbox::start().await.unwrap();
    register(
        &sandbox,
        &sandbox.managed_identity_issuer(),
        DEMO_MI_OBJECT_ID,
        EXCHANGE,
    );
    let provider = federated(&sandbox);
    provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .unwrap();
    // Entra says the (cached) assertion is outside its validity window.
    sandbox.inject(
        Route::Token,
        botauth_sandbox::Fault::Status {
            status: 401,
            body: Some(r#"{"error":"invalid_client","error_description":"AADSTS700024: Client assertion is not within its valid time range.","error_codes":[700024]}"#.into()),
            retry_after: None,
        },
    );
    provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .unwrap();
    // The rejected request and its retry; the retry carried a freshly fetched MI token.
    assert_eq!(sandbox.count(Route::Token), 3);
    assert_eq!(sandbox.count(Route::Imds), 2);
}

#[tokio::test]
async fn federated_credential_mismatches_have_their_codes() {
    let sandbox = Sandbox::start().await.unwrap();
    let issuer = sandbox.managed_identity_issuer();
    register(&sandbox, &issuer, "another-object-id", EXCHANGE);
    assert_eq!(code_for(&sandbox, Cloud::Public).await, Some(700_213));
    register(&sandbox, &issuer, DEMO_MI_OBJECT_ID, "api://somewhere-else");
    assert_eq!(code_for(&sandbox, Cloud::Public).await, Some(700_212));
    register(
        &sandbox,
        "https://token.actions.githubusercontent.com",
        DEMO_MI_OBJECT_ID,
        EXCHANGE,
    );
    assert_eq!(code_for(&sandbox, Cloud::Public).await, Some(700_211));
    sandbox.register_app(AppRegistration::new(APP, TENANT));
    assert_eq!(code_for(&sandbox, Cloud::Public).await, Some(70021));
    // The US Gov cloud asks for its own audience, which this app's credential does not name.
    register(&sandbox, &issuer, DEMO_MI_OBJECT_ID, EXCHANGE);
    assert_eq!(code_for(&sandbox, Cloud::UsGov).await, Some(700_212));
    register(
        &sandbox,
        &issuer,
        DEMO_MI_OBJECT_ID,
        "api://AzureADTokenExchangeUSGov",
    );
    outcome(&sandbox, Cloud::UsGov).await.unwrap();
}

#[tokio::test]
async fn a_rejected_assertion_is_dropped_and_fetched_again() {
    let sandbox = Sandbox::start().await.unwrap();
    let mi = credential(
        imds_env(&sandbox),
        ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
        TestClock::new(),
    );
    let assertion = ManagedIdentityAssertion::for_cloud(mi, &Cloud::China);
    assert_eq!(assertion.audience(), "api://AzureADTokenExchangeChina");
    let request = AssertionRequest::new("https://login/t/oauth2/v2.0/token", APP);
    let first = assertion.assertion(&request).await.unwrap();
    let again = assertion.assertion(&request).await.unwrap();
    assert!(first.ptr_eq(&again));
    assert_eq!(sandbox.count(Route::Imds), 1);
    let claims = sandbox
        .verify_managed_identity_token(first.expose_secret())
        .unwrap();
    assert_eq!(claims["aud"], "api://AzureADTokenExchangeChina");

    let expired = EntraError::from_body(
        401,
        br#"{"error":"invalid_client","error_codes":[700024]}"#,
        None,
    )
    .unwrap();
    assert!(assertion.on_rejected(&expired).await);
    let fresh = assertion.assertion(&request).await.unwrap();
    assert!(!fresh.ptr_eq(&first));
    assert_eq!(sandbox.count(Route::Imds), 2);
    assert!(!format!("{assertion:?}").contains(fresh.expose_secret()));
}

#[tokio::test]
async fn the_assertion_is_refetched_shortly_before_it_expires() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.set_token_lifetime(Duration::from_secs(3600));
    let clock = TestClock::new();
    let mi = credential(imds_env(&sandbox), ManagedIdentityId::System, clock.clone());
    let assertion = ManagedIdentityAssertion::new(mi, EXCHANGE);
    let request = AssertionRequest::new("https://login/t/oauth2/v2.0/token", APP);
    let first = assertion.assertion(&request).await.unwrap();
    // 50 minutes later the token is not even due for refresh-ahead: cached.
    botauth_core::Clock::sleep(&*clock, Duration::from_secs(50 * 60)).await;
    assert!(assertion.assertion(&request).await.unwrap().ptr_eq(&first));
    assert_eq!(sandbox.count(Route::Imds), 1);
    // With less than the 5-minute margin left it is fetched again before use.
    botauth_core::Clock::sleep(&*clock, Duration::from_secs(6 * 60)).await;
    let next = assertion.assertion(&request).await.unwrap();
    assert!(!next.ptr_eq(&first));
    assert_eq!(sandbox.count(Route::Imds), 2);
}

#[tokio::test]
async fn workload_identity_reads_the_token_file_as_the_assertion() {
    let sandbox = Sandbox::start().await.unwrap();
    let subject = "system:serviceaccount:bots:teams-bot";
    register(
        &sandbox,
        &sandbox.managed_identity_issuer(),
        subject,
        EXCHANGE,
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("azure-identity-token");
    let day = Duration::from_secs(86_400);
    std::fs::write(
        &file,
        sandbox.mint_managed_identity_token(subject, EXCHANGE, day),
    )
    .unwrap();
    let entry = CredentialConfig::WorkloadIdentity {
        token_file: file.clone(),
    };
    let provider = ManagedIdentityCredential::from_entry(
        &config(&sandbox, Cloud::Public, entry.clone()),
        &entry,
        None,
    )
    .unwrap();
    assert_eq!(provider.describe().kind, "workload_identity");
    let token = provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .unwrap();
    assert_eq!(
        sandbox
            .verify_access_token(token.token.expose_secret())
            .unwrap()["appid"],
        APP
    );
    check_provider(&*provider, &TokenRequest::new(BOT_SCOPE), &[])
        .await
        .unwrap();

    // kubelet rotates the file to a token of another subject: the next request presents it.
    let next = dir.path().join("next");
    std::fs::write(
        &next,
        sandbox.mint_managed_identity_token("someone-else", EXCHANGE, day),
    )
    .unwrap();
    std::fs::rename(&next, &file).unwrap();
    let e = provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .unwrap_err();
    assert_eq!(e.as_entra().and_then(EntraError::code), Some(700_213));

    std::fs::remove_file(&file).unwrap();
    let e = provider
        .get_token(&TokenRequest::new(BOT_SCOPE))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Credential { .. }), "{e:?}");
}

#[tokio::test]
async fn managed_identity_passes_the_conformance_suite() {
    let sandbox = Sandbox::start().await.unwrap();
    for env in [
        imds_env(&sandbox),
        app_service_env(&sandbox),
        service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint()),
        azure_ml_env(&sandbox),
        cloud_shell_env(&sandbox),
    ] {
        let c = credential(env.clone(), ManagedIdentityId::System, TestClock::new());
        let secret = sandbox.identity_header();
        check_provider(&c, &TokenRequest::new(BOT_SCOPE), &[&secret])
            .await
            .unwrap_or_else(|f| panic!("{:?}: {f:?}", c.source()));
    }
    // The error paths: an identity the endpoint does not have, and (where the source sends one)
    // a wrong secret header; neither error shows the header the credential sent or the real one.
    let wrong_header = "wr0ng-identity-header-0123456789";
    for env in [
        imds_env(&sandbox),
        app_service_env(&sandbox),
        service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint()),
        azure_ml_env(&sandbox),
    ] {
        let c = credential(env.clone(), ManagedIdentityId::System, TestClock::new());
        let unknown = credential(
            env.clone(),
            ManagedIdentityId::ClientId("99999999-0000-0000-0000-000000000000".into()),
            TestClock::new(),
        );
        let mut wrong_env = env.clone();
        for key in ["IDENTITY_HEADER", "MSI_SECRET"] {
            if wrong_env.contains(key) {
                wrong_env.insert(key, wrong_header);
            }
        }
        let wrong = credential(
            wrong_env.clone(),
            ManagedIdentityId::System,
            TestClock::new(),
        );
        let header = sandbox.identity_header();
        let mut check = botauth_core::testkit::ProviderCheck::new()
            .secrets(&[&header, wrong_header])
            .failing(&unknown, botauth_core::ErrorKind::Credential);
        if wrong_env != env {
            check = check.failing(&wrong, botauth_core::ErrorKind::Credential);
        }
        check
            .run(&c, &TokenRequest::new(BOT_SCOPE))
            .await
            .unwrap_or_else(|f| panic!("{:?}: {f:?}", c.source()));
    }
    let entry = CredentialConfig::ManagedIdentity {
        id: ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
    };
    let provider = ManagedIdentityCredential::from_entry(
        &config(&sandbox, Cloud::Public, entry.clone()),
        &entry,
        Some(app_service_env(&sandbox)),
    )
    .unwrap();
    assert_eq!(provider.describe().kind, "managed_identity");
    check_provider(
        &*provider,
        &TokenRequest::new(BOT_SCOPE),
        &[&sandbox.identity_header()],
    )
    .await
    .unwrap();
}
