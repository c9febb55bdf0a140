//! Client-secret tokens end to end: botauth ↔ the sandbox's token endpoint over real HTTP.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use botauth::core::{EntraError, ManualClock};
use botauth::http::HttpOptions;
use botauth::secret::ClientSecretCredential;
use botauth::token::ManagerOptions;
use botauth::{
    CredentialProvider, Error, ErrorKind, Secret, TokenManager, TokenRequest, TokenSource,
};
use botauth_sandbox::{
    AppRegistration, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox,
};

const SCOPE: &str = "https://api.botframework.com/.default";

fn scope() -> TokenRequest {
    TokenRequest::new(SCOPE)
}

fn credential(sandbox: &Sandbox, secret: &str) -> ClientSecretCredential {
    credential_for(sandbox, DEMO_TENANT_ID, DEMO_CLIENT_ID, secret, None)
}

fn credential_for(
    sandbox: &Sandbox,
    tenant: &str,
    client: &str,
    secret: &str,
    clock: Option<Arc<ManualClock>>,
) -> ClientSecretCredential {
    let mut b = ClientSecretCredential::builder(tenant, client, Secret::new(secret)).settings(
        botauth::http::ClientSettings::new()
            .authority_host(sandbox.url())
            .http_options(HttpOptions {
                timeout: Duration::from_millis(1500),
                ..HttpOptions::default()
            }),
    );
    if let Some(clock) = clock {
        b = b.settings(botauth::http::ClientSettings::new().clock(clock));
    }
    b.build().expect("credential")
}

fn manager(sandbox: &Sandbox) -> TokenManager {
    TokenManager::builder(Arc::new(credential(sandbox, DEMO_CLIENT_SECRET)))
        .options(ManagerOptions {
            max_jitter: Duration::ZERO,
            ..ManagerOptions::default()
        })
        .build()
}

fn entra(e: &Error) -> &EntraError {
    e.as_entra()
        .unwrap_or_else(|| panic!("expected an Entra error, got {e:?}"))
}

async fn wait_for_requests(sandbox: &Sandbox, n: usize) {
    for _ in 0..500 {
        if sandbox.count(Route::Token) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "expected {n} token requests, saw {}",
        sandbox.count(Route::Token)
    );
}

#[tokio::test]
async fn acquires_a_token_the_issuer_accepts() {
    let sandbox = Sandbox::start().await.unwrap();
    let before = SystemTime::now();
    let token = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    let lifetime = token.expires_on.duration_since(before).unwrap().as_secs();
    assert!((3598..=3600).contains(&lifetime), "{lifetime}");
    assert_eq!(token.refresh_on, None);
    let claims = sandbox
        .verify_access_token(token.token.expose_secret())
        .unwrap();
    assert_eq!(claims["aud"], "https://api.botframework.com");
    assert_eq!(claims["appid"], DEMO_CLIENT_ID);
    assert_eq!(claims["tid"], DEMO_TENANT_ID);
    let log = sandbox.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].path, format!("/{DEMO_TENANT_ID}/oauth2/v2.0/token"));
    assert_eq!(log[0].grant_type.as_deref(), Some("client_credentials"));
    assert_eq!(log[0].client_id.as_deref(), Some(DEMO_CLIENT_ID));
    let request_id = log[0]
        .client_request_id
        .as_deref()
        .expect("client-request-id sent");
    assert_eq!(request_id.len(), 36, "a UUID: {request_id}");
}

#[tokio::test]
async fn secrets_are_form_encoded() {
    let sandbox = Sandbox::start().await.unwrap();
    let odd = "a+b/c=d&e f%20g?h#i~j";
    sandbox.register_app(AppRegistration::new("app-odd", DEMO_TENANT_ID).with_secret(odd));
    let c = credential_for(&sandbox, DEMO_TENANT_ID, "app-odd", odd, None);
    c.get_token(&scope()).await.unwrap();
}

#[tokio::test]
async fn wrong_secret_is_aadsts7000215_with_its_hint() {
    let sandbox = Sandbox::start().await.unwrap();
    let e = credential(&sandbox, "not~the~secret")
        .get_token(&scope())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Rejected);
    assert!(!e.is_retryable());
    let x = entra(&e);
    assert_eq!(
        (x.status(), x.error(), x.code()),
        (401, "invalid_client", Some(7000215))
    );
    assert!(x.trace_id().is_some());
    // Entra echoes our client-request-id as its correlation id: the two logs can be joined.
    assert_eq!(
        x.correlation_id(),
        sandbox.requests()[0].client_request_id.as_deref()
    );
    let text = e.to_string();
    assert!(text.contains("AADSTS7000215"), "{text}");
    assert!(text.contains("not its Secret ID"), "{text}");
    assert!(!text.contains("not~the~secret"));
}

#[tokio::test]
async fn unknown_app_is_aadsts700016() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = credential_for(
        &sandbox,
        DEMO_TENANT_ID,
        "99999999-0000-0000-0000-000000000000",
        "whatever~1",
        None,
    );
    let e = c.get_token(&scope()).await.unwrap_err();
    let x = entra(&e);
    assert_eq!(
        (x.status(), x.error(), x.code()),
        (400, "unauthorized_client", Some(700016))
    );
    assert!(
        e.to_string().contains("botframework.com"),
        "the hint names the classic mistake: {e}"
    );
}

#[tokio::test]
async fn app_in_another_tenant_is_aadsts700016() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = credential_for(
        &sandbox,
        "botframework.com",
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        None,
    );
    let e = c.get_token(&scope()).await.unwrap_err();
    assert_eq!(entra(&e).code(), Some(700016));
}

#[tokio::test]
async fn bad_scope_is_aadsts1002012() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = credential(&sandbox, DEMO_CLIENT_SECRET);
    for bad in [
        "https://graph.microsoft.com/.default",
        "https://api.botframework.com",
    ] {
        let e = c.get_token(&TokenRequest::new(bad)).await.unwrap_err();
        let x = entra(&e);
        assert_eq!(
            (x.status(), x.error(), x.code()),
            (400, "invalid_scope", Some(1002012)),
            "{bad}"
        );
        assert!(x.hint().unwrap().contains("/.default"));
    }
    let e = c
        .get_token(&TokenRequest::with_scopes(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config { ref key, .. } if key == "scope"));
}

#[tokio::test]
async fn throttling_with_a_short_retry_after_waits_then_succeeds() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("1".into()),
        },
    );
    let m = manager(&sandbox);
    m.get_token(&scope()).await.unwrap();
    let log = sandbox.requests();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![429, 200]
    );
    assert!(
        log[1].at - log[0].at >= Duration::from_secs(1),
        "Retry-After must be honoured"
    );
}

#[tokio::test]
async fn throttling_with_a_long_retry_after_fails_fast_and_holds_off() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("120".into()),
        },
    );
    let m = manager(&sandbox);
    let e = m.get_token(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Throttled);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(120)));
    let again = m.get_token(&scope()).await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::Throttled);
    assert_eq!(
        sandbox.count(Route::Token),
        1,
        "nothing is sent before Retry-After passes"
    );
}

#[tokio::test]
async fn a_server_error_is_retried_once_after_a_second() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::status(500));
    let m = manager(&sandbox);
    m.get_token(&scope()).await.unwrap();
    let log = sandbox.requests();
    assert_eq!(
        log.iter().map(|r| r.status).collect::<Vec<_>>(),
        vec![500, 200]
    );
    assert!(log[1].at - log[0].at >= Duration::from_secs(1));
}

#[tokio::test]
async fn two_server_errors_surface_as_unavailable_with_entra_details() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject_n(Route::Token, Fault::status(503), 2);
    let e = manager(&sandbox).get_token(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.is_retryable());
    assert!(matches!(
        e,
        Error::Unavailable {
            status: Some(503),
            ..
        }
    ));
    let cause = std::error::Error::source(&e).expect("the Entra body is the cause");
    assert!(
        cause.to_string().contains("temporarily_unavailable"),
        "{cause}"
    );
    assert_eq!(sandbox.count(Route::Token), 2);
}

#[tokio::test]
async fn malformed_json_is_an_invalid_response() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::MalformedJson);
    let e = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidResponse);
    assert!(
        matches!(e, Error::InvalidResponse { status: 200, ref message, .. } if message.contains("not a JSON token response")),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_token_type_other_than_bearer_is_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::TokenType("pop".into()));
    let e = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidResponse { ref message, .. } if message == "token_type `pop` is not Bearer"),
        "{e:?}"
    );
    // Case does not matter.
    sandbox.inject(Route::Token, Fault::TokenType("bEaReR".into()));
    let t = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap();
    assert_eq!(t.token_type, "Bearer");
}

/// A hostile or broken server's huge lifetime is an error, not a panic inside the token manager.
#[tokio::test]
async fn an_out_of_range_expires_in_is_an_invalid_response() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(
        Route::Token,
        Fault::Status {
            status: 200,
            body: Some(
                r#"{"token_type":"Bearer","access_token":"a","expires_in":18446744073709551615}"#
                    .into(),
            ),
            retry_after: None,
        },
    );
    let e = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidResponse { ref message, .. } if message == "expires_in is out of range"),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_response_without_access_token_is_refused() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::MissingAccessToken);
    let e = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::InvalidResponse { ref message, .. } if message == "the response has no access_token"),
        "{e:?}"
    );
}

#[tokio::test]
async fn numbers_as_strings_and_refresh_in_are_understood() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.set_numbers_as_strings(true);
    sandbox.set_refresh_in(Some(Duration::from_secs(600)));
    let before = SystemTime::now();
    let t = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap();
    let refresh = t
        .refresh_on
        .expect("refresh_in")
        .duration_since(before)
        .unwrap()
        .as_secs();
    assert!((599..=601).contains(&refresh), "{refresh}");
    let lifetime = t.expires_on.duration_since(before).unwrap().as_secs();
    assert!((3598..=3600).contains(&lifetime), "{lifetime}");
}

#[tokio::test]
async fn a_slow_server_times_out_and_the_manager_retries_once() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::Delay(Duration::from_secs(3)));
    let e = credential(&sandbox, DEMO_CLIENT_SECRET)
        .get_token(&scope())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(matches!(e, Error::Timeout { after, .. } if after == Duration::from_millis(1500)));
    assert!(e.is_retryable());

    sandbox.inject(Route::Token, Fault::Delay(Duration::from_secs(3)));
    manager(&sandbox).get_token(&scope()).await.unwrap();
}

#[tokio::test]
async fn an_unreachable_endpoint_is_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = ClientSecretCredential::builder(DEMO_TENANT_ID, DEMO_CLIENT_ID, Secret::new("abc~def"))
        .settings(
            botauth::http::ClientSettings::new().authority_host(format!("http://127.0.0.1:{port}")),
        )
        .build()
        .unwrap();
    let e = c.get_token(&scope()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(matches!(e, Error::Unavailable { status: None, .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_callers_cause_one_request() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Token, Fault::Delay(Duration::from_millis(100)));
    let m = manager(&sandbox);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let m = m.clone();
            tokio::spawn(async move { m.get_token(&scope()).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(sandbox.count(Route::Token), 1);
    assert!(tokens.windows(2).all(|w| w[0] == w[1]));
}

fn clocked(sandbox: &Sandbox) -> (TokenManager, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let c = credential_for(
        sandbox,
        DEMO_TENANT_ID,
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        Some(clock.clone()),
    );
    let m = TokenManager::builder(Arc::new(c))
        .clock(clock.clone())
        .options(ManagerOptions {
            max_jitter: Duration::ZERO,
            ..ManagerOptions::default()
        })
        .build();
    (m, clock)
}

#[tokio::test]
async fn refresh_ahead_happens_in_the_background() {
    let sandbox = Sandbox::start().await.unwrap();
    let (m, clock) = clocked(&sandbox);
    let first = m.get_token(&scope()).await.unwrap();
    // A one-hour token refreshes 6 minutes before expiry (5 minutes margin + 1 minute window).
    clock.advance(Duration::from_secs(3599 - 360 + 1));
    let (t, source) = m.get_token_with_source(&scope()).await.unwrap();
    assert_eq!(source, TokenSource::CacheRefreshing);
    assert_eq!(t, first, "the caller gets the cached token at once");
    wait_for_requests(&sandbox, 2).await;
    let fresh = loop {
        let t = m.get_token(&scope()).await.unwrap();
        if t != first {
            break t;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(fresh.expires_on > first.expires_on);
    assert_eq!(sandbox.count(Route::Token), 2);
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_valid_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let (m, clock) = clocked(&sandbox);
    let first = m.get_token(&scope()).await.unwrap();
    sandbox.inject_n(Route::Token, Fault::status(500), 2);
    clock.advance(Duration::from_secs(3599 - 360 + 1));
    assert_eq!(m.get_token(&scope()).await.unwrap(), first);
    // The refresh fails twice (one retry after 1 s).
    wait_for_requests(&sandbox, 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..5 {
        assert_eq!(m.get_token(&scope()).await.unwrap(), first);
    }
    assert_eq!(
        sandbox.count(Route::Token),
        3,
        "no new attempt before the back-off"
    );
}

#[tokio::test]
async fn force_refresh_gets_a_new_token() {
    let sandbox = Sandbox::start().await.unwrap();
    let m = manager(&sandbox);
    let first = m.get_token(&scope()).await.unwrap();
    let second = m.force_refresh(&scope()).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(m.get_token(&scope()).await.unwrap(), second);
    assert_eq!(sandbox.count(Route::Token), 2);
}

#[tokio::test]
async fn the_secret_credential_and_the_manager_pass_the_conformance_suite() {
    use botauth::core::testkit::{ProviderCheck, check_provider};
    let sandbox = Sandbox::start().await.unwrap();
    let credential = credential(&sandbox, DEMO_CLIENT_SECRET);
    check_provider(&credential, &scope(), &[DEMO_CLIENT_SECRET])
        .await
        .unwrap();
    check_provider(&manager(&sandbox), &scope(), &[DEMO_CLIENT_SECRET])
        .await
        .unwrap();

    // The error paths: a wrong secret is an Entra rejection (AADSTS7000215) that shows neither
    // secret, from the credential and through the manager; an endpoint that refuses connections
    // is `Unavailable`, and its error does not carry the form body with the secret either.
    let wrong = "wr0ng~secret-value.Xyz";
    let rejected = self::credential(&sandbox, wrong);
    let rejected_manager = TokenManager::new(Arc::new(self::credential(&sandbox, wrong)));
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        ClientSecretCredential::builder(
            DEMO_TENANT_ID,
            DEMO_CLIENT_ID,
            Secret::new(DEMO_CLIENT_SECRET),
        )
        .settings(botauth::http::ClientSettings::new().authority_host(url))
        .build()
        .unwrap()
    };
    let check = ProviderCheck::new()
        .secrets(&[DEMO_CLIENT_SECRET, wrong])
        .failing(&rejected, ErrorKind::Rejected)
        .failing(&rejected_manager, ErrorKind::Rejected)
        .failing(&closed, ErrorKind::Unavailable);
    check.run(&credential, &scope()).await.unwrap();
    check.run(&manager(&sandbox), &scope()).await.unwrap();
}

#[tokio::test]
async fn the_conformance_suite_catches_a_leaky_provider() {
    use botauth::core::testkit::check_provider;
    use botauth::{AccessToken, CredentialInfo, async_trait};

    /// Prints its secret in Debug and hands out tokens that are about to expire.
    #[derive(Debug)]
    struct Leaky {
        #[allow(dead_code)]
        secret: String,
    }

    #[async_trait]
    impl CredentialProvider for Leaky {
        async fn get_token(&self, _r: &TokenRequest) -> botauth::Result<AccessToken> {
            Ok(AccessToken::bearer(
                "t",
                SystemTime::now() + Duration::from_secs(5),
            ))
        }
        fn describe(&self) -> CredentialInfo {
            CredentialInfo::new("leaky")
        }
    }

    let failures = check_provider(
        &Leaky {
            secret: "s3cret".into(),
        },
        &scope(),
        &["s3cret"],
    )
    .await
    .unwrap_err();
    assert!(
        failures
            .iter()
            .any(|f| f.contains("Debug or its description")),
        "{failures:?}"
    );
    assert!(
        failures
            .iter()
            .any(|f| f.contains("expires within a minute")),
        "{failures:?}"
    );
}
