//! Every source against the sandbox: request shapes, ids, refusals and retry schedules.

// Helpers shared by the tests panic like the tests do.
#![allow(clippy::unwrap_used)]

mod common;

use std::error::Error as _;
use std::time::Duration;

use botauth_core::{CredentialProvider as _, Error, ErrorKind, TokenRequest};
use botauth_managed_identity::{
    EndpointRejection, ManagedIdentityId, ManagedIdentitySource, RetryOptions,
};
use botauth_sandbox::{
    DEMO_MI_CLIENT_ID, DEMO_MI_OBJECT_ID, DEMO_MI_RESOURCE_ID, DEMO_SYSTEM_MI_OBJECT_ID, Fault,
    Route, Sandbox,
};
use common::*;

fn bot() -> TokenRequest {
    TokenRequest::new(BOT_SCOPE)
}

/// The token's subject, checked by the sandbox.
fn subject(sandbox: &Sandbox, token: &botauth_core::AccessToken) -> String {
    let claims = sandbox
        .verify_managed_identity_token(token.token.expose_secret())
        .unwrap();
    assert_eq!(claims["aud"], "https://api.botframework.com");
    claims["sub"].as_str().unwrap().to_owned()
}

fn user_ids() -> [ManagedIdentityId; 3] {
    [
        ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
        ManagedIdentityId::ObjectId(DEMO_MI_OBJECT_ID.into()),
        ManagedIdentityId::ResourceId(DEMO_MI_RESOURCE_ID.into()),
    ]
}

#[tokio::test]
async fn imds_system_and_user_assigned() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = credential(
        imds_env(&sandbox),
        ManagedIdentityId::System,
        TestClock::new(),
    );
    assert_eq!(c.source(), ManagedIdentitySource::Imds);
    let token = c.get_token(&bot()).await.unwrap();
    assert_eq!(subject(&sandbox, &token), DEMO_SYSTEM_MI_OBJECT_ID);
    for id in user_ids() {
        let c = credential(imds_env(&sandbox), id, TestClock::new());
        let token = c.get_token(&bot()).await.unwrap();
        assert_eq!(subject(&sandbox, &token), DEMO_MI_OBJECT_ID);
    }
    assert_eq!(sandbox.count(Route::Imds), 4);
}

#[tokio::test]
async fn app_service_azure_ml_cloud_shell_service_fabric_and_arc() {
    let sandbox = Sandbox::start().await.unwrap();
    let sf = service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint());
    let cases = [
        (
            app_service_env(&sandbox),
            ManagedIdentitySource::AppService,
            Route::AppService,
        ),
        (
            azure_ml_env(&sandbox),
            ManagedIdentitySource::AzureMl,
            Route::AzureMl,
        ),
        (
            cloud_shell_env(&sandbox),
            ManagedIdentitySource::CloudShell,
            Route::CloudShell,
        ),
        (
            sf,
            ManagedIdentitySource::ServiceFabric,
            Route::ServiceFabric,
        ),
    ];
    for (env, source, route) in cases {
        let c = credential(env.clone(), ManagedIdentityId::System, TestClock::new());
        assert_eq!(c.source(), source);
        let token = c.get_token(&bot()).await.unwrap();
        assert_eq!(
            subject(&sandbox, &token),
            DEMO_SYSTEM_MI_OBJECT_ID,
            "{source}"
        );
        assert_eq!(sandbox.count(route), 1, "{source}");
        if source != ManagedIdentitySource::CloudShell {
            let c = credential(
                env,
                ManagedIdentityId::ClientId(DEMO_MI_CLIENT_ID.into()),
                TestClock::new(),
            );
            let token = c.get_token(&bot()).await.unwrap();
            assert_eq!(subject(&sandbox, &token), DEMO_MI_OBJECT_ID, "{source}");
        }
    }
    // App Service also selects by object and resource id, Service Fabric by resource id.
    for id in user_ids() {
        let c = credential(app_service_env(&sandbox), id, TestClock::new());
        assert_eq!(
            subject(&sandbox, &c.get_token(&bot()).await.unwrap()),
            DEMO_MI_OBJECT_ID
        );
    }
    let c = credential(
        service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint()),
        ManagedIdentityId::ResourceId(DEMO_MI_RESOURCE_ID.into()),
        TestClock::new(),
    );
    assert_eq!(
        subject(&sandbox, &c.get_token(&bot()).await.unwrap()),
        DEMO_MI_OBJECT_ID
    );
}

#[tokio::test]
async fn arc_answers_a_challenge_with_the_key_file() {
    let sandbox = Sandbox::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    sandbox.set_arc_key_directory(dir.path());
    let build = |key_dir: &std::path::Path| {
        botauth_managed_identity::ManagedIdentityCredential::builder()
            .env(arc_env(&sandbox))
            .file_exists(|_| false)
            .arc_key_directory(key_dir)
            .settings(botauth_http::ClientSettings::new().clock(TestClock::new()))
            .build()
            .unwrap()
    };
    let c = build(dir.path());
    assert_eq!(c.source(), ManagedIdentitySource::AzureArc);
    let token = c.get_token(&bot()).await.unwrap();
    assert_eq!(subject(&sandbox, &token), DEMO_SYSTEM_MI_OBJECT_ID);
    let statuses: Vec<u16> = sandbox.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 200]);

    // The challenge names a file outside the directory this credential trusts.
    let elsewhere = tempfile::tempdir().unwrap();
    let e = build(elsewhere.path()).get_token(&bot()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(
        e.to_string()
            .contains("outside the Arc agent's token directory"),
        "{e}"
    );

    // A key file over 4096 bytes is not read.
    sandbox.set_arc_key_len(4097);
    let e = c.get_token(&bot()).await.unwrap_err();
    assert!(e.to_string().contains("larger than 4096 bytes"), "{e}");
    sandbox.set_arc_key_len(4096);
    assert!(c.get_token(&bot()).await.is_ok());
}

#[tokio::test]
async fn service_fabric_pins_the_server_certificate() {
    let sandbox = Sandbox::start().await.unwrap();
    let wrong = "0123456789ABCDEF0123456789ABCDEF01234567";
    let c = credential(
        service_fabric_env(&sandbox, wrong),
        ManagedIdentityId::System,
        TestClock::new(),
    );
    let e = c.get_token(&bot()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(
        e.to_string().contains("not IDENTITY_SERVER_THUMBPRINT"),
        "{e}"
    );
    // The handshake failed, so the server never saw a request, let alone the secret header.
    assert_eq!(sandbox.count(Route::ServiceFabric), 0);

    // Lower case with colons is the same thumbprint.
    let pretty = sandbox
        .service_fabric_thumbprint()
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(":");
    let c = credential(
        service_fabric_env(&sandbox, &pretty),
        ManagedIdentityId::System,
        TestClock::new(),
    );
    assert!(c.get_token(&bot()).await.is_ok());
    assert_eq!(sandbox.count(Route::ServiceFabric), 1);
}

fn rejection(e: &Error) -> &EndpointRejection {
    e.source()
        .and_then(|s| s.downcast_ref::<EndpointRejection>())
        .unwrap_or_else(|| panic!("no EndpointRejection in {e:?}"))
}

#[tokio::test]
async fn identity_not_found_says_what_to_do() {
    let sandbox = Sandbox::start().await.unwrap();
    let clock = TestClock::new();
    let c = credential(
        imds_env(&sandbox),
        ManagedIdentityId::ClientId("99999999-0000-0000-0000-000000000000".into()),
        clock.clone(),
    );
    let e = c.get_token(&bot()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(!e.is_retryable());
    assert_eq!(
        e.to_string(),
        "the instance metadata service (IMDS) has no user-assigned identity with client id \
         99999999-0000-0000-0000-000000000000: assign that identity to this VM or scale set \
         (Identity blade, User assigned), or check the id"
    );
    let r = rejection(&e);
    assert_eq!(
        (r.status(), r.description()),
        (400, Some("Identity not found"))
    );
    // 400 is never retried.
    assert_eq!(clock.attempt_times(), [0]);
    assert_eq!(sandbox.count(Route::Imds), 1);

    sandbox.set_system_identity(None);
    let c = credential(
        imds_env(&sandbox),
        ManagedIdentityId::System,
        TestClock::new(),
    );
    let e = c.get_token(&bot()).await.unwrap_err();
    assert!(
        e.to_string().starts_with(
            "the instance metadata service (IMDS) has no system-assigned identity: enable the system-assigned identity"
        ),
        "{e}"
    );
}

#[tokio::test]
async fn wrong_secrets_are_refused_with_401() {
    let sandbox = Sandbox::start().await.unwrap();
    let mut bad = app_service_env(&sandbox);
    bad.insert("IDENTITY_HEADER", "stale-header");
    let e = credential(bad, ManagedIdentityId::System, TestClock::new())
        .get_token(&bot())
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(
        e.to_string().contains("IDENTITY_HEADER is not accepted"),
        "{e}"
    );
    assert_eq!(rejection(&e).status(), 401);
    assert!(!e.to_string().contains("stale-header"));

    let mut bad = azure_ml_env(&sandbox);
    bad.insert("MSI_SECRET", "nope");
    let e = credential(bad, ManagedIdentityId::System, TestClock::new())
        .get_token(&bot())
        .await
        .unwrap_err();
    assert_eq!(rejection(&e).status(), 401);

    let mut bad = service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint());
    bad.insert("IDENTITY_HEADER", "nope");
    let e = credential(bad, ManagedIdentityId::System, TestClock::new())
        .get_token(&bot())
        .await
        .unwrap_err();
    let r = rejection(&e);
    assert_eq!(r.status(), 401);
    assert_eq!(r.error(), Some("SecretHeaderNotFound"));
}

#[tokio::test]
async fn unreachable_imds_fails_fast_and_says_so() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let clock = TestClock::new();
    let c = credential(
        common::env(&[(
            "AZURE_POD_IDENTITY_AUTHORITY_HOST",
            format!("http://127.0.0.1:{port}"),
        )]),
        ManagedIdentityId::System,
        clock.clone(),
    );
    let started = std::time::Instant::now();
    let e = c.get_token(&bot()).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(e.kind(), ErrorKind::Credential);
    assert!(
        e.to_string()
            .starts_with("no managed identity endpoint is available: "),
        "{e}"
    );
    assert_eq!(
        clock.attempt_times(),
        [0],
        "an absent endpoint is not retried"
    );
}

#[tokio::test]
async fn more_than_one_resource_is_a_config_error() {
    let sandbox = Sandbox::start().await.unwrap();
    let c = credential(
        imds_env(&sandbox),
        ManagedIdentityId::System,
        TestClock::new(),
    );
    let e = c
        .get_token(&TokenRequest::with_scopes([
            "https://api.botframework.com/.default",
            "https://graph.microsoft.com/.default",
        ]))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config { ref key, .. } if key == "scope"));
    assert_eq!(sandbox.count(Route::Imds), 0);
}

// ----- retry schedules -------------------------------------------------------------------------

async fn run(
    sandbox: &Sandbox,
    env: botauth_core::config::EnvVars,
) -> (botauth_core::Result<botauth_core::AccessToken>, Vec<u64>) {
    let clock = TestClock::new();
    let sandbox_clock = clock.clone();
    sandbox.set_clock(move || botauth_core::Clock::now(&*sandbox_clock));
    let c = credential(env, ManagedIdentityId::System, clock.clone());
    let result = c.get_token(&bot()).await;
    (result, clock.attempt_times())
}

#[tokio::test]
async fn imds_backs_off_1_2_4_seconds() {
    let sandbox = Sandbox::start().await.unwrap();
    for status in [404, 408, 429, 500, 503] {
        sandbox.clear_log();
        sandbox.inject_n(Route::Imds, Fault::status(status), 3);
        let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
        assert!(result.is_ok(), "{status}: {result:?}");
        assert_eq!(times, [0, 1, 3, 7], "{status}");
        assert_eq!(sandbox.count(Route::Imds), 4);
    }
    // Four failures: the schedule is spent and the last answer is reported.
    sandbox.inject_n(Route::Imds, Fault::status(500), 4);
    let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
    assert_eq!(times, [0, 1, 3, 7]);
    let e = result.unwrap_err();
    assert!(
        matches!(
            e,
            Error::Unavailable {
                status: Some(500),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn imds_never_retries_400_401_403() {
    let sandbox = Sandbox::start().await.unwrap();
    for status in [400, 401, 403] {
        sandbox.clear_log();
        sandbox.inject(Route::Imds, Fault::status(status));
        let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
        assert_eq!(times, [0], "{status}");
        assert_eq!(
            result.unwrap_err().kind(),
            ErrorKind::Credential,
            "{status}"
        );
        assert_eq!(sandbox.count(Route::Imds), 1);
    }
}

#[tokio::test]
async fn imds_410_is_retried_every_10_seconds_for_70() {
    let sandbox = Sandbox::start().await.unwrap();
    // An update that ends after 25 s: attempts at 0, 10 and 20 s see 410, the one at 30 s succeeds.
    sandbox.inject(
        Route::Imds,
        Fault::StatusFor {
            status: 410,
            duration: Duration::from_secs(25),
        },
    );
    let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(times, [0, 10, 20, 30]);

    // One that outlasts the budget: the last attempt is at 70 s.
    sandbox.clear_log();
    sandbox.inject(
        Route::Imds,
        Fault::StatusFor {
            status: 410,
            duration: Duration::from_secs(600),
        },
    );
    let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
    assert_eq!(times, [0, 10, 20, 30, 40, 50, 60, 70]);
    assert_eq!(sandbox.count(Route::Imds), 8);
    assert!(matches!(
        result.unwrap_err(),
        Error::Unavailable {
            status: Some(410),
            ..
        }
    ));
}

#[tokio::test]
async fn other_sources_retry_three_times_a_second_apart_honouring_retry_after() {
    let sandbox = Sandbox::start().await.unwrap();
    for status in [404, 408, 429, 500, 503, 504] {
        sandbox.inject_n(Route::AppService, Fault::status(status), 3);
        let (result, times) = run(&sandbox, app_service_env(&sandbox)).await;
        assert!(result.is_ok(), "{status}: {result:?}");
        assert_eq!(times, [0, 1, 2, 3], "{status}");
    }
    sandbox.inject_n(
        Route::AzureMl,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("5".into()),
        },
        2,
    );
    let (result, times) = run(&sandbox, azure_ml_env(&sandbox)).await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(times, [0, 5, 10]);

    // Throttled beyond the schedule: the caller learns how long to wait.
    sandbox.inject_n(
        Route::CloudShell,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("2".into()),
        },
        4,
    );
    let (result, times) = run(&sandbox, cloud_shell_env(&sandbox)).await;
    assert_eq!(times, [0, 2, 4, 6]);
    assert!(matches!(
        result.unwrap_err(),
        Error::Throttled { retry_after: Some(d), .. } if d == Duration::from_secs(2)
    ));

    // A Retry-After longer than a minute ends the attempts at once.
    sandbox.inject(
        Route::AppService,
        Fault::Status {
            status: 429,
            body: None,
            retry_after: Some("3600".into()),
        },
    );
    let (result, times) = run(&sandbox, app_service_env(&sandbox)).await;
    assert_eq!(times, [0]);
    assert_eq!(
        result.unwrap_err().retry_after(),
        Some(Duration::from_secs(3600))
    );

    // 500s everywhere: three retries, then the failure.
    sandbox.inject_n(Route::ServiceFabric, Fault::status(500), 4);
    let sf = service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint());
    let (result, times) = run(&sandbox, sf).await;
    assert_eq!(times, [0, 1, 2, 3]);
    assert!(matches!(
        result.unwrap_err(),
        Error::Unavailable {
            status: Some(500),
            ..
        }
    ));
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried() {
    let sandbox = Sandbox::start().await.unwrap();
    // The server holds the first answer far longer than the client waits.
    sandbox.inject(Route::Imds, Fault::Delay(Duration::from_secs(30)));
    let clock = TestClock::new();
    let c = botauth_managed_identity::ManagedIdentityCredential::builder()
        .env(imds_env(&sandbox))
        .file_exists(|_| false)
        .settings(
            botauth_http::ClientSettings::new()
                .clock(clock.clone())
                .timeout(Duration::from_secs(2)),
        )
        .build()
        .unwrap();
    let token = c.get_token(&bot()).await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(clock.attempt_times(), [0, 1]);

    // Timeouts on every attempt end in a timeout error after the schedule.
    sandbox.inject_n(Route::Imds, Fault::Delay(Duration::from_secs(30)), 2);
    let c = botauth_managed_identity::ManagedIdentityCredential::builder()
        .env(imds_env(&sandbox))
        .file_exists(|_| false)
        .settings(botauth_http::ClientSettings::new().clock(clock.clone()))
        .retry_options({
            let mut r = RetryOptions::default();
            r.imds_backoff = vec![Duration::from_secs(1)];
            r
        })
        .settings(botauth_http::ClientSettings::new().timeout(Duration::from_secs(1)))
        .build()
        .unwrap();
    let e = c.get_token(&bot()).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

#[tokio::test]
async fn malformed_and_incomplete_answers_are_invalid_responses() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Imds, Fault::MalformedJson);
    let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
    assert_eq!(times, [0]);
    let e = result.unwrap_err();
    assert!(matches!(
        e,
        Error::InvalidResponse { status: 200, ref message, .. } if message == "the body is not a JSON token response"
    ));
    sandbox.inject(
        Route::AppService,
        Fault::Status {
            status: 200,
            body: Some(r#"{"expires_on":"1700000000","token_type":"Bearer"}"#.into()),
            retry_after: None,
        },
    );
    let (result, _) = run(&sandbox, app_service_env(&sandbox)).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::InvalidResponse { ref message, .. } if message == "the response has no access_token"
    ));
}

#[tokio::test]
async fn redirects_are_not_followed_and_bodies_are_bounded() {
    let sandbox = Sandbox::start().await.unwrap();
    sandbox.inject(Route::Imds, Fault::status(307));
    let (result, times) = run(&sandbox, imds_env(&sandbox)).await;
    assert_eq!(times, [0]);
    assert!(matches!(
        result.unwrap_err(),
        Error::InvalidResponse { status: 307, .. }
    ));
    assert_eq!(sandbox.count(Route::Imds), 1);

    let huge = format!(
        r#"{{"access_token":"{}","expires_in":"3600"}}"#,
        "a".repeat(70 * 1024)
    );
    sandbox.inject(
        Route::AppService,
        Fault::Status {
            status: 200,
            body: Some(huge.clone()),
            retry_after: None,
        },
    );
    let (result, _) = run(&sandbox, app_service_env(&sandbox)).await;
    assert!(matches!(
        result.unwrap_err(),
        Error::InvalidResponse { ref message, .. } if message == "the response body is larger than 65536 bytes"
    ));
    // The pinned Service Fabric client has the same bound.
    sandbox.inject(
        Route::ServiceFabric,
        Fault::Status {
            status: 200,
            body: Some(huge),
            retry_after: None,
        },
    );
    let sf = service_fabric_env(&sandbox, sandbox.service_fabric_thumbprint());
    let (result, _) = run(&sandbox, sf).await;
    assert_eq!(result.unwrap_err().kind(), ErrorKind::InvalidResponse);
}
