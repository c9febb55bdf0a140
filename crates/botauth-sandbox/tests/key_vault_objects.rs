//! The sandbox's Key Vault objects held to docs/sandbox.md §7 over real HTTP: the certificate and
//! secret shapes (checked with OpenSSL, not with the sandbox's code), paging, rotation and the
//! control endpoint.

mod common;

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_TENANT_ID, KeyVaultCertificateOptions,
    KeyVaultContentType, Route, Sandbox,
};
use common::*;
use openssl::hash::MessageDigest;
use openssl::pkcs12::Pkcs12;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde_json::json;

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

    // The default validity and a custom subject: `a_custom_subject_is_in_the_policy` in
    // src/key_vault/rest.rs.
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
