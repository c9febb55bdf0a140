//! Client assertions (PROTOCOL §3): certificate-signed JWTs and federated (managed identity) tokens.

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

/// Who presents the assertion: the registered app, the `client_id` as sent, and the path's tenant.
#[derive(Debug)]
pub(crate) struct Presenter<'a> {
    pub(crate) app: &'a AppRegistration,
    pub(crate) client_id: &'a str,
    pub(crate) tenant: &'a str,
}

/// Verifies `assertion` for `presenter`. An `x5t` / `x5t#S256` header marks a certificate assertion;
/// without one it is a federated assertion, which the sandbox accepts only from its own MI signer.
pub(crate) fn verify(
    shared: &Shared,
    presenter: &Presenter<'_>,
    assertion: &str,
) -> Result<(), EntraError> {
    let jws = Jws::parse(assertion)
        .ok_or_else(|| invalid_jwt("the client_assertion is not a compact JWS with JSON header and claims"))?;
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
    let expected_aud = shared.token_endpoint(presenter.tenant);
    if jws.claim_str("aud") != Some(expected_aud.as_str()) {
        return Err(EntraError::invalid_client(
            code::WRONG_AUDIENCE,
            format!(
                "Client assertion audience claim does not match Realm issuer. Expected '{expected_aud}', \
                 got '{}'.",
                jws.claims.get("aud").map(Value::to_string).unwrap_or_default()
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
    inner.seen_jti.retain(|_, exp| exp.saturating_add(CLOCK_SKEW_SECS) >= now);
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
    if !by_subject.iter().any(|f| audiences.contains(&f.audience.as_str())) {
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
    let exp = jws
        .claim_i64("exp")
        .ok_or_else(|| invalid_jwt("the client_assertion's exp must be an integer (seconds since the epoch)"))?;
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
