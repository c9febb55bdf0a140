//! Issue 18 through the facade: a Key Vault certificate configured as Microsoft.Identity.Web does
//! (`SourceType: KeyVault`), read from the sandbox's vault with the sandbox's managed identity; the
//! `ClientCredentials` fallback when the vault cannot provide it; and no key, token or secret in
//! a process-wide TRACE log.

use botauth::{BotAuth, BotAuthConfig, CredentialBuilder};
use botauth_e2e::CapturedLogs;
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID,
    KeyVaultCertificateOptions, KeyVaultContentType, Route, Sandbox,
};

fn config(sandbox: &Sandbox, json: serde_json::Value) -> BotAuthConfig {
    let mut settings = serde_json::json!({
        "AzureAd": {
            "Instance": sandbox.url(),
            "ClientId": DEMO_CLIENT_ID,
            "TenantId": DEMO_TENANT_ID,
        }
    });
    settings["AzureAd"]["ClientCredentials"] = json;
    BotAuthConfig::from_appsettings_json(&settings.to_string()).expect("configuration")
}

fn auth(sandbox: &Sandbox, config: BotAuthConfig) -> BotAuth {
    // The sandbox's IMDS is the host's managed identity endpoint.
    let builder = CredentialBuilder::new().env(
        [("AZURE_POD_IDENTITY_AUTHORITY_HOST", sandbox.url())]
            .into_iter()
            .collect(),
    );
    BotAuth::with_builder(config, &builder).expect("builds")
}

#[tokio::test]
async fn identity_web_key_vault_configuration_end_to_end() {
    let logs = CapturedLogs::install();
    let sandbox = Sandbox::start().await.expect("sandbox");
    let v1 = sandbox.create_key_vault_certificate(
        "bot-cert",
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_certificate_der(v1.certificate_der.clone()),
    );

    // 1. SourceType KeyVault (by number) reads the certificate and signs.
    let auth1 = auth(
        &sandbox,
        config(
            &sandbox,
            serde_json::json!([{
                "SourceType": 1,
                "KeyVaultUrl": sandbox.key_vault_url(),
                "KeyVaultCertificateName": "bot-cert",
            }]),
        ),
    );
    assert_eq!(auth1.tokens().credential().kind, "key_vault_certificate");
    let token = auth1
        .connector_token()
        .await
        .expect("a token signed by the vault's certificate");
    let claims = sandbox
        .verify_access_token(token.token.expose_secret())
        .expect("sandbox token");
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
    assert_eq!(
        sandbox.count(Route::KeyVault),
        2,
        "certificate, then its secret"
    );

    // 2. A certificate the vault does not have: the next entry (a secret) is used, the cause logged.
    let auth2 = auth(
        &sandbox,
        config(
            &sandbox,
            serde_json::json!([
                {"SourceType": "KeyVault", "KeyVaultUrl": sandbox.key_vault_url(), "KeyVaultCertificateName": "missing-cert"},
                {"SourceType": "ClientSecret", "ClientSecret": DEMO_CLIENT_SECRET},
            ]),
        ),
    );
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_secret(DEMO_CLIENT_SECRET)
            .with_certificate_der(v1.certificate_der.clone()),
    );
    let before = sandbox.count(Route::KeyVault);
    auth2
        .connector_token()
        .await
        .expect("a token from the fallback secret");
    auth2.tokens().clear();
    auth2
        .connector_token()
        .await
        .expect("the fallback keeps serving");
    assert_eq!(
        sandbox.count(Route::KeyVault),
        before + 1,
        "one 404 from the vault, and the decision is kept"
    );
    let text = logs.text();
    let line = text
        .lines()
        .find(|l| l.contains("credential could not be loaded; trying the next one"))
        .unwrap_or_else(|| panic!("no fallback warning in {text}"));
    assert!(line.contains("not_found"), "{line}");
    assert!(line.contains("missing-cert"), "{line}");

    // 3. A process-wide TRACE log (reqwest and hyper included) holds no key, token or secret.
    let forbidden = [
        "PRIVATE KEY".to_owned(),
        token.token.expose_secret().to_owned(),
        DEMO_CLIENT_SECRET.to_owned(),
        botauth_e2e::form_encoded(DEMO_CLIENT_SECRET),
    ];
    botauth_e2e::assert_absent(&logs.text(), &forbidden);
    assert!(
        !logs.text().contains("MII"),
        "base64 DER (a key or PFX) in the logs"
    );
}
