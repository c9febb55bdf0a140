//! The Key Vault certificate credential against the sandbox's Key Vault, over real HTTP: loading
//! (PKCS#12 and PEM), every refusal the issue names, vault errors, the URL rule, scheduled and
//! AADSTS-triggered rotation, rotation with a future `nbf`, outages, and no secret in logs.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth_core::config::EnvVars;
use botauth_core::{AccessToken, Cloud, CredentialProvider, Error, Result, TokenRequest};
use botauth_keyvault::{
    KeyVaultCertificateCredential, KeyVaultError, KeyVaultErrorKind, RotationOutcome,
};
use botauth_sandbox::{
    AppRegistration, Fault, KeyVaultCertificateOptions, KeyVaultContentType, KeyVaultVersion,
    Route, Sandbox,
};

const APP: &str = "00000000-0000-0000-0000-0000000c0de1";
const TENANT: &str = "11111111-2222-3333-4444-555555555555";
const SCOPE: &str = "https://api.botframework.com/.default";
const NAME: &str = "bot-cert";

/// The sandbox's IMDS stands in for the host's managed identity endpoint.
fn mi_env(sandbox: &Sandbox) -> EnvVars {
    [("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.url())]
        .into_iter()
        .collect()
}

fn register(sandbox: &Sandbox, versions: &[&KeyVaultVersion]) {
    let mut app = AppRegistration::new(APP, TENANT);
    for v in versions {
        app = app.with_certificate_der(v.certificate_der.clone());
    }
    sandbox.register_app(app);
}

fn builder(
    sandbox: &Sandbox,
    name: &str,
) -> botauth_keyvault::KeyVaultCertificateCredentialBuilder {
    KeyVaultCertificateCredential::builder(TENANT, APP, sandbox.key_vault_url(), name)
        .cloud(&Cloud::Public.with_authority_host(sandbox.url()))
        .env(mi_env(sandbox))
}

async fn token(c: &KeyVaultCertificateCredential) -> Result<AccessToken> {
    c.get_token(&TokenRequest::new(SCOPE)).await
}

fn kind_of(e: &Error) -> Option<KeyVaultErrorKind> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(kv) = s.downcast_ref::<KeyVaultError>() {
            return Some(kv.kind());
        }
        source = s.source();
    }
    None
}

async fn started() -> Sandbox {
    Sandbox::start().await.expect("sandbox starts")
}

fn later(secs: u64) -> SystemTime {
    SystemTime::now() + Duration::from_secs(secs)
}

fn earlier(secs: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(secs)
}

/// Why loading certificate `name` from the sandbox's vault fails.
async fn load_error(sandbox: &Sandbox, name: &str) -> KeyVaultError {
    match builder(sandbox, name)
        .build()
        .expect("the credential builds")
        .load()
        .await
    {
        Ok(version) => panic!("{name} loaded (version {version}) but should not"),
        Err(e) => e,
    }
}

/// A new version of [`NAME`] in the sandbox's vault (a rotation).
fn rotate(sandbox: &Sandbox) -> KeyVaultVersion {
    sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default())
}

/// A credential that has signed a token request with the first version of [`NAME`] (registered
/// on the app), checking the vault every `every`.
async fn signing(
    sandbox: &Sandbox,
    every: Option<Duration>,
) -> (KeyVaultCertificateCredential, KeyVaultVersion) {
    let v1 = rotate(sandbox);
    register(sandbox, &[&v1]);
    let c = builder(sandbox, NAME)
        .rotation_check(every)
        .build()
        .expect("the credential builds");
    token(&c).await.expect("the first version signs");
    (c, v1)
}

#[tokio::test]
async fn pkcs12_and_pem_certificates_sign_token_requests() {
    let sandbox = started().await;
    let pfx =
        sandbox.create_key_vault_certificate("pfx-cert", KeyVaultCertificateOptions::default());
    let pem = sandbox.create_key_vault_certificate(
        "pem-cert",
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    register(&sandbox, &[&pfx, &pem]);
    for v in [&pfx, &pem] {
        let c = builder(&sandbox, &v.name).build().unwrap();
        let t = token(&c)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", v.name));
        let claims = sandbox
            .verify_access_token(t.token.expose_secret())
            .unwrap();
        assert_eq!(claims["appid"], APP);
        assert_eq!(
            c.current(),
            Some((v.version.clone(), v.sha1_thumbprint.clone())),
            "{}",
            v.name
        );
        assert_eq!(c.describe().kind, "key_vault_certificate");
    }
    // One vault token (cached) per credential; certificate + secret per load.
    assert_eq!(sandbox.count(Route::Imds), 2);
    assert_eq!(sandbox.count(Route::KeyVault), 4);
}

#[tokio::test]
async fn a_secret_of_another_content_type_is_refused() {
    let sandbox = started().await;
    let v = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    let base = sandbox.key_vault_url();
    // The vault's own answer for the certificate, then a secret that is neither PFX nor PEM.
    let x5t = {
        use base64::Engine as _;
        let hex = &v.sha1_thumbprint;
        let bytes: Vec<u8> = (0..20)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
            .collect();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    };
    let certificate = serde_json::json!({
        "id": format!("{base}/certificates/{NAME}/{}", v.version),
        "sid": format!("{base}/secrets/{NAME}/{}", v.version),
        "x5t": x5t,
        "attributes": {"enabled": true, "created": 1},
        "policy": {"key_props": {"exportable": true}},
    });
    let secret =
        serde_json::json!({"value": "s3cr3t-blob", "contentType": "application/octet-stream"});
    for body in [certificate, secret] {
        sandbox.inject(
            Route::KeyVault,
            Fault::Status {
                status: 200,
                body: Some(body.to_string()),
                retry_after: None,
            },
        );
    }
    let c = builder(&sandbox, NAME).build().unwrap();
    let e = c.load().await.unwrap_err();
    assert_eq!(e.kind(), KeyVaultErrorKind::ContentType);
    assert!(e.to_string().contains("application/octet-stream"), "{e}");
    assert!(e.to_string().contains("application/x-pkcs12"), "{e}");
    assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
}

#[tokio::test]
async fn a_non_exportable_key_is_refused_before_its_secret_is_read() {
    let sandbox = started().await;
    sandbox.create_key_vault_certificate(
        NAME,
        KeyVaultCertificateOptions::default().exportable(false),
    );
    let c = builder(&sandbox, NAME).build().unwrap();
    let e = c.load().await.unwrap_err();
    assert_eq!(e.kind(), KeyVaultErrorKind::NotExportable);
    assert!(e.to_string().contains("exportable"), "{e}");
    assert_eq!(
        sandbox.count(Route::KeyVault),
        1,
        "the secret is not asked for"
    );
    // Through the token request it is a credential error carrying the same kind.
    let e = token(&c).await.unwrap_err();
    assert_eq!(kind_of(&e), Some(KeyVaultErrorKind::NotExportable));
}

#[tokio::test]
async fn expired_and_not_yet_valid_certificates_are_refused() {
    let sandbox = started().await;
    sandbox.create_key_vault_certificate(
        "expired",
        KeyVaultCertificateOptions::default()
            .not_before(earlier(7200))
            .not_after(earlier(3600)),
    );
    sandbox.create_key_vault_certificate(
        "future",
        KeyVaultCertificateOptions::default()
            .not_before(later(3600))
            .not_after(later(7200)),
    );
    let e = load_error(&sandbox, "expired").await;
    assert_eq!(e.kind(), KeyVaultErrorKind::Expired, "{e}");
    assert!(e.to_string().contains("expired on"), "{e}");
    let e = load_error(&sandbox, "future").await;
    assert_eq!(e.kind(), KeyVaultErrorKind::NotYetValid, "{e}");
    assert!(e.to_string().contains("not valid before"), "{e}");
}

#[tokio::test]
async fn a_rotation_with_a_future_start_at_startup_uses_the_previous_version() {
    let sandbox = started().await;
    let v1 = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    sandbox.create_key_vault_certificate(
        NAME,
        KeyVaultCertificateOptions::default().not_before(later(3600)),
    );
    register(&sandbox, &[&v1]);
    let c = builder(&sandbox, NAME).build().unwrap();
    token(&c).await.unwrap();
    assert_eq!(c.current().map(|(v, _)| v), Some(v1.version));
}

#[tokio::test]
async fn vault_errors_are_typed() {
    let sandbox = started().await;
    sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());

    // 401 twice: once with the cached token, once with a fresh one.
    sandbox.inject_n(Route::KeyVault, Fault::status(401), 2);
    let e = load_error(&sandbox, NAME).await;
    assert_eq!(
        (e.kind(), e.status()),
        (KeyVaultErrorKind::Unauthorized, Some(401)),
        "{e}"
    );
    assert_eq!(
        sandbox.count(Route::Imds),
        2,
        "a fresh token before giving up"
    );

    sandbox.set_key_vault_access(Some(vec!["someone-else".into()]));
    let e = load_error(&sandbox, NAME).await;
    assert_eq!(
        (e.kind(), e.status()),
        (KeyVaultErrorKind::Forbidden, Some(403)),
        "{e}"
    );
    assert!(e.to_string().contains("Key Vault Certificate User"), "{e}");
    sandbox.set_key_vault_access(None);

    let e = load_error(&sandbox, "no-such-cert").await;
    assert_eq!(
        (e.kind(), e.status()),
        (KeyVaultErrorKind::NotFound, Some(404)),
        "{e}"
    );

    sandbox.inject(
        Route::KeyVault,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("7".into()),
        },
    );
    let e = load_error(&sandbox, NAME).await;
    assert_eq!(e.kind(), KeyVaultErrorKind::Throttled, "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert!(e.is_retryable());

    sandbox.inject(Route::KeyVault, Fault::status(500));
    let c = builder(&sandbox, NAME).build().unwrap();
    let e = token(&c).await.unwrap_err();
    assert_eq!(kind_of(&e), Some(KeyVaultErrorKind::Unavailable), "{e}");
    assert!(
        e.is_retryable(),
        "an outage is retryable for the token manager: {e}"
    );

    sandbox.inject(Route::KeyVault, Fault::MalformedJson);
    let e = load_error(&sandbox, NAME).await;
    assert_eq!(e.kind(), KeyVaultErrorKind::InvalidResponse, "{e}");
}

#[tokio::test]
async fn a_vault_outside_the_clouds_suffix_never_gets_a_token() {
    let sandbox = started().await;
    for (url, cloud) in [
        (
            "https://contoso.vault.azure.net.evil.example/",
            Cloud::Public,
        ),
        ("https://contoso.vault.azure.cn/", Cloud::Public),
        ("https://contoso.vault.azure.net/", Cloud::UsGov),
        ("http://contoso.vault.azure.net/", Cloud::Public),
        ("https://vault.azure.net/", Cloud::Public),
    ] {
        let e = KeyVaultCertificateCredential::builder(TENANT, APP, url, NAME)
            .cloud(&cloud)
            .env(mi_env(&sandbox))
            .build()
            .unwrap_err();
        assert!(e.is_config(), "{url}: {e}");
        assert!(e.to_string().contains("vault_url"), "{url}: {e}");
    }
    assert_eq!(sandbox.count(Route::Imds), 0);
}

/// Polls until the background check switched the version (bounded).
async fn wait_for_version(c: &KeyVaultCertificateCredential, version: &str) {
    for _ in 0..200 {
        if c.current().is_some_and(|(v, _)| v == version) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the certificate never switched to {version}");
}

#[tokio::test]
async fn a_scheduled_check_picks_up_a_rotation_without_a_restart() {
    let sandbox = started().await;
    let (c, _) = signing(&sandbox, Some(Duration::from_millis(300))).await;
    let v2 = rotate(&sandbox);
    tokio::time::sleep(Duration::from_millis(400)).await;
    // This request is due to start the check; it signs with v1 (still registered).
    token(&c).await.unwrap();
    wait_for_version(&c, &v2.version).await;
    // Entra now knows only the new certificate: the next request signs with it.
    assert!(sandbox.set_app_certificates(APP, vec![v2.certificate_der.clone()]));
    let before = sandbox.count(Route::Token);
    token(&c).await.unwrap();
    assert_eq!(
        sandbox.count(Route::Token),
        before + 1,
        "no rejection, no retry"
    );
}

#[tokio::test]
async fn a_version_that_is_not_valid_yet_waits_for_its_start() {
    let sandbox = started().await;
    let v1 = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    let c = builder(&sandbox, NAME)
        .rotation_check(None)
        .build()
        .unwrap();
    assert_eq!(c.load().await.unwrap(), v1.version);
    let start = later(2);
    let v2 = sandbox.create_key_vault_certificate(
        NAME,
        KeyVaultCertificateOptions::default().not_before(start),
    );
    register(&sandbox, &[&v1, &v2]);
    match c.check_rotation().await.unwrap() {
        RotationOutcome::Pending { version, .. } => assert_eq!(version, v2.version),
        other => panic!("expected pending, got {other:?}"),
    }
    token(&c).await.unwrap();
    assert_eq!(
        c.current().map(|(v, _)| v),
        Some(v1.version.clone()),
        "v1 signs until v2 starts"
    );
    tokio::time::sleep(Duration::from_millis(2600)).await;
    assert!(sandbox.set_app_certificates(APP, vec![v2.certificate_der.clone()]));
    token(&c).await.unwrap();
    assert_eq!(c.current().map(|(v, _)| v), Some(v2.version));
}

#[tokio::test]
async fn aadsts700027_reloads_from_the_vault_and_retries_once() {
    let sandbox = started().await;
    let (c, _) = signing(&sandbox, None).await;
    // The vault rotates; Entra gets the new certificate and drops the old one.
    let v2 = rotate(&sandbox);
    assert!(sandbox.set_app_certificates(APP, vec![v2.certificate_der.clone()]));
    let before = sandbox.count(Route::Token);
    token(&c).await.unwrap();
    assert_eq!(
        sandbox.count(Route::Token),
        before + 2,
        "700027, reload, one retry"
    );
    assert_eq!(c.current().map(|(v, _)| v), Some(v2.version));
}

#[tokio::test]
async fn a_vault_outage_during_rotation_keeps_the_working_certificate() {
    let sandbox = started().await;
    let (c, v1) = signing(&sandbox, None).await;
    let v2 = rotate(&sandbox);
    sandbox.inject(
        Route::KeyVault,
        Fault::StatusFor {
            status: 503,
            duration: Duration::from_secs(3600),
        },
    );
    let e = c.check_rotation().await.unwrap_err();
    assert_eq!(e.kind(), KeyVaultErrorKind::Unavailable, "{e}");
    assert_eq!(c.current().map(|(v, _)| v), Some(v1.version.clone()));
    token(&c).await.unwrap();
    sandbox.clear_faults();
    match c.check_rotation().await.unwrap() {
        RotationOutcome::Switched { from, to, .. } => {
            assert_eq!((from, to), (v1.version, v2.version))
        }
        other => panic!("expected a switch, got {other:?}"),
    }
}

#[tokio::test]
async fn a_pinned_version_is_never_switched() {
    let sandbox = started().await;
    let v1 = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    register(&sandbox, &[&v1]);
    let c = builder(&sandbox, NAME)
        .version(v1.version.clone())
        .build()
        .unwrap();
    token(&c).await.unwrap();
    assert_eq!(
        c.check_rotation().await.unwrap(),
        RotationOutcome::Unchanged {
            version: v1.version.clone()
        }
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_key_token_or_secret_value_in_logs() {
    let capture = botauth_core::testkit::LogCapture::new();
    let _guard = tracing::subscriber::set_default(capture.subscriber());

    let sandbox = started().await;
    let (c, _) = signing(&sandbox, None).await;
    let t = token(&c).await.unwrap();
    let v2 = sandbox.create_key_vault_certificate(
        NAME,
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    assert!(sandbox.set_app_certificates(APP, vec![v2.certificate_der.clone()]));
    token(&c).await.unwrap();
    sandbox.inject(Route::KeyVault, Fault::status(500));
    let _ = c.check_rotation().await;
    let logs = capture.text();
    assert!(
        logs.contains("client certificate loaded from Key Vault"),
        "{logs}"
    );
    assert!(logs.contains("keeping the current one"), "{logs}");
    for needle in ["PRIVATE KEY", "MII", "eyJ", t.token.expose_secret()] {
        assert!(
            !logs.contains(needle),
            "`{needle}` leaked into the logs:\n{logs}"
        );
    }
}

#[tokio::test]
async fn any_credential_can_read_the_vault() {
    let sandbox = started().await;
    let v1 = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    // The demo app's client secret reads the vault (a workload identity or a developer's
    // credential would do the same): its token is for the vault's resource.
    let reader = botauth_secret::ClientSecretCredential::builder(
        botauth_sandbox::DEMO_TENANT_ID,
        botauth_sandbox::DEMO_CLIENT_ID,
        botauth_core::Secret::new(botauth_sandbox::DEMO_CLIENT_SECRET),
    )
    .settings(botauth_http::ClientSettings::new().authority_host(sandbox.url()))
    .build()
    .unwrap();
    register(&sandbox, &[&v1]);
    let c = builder(&sandbox, NAME)
        .vault_credential(Arc::new(reader))
        .build()
        .unwrap();
    token(&c).await.unwrap();
    assert_eq!(
        sandbox.count(Route::Imds),
        0,
        "no managed identity involved"
    );
    assert_eq!(
        sandbox.count(Route::Token),
        2,
        "one token for the vault, one for the bot"
    );
}

#[tokio::test]
async fn a_throttling_vault_is_not_asked_again_before_its_retry_after() {
    let sandbox = started().await;
    let (c, _) = signing(&sandbox, Some(Duration::from_millis(200))).await;
    sandbox.inject(
        Route::KeyVault,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("120".into()),
        },
    );
    let e = c.check_rotation().await.unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    let reads = sandbox.count(Route::KeyVault);
    // Well past the check interval, token requests keep signing and leave the vault alone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for _ in 0..3 {
        token(&c).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        sandbox.count(Route::KeyVault),
        reads,
        "Retry-After honoured"
    );
}

#[tokio::test]
async fn passes_the_provider_conformance_suite() {
    let sandbox = started().await;
    let v1 = sandbox.create_key_vault_certificate(NAME, KeyVaultCertificateOptions::default());
    sandbox.create_key_vault_certificate(
        "locked",
        KeyVaultCertificateOptions::default().exportable(false),
    );
    register(&sandbox, &[&v1]);
    let good = builder(&sandbox, NAME).build().unwrap();
    let locked = builder(&sandbox, "locked").build().unwrap();
    let missing = builder(&sandbox, "missing").build().unwrap();
    botauth_core::testkit::ProviderCheck::new()
        .failing(&locked, botauth_core::ErrorKind::Credential)
        .failing(&missing, botauth_core::ErrorKind::Credential)
        .run(&good, &TokenRequest::new(SCOPE))
        .await
        .unwrap_or_else(|f| panic!("{f:?}"));
}
