//! Every configuration dialect, read from an injected environment or a file, yields a credential
//! that obtains a real token from the sandbox.

use botauth::{BotAuth, BotAuthConfig, Error, ErrorKind};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox};

async fn token_from_vars(vars: Vec<(&str, String)>) -> Result<String, Error> {
    let config = BotAuthConfig::from_vars(vars)?;
    let auth = BotAuth::from_config(config)?;
    let token = auth.connector_token().await?;
    Ok(auth.tokens().credential().kind.clone() + ":" + &token.token_type)
}

#[tokio::test]
async fn botas() {
    let s = Sandbox::start().await.unwrap();
    let got = token_from_vars(vec![
        ("CLIENT_ID", DEMO_CLIENT_ID.into()),
        ("CLIENT_SECRET", DEMO_CLIENT_SECRET.into()),
        ("TENANT_ID", DEMO_TENANT_ID.into()),
        ("BOTAUTH_AUTHORITY_HOST", s.url()),
    ])
    .await
    .unwrap();
    assert_eq!(got, "client_secret:Bearer");
}

#[tokio::test]
async fn bot_framework_single_tenant() {
    let s = Sandbox::start().await.unwrap();
    let got = token_from_vars(vec![
        ("MicrosoftAppId", DEMO_CLIENT_ID.into()),
        ("MicrosoftAppPassword", DEMO_CLIENT_SECRET.into()),
        ("MicrosoftAppTenantId", DEMO_TENANT_ID.into()),
        ("MicrosoftAppType", "SingleTenant".into()),
        ("BOTAUTH_AUTHORITY_HOST", s.url()),
    ])
    .await
    .unwrap();
    assert_eq!(got, "client_secret:Bearer");
}

#[tokio::test]
async fn bot_framework_multi_tenant_uses_botframework_com_and_gets_the_hint() {
    let s = Sandbox::start().await.unwrap();
    let e = token_from_vars(vec![
        ("MicrosoftAppId", DEMO_CLIENT_ID.into()),
        ("MicrosoftAppPassword", DEMO_CLIENT_SECRET.into()),
        ("BOTAUTH_AUTHORITY_HOST", s.url()),
    ])
    .await
    .unwrap_err();
    assert_eq!(e.as_entra().and_then(|x| x.code()), Some(700016));
    assert!(s.requests()[0].path.starts_with("/botframework.com/"));
}

#[tokio::test]
async fn identity_web_environment() {
    let s = Sandbox::start().await.unwrap();
    let got = token_from_vars(vec![
        ("AzureAd__Instance", s.url() + "/"),
        ("AzureAd__TenantId", DEMO_TENANT_ID.into()),
        ("AzureAd__ClientId", DEMO_CLIENT_ID.into()),
        (
            "AzureAd__ClientCredentials__0__SourceType",
            "ClientSecret".into(),
        ),
        (
            "AzureAd__ClientCredentials__0__ClientSecret",
            DEMO_CLIENT_SECRET.into(),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(got, "client_secret:Bearer");
}

#[tokio::test]
async fn agents_sdk_environment() {
    let s = Sandbox::start().await.unwrap();
    let p = "Connections__ServiceConnection__Settings__";
    let got = token_from_vars(vec![
        (&*format!("{p}AuthType"), "ClientSecret".into()),
        (&*format!("{p}ClientId"), DEMO_CLIENT_ID.into()),
        (&*format!("{p}ClientSecret"), DEMO_CLIENT_SECRET.into()),
        (&*format!("{p}TenantId"), DEMO_TENANT_ID.into()),
        (
            &*format!("{p}AuthorityEndpoint"),
            format!("{}/{DEMO_TENANT_ID}", s.url()),
        ),
    ])
    .await
    .unwrap();
    assert_eq!(got, "client_secret:Bearer");
}

#[tokio::test]
async fn appsettings_json_falls_back_past_a_credential_that_cannot_load() {
    let s = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("appsettings.json");
    let json = serde_json::json!({
        "Logging": {"LogLevel": {"Default": "Information"}},
        "AzureAd": {
            "Instance": s.url(),
            "TenantId": DEMO_TENANT_ID,
            "ClientId": DEMO_CLIENT_ID,
            "ClientCredentials": [
                {"SourceType": "SignedAssertionFilePath", "SignedAssertionFileDiskPath": dir.path().join("missing-token")},
                {"SourceType": "ClientSecret", "ClientSecret": DEMO_CLIENT_SECRET}
            ]
        }
    });
    std::fs::write(&path, json.to_string()).unwrap();
    let config = BotAuthConfig::from_file(&path).unwrap();
    assert_eq!(config.credentials.len(), 2);
    let auth = BotAuth::from_config(config).unwrap();
    assert_eq!(auth.tokens().credential().kind, "client_secret");
    auth.connector_token().await.unwrap();
}

#[tokio::test]
async fn native_toml_file() {
    let s = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("botauth.toml");
    std::fs::write(
        &path,
        format!(
            r#"
client_id = "{DEMO_CLIENT_ID}"
tenant_id = "{DEMO_TENANT_ID}"
{cloud}

[[credentials]]
type = "client_secret"
secret = "{DEMO_CLIENT_SECRET}"
"#,
            cloud = s.cloud_toml()
        ),
    )
    .unwrap();
    let auth = BotAuth::from_config(BotAuthConfig::from_file(&path).unwrap()).unwrap();
    auth.connector_token().await.unwrap();
}

#[tokio::test]
async fn a_bot_framework_certificate_is_loaded_from_its_key_file() {
    // The certificate feature is on here: the configuration reaches the certificate loader, which
    // names the missing key file (without the feature it would be Error::FeatureMissing).
    let e = BotAuth::from_config(
        BotAuthConfig::from_vars([
            ("MicrosoftAppId", DEMO_CLIENT_ID),
            ("MicrosoftAppTenantId", DEMO_TENANT_ID),
            ("MicrosoftAppType", "SingleTenant"),
            (
                "CertificateThumbprint",
                "84E05C1D98BCE3A5421D225B140B36E86A3D5534",
            ),
            ("CertificatePrivateKey", "/nonexistent/bot/key.pem"),
        ])
        .unwrap(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    let cause = botauth::certificate::CertificateError::find_in(&e).unwrap();
    assert_eq!(cause.kind(), botauth::certificate::CertificateErrorKind::Io);
    assert!(
        cause.to_string().contains("/nonexistent/bot/key.pem"),
        "{cause}"
    );
}

#[test]
fn a_missing_key_is_named() {
    let e =
        BotAuthConfig::from_vars([("CLIENT_ID", DEMO_CLIENT_ID), ("TENANT_ID", DEMO_TENANT_ID)])
            .unwrap_err();
    assert!(
        matches!(e, Error::Config { ref key, .. } if key == "CLIENT_SECRET"),
        "{e:?}"
    );
}

/// The same bot described in every dialect (`fixtures/config/`) reads to the same model.
#[test]
fn every_fixture_dialect_reads_to_the_same_model() {
    use botauth::{CredentialConfig, Dialect, Secret};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/config");
    let env_file = |name: &str| -> Vec<(String, String)> {
        std::fs::read_to_string(dir.join(name))
            .unwrap()
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| {
                let (k, v) = l.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    };
    let configs = [
        (
            Dialect::Botas,
            BotAuthConfig::from_vars(env_file("botas.env")).unwrap(),
        ),
        (
            Dialect::BotFramework,
            BotAuthConfig::from_vars(env_file("botframework.env")).unwrap(),
        ),
        (
            Dialect::IdentityWeb,
            BotAuthConfig::from_vars(env_file("identityweb.env")).unwrap(),
        ),
        (
            Dialect::AgentsSdk,
            BotAuthConfig::from_vars(env_file("agents.env")).unwrap(),
        ),
        (
            Dialect::IdentityWeb,
            BotAuthConfig::from_file(dir.join("appsettings.json")).unwrap(),
        ),
        (
            Dialect::Native,
            BotAuthConfig::from_file(dir.join("botauth.toml")).unwrap(),
        ),
    ];
    let secret = Secret::new("fixture~Secret+value/with=odd_chars");
    for (dialect, c) in configs {
        assert_eq!(c.dialect, dialect);
        assert_eq!(c.client_id.as_deref(), Some(DEMO_CLIENT_ID), "{dialect}");
        assert_eq!(c.tenant_id.as_deref(), Some(DEMO_TENANT_ID), "{dialect}");
        assert_eq!(c.cloud, botauth::Cloud::Public, "{dialect}");
        assert_eq!(
            c.credentials,
            vec![CredentialConfig::ClientSecret {
                secret: secret.clone()
            }],
            "{dialect}"
        );
    }
}
