//! The claims every assertion is judged by (audience, times, `jti` replay, lifetime), malformed
//! assertions, and federated managed identity assertions.

use std::time::Duration;

use serde_json::{Value, json};

use super::fixture::*;
use crate::clock::unix_now;
use crate::jwt::{SigningKey, x5t};
use crate::testkit::{BOT_SCOPE, post_form};
use crate::{AppRegistration, FederatedCredential};

#[tokio::test]
async fn claim_failures_have_their_codes() {
    let f = Fixture::new().await;
    let now = unix_now();
    let cases: Vec<(Mutation, u64)> = vec![
        (
            Box::new(|c| {
                c["aud"] = json!("https://login.microsoftonline.com/cert-tenant/oauth2/v2.0/token")
            }),
            700_023,
        ),
        (Box::new(|c| c["aud"] = json!([c["aud"].clone()])), 700_023),
        (Box::new(|c| c["iss"] = json!("someone-else")), 700_021),
        (Box::new(|c| c["sub"] = json!("someone-else")), 700_021),
        (
            Box::new(move |c| {
                c["nbf"] = json!(now - 2000);
                c["exp"] = json!(now - 1000);
            }),
            700_024,
        ),
        (Box::new(move |c| c["nbf"] = json!(now + 1000)), 700_024),
        (Box::new(|c| c["exp"] = json!("soon")), 50027),
        (
            Box::new(|c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
            50027,
        ),
    ];
    for (mutate, code) in cases {
        f.assert_code(&f.assertion_with(mutate), code).await;
    }
    // Within the five minutes of skew is fine (for an assertion that was valid once).
    f.assert_ok(&f.assertion_with(move |c| {
        c["nbf"] = json!(now - 800);
        c["iat"] = json!(now - 800);
        c["exp"] = json!(now - 200);
    }))
    .await;
}

#[tokio::test]
async fn replayed_jti_is_700025() {
    let f = Fixture::new().await;
    let assertion = f.assertion(&f.claims());
    f.assert_ok(&assertion).await;
    f.assert_code(&assertion, 700_025).await;
    let reply = f.post(&assertion).await;
    assert!(
        reply.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("sandbox: jti replay")
    );
    let log = format!("{:?}", f.sandbox.requests());
    assert!(
        !log.contains(&assertion),
        "the log must not hold assertions"
    );
}

#[tokio::test]
async fn malformed_assertions_are_50027() {
    let f = Fixture::new().await;
    let hs256 = {
        let header = crate::jwt::b64url(br#"{"alg":"HS256","x5t":"abc"}"#);
        let claims = crate::jwt::b64url(f.claims().to_string().as_bytes());
        format!("{header}.{claims}.c2ln")
    };
    for bad in ["", "not-a-jwt", "a.b.c", "e30.e30.e30.e30", hs256.as_str()] {
        f.assert_code(bad, 50027).await;
    }
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", CLIENT_ID),
        ("scope", BOT_SCOPE),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:saml2-bearer",
        ),
        ("client_assertion", "x"),
    ];
    post_form(&f.sandbox.token_endpoint(TENANT), &form, &[])
        .await
        .assert_entra_error(400, "invalid_request", 90100);
}

#[tokio::test]
async fn fractional_numeric_dates_are_accepted() {
    let f = Fixture::new().await;
    let now = unix_now() as f64;
    // What MSAL Python sends: time.time() values.
    let fractional = move |c: &mut Value| {
        c["iat"] = json!(now + 0.275);
        c["nbf"] = json!(now - 0.5);
        c["exp"] = json!(now + 600.275);
    };
    f.assert_ok(&f.assertion_with(fractional)).await;
    f.assert_ok(&f.assertion_with(|c| c["exp"] = json!(1e10)))
        .await;
    let mut claims = f.federated_claims();
    fractional(&mut claims);
    f.assert_ok(&f.federated(&claims)).await;
}

#[tokio::test]
async fn malformed_numeric_dates_are_50027() {
    let f = Fixture::new().await;
    let bad = [
        json!("soon"),
        json!("1796203800"),
        json!(true),
        Value::Null,
        json!([1_796_203_800]),
        json!({"seconds": 1_796_203_800}),
        json!(-1),
        json!(-0.5),
        json!(1e300),
        json!(253_402_300_800_i64),
        json!(u64::MAX),
    ];
    for claim in ["exp", "nbf", "iat"] {
        for value in &bad {
            let case = format!("{claim}: {value}");
            let assertion = f.assertion_with(|c| c[claim] = value.clone());
            f.assert_case(&case, &assertion, 50027).await;
            let mut claims = f.federated_claims();
            claims[claim] = value.clone();
            f.assert_case(&format!("federated {case}"), &f.federated(&claims), 50027)
                .await;
        }
    }
    // NaN, infinities and numbers past f64 are not JSON: the claims do not even parse.
    let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der())});
    for raw in ["NaN", "Infinity", "-Infinity", "1e400"] {
        let mut claims = f.claims();
        claims.as_object_mut().unwrap().remove("exp");
        let text = claims
            .to_string()
            .replacen('{', &format!(r#"{{"exp":{raw},"#), 1);
        f.assert_case(raw, &sign_raw(&header, &text, f.cert.key()), 50027)
            .await;
    }
    // Missing exp stays invalid.
    let assertion = f.assertion_with(|c| {
        c.as_object_mut().unwrap().remove("exp");
    });
    f.assert_case("no exp", &assertion, 50027).await;
    let mut claims = f.federated_claims();
    claims.as_object_mut().unwrap().remove("exp");
    f.assert_case("federated, no exp", &f.federated(&claims), 50027)
        .await;
}

#[tokio::test]
async fn audience_must_be_the_token_endpoint_as_a_string() {
    let f = Fixture::new().await;
    let v2 = f.sandbox.token_endpoint(TENANT);
    let v1 = v2.replace("/oauth2/v2.0/token", "/oauth2/token");
    f.assert_ok_case("v2", &f.assertion_with(|c| c["aud"] = json!(v2)))
        .await;
    f.assert_ok_case("v1", &f.assertion_with(|c| c["aud"] = json!(v1)))
        .await;
    let refused = [
        json!([v2]),
        json!([v2, v1]),
        json!(format!("{v2}/")),
        json!(v2.to_uppercase()),
        json!(v2.replace(TENANT, "other-tenant")),
        json!(42),
        Value::Null,
    ];
    for aud in refused {
        let assertion = f.assertion_with(|c| c["aud"] = aud.clone());
        f.assert_case(&aud.to_string(), &assertion, 700_023).await;
    }
    let assertion = f.assertion_with(|c| {
        c.as_object_mut().unwrap().remove("aud");
    });
    f.assert_case("no aud", &assertion, 700_023).await;
}

#[tokio::test]
async fn lifetime_limits() {
    let f = Fixture::new().await;
    let now = unix_now();
    // Entra places no limit on a certificate assertion's exp.
    f.assert_ok(&f.assertion_with(move |c| c["exp"] = json!(now + 86_400 * 365)))
        .await;
    // Inside the skew either way, but no moment is both after nbf and before exp.
    let inverted = f.assertion_with(move |c| {
        c["nbf"] = json!(now + 100);
        c["exp"] = json!(now - 100);
    });
    f.assert_case("nbf after exp", &inverted, 700_024).await;
    let expires_before_issued = f.assertion_with(move |c| {
        c["iat"] = json!(now + 100);
        c["exp"] = json!(now - 100);
        c.as_object_mut().unwrap().remove("nbf");
    });
    f.assert_case("iat after exp", &expires_before_issued, 700_024)
        .await;
    f.assert_ok_case(
        "nbf = exp",
        &f.assertion_with(move |c| {
            c["nbf"] = json!(now);
            c["iat"] = json!(now);
            c["exp"] = json!(now);
        }),
    )
    .await;

    // A federated assertion may live up to 25 hours (Entra's "1.01:00:00").
    let mut claims = f.federated_claims();
    claims["iat"] = json!(now);
    claims["exp"] = json!(now + 25 * 3600);
    f.assert_ok(&f.federated(&claims)).await;
    claims["exp"] = json!(now + 25 * 3600 + 1);
    f.assert_case("federated, 25 h + 1 s", &f.federated(&claims), 70023)
        .await;
    claims["iat"] = json!(now - 86_400);
    claims["exp"] = json!(now + 3600 + 1);
    f.assert_case("federated, issued a day ago", &f.federated(&claims), 70023)
        .await;
}

#[tokio::test]
async fn federated_managed_identity_assertion() {
    let f = Fixture::new().await;
    let day = Duration::from_secs(86_400);
    let mi = f
        .sandbox
        .mint_managed_identity_token(MI_SUBJECT, EXCHANGE, day);
    // The MI token is cached and reused by clients: no replay check for federated assertions.
    f.assert_ok(&mi).await;
    f.assert_ok(&mi).await;

    let wrong_subject = f
        .sandbox
        .mint_managed_identity_token("other", EXCHANGE, day);
    f.assert_code(&wrong_subject, 700_213).await;
    let wrong_audience =
        f.sandbox
            .mint_managed_identity_token(MI_SUBJECT, "api://AzureADTokenExchangeUSGov", day);
    f.assert_code(&wrong_audience, 700_212).await;
    let just_expired = f
        .sandbox
        .mint_managed_identity_token(MI_SUBJECT, EXCHANGE, Duration::ZERO);
    f.assert_ok(&just_expired).await; // within the clock skew
    let forged = {
        let stranger = SigningKey::generate("forger").unwrap();
        let claims = json!({"iss": f.sandbox.managed_identity_issuer(), "sub": MI_SUBJECT, "aud": EXCHANGE, "exp": unix_now() + 600});
        stranger.sign(&claims)
    };
    f.assert_code(&forged, 700_211).await;

    f.sandbox
        .register_app(AppRegistration::new(CLIENT_ID, TENANT).with_federated(
            FederatedCredential::new(
                "https://token.actions.githubusercontent.com",
                MI_SUBJECT,
                EXCHANGE,
            ),
        ));
    f.assert_code(&mi, 700_211).await;
    f.sandbox
        .register_app(AppRegistration::new(CLIENT_ID, TENANT));
    f.assert_code(&mi, 70021).await;
}
