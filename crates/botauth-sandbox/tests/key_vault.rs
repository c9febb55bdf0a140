//! The sandbox's Key Vault held to docs/sandbox.md §7 over real HTTP: who may read it (the
//! challenge, audience, access list and api-version rules), unknown objects and injected faults.
//! The objects themselves, paging, rotation and the control endpoint: `key_vault_objects.rs`.

mod common;

use std::time::{Duration, Instant};

use botauth_sandbox::{
    DEMO_CLIENT_ID, DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID,
    DEMO_SYSTEM_MI_CLIENT_ID, DEMO_TENANT_ID, Fault, KeyVaultCertificateOptions, Route, Sandbox,
};
use common::*;
use serde_json::{Value, json};

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
