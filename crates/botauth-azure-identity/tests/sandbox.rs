//! The bridge against the sandbox, over https with its local CA, with the Azure SDK's own
//! credentials and Key Vault client: azure_identity's `ClientSecretCredential` at the sandbox's
//! Entra, its `ManagedIdentityCredential` at the sandbox's App Service endpoint, and
//! `azure_security_keyvault_secrets::SecretClient` at the sandbox's vault. Every client shares one
//! reqwest client that trusts only the sandbox's CA, so nothing leaves 127.0.0.1.

use std::io::Write;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{Secret as AzureSecret, TokenCredential};
use azure_core::http::{ClientOptions, RetryOptions, Transport};
use azure_identity::{
    ClientSecretCredential, ClientSecretCredentialOptions, ManagedIdentityCredential,
    ManagedIdentityCredentialOptions, UserAssignedId,
};
use azure_security_keyvault_secrets::{SecretClient, SecretClientOptions};
use botauth_azure_identity::{AzureCredential, BotTokenCredential, azure_core};
use botauth_core::testkit::ProviderCheck;
use botauth_core::{
    CredentialInfo, CredentialProvider, Error, ErrorKind, Report, Secret, TokenRequest,
};
use botauth_sandbox::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MI_CLIENT_ID, DEMO_TENANT_ID, Fault,
    KeyVaultCertificateOptions, KeyVaultContentType, LocalCa, Route, Sandbox,
};
use botauth_token::TokenManager;

const CONNECTOR: &str = "https://api.botframework.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";
const WRONG_SECRET: &str = "sandbox~not+the/secret=0000";

/// A sandbox serving https with a fresh local CA.
async fn tls_sandbox() -> Sandbox {
    let ca = LocalCa::generate().expect("CA");
    Sandbox::builder().tls(ca).start().await.expect("sandbox")
}

/// The one HTTP client of a test: trusts the sandbox's CA and nothing else, no proxy, no
/// redirects (botauth's token client needs that).
fn http_client(ca_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem).expect("CA PEM")])
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Azure client options: `client` as the transport, the sandbox as the cloud's authority.
fn azure_options(client: &reqwest::Client, authority: &str) -> ClientOptions {
    let mut cloud = CustomConfiguration::default();
    cloud.authority_host = authority.to_owned();
    ClientOptions {
        transport: Some(Transport::new(Arc::new(client.clone()))),
        cloud: Some(Arc::new(CloudConfiguration::from(cloud))),
        ..ClientOptions::default()
    }
}

/// azure_identity's `ClientSecretCredential` for the demo app at the sandbox, as a botauth provider.
fn azure_client_secret(
    sandbox: &Sandbox,
    client: &reqwest::Client,
    secret: &'static str,
    retry: RetryOptions,
) -> AzureCredential {
    let mut client_options = azure_options(client, &sandbox.url());
    client_options.retry = retry;
    let azure = ClientSecretCredential::new(
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID.to_owned(),
        AzureSecret::from(secret),
        Some(ClientSecretCredentialOptions { client_options }),
    )
    .expect("credential");
    AzureCredential::with_info(
        azure,
        CredentialInfo {
            client_id: Some(DEMO_CLIENT_ID.into()),
            tenant_id: Some(DEMO_TENANT_ID.into()),
            authority_host: Some(sandbox.url()),
            retries_internally: true,
            ..CredentialInfo::new("azure_client_secret")
        },
    )
}

/// botauth's own client-secret credential for the demo app at the sandbox, behind a manager.
fn bot_tokens(sandbox: &Sandbox, client: &reqwest::Client, secret: &str) -> TokenManager {
    let bot = botauth_secret::ClientSecretCredential::builder(
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        Secret::new(secret),
    )
    .settings(
        botauth_http::ClientSettings::new()
            .authority_host(sandbox.url())
            .http_client(client.clone()),
    )
    .build()
    .expect("credential");
    TokenManager::new(Arc::new(bot))
}

/// The Azure SDK's Key Vault secrets client for the sandbox's vault at `vault`, authenticating
/// with `credential`.
fn secret_client(
    vault: &str,
    credential: Arc<dyn TokenCredential>,
    client: &reqwest::Client,
) -> SecretClient {
    SecretClient::new(
        vault,
        credential,
        Some(SecretClientOptions {
            client_options: azure_options(client, vault),
            // The sandbox's vault is 127.0.0.1, not a host under vault.azure.net.
            verify_challenge_resource: Some(false),
            ..SecretClientOptions::default()
        }),
    )
    .expect("client")
}

/// The statuses the sandbox answered on `route`, in order.
fn statuses(sandbox: &Sandbox, route: Route) -> Vec<u16> {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.route == route)
        .map(|r| r.status)
        .collect()
}

/// Everything `tracing` prints at TRACE on this thread (the sandbox, botauth and the Azure SDK
/// all run on it: the tests use the current-thread runtime).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }

    /// Fails when any of `secrets` was logged; `what` names the run.
    fn assert_free_of(&self, secrets: &[&str], what: &str) {
        let text = self.text();
        assert!(
            text.len() > 1000,
            "{what}: the capture saw the run ({} bytes)",
            text.len()
        );
        for secret in secrets {
            assert!(!text.contains(secret), "{what}: a secret reached the log");
        }
    }
}

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn an_azure_identity_credential_behind_the_token_manager() {
    let log = Captured::default();
    let _guard = log.install();
    let sandbox = tls_sandbox().await;
    let client = http_client(sandbox.tls_ca().expect("tls").certificate_pem());
    let request = TokenRequest::new(CONNECTOR);

    // The conformance suite botauth's own providers pass, failure path included: the wrong secret
    // is Entra's AADSTS7000215 and shows neither secret. It is a `Credential` error, not
    // `Rejected`: azure_identity 1.0 cannot parse Entra's error document (src/error.rs says why),
    // so the status is lost and only the code survives.
    let provider = azure_client_secret(
        &sandbox,
        &client,
        DEMO_CLIENT_SECRET,
        RetryOptions::default(),
    );
    let wrong = azure_client_secret(&sandbox, &client, WRONG_SECRET, RetryOptions::default());
    let report = ProviderCheck::new()
        .secrets(&[DEMO_CLIENT_SECRET, WRONG_SECRET])
        .failing(&wrong, ErrorKind::Credential)
        .run(&provider, &request)
        .await;
    assert!(report.is_ok(), "{report:?}");

    // Behind the one cache: 50 concurrent callers, one token request.
    let fresh = azure_client_secret(
        &sandbox,
        &client,
        DEMO_CLIENT_SECRET,
        RetryOptions::default(),
    );
    let tokens = TokenManager::new(Arc::new(fresh));
    sandbox.clear_log();
    let asked_at = SystemTime::now();
    let all = futures::future::join_all((0..50).map(|_| tokens.get_token(&request))).await;
    assert_eq!(sandbox.count(Route::Token), 1);
    let token = all.into_iter().next().expect("one").expect("token");
    let claims = sandbox
        .verify_access_token(token.token.expose_secret())
        .expect("a token the sandbox issued");
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
    assert_eq!(claims["aud"], "https://api.botframework.com");
    // The expiry carried over: azure_identity computes it as its clock + expires_in, the
    // sandbox's `exp` is its clock + the lifetime.
    let exp = claims["exp"].as_u64().expect("exp");
    assert!(
        token.expires_on_unix().abs_diff(exp) <= 2,
        "{} vs {exp}",
        token.expires_on_unix()
    );
    assert!(token.remaining(asked_at) > Duration::from_secs(3500));

    // A rejection through the manager keeps Entra's code and botauth's hint.
    let wrong_tokens = TokenManager::new(Arc::new(wrong));
    let e = wrong_tokens
        .get_token(&request)
        .await
        .expect_err("wrong secret");
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(!e.is_retryable());
    let text = e.to_string();
    assert!(
        text.contains("(AADSTS7000215): the client secret is wrong"),
        "{text}"
    );

    // 429 with Retry-After (the Azure pipeline's retries off, so the answer reaches botauth). The
    // body has no JSON escape, so azure_identity can read it and keeps the answer.
    let no_retry = azure_client_secret(&sandbox, &client, DEMO_CLIENT_SECRET, RetryOptions::none());
    sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 429,
            body: Some(
                r#"{"error":"temporarily_unavailable","error_description":"AADSTS50196: The server terminated an operation because it encountered a client request loop.","error_codes":[50196]}"#
                    .into(),
            ),
            retry_after: Some("120".into()),
        },
    );
    let e = no_retry.get_token(&request).await.expect_err("throttled");
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    assert!(
        e.to_string()
            .starts_with(&format!("{} is throttling", sandbox.url())),
        "{e}"
    );

    // Nothing the Azure SDK, botauth or the sandbox logged holds a secret or the token.
    log.assert_free_of(
        &[
            DEMO_CLIENT_SECRET,
            WRONG_SECRET,
            token.token.expose_secret(),
        ],
        "azure_identity behind botauth",
    );
}

#[tokio::test]
async fn azure_sdk_clients_take_the_bots_token_from_botauths_cache() {
    let log = Captured::default();
    let _guard = log.install();
    let sandbox = tls_sandbox().await;
    let client = http_client(sandbox.tls_ca().expect("tls").certificate_pem());
    sandbox.create_key_vault_certificate(
        "bot-cert",
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    // Only the bot's app may read the vault: the SDK clients authenticate as the bot.
    sandbox.set_key_vault_access(Some(vec![DEMO_CLIENT_ID.to_owned()]));

    let tokens = bot_tokens(&sandbox, &client, DEMO_CLIENT_SECRET);
    let credential = BotTokenCredential::new(tokens.clone());
    let vault_url = sandbox.key_vault_url();

    // Five clients, two reads each: the first read of each is challenged (401) for the scope,
    // then every read carries the bot's token, and all of them came from one token request.
    let clients: Vec<SecretClient> = (0..5)
        .map(|_| secret_client(&vault_url, credential.clone(), &client))
        .collect();
    let mut secret_value = String::new();
    for round in 0..2 {
        for c in &clients {
            let secret = c
                .get_secret("bot-cert", None)
                .await
                .expect("secret")
                .into_model()
                .expect("model");
            assert_eq!(
                secret.content_type.as_deref(),
                Some("application/x-pem-file")
            );
            let value = secret.value.expect("value");
            assert!(
                value.contains("-----BEGIN CERTIFICATE-----"),
                "round {round}"
            );
            secret_value = value;
        }
    }
    assert_eq!(sandbox.count(Route::Token), 1, "one token for every client");
    let vault = statuses(&sandbox, Route::KeyVault);
    assert_eq!(vault.iter().filter(|s| **s == 401).count(), 5, "{vault:?}");
    assert_eq!(vault.iter().filter(|s| **s == 200).count(), 10, "{vault:?}");

    // The SDK got the manager's own token, with its expiry.
    let cached = tokens
        .get_token(&TokenRequest::new(VAULT))
        .await
        .expect("cached");
    let direct = credential.get_token(&[VAULT], None).await.expect("token");
    assert_eq!(direct.token.secret(), cached.token.expose_secret());
    assert_eq!(SystemTime::from(direct.expires_on), cached.expires_on);
    let claims = sandbox
        .verify_access_token(direct.token.secret())
        .expect("issued here");
    assert_eq!(claims["aud"], "https://vault.azure.net");
    // The Bot Connector token comes from the same manager: a second scope, a second request.
    tokens
        .get_token(&TokenRequest::new(CONNECTOR))
        .await
        .expect("connector token");
    assert_eq!(sandbox.count(Route::Token), 2);

    // A bot whose secret is wrong: the SDK client fails with a Credential error whose message
    // carries botauth's hint, and whose chain holds the botauth error.
    let failing = secret_client(
        &vault_url,
        BotTokenCredential::new(bot_tokens(&sandbox, &client, WRONG_SECRET)),
        &client,
    );
    let e = failing
        .get_secret("bot-cert", None)
        .await
        .expect_err("wrong secret");
    assert_eq!(e.kind(), &azure_core::error::ErrorKind::Credential);
    // The SDK's retry policy puts its own words on top ("non-transport error occurred which will
    // not be retried"); the chain has the rest.
    let line = Report::new(&e).to_string();
    assert!(line.contains("BotTokenCredential authentication failed. botauth credential `client_secret`: Entra ID rejected the token request (invalid_client, AADSTS7000215): the client secret is wrong"), "{line}");
    let botauth = botauth_error(&e).expect("the botauth error in the chain");
    assert_eq!(botauth.as_entra().and_then(|e| e.code()), Some(7000215));

    log.assert_free_of(
        &[
            DEMO_CLIENT_SECRET,
            WRONG_SECRET,
            direct.token.secret(),
            // A line of the PEM's base64 body, from the private key onwards.
            secret_value.lines().nth(1).expect("a PEM body line"),
        ],
        "Key Vault client on botauth's credential",
    );
}

/// The botauth error somewhere in an Azure error's chain.
fn botauth_error(error: &azure_core::Error) -> Option<&Error> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<Error>() {
            return Some(found);
        }
        next = e.source();
    }
    None
}

/// In the child process of the managed identity test: the vault's URL and the sandbox's CA.
const CHILD_VAULT: &str = "BOTAUTH_AZURE_IDENTITY_TEST_VAULT";
const CHILD_CA: &str = "BOTAUTH_AZURE_IDENTITY_TEST_CA";
const MI_TEST: &str = "azure_managed_identity_credential_at_the_sandboxs_app_service_endpoint";
/// A user-assigned identity the sandbox's host does not have.
const UNKNOWN_IDENTITY: &str = "55555555-0000-4000-8000-00000000c11d";

/// azure_identity's `ManagedIdentityCredential` finds the App Service endpoint through
/// `IDENTITY_ENDPOINT` and `IDENTITY_HEADER` in the process environment, which it alone reads
/// (its injectable environment is compiled only into its own tests), and this workspace forbids
/// the `unsafe` `std::env::set_var`. So the test starts the sandbox, then runs itself again as a
/// child process with those variables pointing at the sandbox; the child does the Azure side,
/// the parent checks what reached the sandbox.
#[tokio::test]
async fn azure_managed_identity_credential_at_the_sandboxs_app_service_endpoint() {
    if let Ok(vault) = std::env::var(CHILD_VAULT) {
        let ca = std::env::var(CHILD_CA).expect("the CA from the parent");
        managed_identity_child(&vault, ca.as_bytes()).await;
        return;
    }
    let sandbox = tls_sandbox().await;
    sandbox.create_key_vault_certificate(
        "bot-cert",
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    sandbox.set_key_vault_access(Some(vec![DEMO_MI_CLIENT_ID.to_owned()]));
    let ca = String::from_utf8(sandbox.tls_ca().expect("tls").certificate_pem().to_vec())
        .expect("PEM is text");
    let mut child = Command::new(std::env::current_exe().expect("this test binary"));
    child
        .args([MI_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_VAULT, sandbox.key_vault_url())
        .env(CHILD_CA, ca)
        .env(
            "IDENTITY_ENDPOINT",
            sandbox
                .managed_identity_endpoint(Route::AppService)
                .expect("a managed identity route"),
        )
        .env("IDENTITY_HEADER", sandbox.identity_header());
    // Whatever this machine has set must not choose another source.
    for other in [
        "IDENTITY_SERVER_THUMBPRINT",
        "IMDS_ENDPOINT",
        "MSI_ENDPOINT",
        "MSI_SECRET",
    ] {
        child.env_remove(other);
    }
    let output = tokio::task::spawn_blocking(move || child.output())
        .await
        .expect("join")
        .expect("the child ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("1 passed"),
        "the child ran the test:\n{stdout}"
    );

    // One token request for the vault scope (five manager calls and three SDK clients), and one
    // refused for the identity the host does not have.
    assert_eq!(statuses(&sandbox, Route::AppService), [200, 400]);
    assert_eq!(
        statuses(&sandbox, Route::KeyVault),
        [401, 200, 401, 200, 401, 200]
    );
    assert_eq!(
        sandbox.count(Route::Token),
        0,
        "no Entra request: the identity endpoint only"
    );
}

/// The child's half: azure_identity's managed identity credential behind botauth's manager,
/// and that manager behind the Azure SDK's Key Vault client.
async fn managed_identity_child(vault: &str, ca_pem: &[u8]) {
    let client = http_client(ca_pem);
    let managed_identity = |client_id: &str| {
        let azure = ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
            user_assigned_id: Some(UserAssignedId::ClientId(client_id.to_owned())),
            client_options: azure_options(&client, vault),
        }))
        .expect("the App Service source, from IDENTITY_ENDPOINT and IDENTITY_HEADER");
        AzureCredential::with_info(
            azure,
            CredentialInfo {
                client_id: Some(client_id.into()),
                retries_internally: true,
                ..CredentialInfo::new("azure_managed_identity")
            },
        )
    };
    let tokens = TokenManager::builder(Arc::new(managed_identity(DEMO_MI_CLIENT_ID)))
        .options(AzureCredential::manager_options())
        .build();
    let request = TokenRequest::new(VAULT);
    let asked_at = SystemTime::now();
    for _ in 0..5 {
        let token = tokens.get_token(&request).await.expect("token");
        // The endpoint's `expires_on` (epoch seconds) carried over: the sandbox's one-hour token.
        let left = token.remaining(asked_at);
        assert!(
            left > Duration::from_secs(3500) && left <= Duration::from_secs(3600),
            "{left:?}"
        );
    }

    let credential = BotTokenCredential::new(tokens.clone());
    for _ in 0..3 {
        let secrets = secret_client(vault, credential.clone(), &client);
        let secret = secrets
            .get_secret("bot-cert", None)
            .await
            .expect("the managed identity reads the vault")
            .into_model()
            .expect("model");
        assert_eq!(
            secret.content_type.as_deref(),
            Some("application/x-pem-file")
        );
    }

    let e = managed_identity(UNKNOWN_IDENTITY)
        .get_token(&request)
        .await
        .expect_err("not assigned to this host");
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(
        e.to_string()
            .contains("refused the token request (HTTP 400)"),
        "{e}"
    );
    assert!(!e.is_retryable());
}
