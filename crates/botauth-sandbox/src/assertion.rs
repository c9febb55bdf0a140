//! Client assertions (docs/protocol.md §3): certificate-signed JWTs and federated (managed identity) tokens.

use std::cmp::Ordering;

use openssl::asn1::Asn1Time;
use openssl::x509::X509;
use serde_json::Value;

use crate::app::AppRegistration;
use crate::clock;
use crate::error::{EntraError, code};
use crate::jwt::{self, Jws};
use crate::state::Shared;

/// The only `client_assertion_type` Entra accepts.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entra tolerates five minutes of clock skew on assertion times.
const CLOCK_SKEW_SECS: i64 = 300;

/// Who presents the assertion: the registered app, the `client_id` as sent, and where it was sent.
#[derive(Debug)]
pub(crate) struct Presenter<'a> {
    pub(crate) app: &'a AppRegistration,
    pub(crate) client_id: &'a str,
    /// The `aud` values a certificate assertion may carry: the token endpoint the client posted
    /// to, as it addressed it (scheme and host of the request), in its v1 and v2 forms.
    pub(crate) audiences: &'a [String],
}

/// Verifies `assertion` for `presenter`. An `x5t` / `x5t#S256` header marks a certificate assertion;
/// without one it is a federated assertion, which the sandbox accepts only from its own MI signer.
pub(crate) fn verify(
    shared: &Shared,
    presenter: &Presenter<'_>,
    assertion: &str,
) -> Result<(), EntraError> {
    let jws = Jws::parse(assertion).ok_or_else(|| {
        invalid_jwt("the client_assertion is not a compact JWS with JSON header and claims")
    })?;
    let alg = jws
        .alg()
        .ok_or_else(|| invalid_jwt("the client_assertion's alg must be RS256 or PS256"))?;
    if jws.header.contains_key("x5t") || jws.header.contains_key("x5t#S256") {
        verify_certificate_assertion(shared, presenter, &jws, alg)
    } else {
        verify_federated_assertion(shared, presenter, &jws, alg)
    }
}

fn verify_certificate_assertion(
    shared: &Shared,
    presenter: &Presenter<'_>,
    jws: &Jws,
    alg: jwt::Alg,
) -> Result<(), EntraError> {
    // A thumbprint that is present but not a string matches no certificate.
    let thumbprint = |name: &str| jws.header.get(name).map(|v| v.as_str().unwrap_or_default());
    let (sha1, sha256) = (thumbprint("x5t"), thumbprint("x5t#S256"));
    let shown = sha256.or(sha1).unwrap_or_default();
    let der = presenter
        .app
        .certificates
        .iter()
        .find(|der| {
            sha1.is_none_or(|t| t == jwt::x5t(der)) && sha256.is_none_or(|t| t == jwt::x5t_s256(der))
        })
        .ok_or_else(|| {
            EntraError::invalid_client(
                code::CERTIFICATE_NOT_FOUND,
                format!(
                    "Client assertion failed signature validation. Key was not found. \
                     Thumbprint of key used by client: '{shown}'. Please visit the Azure Portal, Graph \
                     Explorer or directly use MS Graph to see configured keys for app Id '{}'.",
                    presenter.client_id
                ),
            )
        })?;
    let not_found = || {
        EntraError::invalid_client(
            code::CERTIFICATE_NOT_FOUND,
            "Client assertion failed signature validation. The registered certificate is unusable.",
        )
    };
    let cert = X509::from_der(der).map_err(|_| not_found())?;
    let public_key = cert.public_key().map_err(|_| not_found())?;
    let expired = Asn1Time::days_from_now(0)
        .and_then(|now| cert.not_after().compare(&now))
        .is_ok_and(|o| o == Ordering::Less);
    if expired {
        return Err(EntraError::invalid_client(
            code::CERTIFICATE_EXPIRED,
            format!("Client certificate with thumbprint '{shown}' has expired."),
        ));
    }
    if !jws.verify(alg, &public_key) {
        return Err(EntraError::invalid_client(
            code::INVALID_SIGNATURE,
            "Client assertion failed signature validation.",
        ));
    }
    let expected_aud = presenter
        .audiences
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    if !jws
        .claim_str("aud")
        .is_some_and(|aud| presenter.audiences.iter().any(|a| a == aud))
    {
        return Err(EntraError::invalid_client(
            code::WRONG_AUDIENCE,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{expected_aud}', \
                 got '{}'.",
                jws.claims
                    .get("aud")
                    .map(Value::to_string)
                    .unwrap_or_default()
            ),
        ));
    }
    let client_id = Some(presenter.client_id);
    if jws.claim_str("iss") != client_id || jws.claim_str("sub") != client_id {
        return Err(EntraError::invalid_client(
            code::WRONG_ISSUER,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let now = clock::unix_now();
    let exp = check_time_window(jws, now)?;
    let jti = jws
        .claim_str("jti")
        .filter(|j| !j.is_empty())
        .ok_or_else(|| invalid_jwt("sandbox: the client_assertion must carry a jti claim"))?;

    let key = (presenter.client_id.to_ascii_lowercase(), jti.to_owned());
    let mut inner = shared.lock();
    inner
        .seen_jti
        .retain(|_, exp| exp.saturating_add(CLOCK_SKEW_SECS) >= now);
    if inner.seen_jti.contains_key(&key) {
        return Err(EntraError::invalid_client(
            code::JTI_REPLAY,
            "sandbox: jti replay. This client_assertion was already used; build a fresh assertion \
             (new jti) for every token request.",
        ));
    }
    inner.seen_jti.insert(key, exp);
    Ok(())
}

fn verify_federated_assertion(
    shared: &Shared,
    presenter: &Presenter<'_>,
    jws: &Jws,
    alg: jwt::Alg,
) -> Result<(), EntraError> {
    let iss = jws.claim_str("iss").unwrap_or_default();
    let issuer_mismatch = || {
        EntraError::invalid_client(
            code::FEDERATED_ISSUER,
            format!(
                "No matching federated identity record found for presented assertion issuer '{iss}'. \
                 Please check your federated identity credential Subject, Audience and Issuer against \
                 the presented assertion."
            ),
        )
    };
    if !jws.verify(alg, shared.mi_key.key()) {
        return Err(issuer_mismatch());
    }
    check_time_window(jws, clock::unix_now())?;
    let federated = &presenter.app.federated;
    if federated.is_empty() {
        return Err(EntraError::invalid_client(
            code::NO_FEDERATED_MATCH,
            "No matching federated identity record found for presented assertion.",
        ));
    }
    let sub = jws.claim_str("sub").unwrap_or_default();
    let audiences: Vec<&str> = match jws.claims.get("aud") {
        Some(Value::String(aud)) => vec![aud.as_str()],
        Some(Value::Array(auds)) => auds.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let by_issuer: Vec<_> = federated.iter().filter(|f| f.issuer == iss).collect();
    if by_issuer.is_empty() {
        return Err(issuer_mismatch());
    }
    let by_subject: Vec<_> = by_issuer.into_iter().filter(|f| f.subject == sub).collect();
    if by_subject.is_empty() {
        return Err(EntraError::invalid_client(
            code::FEDERATED_SUBJECT,
            format!(
                "No matching federated identity record found for presented assertion subject '{sub}'."
            ),
        ));
    }
    if !by_subject
        .iter()
        .any(|f| audiences.contains(&f.audience.as_str()))
    {
        return Err(EntraError::invalid_client(
            code::FEDERATED_AUDIENCE,
            format!(
                "No matching federated identity record found for presented assertion audience '{}'.",
                audiences.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Checks `nbf - skew <= now <= exp + skew` and returns `exp`.
fn check_time_window(jws: &Jws, now: i64) -> Result<i64, EntraError> {
    let exp = jws.claim_i64("exp").ok_or_else(|| {
        invalid_jwt("the client_assertion's exp must be an integer (seconds since the epoch)")
    })?;
    let nbf = match jws.claims.get("nbf") {
        None => None,
        Some(value) => Some(value.as_i64().ok_or_else(|| {
            invalid_jwt("the client_assertion's nbf must be an integer (seconds since the epoch)")
        })?),
    };
    let too_early = nbf.is_some_and(|nbf| now < nbf.saturating_sub(CLOCK_SKEW_SECS));
    let too_late = now > exp.saturating_add(CLOCK_SKEW_SECS);
    if too_early || too_late {
        return Err(EntraError::invalid_client(
            code::OUTSIDE_TIME_WINDOW,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion \
                 valid from {}, expiry time of assertion {}.",
                clock::entra_timestamp(now),
                nbf.map_or_else(|| "-".to_owned(), clock::entra_timestamp),
                clock::entra_timestamp(exp),
            ),
        ));
    }
    Ok(exp)
}

fn invalid_jwt(detail: &str) -> EntraError {
    EntraError::invalid_client(code::INVALID_JWT, format!("Invalid JWT token. {detail}"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::{Value, json};

    use super::JWT_BEARER;
    use crate::clock::unix_now;
    use crate::jwt::{Alg, SigningKey, sign_jws, x5t, x5t_s256};
    use crate::testkit::{BOT_SCOPE, Reply, post_form};
    use crate::{AppRegistration, FederatedCredential, Sandbox};

    const CLIENT_ID: &str = "c0ffee00-1111-2222-3333-444444444444";
    const TENANT: &str = "cert-tenant";
    const MI_SUBJECT: &str = "mi-object-id";
    const EXCHANGE: &str = "api://AzureADTokenExchange";

    type Mutation = Box<dyn FnOnce(&mut Value)>;

    struct Fixture {
        sandbox: Sandbox,
        cert: SigningKey,
    }

    impl Fixture {
        async fn new() -> Self {
            let cert = SigningKey::generate("test client certificate").unwrap();
            let sandbox = Sandbox::start().await.unwrap();
            let app = AppRegistration::new(CLIENT_ID, TENANT)
                .with_certificate_der(cert.cert_der())
                .with_federated(FederatedCredential::new(
                    sandbox.managed_identity_issuer(),
                    MI_SUBJECT,
                    EXCHANGE,
                ));
            sandbox.register_app(app);
            Self { sandbox, cert }
        }

        /// Claims as docs/protocol.md §3 prescribes.
        fn claims(&self) -> Value {
            let now = unix_now();
            json!({
                "aud": self.sandbox.token_endpoint(TENANT),
                "iss": CLIENT_ID,
                "sub": CLIENT_ID,
                "jti": uuid::Uuid::new_v4().to_string(),
                "nbf": now,
                "iat": now,
                "exp": now + 600,
            })
        }

        fn assertion(&self, claims: &Value) -> String {
            let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(self.cert.cert_der())});
            sign_jws(&header, claims, Alg::Rs256, self.cert.key()).unwrap()
        }

        fn assertion_with(&self, mutate: impl FnOnce(&mut Value)) -> String {
            let mut claims = self.claims();
            mutate(&mut claims);
            self.assertion(&claims)
        }

        async fn post(&self, assertion: &str) -> Reply {
            let form = [
                ("grant_type", "client_credentials"),
                ("client_id", CLIENT_ID),
                ("scope", BOT_SCOPE),
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion),
            ];
            post_form(&self.sandbox.token_endpoint(TENANT), &form, &[]).await
        }

        async fn assert_code(&self, assertion: &str, code: u64) {
            self.post(assertion)
                .await
                .assert_entra_error(401, "invalid_client", code);
        }

        async fn assert_ok(&self, assertion: &str) -> Value {
            let reply = self.post(assertion).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let token = reply.json()["access_token"].as_str().unwrap().to_owned();
            self.sandbox.verify_access_token(&token).unwrap()
        }
    }

    #[tokio::test]
    async fn certificate_assertion_rs256_x5t_succeeds() {
        let f = Fixture::new().await;
        let claims = f.assert_ok(&f.assertion(&f.claims())).await;
        assert_eq!(claims["appid"], CLIENT_ID);
        assert_eq!(claims["tid"], TENANT);
    }

    #[tokio::test]
    async fn certificate_assertion_ps256_x5t_s256_succeeds() {
        let f = Fixture::new().await;
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(f.cert.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Ps256, f.cert.key()).unwrap();
        f.assert_ok(&assertion).await;
        // PS256 claimed but signed with PKCS#1 v1.5: the signature does not verify.
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
        f.assert_code(&assertion, 7_000_274).await;
    }

    #[tokio::test]
    async fn unknown_thumbprint_is_700027() {
        let f = Fixture::new().await;
        let stranger = SigningKey::generate("unregistered").unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(stranger.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, stranger.key()).unwrap();
        f.assert_code(&assertion, 700_027).await;
        // x5t of the hex text instead of the raw digest (a classic bug) is not found either.
        let hex: String = openssl::sha::sha1(f.cert.cert_der())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let header =
            json!({"alg": "RS256", "typ": "JWT", "x5t": crate::jwt::b64url(hex.as_bytes())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
        f.assert_code(&assertion, 700_027).await;
    }

    #[tokio::test]
    async fn unknown_x5t_s256_is_700027_and_both_thumbprints_must_match() {
        let f = Fixture::new().await;
        let stranger = SigningKey::generate("unregistered").unwrap();
        let header =
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": x5t_s256(stranger.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Ps256, f.cert.key()).unwrap();
        f.assert_code(&assertion, 700_027).await;
        // A right x5t with a wrong x5t#S256 names no registered certificate either.
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der()),
            "x5t#S256": x5t_s256(stranger.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
        f.assert_code(&assertion, 700_027).await;
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der()),
            "x5t#S256": x5t_s256(f.cert.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, f.cert.key()).unwrap();
        f.assert_ok(&assertion).await;
    }

    #[tokio::test]
    async fn wrong_key_is_7000274() {
        let f = Fixture::new().await;
        let stranger = SigningKey::generate("unregistered").unwrap();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(f.cert.cert_der())});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, stranger.key()).unwrap();
        f.assert_code(&assertion, 7_000_274).await;
    }

    #[tokio::test]
    async fn claim_failures_have_their_codes() {
        let f = Fixture::new().await;
        let now = unix_now();
        let cases: Vec<(Mutation, u64)> = vec![
            (
                Box::new(|c| {
                    c["aud"] =
                        json!("https://login.microsoftonline.com/cert-tenant/oauth2/v2.0/token")
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
        // Within the five minutes of skew is fine.
        f.assert_ok(&f.assertion_with(move |c| c["exp"] = json!(now - 200)))
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
    async fn expired_registered_certificate_is_1000502() {
        let f = Fixture::new().await;
        let key =
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
        let mut builder = openssl::x509::X509::builder().unwrap();
        let mut name = openssl::x509::X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "expired").unwrap();
        let name = name.build();
        builder.set_subject_name(&name).unwrap();
        builder.set_issuer_name(&name).unwrap();
        builder.set_pubkey(&key).unwrap();
        let past = openssl::asn1::Asn1Time::from_unix(unix_now() - 86_400 * 10).unwrap();
        let yesterday = openssl::asn1::Asn1Time::from_unix(unix_now() - 86_400).unwrap();
        builder.set_not_before(&past).unwrap();
        builder.set_not_after(&yesterday).unwrap();
        builder
            .sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let der = builder.build().to_der().unwrap();
        f.sandbox.register_app(
            AppRegistration::new(CLIENT_ID, TENANT).with_certificate_der(der.clone()),
        );
        let header = json!({"alg": "RS256", "x5t": x5t(&der)});
        let assertion = sign_jws(&header, &f.claims(), Alg::Rs256, &key).unwrap();
        f.assert_code(&assertion, 1_000_502).await;
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
        let wrong_audience = f.sandbox.mint_managed_identity_token(
            MI_SUBJECT,
            "api://AzureADTokenExchangeUSGov",
            day,
        );
        f.assert_code(&wrong_audience, 700_212).await;
        let just_expired =
            f.sandbox
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
}
