//! The certificate credential end to end: every configuration dialect that describes a
//! certificate gets a token from the sandbox, and one unchanged program switches from a secret to
//! a certificate by its environment alone.

use std::process::Command;

use botauth::certificate::{CertificateError, CertificateErrorKind};
use botauth::{BotAuth, BotAuthConfig, Error, ErrorKind, TokenRequest};
use botauth_e2e::{FIXTURE_PFX_PASSWORD, fixture};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Sandbox,
};
use openssl::hash::MessageDigest;
use openssl::x509::X509;

const PASSWORD: &str = FIXTURE_PFX_PASSWORD;

fn cert(name: &str) -> X509 {
    X509::from_pem(&std::fs::read(fixture(name)).expect("fixture")).expect("fixture")
}

fn sha1_hex(name: &str) -> String {
    cert(name)
        .digest(MessageDigest::sha1())
        .expect("fixture")
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect()
}

/// The sandbox with the demo app accepting its secret and the rsa2048 and leaf fixture certificates.
async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::start().await.expect("sandbox");
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_secret(DEMO_CLIENT_SECRET)
            .with_certificate_der(cert("rsa2048.pem").to_der().expect("fixture"))
            .with_certificate_der(cert("leaf.pem").to_der().expect("fixture")),
    );
    sandbox
}

fn s(v: &str) -> String {
    v.to_owned()
}

/// Reads `vars`, builds the credential, gets a connector token the sandbox accepts, and returns
/// the credential kind.
async fn token_kind(sandbox: &Sandbox, vars: Vec<(&str, String)>) -> Result<String, Error> {
    let mut vars: Vec<(String, String)> =
        vars.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    vars.push(("BOTAUTH_AUTHORITY_HOST".into(), sandbox.url()));
    let auth = BotAuth::from_config(BotAuthConfig::from_vars(vars)?)?;
    let token = auth.connector_token().await?;
    let claims = sandbox
        .verify_access_token(token.token.expose_secret())
        .expect("the sandbox accepts its token");
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
    Ok(auth.tokens().credential().kind.clone())
}

fn bot_framework(extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("MicrosoftAppId", s(DEMO_CLIENT_ID)),
        ("MicrosoftAppTenantId", s(DEMO_TENANT_ID)),
        ("MicrosoftAppType", s("SingleTenant")),
    ];
    v.extend(extra);
    v
}

fn identity_web(extra: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("AzureAd__TenantId", s(DEMO_TENANT_ID)),
        ("AzureAd__ClientId", s(DEMO_CLIENT_ID)),
    ];
    v.extend(extra);
    v
}

fn agents(extra: Vec<(&str, String)>) -> Vec<(String, String)> {
    let p = "Connections__ServiceConnection__Settings__";
    let mut v = vec![
        (format!("{p}AuthType"), s("Certificate")),
        (format!("{p}ClientId"), s(DEMO_CLIENT_ID)),
        (format!("{p}TenantId"), s(DEMO_TENANT_ID)),
    ];
    v.extend(extra.into_iter().map(|(k, val)| (format!("{p}{k}"), val)));
    v
}

#[tokio::test]
async fn bot_framework_key_and_certificate_paths() {
    let sb = sandbox().await;
    let kind = token_kind(
        &sb,
        bot_framework(vec![
            ("CertificatePrivateKey", fixture("rsa2048.key")),
            ("CertificatePath", fixture("rsa2048.pem")),
            (
                "CertificateThumbprint",
                sha1_hex("rsa2048.pem").to_lowercase(),
            ),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(kind, "certificate");
}

#[tokio::test]
async fn bot_framework_thumbprint_only() {
    let sb = sandbox().await;
    let kind = token_kind(
        &sb,
        bot_framework(vec![
            ("CertificatePrivateKey", fixture("rsa2048.pkcs1.key")),
            ("CertificateThumbprint", sha1_hex("rsa2048.pem")),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(kind, "certificate");
}

#[tokio::test]
async fn bot_framework_private_key_as_pem_text() {
    // The JavaScript SDK's `CertificatePrivateKey` is the key's text; in a one-line variable its
    // line breaks are often written `\n`.
    let sb = sandbox().await;
    let pem = std::fs::read_to_string(fixture("rsa2048.key")).expect("fixture");
    for key in [pem.clone(), pem.trim_end().replace('\n', "\\n")] {
        for cert_path in [Some(fixture("rsa2048.pem")), None] {
            let mut extra = vec![
                ("CertificatePrivateKey", key.clone()),
                ("CertificateThumbprint", sha1_hex("rsa2048.pem")),
            ];
            if let Some(p) = cert_path {
                extra.push(("CertificatePath", p));
            }
            let kind = token_kind(&sb, bot_framework(extra)).await.unwrap();
            assert_eq!(kind, "certificate");
        }
    }
}

#[tokio::test]
async fn bot_framework_thumbprint_that_disagrees_is_a_configuration_error() {
    let sb = sandbox().await;
    let e = token_kind(
        &sb,
        bot_framework(vec![
            ("CertificatePrivateKey", fixture("rsa2048.key")),
            ("CertificatePath", fixture("rsa2048.pem")),
            ("CertificateThumbprint", sha1_hex("other2048.pem")),
        ]),
    )
    .await
    .unwrap_err();
    // Named as the Bot Framework dialect spells it (issue 12), not botauth's `thumbprint`.
    assert!(
        matches!(e, Error::Config { ref key, .. } if key == "CertificateThumbprint"),
        "{e:?}"
    );
    assert!(e.to_string().contains(&sha1_hex("rsa2048.pem")), "{e}");
}

#[tokio::test]
async fn identity_web_path_pfx_and_pem() {
    let sb = sandbox().await;
    for (file, password) in [
        ("rsa2048.pfx", Some(PASSWORD)),
        ("rsa2048.3des.pfx", Some(PASSWORD)),
        ("rsa2048.nopass.pfx", None),
        ("rsa2048.combined.pem", None),
    ] {
        let mut extra = vec![
            ("AzureAd__ClientCredentials__0__SourceType", s("Path")),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                fixture(file),
            ),
        ];
        if let Some(p) = password {
            extra.push(("AzureAd__ClientCredentials__0__CertificatePassword", s(p)));
        }
        let kind = token_kind(&sb, identity_web(extra))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(kind, "certificate", "{file}");
    }
}

#[tokio::test]
async fn identity_web_base64_encoded() {
    let sb = sandbox().await;
    let b64 = std::fs::read_to_string(fixture("rsa2048.pfx.b64")).unwrap();
    let kind = token_kind(
        &sb,
        identity_web(vec![
            (
                "AzureAd__ClientCredentials__0__SourceType",
                s("Base64Encoded"),
            ),
            ("AzureAd__ClientCredentials__0__Base64EncodedValue", b64),
            (
                "AzureAd__ClientCredentials__0__CertificatePassword",
                s(PASSWORD),
            ),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(kind, "certificate");
}

#[tokio::test]
async fn identity_web_skips_a_certificate_that_cannot_load() {
    // ClientCredentials is an ordered list: a wrong password skips to the next entry (docs/protocol.md §7).
    let sb = sandbox().await;
    let kind = token_kind(
        &sb,
        identity_web(vec![
            ("AzureAd__ClientCredentials__0__SourceType", s("Path")),
            (
                "AzureAd__ClientCredentials__0__CertificateDiskPath",
                fixture("rsa2048.pfx"),
            ),
            (
                "AzureAd__ClientCredentials__0__CertificatePassword",
                s("wrong"),
            ),
            (
                "AzureAd__ClientCredentials__1__SourceType",
                s("ClientSecret"),
            ),
            (
                "AzureAd__ClientCredentials__1__ClientSecret",
                s(DEMO_CLIENT_SECRET),
            ),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(kind, "client_secret");
}

#[tokio::test]
async fn agents_sdk_pem_files() {
    let sb = sandbox().await;
    let agents_kind = |extra| {
        let vars = agents(extra);
        let sb = &sb;
        async move {
            let mut vars = vars;
            vars.push(("BOTAUTH_AUTHORITY_HOST".into(), sb.url()));
            let auth = BotAuth::from_config(BotAuthConfig::from_vars(vars).unwrap()).unwrap();
            auth.connector_token().await.unwrap();
            auth.tokens().credential().kind.clone()
        }
    };
    // An encrypted key needs a password, which the Agents SDK dialect has no key for: the typed
    // error rather than a token.
    let vars = {
        let mut v = agents(vec![
            ("CertPemFile", fixture("rsa2048.pem")),
            ("CertKeyFile", fixture("rsa2048.enc.key")),
        ]);
        v.push(("BOTAUTH_AUTHORITY_HOST".into(), sb.url()));
        v
    };
    let e = BotAuth::from_config(BotAuthConfig::from_vars(vars).unwrap()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert_eq!(
        CertificateError::find_in(&e).map(CertificateError::kind),
        Some(CertificateErrorKind::PasswordRequired)
    );
    assert_eq!(
        agents_kind(vec![
            ("CertPemFile", fixture("chain.pem")),
            ("CertKeyFile", fixture("leaf.key")),
        ])
        .await,
        "certificate"
    );
    assert_eq!(
        agents_kind(vec![("CertPemFile", fixture("rsa2048.combined.pem"))]).await,
        "certificate"
    );
}

#[tokio::test]
async fn appsettings_json_and_native_toml() {
    let sb = sandbox().await;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("appsettings.json");
    std::fs::write(
        &json,
        serde_json::json!({"AzureAd": {
            "Instance": sb.url(), "TenantId": DEMO_TENANT_ID, "ClientId": DEMO_CLIENT_ID,
            "ClientCredentials": [{
                "SourceType": "Path", "CertificateDiskPath": fixture("chain.pfx"),
                "CertificatePassword": PASSWORD
            }]
        }})
        .to_string(),
    )
    .unwrap();
    let toml = dir.path().join("botauth.toml");
    std::fs::write(
        &toml,
        format!(
            r#"
client_id = "{DEMO_CLIENT_ID}"
tenant_id = "{DEMO_TENANT_ID}"
{cloud}

[[credentials]]
type = "certificate"
certificate_path = "{cert}"
key_path = "{key}"
algorithm = "PS256"
send_x5c = true
"#,
            cloud = sb.cloud_toml(),
            cert = fixture("chain.pem"),
            key = fixture("leaf.key"),
        ),
    )
    .unwrap();
    for path in [json, toml] {
        let auth = BotAuth::from_config(BotAuthConfig::from_file(&path).unwrap()).unwrap();
        assert_eq!(auth.tokens().credential().kind, "certificate");
        let token = auth.connector_token().await.unwrap();
        sb.verify_access_token(token.token.expose_secret()).unwrap();
    }
}

#[tokio::test]
async fn the_certificate_credential_passes_the_conformance_suite() {
    use botauth::core::testkit::check_provider;
    let sb = sandbox().await;
    let mut vars = identity_web(vec![
        ("AzureAd__ClientCredentials__0__SourceType", s("Path")),
        (
            "AzureAd__ClientCredentials__0__CertificateDiskPath",
            fixture("rsa2048.pfx"),
        ),
        (
            "AzureAd__ClientCredentials__0__CertificatePassword",
            s(PASSWORD),
        ),
    ]);
    let url = sb.url();
    vars.push(("BOTAUTH_AUTHORITY_HOST", url));
    let config = BotAuthConfig::from_vars(vars).unwrap();
    let provider = botauth::CredentialBuilder::new().build(&config).unwrap();
    let key = std::fs::read_to_string(fixture("rsa2048.key")).unwrap();
    let key_line = key.lines().nth(1).unwrap();
    check_provider(
        &*provider,
        &TokenRequest::new("https://api.botframework.com/.default"),
        &[PASSWORD, key_line],
    )
    .await
    .unwrap();

    // The error path: a certificate the app registration does not hold is AADSTS700027 (a
    // rejection), and the error shows no line of either private key.
    let mut vars = bot_framework(vec![
        ("CertificatePrivateKey", fixture("other2048.key")),
        ("CertificatePath", fixture("other2048.pem")),
    ]);
    vars.push(("BOTAUTH_AUTHORITY_HOST", sb.url()));
    let unregistered = botauth::CredentialBuilder::new()
        .build(&BotAuthConfig::from_vars(vars).unwrap())
        .unwrap();
    let other_key = std::fs::read_to_string(fixture("other2048.key")).unwrap();
    botauth::core::testkit::ProviderCheck::new()
        .secrets(&[PASSWORD, key_line, other_key.lines().nth(1).unwrap()])
        .failing(&*unregistered, ErrorKind::Rejected)
        .run(
            &*provider,
            &TokenRequest::new("https://api.botframework.com/.default"),
        )
        .await
        .unwrap();
}

/// One program, run twice, unchanged: first with a client secret in its environment, then with a
/// certificate. Both runs get a token the sandbox accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_unchanged_program_switches_from_secret_to_certificate() {
    let sb = sandbox().await;
    let secret_env = vec![
        (s("MicrosoftAppId"), s(DEMO_CLIENT_ID)),
        (s("MicrosoftAppPassword"), s(DEMO_CLIENT_SECRET)),
        (s("MicrosoftAppTenantId"), s(DEMO_TENANT_ID)),
        (s("MicrosoftAppType"), s("SingleTenant")),
        (s("BOTAUTH_AUTHORITY_HOST"), sb.url()),
    ];
    let certificate_env = vec![
        (s("MicrosoftAppId"), s(DEMO_CLIENT_ID)),
        (s("MicrosoftAppTenantId"), s(DEMO_TENANT_ID)),
        (s("MicrosoftAppType"), s("SingleTenant")),
        (s("CertificatePrivateKey"), fixture("rsa2048.key")),
        (s("CertificatePath"), fixture("rsa2048.pem")),
        (s("BOTAUTH_AUTHORITY_HOST"), sb.url()),
    ];
    let mut kinds = Vec::new();
    for env in [secret_env, certificate_env] {
        let out = tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_e2e-bot"))
                .env_clear()
                .envs(env)
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(line["dialect"], "Bot Framework");
        sb.verify_access_token(line["access_token"].as_str().unwrap())
            .unwrap();
        kinds.push(line["credential"].as_str().unwrap().to_owned());
    }
    assert_eq!(kinds, ["client_secret", "certificate"]);
}
