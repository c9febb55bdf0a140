//! Captures every `tracing` event of certificate runs (all crates, TRACE level) and fails if a
//! private key, a PFX password, a base64 PFX, a client assertion or an access token appears.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use botauth::certificate::{CertificateAssertion, CertificateSource};
use botauth::core::{AssertionRequest, ClientAssertionSource, EntraError};
use botauth::token::{ClientAuth, ClientCredentialsClient};
use botauth::{BotAuth, BotAuthConfig, CredentialProvider, Secret, TokenRequest, async_trait};
use botauth_e2e::{CapturedLogs, FIXTURE_PFX_PASSWORD, fixture, form_encoded, jwt_and_parts};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox,
};

const PASSWORD: &str = FIXTURE_PFX_PASSWORD;

fn read(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture file")
}

/// Remembers every assertion it hands out, so the test knows what must not be logged.
#[derive(Debug)]
struct Recording {
    inner: CertificateAssertion,
    seen: Mutex<Vec<String>>,
}

#[async_trait]
impl ClientAssertionSource for Recording {
    async fn assertion(&self, request: &AssertionRequest<'_>) -> botauth::Result<Secret> {
        let a = self.inner.assertion(request).await?;
        self.seen
            .lock()
            .expect("recording lock")
            .push(a.expose_secret().to_owned());
        Ok(a)
    }
    async fn on_rejected(&self, error: &EntraError) -> bool {
        self.inner.on_rejected(error).await
    }
    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_key_password_or_assertion_reaches_the_logs() {
    let logs = CapturedLogs::scenario().await;
    let sandbox = Sandbox::start().await.unwrap();
    let der = |name: &str| {
        openssl::x509::X509::from_pem(read(name).as_bytes())
            .unwrap()
            .to_der()
            .unwrap()
    };
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_secret(DEMO_CLIENT_SECRET)
            .with_certificate_der(der("rsa2048.pem")),
    );
    let b64 = read("rsa2048.pfx.b64");

    // 1. From configuration (base64 PFX with its password), printed as an application would.
    let config = BotAuthConfig::from_vars([
        ("AzureAd__TenantId", DEMO_TENANT_ID.to_owned()),
        ("AzureAd__ClientId", DEMO_CLIENT_ID.to_owned()),
        (
            "AzureAd__ClientCredentials__0__SourceType",
            "Base64Encoded".to_owned(),
        ),
        (
            "AzureAd__ClientCredentials__0__Base64EncodedValue",
            b64.clone(),
        ),
        (
            "AzureAd__ClientCredentials__0__CertificatePassword",
            PASSWORD.to_owned(),
        ),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
    ])
    .unwrap();
    tracing::info!(?config, "configuration loaded");
    let auth = BotAuth::from_config(config).unwrap();
    tracing::info!(?auth, "auth built");
    let mut tokens = vec![auth.connector_token().await.unwrap()];

    // Bot Framework with the key's PEM text in CertificatePrivateKey.
    let config = BotAuthConfig::from_vars([
        ("MicrosoftAppId", DEMO_CLIENT_ID.to_owned()),
        ("MicrosoftAppTenantId", DEMO_TENANT_ID.to_owned()),
        ("MicrosoftAppType", "SingleTenant".to_owned()),
        ("CertificatePrivateKey", read("rsa2048.key")),
        ("CertificatePath", fixture("rsa2048.pem")),
        ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
    ])
    .unwrap();
    tracing::info!(?config, "configuration loaded");
    let bf = BotAuth::from_config(config).unwrap();
    tracing::info!(?bf, "auth built");
    tokens.push(bf.connector_token().await.unwrap());

    // 2. Encrypted PEM key on disk, rotated (first half-done, then complete), reload-once on a
    //    rejection, and the assertions recorded.
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("bot.pem"), dir.path().join("bot.key"));
    std::fs::write(&cert, read("rsa2048.pem")).unwrap();
    std::fs::write(&key, read("rsa2048.enc.key")).unwrap();
    let recording = Arc::new(Recording {
        inner: CertificateAssertion::builder(CertificateSource::pem_files(&cert, &key))
            .password(Secret::new(PASSWORD))
            .build()
            .unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    tracing::info!(?recording, "assertion source built");
    let client = ClientCredentialsClient::builder(
        sandbox.url(),
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        ClientAuth::Assertion(recording.clone()),
    )
    .build()
    .unwrap();
    tracing::info!(?client, "client built");
    let request = TokenRequest::new("https://api.botframework.com/.default");
    tokens.push(client.get_token(&request).await.unwrap());
    sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 401,
            body: Some(r#"{"error":"invalid_client","error_codes":[700027]}"#.into()),
            retry_after: None,
        },
    );
    tokens.push(client.get_token(&request).await.unwrap());
    std::fs::write(&key, read("other2048.key")).unwrap(); // half a rotation: mismatched pair
    tokens.push(client.get_token(&request).await.unwrap());
    std::fs::write(&key, b"-----BEGIN PRIVATE KEY-----\ntruncated").unwrap();
    tokens.push(client.get_token(&request).await.unwrap());

    // 3. A wrong password, logged as an application would log the error.
    let e = CertificateAssertion::builder(CertificateSource::file(fixture("rsa2048.pfx")))
        .password(Secret::new("wrong+pass/word"))
        .build()
        .unwrap_err();
    tracing::error!(error = %e, debug = ?e, "as an application would log it");
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(sandbox);

    let assertions = recording.seen.lock().unwrap().clone();
    assert!(assertions.len() >= 5, "{}", assertions.len());

    let mut forbidden: Vec<String> = vec![
        PASSWORD.into(),
        form_encoded(PASSWORD),
        "wrong+pass/word".into(),
        b64.trim().to_owned(),
        b64[..64].to_owned(),
    ];
    for key in ["rsa2048.key", "rsa2048.enc.key", "other2048.key"] {
        // Every line of the key's base64 body.
        forbidden.extend(
            read(key)
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .map(str::to_owned),
        );
    }
    for a in &assertions {
        let parts: Vec<&str> = a.split('.').collect();
        forbidden.push(a.clone());
        forbidden.push(form_encoded(a));
        forbidden.push(parts[1].to_owned()); // claims: unique per assertion (jti)
        forbidden.push(parts[2].to_owned()); // signature
    }
    for t in &tokens {
        forbidden.extend(jwt_and_parts(t.token.expose_secret()));
    }
    logs.assert_clean(
        &[
            "requesting token",
            "client certificate reloaded",
            "could not be reloaded",
        ],
        &forbidden,
    );
}
