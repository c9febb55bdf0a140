//! The sandbox's Key Vault held to docs/sandbox.md §7 over real HTTP: the challenge, audience,
//! access list and api-version rules, the certificate and secret shapes (checked with OpenSSL,
//! not with the sandbox's code), paging, rotation, the control endpoint and injected faults.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID,
    DEMO_MI_RESOURCE_ID, DEMO_SYSTEM_MI_CLIENT_ID, DEMO_TENANT_ID, Fault, KEY_VAULT_RESOURCE,
    KeyVaultCertificateOptions, KeyVaultContentType, Route, Sandbox,
};
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::{Value, json};

const API: &str = "api-version=7.4";

struct Reply {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header"))
    }

    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "{}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{}", self.text);
        body
    }
}

async fn send(request: reqwest::RequestBuilder) -> Reply {
    let response = request.send().await.expect("request to the sandbox");
    Reply {
        status: response.status().as_u16(),
        headers: response.headers().clone(),
        text: response.text().await.expect("response body"),
    }
}

/// `GET {vault}/{path_and_query}` with an optional bearer token.
async fn vault(sandbox: &Sandbox, path_and_query: &str, token: Option<&str>) -> Reply {
    get_url(
        &format!("{}/{path_and_query}", sandbox.key_vault_url()),
        token,
    )
    .await
}

async fn get_url(url: &str, token: Option<&str>) -> Reply {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    send(request).await
}

/// A token from the sandbox's IMDS endpoint, for `identity` (`client_id=…`, `object_id=…`,
/// `msi_res_id=…`) or the system-assigned identity.
async fn imds_token(sandbox: &Sandbox, resource: &str, identity: Option<(&str, &str)>) -> String {
    let mut query = vec![("api-version", "2018-02-01"), ("resource", resource)];
    query.extend(identity);
    let url = format!(
        "{}/metadata/identity/oauth2/token?{}",
        sandbox.imds_host(),
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish()
    );
    let reply = send(reqwest::Client::new().get(url).header("Metadata", "true")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json()["access_token"]
        .as_str()
        .expect("access_token")
        .to_owned()
}

async fn vault_token(sandbox: &Sandbox) -> String {
    imds_token(sandbox, KEY_VAULT_RESOURCE, None).await
}

/// A client-credentials token of the demo app (v2 `scope`, or v1 `resource`).
async fn entra_token(sandbox: &Sandbox, v1: bool, resource: &str) -> Reply {
    let (url, field, value) = if v1 {
        (
            format!("{}/{DEMO_TENANT_ID}/oauth2/token", sandbox.url()),
            "resource",
            resource.to_owned(),
        )
    } else {
        (
            sandbox.token_endpoint(DEMO_TENANT_ID),
            "scope",
            format!("{resource}/.default"),
        )
    };
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("client_secret", DEMO_CLIENT_SECRET),
            (field, &value),
        ])
        .finish();
    send(
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

fn sha1_x5t(der: &[u8]) -> String {
    let digest = openssl::hash::hash(MessageDigest::sha1(), der).expect("sha1");
    URL_SAFE_NO_PAD.encode(digest)
}

fn at(unix: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[tokio::test]
async fn requests_without_a_vault_token_are_challenged() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let challenge = format!(
        "Bearer authorization=\"{}/{DEMO_TENANT_ID}\", resource=\"https://vault.azure.net\"",
        sandbox.url()
    );

    let reply = vault(&sandbox, &format!("certificates/bot?{API}"), None).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.header("www-authenticate"), Some(challenge.as_str()));
    assert_eq!(
        reply.json(),
        json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/json; charset=utf-8")
    );

    let token = vault_token(&sandbox).await;
    let basic = send(
        reqwest::Client::new()
            .get(format!(
                "{}/certificates/bot?{API}",
                sandbox.key_vault_url()
            ))
            .header("authorization", format!("Basic {token}")),
    )
    .await;
    let body = basic.assert_error(401, "Unauthorized");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("AKV10000:")
    );

    // Wrong audience: a Bot Connector token, from IMDS and from the token endpoint.
    let bot = imds_token(&sandbox, "https://api.botframework.com", None).await;
    let reply = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&bot)).await;
    let body = reply.assert_error(401, "Unauthorized");
    assert_eq!(
        body["error"]["message"],
        "AKV10022: Invalid audience. Expected https://vault.azure.net, found: https://api.botframework.com."
    );
    assert_eq!(reply.header("www-authenticate"), Some(challenge.as_str()));
    let bot = entra_token(&sandbox, false, "https://api.botframework.com")
        .await
        .json();
    let reply = vault(
        &sandbox,
        &format!("secrets/bot?{API}"),
        bot["access_token"].as_str(),
    )
    .await;
    reply.assert_error(401, "Unauthorized");

    // Not a token of this sandbox, expired, or not a JWT at all.
    let foreign = vault_token(&Sandbox::start().await.unwrap()).await;
    let now = unix_now();
    let header = json!({"alg": "RS256", "typ": "JWT", "kid": sandbox.entra_kid()});
    let expired = sandbox.sign_with_entra_key(
        &header,
        &json!({"aud": KEY_VAULT_RESOURCE, "appid": DEMO_CLIENT_ID, "iat": now - 600, "exp": now - 1}),
    );
    for (token, prefix) in [
        (foreign.as_str(), "AKV10032: Invalid issuer."),
        ("garbage", "AKV10032: Invalid issuer."),
        (expired.as_str(), "Invalid token: the token has expired"),
    ] {
        let reply = vault(&sandbox, &format!("certificates/bot?{API}"), Some(token)).await;
        let body = reply.assert_error(401, "Unauthorized");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(prefix), "{message}");
        assert_eq!(reply.header("www-authenticate"), Some(challenge.as_str()));
    }

    // The audience may carry a trailing slash.
    let slash = sandbox.sign_with_entra_key(
        &header,
        &json!({"aud": "https://vault.azure.net/", "appid": DEMO_CLIENT_ID, "iat": now, "exp": now + 600}),
    );
    let reply = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&slash)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn entra_issues_vault_tokens_that_the_connector_refuses() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    for v1 in [false, true] {
        let reply = entra_token(&sandbox, v1, KEY_VAULT_RESOURCE).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let token = reply.json()["access_token"].as_str().unwrap().to_owned();
        let claims = sandbox.verify_access_token(&token).unwrap();
        assert_eq!(claims["aud"], KEY_VAULT_RESOURCE);
        let reply = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // A vault token is no Bot Connector token.
        let posted = send(
            reqwest::Client::new()
                .post(format!(
                    "{}v3/conversations/c/activities",
                    sandbox.connector_url()
                ))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(r#"{"type":"message"}"#),
        )
        .await;
        assert_eq!(posted.status, 401, "{}", posted.text);
    }
}

#[tokio::test]
async fn the_api_version_is_required_and_checked() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let token = vault_token(&sandbox).await;
    let bad = json!({"error": {"code": "BadParameter", "message": "The request URI contains an invalid or missing api-version"}});
    for query in [
        "",
        "?api-version=",
        "?api-version=2016-10-01",
        "?api-version=7.7",
        "?API-VERSION=7.4",
    ] {
        let reply = vault(&sandbox, &format!("certificates/bot{query}"), Some(&token)).await;
        assert_eq!(reply.status, 400, "{query}");
        assert_eq!(reply.json(), bad, "{query}");
    }
    for version in [
        "7.0",
        "7.1",
        "7.2",
        "7.3",
        "7.4",
        "7.5",
        "7.6",
        "2025-07-01",
    ] {
        let reply = vault(
            &sandbox,
            &format!("secrets/bot?api-version={version}"),
            Some(&token),
        )
        .await;
        assert_eq!(reply.status, 200, "{version}: {}", reply.text);
    }
}

#[tokio::test]
async fn the_access_list_names_identities_and_apps() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let system = vault_token(&sandbox).await;
    let by_client = imds_token(
        &sandbox,
        KEY_VAULT_RESOURCE,
        Some(("client_id", DEMO_MI_CLIENT_ID)),
    )
    .await;
    let by_object = imds_token(
        &sandbox,
        KEY_VAULT_RESOURCE,
        Some(("object_id", DEMO_MI_OBJECT_ID)),
    )
    .await;
    let by_resource = imds_token(
        &sandbox,
        KEY_VAULT_RESOURCE,
        Some(("msi_res_id", DEMO_MI_RESOURCE_ID)),
    )
    .await;
    let app = entra_token(&sandbox, false, KEY_VAULT_RESOURCE)
        .await
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    for allowed in [
        DEMO_MI_CLIENT_ID,
        DEMO_MI_OBJECT_ID,
        &DEMO_MI_RESOURCE_ID.to_uppercase(),
    ] {
        sandbox.set_key_vault_access(Some(vec![allowed.to_owned()]));
        for token in [&by_client, &by_object, &by_resource] {
            let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(token)).await;
            assert_eq!(reply.status, 200, "{allowed}: {}", reply.text);
        }
        for (token, path, action) in [
            (
                &system,
                "secrets/bot",
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            ),
            (
                &app,
                "secrets/bot",
                "Microsoft.KeyVault/vaults/secrets/getSecret/action",
            ),
            (
                &app,
                "certificates/bot",
                "Microsoft.KeyVault/vaults/certificates/read",
            ),
            (
                &app,
                "secrets/bot/versions",
                "Microsoft.KeyVault/vaults/secrets/readMetadata/action",
            ),
        ] {
            let reply = vault(&sandbox, &format!("{path}?{API}"), Some(token)).await;
            let body = reply.assert_error(403, "Forbidden");
            assert_eq!(body["error"]["innererror"]["code"], "ForbiddenByRbac");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.starts_with("Caller is not authorized to perform action on resource."),
                "{message}"
            );
            assert!(
                message.contains(&format!("Action: '{action}'")),
                "{message}"
            );
        }
    }
    sandbox.set_key_vault_access(Some(vec![
        DEMO_CLIENT_ID.to_owned(),
        DEMO_SYSTEM_MI_CLIENT_ID.to_owned(),
    ]));
    for token in [&app, &system] {
        let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(&by_client)).await;
    assert_eq!(reply.status, 403);
    sandbox.set_key_vault_access(Some(Vec::new()));
    let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(&app)).await;
    assert_eq!(reply.status, 403, "an empty list lets nobody in");
    sandbox.set_key_vault_access(None);
    for token in [&app, &system, &by_client] {
        let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

#[tokio::test]
async fn certificates_have_the_certificate_bundle_shape() {
    let sandbox = Sandbox::start().await.unwrap();
    let (nbf, exp) = (unix_now() - 3600, unix_now() + 86_400 * 30);
    let created = sandbox.create_key_vault_certificate(
        "bot-cert",
        KeyVaultCertificateOptions::default()
            .not_before(at(nbf))
            .not_after(at(exp)),
    );
    let token = vault_token(&sandbox).await;
    let base = sandbox.key_vault_url();
    assert_eq!(base, sandbox.url().trim_end_matches('/'));
    let version = &created.version;

    let latest = vault(
        &sandbox,
        &format!("certificates/bot-cert?{API}"),
        Some(&token),
    )
    .await;
    assert_eq!(latest.status, 200, "{}", latest.text);
    assert!(latest.header("x-ms-request-id").is_some());
    let exact = vault(
        &sandbox,
        &format!("certificates/bot-cert/{version}?{API}"),
        Some(&token),
    )
    .await;
    assert_eq!(exact.status, 200, "{}", exact.text);
    let body = latest.json();
    assert_eq!(body, exact.json(), "the latest is that version");

    assert_eq!(
        body["id"],
        format!("{base}/certificates/bot-cert/{version}")
    );
    assert_eq!(body["kid"], format!("{base}/keys/bot-cert/{version}"));
    assert_eq!(body["sid"], format!("{base}/secrets/bot-cert/{version}"));
    let der = STANDARD.decode(body["cer"].as_str().unwrap()).unwrap();
    assert_eq!(der, created.certificate_der);
    assert_eq!(body["x5t"], sha1_x5t(&der));
    let sha1_hex: String = openssl::hash::hash(MessageDigest::sha1(), &der)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(created.sha1_thumbprint, sha1_hex);
    let cert = X509::from_der(&der).unwrap();
    let cn = cert.subject_name().entries().next().unwrap();
    assert_eq!(cn.data().to_string().unwrap(), "bot-cert");
    assert_eq!(
        cert.not_before().to_string(),
        openssl::asn1::Asn1Time::from_unix(nbf as i64)
            .unwrap()
            .to_string()
    );
    assert_eq!(
        cert.not_after().to_string(),
        openssl::asn1::Asn1Time::from_unix(exp as i64)
            .unwrap()
            .to_string()
    );
    assert_eq!(cert.public_key().unwrap().bits(), 2048);

    let attributes = &body["attributes"];
    assert_eq!(attributes["enabled"], true);
    assert_eq!(attributes["nbf"], nbf);
    assert_eq!(attributes["exp"], exp);
    assert!(attributes["created"].as_u64().unwrap() >= unix_now() - 60);
    assert_eq!(attributes["updated"], attributes["created"]);
    assert_eq!(attributes["recoveryLevel"], "Recoverable+Purgeable");
    assert_eq!(attributes["recoverableDays"], 90);

    let policy = &body["policy"];
    assert_eq!(policy["id"], format!("{base}/certificates/bot-cert/policy"));
    assert_eq!(
        policy["key_props"],
        json!({"exportable": true, "kty": "RSA", "key_size": 2048, "reuse_key": false})
    );
    assert_eq!(
        policy["secret_props"],
        json!({"contentType": "application/x-pkcs12"})
    );
    assert_eq!(policy["x509_props"]["subject"], "CN=bot-cert");
    assert_eq!(policy["x509_props"]["validity_months"], 1);
    assert_eq!(policy["issuer"], json!({"name": "Self"}));
    assert_eq!(policy["attributes"]["enabled"], true);

    let alone = vault(
        &sandbox,
        &format!("certificates/bot-cert/policy?{API}"),
        Some(&token),
    )
    .await;
    assert_eq!(alone.json(), *policy);

    // Default validity: from a minute ago for 365 days, and a custom subject.
    let made = sandbox.create_key_vault_certificate(
        "other",
        KeyVaultCertificateOptions::default().subject("CN=bot.contoso.com, O=Contoso"),
    );
    let nbf = made
        .not_before
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!((unix_now() - 62..=unix_now() - 58).contains(&nbf), "{nbf}");
    assert_eq!(
        made.not_after.duration_since(made.not_before).unwrap(),
        Duration::from_secs(365 * 86_400)
    );
    let body = vault(&sandbox, &format!("certificates/other?{API}"), Some(&token))
        .await
        .json();
    assert_eq!(
        body["policy"]["x509_props"]["subject"],
        "CN=bot.contoso.com, O=Contoso"
    );
    assert_eq!(body["policy"]["x509_props"]["validity_months"], 12);
}

fn parse_pfx(value: &str) -> (Option<PKey<Private>>, Option<X509>) {
    let der = STANDARD.decode(value).expect("standard base64");
    let parsed = Pkcs12::from_der(&der)
        .expect("a PKCS#12 file")
        .parse2("")
        .expect("opens with an empty password");
    // OpenSSL files a certificate without its key among the "CA" certificates.
    let cert = parsed
        .cert
        .or_else(|| parsed.ca.and_then(|mut ca| ca.pop()));
    (parsed.pkey, cert)
}

#[tokio::test]
async fn pkcs12_secrets_open_with_an_empty_password_and_convert_to_pem() {
    let sandbox = Sandbox::start().await.unwrap();
    let created =
        sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let token = vault_token(&sandbox).await;
    let base = sandbox.key_vault_url();
    let version = &created.version;
    let certificate = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token))
        .await
        .json();
    let sid = certificate["sid"].as_str().unwrap();
    // Identity.Web follows `sid` to the exact version.
    let reply = get_url(&format!("{sid}?api-version=2025-07-01"), Some(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let secret = reply.json();
    assert_eq!(secret["contentType"], "application/x-pkcs12");
    assert_eq!(secret["id"], format!("{base}/secrets/bot/{version}"));
    assert_eq!(secret["kid"], format!("{base}/keys/bot/{version}"));
    assert_eq!(secret["managed"], true);
    assert_eq!(secret["attributes"], certificate["attributes"]);
    let (key, cert) = parse_pfx(secret["value"].as_str().unwrap());
    let (key, cert) = (key.expect("the key"), cert.expect("the certificate"));
    assert_eq!(cert.to_der().unwrap(), created.certificate_der);
    assert!(
        key.public_eq(&cert.public_key().unwrap()),
        "the key is the certificate's"
    );

    // The latest secret is the same version.
    let latest = vault(&sandbox, &format!("secrets/bot?{API}"), Some(&token))
        .await
        .json();
    assert_eq!(latest["id"], secret["id"]);

    let pem = vault(
        &sandbox,
        &format!(
            "secrets/bot/{version}?api-version=2025-07-01&outContentType=application/x-pem-file"
        ),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(pem["contentType"], "application/x-pem-file");
    let value = pem["value"].as_str().unwrap();
    assert!(
        value.starts_with("-----BEGIN PRIVATE KEY-----\n"),
        "{}",
        &value[..40]
    );
    let key = PKey::private_key_from_pem(value.as_bytes()).unwrap();
    let cert =
        X509::from_pem(&value.as_bytes()[value.find("-----BEGIN CERTIFICATE-----").unwrap()..])
            .unwrap();
    assert_eq!(cert.to_der().unwrap(), created.certificate_der);
    assert!(key.public_eq(&cert.public_key().unwrap()));

    let same = vault(
        &sandbox,
        &format!("secrets/bot?{API}&outContentType=application/x-pkcs12"),
        Some(&token),
    )
    .await;
    assert_eq!(same.json()["contentType"], "application/x-pkcs12");
    let unknown = vault(
        &sandbox,
        &format!("secrets/bot?{API}&outContentType=text/plain"),
        Some(&token),
    )
    .await;
    unknown.assert_error(400, "BadParameter");
}

#[tokio::test]
async fn pem_secrets_hold_the_key_then_the_certificate() {
    let sandbox = Sandbox::start().await.unwrap();
    let created = sandbox.create_key_vault_certificate(
        "pem",
        KeyVaultCertificateOptions::default().content_type(KeyVaultContentType::Pem),
    );
    let token = vault_token(&sandbox).await;
    let secret = vault(
        &sandbox,
        &format!("secrets/pem/{}?{API}", created.version),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(secret["contentType"], "application/x-pem-file");
    let value = secret["value"].as_str().unwrap();
    let (key_pem, cert_pem) = value.split_at(value.find("-----BEGIN CERTIFICATE-----").unwrap());
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    assert!(key_pem.ends_with("-----END PRIVATE KEY-----\n"));
    let key = PKey::private_key_from_pem(key_pem.as_bytes()).unwrap();
    let cert = X509::from_pem(cert_pem.as_bytes()).unwrap();
    assert_eq!(cert.to_der().unwrap(), created.certificate_der);
    assert!(key.public_eq(&cert.public_key().unwrap()));
    let certificate = vault(&sandbox, &format!("certificates/pem?{API}"), Some(&token))
        .await
        .json();
    assert_eq!(
        certificate["policy"]["secret_props"]["contentType"],
        "application/x-pem-file"
    );
    // Only PKCS#12 converts.
    let reply = vault(
        &sandbox,
        &format!("secrets/pem?{API}&outContentType=application/x-pkcs12"),
        Some(&token),
    )
    .await;
    reply.assert_error(400, "BadParameter");
}

#[tokio::test]
async fn non_exportable_secrets_hold_only_the_certificate() {
    let sandbox = Sandbox::start().await.unwrap();
    let created = sandbox.create_key_vault_certificate(
        "locked",
        KeyVaultCertificateOptions::default().exportable(false),
    );
    let token = vault_token(&sandbox).await;
    let certificate = vault(
        &sandbox,
        &format!("certificates/locked?{API}"),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(certificate["policy"]["key_props"]["exportable"], false);
    let secret = vault(&sandbox, &format!("secrets/locked?{API}"), Some(&token))
        .await
        .json();
    let (key, cert) = parse_pfx(secret["value"].as_str().unwrap());
    assert!(key.is_none(), "no private key");
    assert_eq!(cert.unwrap().to_der().unwrap(), created.certificate_der);
    let pem = vault(
        &sandbox,
        &format!("secrets/locked?{API}&outContentType=application/x-pem-file"),
        Some(&token),
    )
    .await
    .json();
    let value = pem["value"].as_str().unwrap();
    assert!(value.starts_with("-----BEGIN CERTIFICATE-----"), "{value}");
    assert!(!value.contains("PRIVATE KEY"));
}

#[tokio::test]
async fn disabled_versions_read_as_certificates_but_not_as_secrets() {
    let sandbox = Sandbox::start().await.unwrap();
    let created = sandbox
        .create_key_vault_certificate("bot", KeyVaultCertificateOptions::default().enabled(false));
    let token = vault_token(&sandbox).await;
    let disabled = json!({"error": {"code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.", "innererror": {"code": "SecretDisabled"}}});
    for path in [
        "secrets/bot".to_owned(),
        format!("secrets/bot/{}", created.version),
    ] {
        let reply = vault(&sandbox, &format!("{path}?{API}"), Some(&token)).await;
        assert_eq!(reply.status, 403, "{path}");
        assert_eq!(reply.json(), disabled);
    }
    let certificate = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token)).await;
    assert_eq!(certificate.status, 200);
    assert_eq!(certificate.json()["attributes"]["enabled"], false);
    assert!(sandbox.set_key_vault_version_enabled("bot", &created.version, true));
    let reply = vault(&sandbox, &format!("secrets/bot?{API}"), Some(&token)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!sandbox.set_key_vault_version_enabled(
        "bot",
        "00000000000000000000000000000000",
        false
    ));
}

#[tokio::test]
async fn versions_page_with_next_links() {
    let sandbox = Sandbox::start().await.unwrap();
    // One fixed second: `created` must still increase.
    let fixed = SystemTime::now();
    sandbox.set_clock(move || fixed);
    let made: Vec<_> = (0..3)
        .map(|_| sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default()))
        .collect();
    let token = vault_token(&sandbox).await;
    let base = sandbox.key_vault_url();

    for kind in ["certificates", "secrets"] {
        let mut url = format!("{base}/{kind}/bot/versions?{API}&maxresults=1");
        let mut seen = Vec::new();
        let mut created = Vec::new();
        for (page, version) in made.iter().enumerate() {
            let reply = get_url(&url, Some(&token)).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let body = reply.json();
            let items = body["value"].as_array().unwrap();
            assert_eq!(items.len(), 1, "{body}");
            let item = &items[0];
            seen.push(item["id"].as_str().unwrap().to_owned());
            created.push(item["attributes"]["created"].as_i64().unwrap());
            if kind == "certificates" {
                assert_eq!(item["x5t"], sha1_x5t(&version.certificate_der));
            } else {
                assert_eq!(item["contentType"], "application/x-pkcs12");
                assert_eq!(item["managed"], true);
                assert!(item.get("value").is_none() && item.get("x5t").is_none());
            }
            match body["nextLink"].as_str() {
                Some(next) => {
                    assert!(page < 2);
                    let prefix =
                        format!("{base}/{kind}/bot/versions?{API}&maxresults=1&$skiptoken=");
                    assert!(next.starts_with(&prefix), "{next}");
                    url = next.to_owned();
                }
                None => {
                    assert_eq!(page, 2);
                    assert!(body["nextLink"].is_null(), "{body}");
                }
            }
        }
        let expected: Vec<String> = made
            .iter()
            .map(|v| format!("{base}/{kind}/bot/{}", v.version))
            .collect();
        assert_eq!(seen, expected);
        assert!(created.windows(2).all(|w| w[0] < w[1]), "{created:?}");
    }

    let all = vault(
        &sandbox,
        &format!("certificates/bot/versions?{API}"),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(all["value"].as_array().unwrap().len(), 3);
    assert!(all["nextLink"].is_null());
    let two = vault(
        &sandbox,
        &format!("secrets/bot/versions?{API}&maxresults=2"),
        Some(&token),
    )
    .await
    .json();
    assert_eq!(two["value"].as_array().unwrap().len(), 2);
    assert!(two["nextLink"].as_str().unwrap().contains("maxresults=2"));
    for bad in [
        "maxresults=0",
        "maxresults=26",
        "maxresults=x",
        "$skiptoken=nope",
        "%24skiptoken=bm9wZQ",
    ] {
        let reply = vault(
            &sandbox,
            &format!("certificates/bot/versions?{API}&{bad}"),
            Some(&token),
        )
        .await;
        reply.assert_error(400, "BadParameter");
    }
    // The latest is the last created, whatever the clock said.
    let latest = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token))
        .await
        .json();
    assert!(latest["id"].as_str().unwrap().ends_with(&made[2].version));
}

/// A certificate client assertion (RS256, `x5t`) for the demo app.
fn assertion(sandbox: &Sandbox, key: &PKey<Private>, der: &[u8]) -> String {
    let now = unix_now();
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": sha1_x5t(der)});
    let claims = json!({
        "aud": sandbox.token_endpoint(DEMO_TENANT_ID), "iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID,
        "jti": uuid::Uuid::new_v4().to_string(), "nbf": now, "iat": now, "exp": now + 300,
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(MessageDigest::sha256(), key).expect("sign the assertion");
    signer.update(input.as_bytes()).expect("sign the assertion");
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(signer.sign_to_vec().expect("sign the assertion"))
    )
}

async fn assertion_token(sandbox: &Sandbox, assertion: &str) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("grant_type", "client_credentials"),
            ("client_id", DEMO_CLIENT_ID),
            ("scope", "https://api.botframework.com/.default"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion),
        ])
        .finish();
    send(
        reqwest::Client::new()
            .post(sandbox.token_endpoint(DEMO_TENANT_ID))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body),
    )
    .await
}

/// The key and certificate of a version, read from the vault as a bot would.
async fn read_pfx(sandbox: &Sandbox, token: &str, name: &str) -> (PKey<Private>, Vec<u8>) {
    let certificate = vault(sandbox, &format!("certificates/{name}?{API}"), Some(token))
        .await
        .json();
    let sid = certificate["sid"].as_str().expect("sign the assertion");
    let secret = get_url(&format!("{sid}?{API}"), Some(token)).await.json();
    let (key, cert) = parse_pfx(secret["value"].as_str().expect("sign the assertion"));
    (
        key.expect("sign the assertion"),
        cert.expect("sign the assertion")
            .to_der()
            .expect("sign the assertion"),
    )
}

#[tokio::test]
async fn rotation_adds_a_version_and_entra_follows_the_app_registration() {
    let sandbox = Sandbox::start().await.unwrap();
    let first = sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    sandbox.register_app(
        AppRegistration::new(DEMO_CLIENT_ID, DEMO_TENANT_ID)
            .with_certificate_der(first.certificate_der.clone()),
    );
    let token = vault_token(&sandbox).await;
    let (old_key, old_der) = read_pfx(&sandbox, &token, "bot").await;
    assert_eq!(old_der, first.certificate_der);
    let reply = assertion_token(&sandbox, &assertion(&sandbox, &old_key, &old_der)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Rotate: a new version in the vault, the app registration follows.
    let second = sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    assert_ne!(second.sha1_thumbprint, first.sha1_thumbprint);
    assert!(sandbox.set_app_certificates(DEMO_CLIENT_ID, vec![second.certificate_der.clone()]));
    assert!(!sandbox.set_app_certificates("no-such-app", Vec::new()));
    let latest = vault(&sandbox, &format!("certificates/bot?{API}"), Some(&token))
        .await
        .json();
    assert!(latest["id"].as_str().unwrap().ends_with(&second.version));
    let reply = assertion_token(&sandbox, &assertion(&sandbox, &old_key, &old_der)).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert_eq!(reply.json()["error_codes"], json!([700_027]));
    let (new_key, new_der) = read_pfx(&sandbox, &token, "bot").await;
    assert_eq!(new_der, second.certificate_der);
    let reply = assertion_token(&sandbox, &assertion(&sandbox, &new_key, &new_der)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    // The old version is still there, by its id.
    let old = vault(
        &sandbox,
        &format!("certificates/bot/{}?{API}", first.version),
        Some(&token),
    )
    .await;
    assert_eq!(old.status, 200);
    assert_eq!(sandbox.key_vault_versions("bot").len(), 2);
}

async fn control(
    sandbox: &Sandbox,
    name: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request = reqwest::Client::new().post(format!(
        "{}/keyvault/_sandbox/certificates/{name}/rotate",
        sandbox.key_vault_url()
    ));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_owned());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(request).await
}

#[tokio::test]
async fn the_control_endpoint_rotates_for_other_processes() {
    let sandbox = Sandbox::start().await.unwrap();
    let token = vault_token(&sandbox).await;
    let reply = control(&sandbox, "demo", None, &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let first = reply.json();
    let versions = sandbox.key_vault_versions("demo");
    assert_eq!(first["name"], "demo");
    assert_eq!(first["version"], versions[0].version);
    assert_eq!(first["sha1_thumbprint"], versions[0].sha1_thumbprint);
    assert_eq!(
        first.as_object().unwrap().keys().collect::<Vec<_>>(),
        [
            "name",
            "not_after",
            "not_before",
            "sha1_thumbprint",
            "version"
        ]
    );

    let now = unix_now();
    let reply = control(
        &sandbox,
        "demo",
        Some(r#"{"not_before_in_secs": -30, "content_type": "pem", "app_id": "00000000-0000-0000-0000-00000000b07a"}"#),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.text.contains("PRIVATE"));
    let second = reply.json();
    let nbf = second["not_before"].as_u64().unwrap();
    assert!((now - 32..=now - 28).contains(&nbf), "{nbf}");
    assert_eq!(second["not_after"].as_u64().unwrap(), nbf + 365 * 86_400);
    let latest = vault(&sandbox, &format!("certificates/demo?{API}"), Some(&token))
        .await
        .json();
    assert!(
        latest["id"]
            .as_str()
            .unwrap()
            .ends_with(second["version"].as_str().unwrap())
    );
    assert_eq!(latest["attributes"]["nbf"], nbf);
    let secret = vault(&sandbox, &format!("secrets/demo?{API}"), Some(&token))
        .await
        .json();
    assert_eq!(secret["contentType"], "application/x-pem-file");

    let refused = [
        (control(&sandbox, "demo", Some("{"), &[]).await, 400),
        (
            control(&sandbox, "demo", Some(r#"{"colour": 1}"#), &[]).await,
            400,
        ),
        (
            control(&sandbox, "demo", Some(r#"{"content_type": "der"}"#), &[]).await,
            400,
        ),
        (control(&sandbox, "a_b", None, &[]).await, 400),
        (
            control(&sandbox, "demo", Some(r#"{"app_id": "nobody"}"#), &[]).await,
            404,
        ),
        (
            control(&sandbox, "demo", None, &[("host", "vault.evil.example")]).await,
            403,
        ),
        (
            control(
                &sandbox,
                "demo",
                None,
                &[("origin", "https://evil.example")],
            )
            .await,
            403,
        ),
    ];
    for (reply, status) in refused {
        assert_eq!(reply.status, status, "{}", reply.text);
        assert!(reply.json()["error"]["code"].is_string());
    }
    let sent_text = send(
        reqwest::Client::new()
            .post(format!(
                "{}/keyvault/_sandbox/certificates/demo/rotate",
                sandbox.key_vault_url()
            ))
            .header("content-type", "text/plain")
            .body(r#"{"content_type": "pem"}"#),
    )
    .await;
    assert_eq!(sent_text.status, 400, "a cross-site form cannot send JSON");
    let reply = control(&sandbox, "demo", None, &[("origin", &sandbox.url())]).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(sandbox.key_vault_versions("demo").len(), 3);
    // Control calls are not vault traffic.
    assert_eq!(sandbox.count(Route::KeyVault), 2);
}

#[tokio::test]
async fn faults_answer_in_key_vault_shape() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let token = vault_token(&sandbox).await;
    let path = format!("secrets/bot?{API}");
    sandbox.inject(
        Route::KeyVault,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("7".into()),
        },
    );
    sandbox.inject(Route::KeyVault, Fault::status(500));
    sandbox.inject(Route::KeyVault, Fault::status(401));
    sandbox.inject(Route::KeyVault, Fault::status(403));
    sandbox.inject(Route::KeyVault, Fault::status(404));
    let custom = r#"{"error":{"code":"Custom","message":"as given"}}"#;
    sandbox.inject(
        Route::KeyVault,
        Fault::Status {
            status: 503,
            body: Some(custom.into()),
            retry_after: Some("Wed, 21 Oct 2015 07:28:00 GMT".into()),
        },
    );
    sandbox.inject(Route::KeyVault, Fault::MalformedJson);
    sandbox.inject(Route::KeyVault, Fault::Delay(Duration::from_millis(300)));

    let throttled = vault(&sandbox, &path, Some(&token)).await;
    throttled.assert_error(429, "Throttled");
    assert_eq!(throttled.header("retry-after"), Some("7"));
    let failed = vault(&sandbox, &path, Some(&token)).await;
    failed.assert_error(500, "InternalServerError");
    assert_eq!(failed.header("retry-after"), None);
    let unauthorized = vault(&sandbox, &path, Some(&token)).await;
    unauthorized.assert_error(401, "Unauthorized");
    assert!(
        unauthorized
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer authorization=")
    );
    vault(&sandbox, &path, Some(&token))
        .await
        .assert_error(403, "Forbidden");
    vault(&sandbox, &path, Some(&token))
        .await
        .assert_error(404, "NotFound");
    let unavailable = vault(&sandbox, &path, Some(&token)).await;
    assert_eq!(
        (unavailable.status, unavailable.text.as_str()),
        (503, custom)
    );
    assert_eq!(
        unavailable.header("retry-after"),
        Some("Wed, 21 Oct 2015 07:28:00 GMT")
    );
    let malformed = vault(&sandbox, &path, Some(&token)).await;
    assert_eq!(malformed.status, 200);
    assert!(serde_json::from_str::<Value>(&malformed.text).is_err());
    let started = Instant::now();
    let delayed = vault(&sandbox, &path, Some(&token)).await;
    assert_eq!(delayed.status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(vault(&sandbox, &path, Some(&token)).await.status, 200);

    // An outage lasts until cleared.
    sandbox.inject(
        Route::KeyVault,
        Fault::StatusFor {
            status: 503,
            duration: Duration::from_secs(3600),
        },
    );
    for _ in 0..2 {
        vault(&sandbox, &path, Some(&token))
            .await
            .assert_error(503, "ServiceUnavailable");
    }
    sandbox.clear_faults();
    assert_eq!(vault(&sandbox, &path, Some(&token)).await.status, 200);

    // Faults on other routes leave the vault alone, and the log names the route.
    sandbox.inject(Route::Imds, Fault::status(500));
    assert_eq!(vault(&sandbox, &path, Some(&token)).await.status, 200);
    assert_eq!(sandbox.count(Route::KeyVault), 13);
    let statuses: Vec<u16> = sandbox
        .requests()
        .iter()
        .filter(|r| r.route == Route::KeyVault)
        .map(|r| r.status)
        .collect();
    assert_eq!(
        statuses,
        [
            429, 500, 401, 403, 404, 503, 200, 200, 200, 503, 503, 200, 200
        ]
    );
    assert!(sandbox.requests().iter().any(|r| r.path == "/secrets/bot"));
}

#[tokio::test]
async fn unknown_objects_are_not_found() {
    let sandbox = Sandbox::start().await.unwrap();
    let made = sandbox.create_key_vault_certificate("bot", KeyVaultCertificateOptions::default());
    let token = vault_token(&sandbox).await;
    let missing = "0123456789abcdef0123456789abcdef";
    for (path, code, id) in [
        (
            "certificates/nope".to_owned(),
            "CertificateNotFound",
            "certificate with (name/id) nope ",
        ),
        (
            "certificates/nope/versions".to_owned(),
            "CertificateNotFound",
            "certificate with (name/id) nope ",
        ),
        (
            format!("certificates/bot/{missing}"),
            "CertificateNotFound",
            &format!("certificate with (name/id) bot/{missing} "),
        ),
        (
            "secrets/nope".to_owned(),
            "SecretNotFound",
            "secret with (name/id) nope ",
        ),
        (
            format!("secrets/bot/{missing}"),
            "SecretNotFound",
            &format!("secret with (name/id) bot/{missing} "),
        ),
        (
            "secrets/nope/versions".to_owned(),
            "SecretNotFound",
            "secret with (name/id) nope ",
        ),
    ] {
        let reply = vault(&sandbox, &format!("{path}?{API}"), Some(&token)).await;
        let body = reply.assert_error(404, code);
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("A {id}was not found in this key vault.")),
            "{message}"
        );
    }
    // Names are case-insensitive, versions too.
    let upper = vault(
        &sandbox,
        &format!("secrets/BOT/{}?{API}", made.version.to_uppercase()),
        Some(&token),
    )
    .await;
    assert_eq!(upper.status, 200, "{}", upper.text);
    let invalid = vault(&sandbox, &format!("certificates/a_b?{API}"), Some(&token)).await;
    invalid.assert_error(400, "BadParameter");
    // Other vault collections are not served.
    let keys = vault(&sandbox, &format!("keys/bot?{API}"), Some(&token)).await;
    assert_eq!(keys.status, 404);
    // Only GET.
    let post = send(
        reqwest::Client::new()
            .post(format!("{}/secrets/bot?{API}", sandbox.key_vault_url()))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(post.status, 405);
    let echoed = send(
        reqwest::Client::new()
            .get(format!("{}/secrets/bot?{API}", sandbox.key_vault_url()))
            .bearer_auth(&token)
            .header("x-ms-client-request-id", "abc-123"),
    )
    .await;
    assert_eq!(echoed.header("x-ms-client-request-id"), Some("abc-123"));
}
