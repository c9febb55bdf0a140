//! Client assertions (docs/protocol.md §3): certificate-signed JWTs and federated (managed
//! identity) tokens, judged as Entra ID judges them, so that whatever Microsoft's own clients
//! (MSAL Python, msal-node) send passes here exactly when it would pass there.
//!
//! A certificate assertion names its certificate in the header: by thumbprint (`x5t`,
//! `x5t#S256`), by chain (`x5c`), or both, and then every name must fit the same certificate.
//! Only the app registration decides which certificate that may be: one registered on the app
//! (DER equality), or one whose subject the app trusts and which chains to that subject's CA
//! (Subject Name + Issuer). The signature is checked with that certificate's key. The threat is
//! an `x5c` taken at its word: it would let anyone sign for any app with a certificate of their
//! own making.

use std::cmp::Ordering;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::error::ErrorStack;
use openssl::stack::Stack;
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509Ref, X509StoreContext};
use serde_json::Value;

use crate::app::AppRegistration;
use crate::clock;
use crate::error::{EntraError, code};
use crate::jwt::{self, Jws};
use crate::state::Shared;

/// The only `client_assertion_type` Entra accepts.
pub(crate) const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Entra tolerates five minutes of clock skew on assertion times (Microsoft.IdentityModel's
/// default `ClockSkew` too).
const CLOCK_SKEW_SECS: i64 = 300;

/// The longest a federated assertion may live, `exp - iat`. Entra answers AADSTS70023 "External
/// OIDC Provider token must have a lifetime of less than or equal to 1.01:00:00" (a .NET
/// `TimeSpan`: one day and one hour) to longer ones, e.g. a year-long Kubernetes service account
/// token. Certificate assertions have no such limit: Microsoft's certificate credentials
/// reference says Entra "doesn't place restrictions on the exp time currently" and recommends
/// 5–10 minutes after `nbf`; botauth sends 10 (docs/protocol.md §3).
const FEDERATED_MAX_LIFETIME_SECS: i64 = 25 * 3600;

/// The header parameters that make an assertion a certificate assertion.
const CERTIFICATE_HEADERS: [&str; 3] = ["x5t", "x5t#S256", "x5c"];

/// Who presents the assertion: the registered app, the `client_id` as sent, and where it was sent.
#[derive(Debug)]
pub(crate) struct Presenter<'a> {
    pub(crate) app: &'a AppRegistration,
    pub(crate) client_id: &'a str,
    /// The `aud` values a certificate assertion may carry: the token endpoint the client posted
    /// to, as it addressed it (scheme and host of the request), in its v1 and v2 forms.
    pub(crate) audiences: &'a [String],
}

/// Verifies `assertion` for `presenter`. An `x5t`, `x5t#S256` or `x5c` header marks a
/// certificate assertion; without any it is a federated assertion, which the sandbox accepts only
/// from its own MI signer.
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
    if CERTIFICATE_HEADERS
        .iter()
        .any(|name| jws.header.contains_key(*name))
    {
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
    let now = clock::unix_now();
    let named = NamedCertificate::read(jws)?;
    let cert = identify_certificate(presenter, &named, now)?;
    check_not_expired(&cert, &named.shown(), now)?;
    let public_key = cert.public_key().map_err(|_| unusable_certificate())?;
    if !jws.verify(alg, &public_key) {
        return Err(EntraError::invalid_client(
            code::INVALID_SIGNATURE,
            "Client assertion failed signature validation.",
        ));
    }
    check_audience(presenter, jws)?;
    let client_id = Some(presenter.client_id);
    if jws.claim_str("iss") != client_id || jws.claim_str("sub") != client_id {
        return Err(EntraError::invalid_client(
            code::WRONG_ISSUER,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let times = check_time_window(jws, now)?;
    check_jti_unused(shared, presenter, jws, times.exp, now)
}

/// A header thumbprint (`x5t` is SHA-1, `x5t#S256` SHA-256 of the certificate DER).
#[derive(Debug)]
enum Thumbprint {
    Absent,
    /// The digest bytes: padded or not, base64url decodes to the same bytes (docs/protocol.md §3).
    Digest(Vec<u8>),
    /// Present but not a base64url string: names no certificate.
    Unreadable(String),
}

impl Thumbprint {
    fn read(jws: &Jws, name: &str) -> Self {
        match jws.header.get(name) {
            None => Self::Absent,
            Some(Value::String(text)) => jwt::decode_thumbprint(text)
                .map_or_else(|| Self::Unreadable(text.clone()), Self::Digest),
            Some(other) => Self::Unreadable(other.to_string()),
        }
    }

    /// Whether this thumbprint allows a certificate with this `digest`; an absent one does not object.
    fn admits(&self, digest: &[u8]) -> bool {
        match self {
            Self::Absent => true,
            Self::Digest(bytes) => bytes == digest,
            Self::Unreadable(_) => false,
        }
    }

    /// As Entra's error text shows a thumbprint: the digest in upper-case hex.
    fn shown(&self) -> Option<String> {
        match self {
            Self::Absent => None,
            Self::Digest(bytes) => Some(upper_hex(bytes)),
            Self::Unreadable(text) => Some(text.clone()),
        }
    }
}

/// How an assertion's header names its certificate.
#[derive(Debug)]
struct NamedCertificate {
    x5t: Thumbprint,
    x5t_s256: Thumbprint,
    /// The `x5c` chain, leaf first, and the leaf's DER.
    chain: Option<(Vec<X509>, Vec<u8>)>,
}

impl NamedCertificate {
    /// Reads the header; a malformed `x5c` makes the whole JWT invalid (50027).
    fn read(jws: &Jws) -> Result<Self, EntraError> {
        Ok(Self {
            x5t: Thumbprint::read(jws, "x5t"),
            x5t_s256: Thumbprint::read(jws, "x5t#S256"),
            chain: jws.header.get("x5c").map(read_x5c).transpose()?,
        })
    }

    /// Whether the thumbprints present allow the certificate `der`.
    fn thumbprints_admit(&self, der: &[u8]) -> bool {
        self.x5t.admits(&openssl::sha::sha1(der))
            && self.x5t_s256.admits(&openssl::sha::sha256(der))
    }

    /// The name shown in errors: a thumbprint as sent, else the `x5c` leaf's SHA-1 thumbprint.
    fn shown(&self) -> String {
        self.x5t_s256
            .shown()
            .or_else(|| self.x5t.shown())
            .or_else(|| {
                self.chain
                    .as_ref()
                    .map(|(_, leaf)| upper_hex(&openssl::sha::sha1(leaf)))
            })
            .unwrap_or_default()
    }
}

/// The `x5c` chain and its leaf's DER; 50027 unless every entry is a DER certificate (trailing
/// bytes included: a certificate is exactly its DER).
fn read_x5c(value: &Value) -> Result<(Vec<X509>, Vec<u8>), EntraError> {
    let malformed =
        || invalid_jwt("the x5c header must be an array of base64 DER X.509 certificates");
    let ders = jwt::decode_x5c(value).ok_or_else(malformed)?;
    let chain = ders
        .iter()
        .map(|der| {
            X509::from_der(der)
                .ok()
                .filter(|cert| cert.to_der().is_ok_and(|again| again == *der))
                .ok_or_else(malformed)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = ders.into_iter().next().ok_or_else(malformed)?;
    Ok((chain, leaf))
}

/// The certificate the assertion must be signed with, as the app registration vouches for it.
///
/// With `x5c`, its leaf is the certificate: the thumbprints present must name it, and it must be
/// registered or trusted by subject name + issuer. Without, the thumbprints pick a registered
/// certificate. Anything else is AADSTS700027, "key was not found".
fn identify_certificate(
    presenter: &Presenter<'_>,
    named: &NamedCertificate,
    now: i64,
) -> Result<X509, EntraError> {
    let registered = &presenter.app.certificates;
    let found = match &named.chain {
        Some((chain, leaf_der)) => chain
            .first()
            .filter(|_| {
                named.thumbprints_admit(leaf_der)
                    && (registered.contains(leaf_der)
                        || trusted_by_subject(presenter.app, chain, now))
            })
            .cloned(),
        None => registered
            .iter()
            .find(|der| named.thumbprints_admit(der))
            .map(|der| X509::from_der(der).map_err(|_| unusable_certificate()))
            .transpose()?,
    };
    found.ok_or_else(|| {
        EntraError::invalid_client(
            code::CERTIFICATE_NOT_FOUND,
            format!(
                "Client assertion failed signature validation. Key was not found. \
                 Thumbprint of key used by client: '{}'. Please visit the Azure Portal, Graph \
                 Explorer or directly use MS Graph to see configured keys for app Id '{}'.",
                named.shown(),
                presenter.client_id
            ),
        )
    })
}

/// Subject Name + Issuer trust (docs/protocol.md §3): the `x5c` leaf's subject is one the app
/// trusts, and `x5c` leads from the leaf to that subject's CA. This is how a renewed certificate
/// works without a new registration.
fn trusted_by_subject(app: &AppRegistration, chain: &[X509], now: i64) -> bool {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return false;
    };
    app.trusted_subjects
        .iter()
        .filter(|trusted| trusted.names(leaf.subject_name()))
        .any(|trusted| chains_to(leaf, intermediates, &trusted.issuer_ca_der, now))
}

/// Whether OpenSSL builds a path from `leaf` through any of `intermediates` to the CA
/// `anchor_der`, with every signature and CA constraint valid, every certificate on it already
/// valid at `now` and every issuer on it unexpired. The leaf's own expiry is left to
/// [`check_not_expired`], so that an expired leaf answers 1000502 however it was trusted.
fn chains_to(leaf: &X509Ref, intermediates: &[X509], anchor_der: &[u8], now: i64) -> bool {
    let path = || -> Result<Option<Vec<X509>>, ErrorStack> {
        let mut store = X509StoreBuilder::new()?;
        store.add_cert(X509::from_der(anchor_der)?)?;
        // The registered CA is the trust anchor even when it is itself an intermediate. Times are
        // judged below, against the sandbox's clock and with the leaf's expiry kept apart.
        store.set_flags(X509VerifyFlags::PARTIAL_CHAIN | X509VerifyFlags::NO_CHECK_TIME)?;
        let store = store.build();
        let mut untrusted = Stack::new()?;
        for cert in intermediates {
            untrusted.push(cert.clone())?;
        }
        X509StoreContext::new()?.init(&store, leaf, &untrusted, |context| {
            if !context.verify_cert()? {
                return Ok(None);
            }
            Ok(context
                .chain()
                .map(|path| path.iter().map(X509Ref::to_owned).collect()))
        })
    };
    let Ok(Some(path)) = path() else {
        return false;
    };
    path.iter().enumerate().all(|(depth, cert)| {
        let started = compare_with(cert.not_before(), now).is_some_and(|o| o != Ordering::Greater);
        let unexpired =
            depth == 0 || compare_with(cert.not_after(), now).is_some_and(|o| o != Ordering::Less);
        started && unexpired
    })
}

/// 1000502 once the certificate's end date has passed: Entra refuses it even while the app
/// still lists it.
fn check_not_expired(cert: &X509Ref, shown: &str, now: i64) -> Result<(), EntraError> {
    if compare_with(cert.not_after(), now) == Some(Ordering::Less) {
        return Err(EntraError::invalid_client(
            code::CERTIFICATE_EXPIRED,
            format!("Client certificate with thumbprint '{shown}' has expired."),
        ));
    }
    Ok(())
}

/// How an ASN.1 time compares with the Unix time `now`; `None` when OpenSSL cannot tell.
fn compare_with(time: &Asn1TimeRef, now: i64) -> Option<Ordering> {
    Asn1Time::from_unix(now)
        .and_then(|now| time.compare(&now))
        .ok()
}

fn unusable_certificate() -> EntraError {
    EntraError::invalid_client(
        code::CERTIFICATE_NOT_FOUND,
        "Client assertion failed signature validation. The registered certificate is unusable.",
    )
}

/// `aud` must be one of the presenter's token endpoint URLs, as a string. An array, even of one
/// right element, is refused: Entra documents `aud` as the token endpoint URL and no source shows
/// it accepting an array, so the sandbox takes the strict reading (docs/protocol.md §3).
fn check_audience(presenter: &Presenter<'_>, jws: &Jws) -> Result<(), EntraError> {
    if jws
        .claim_str("aud")
        .is_some_and(|aud| presenter.audiences.iter().any(|a| a == aud))
    {
        return Ok(());
    }
    let expected = presenter
        .audiences
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    Err(EntraError::invalid_client(
        code::WRONG_AUDIENCE,
        format!(
            "Client assertion audience claim does not match Realm issuer. Expected '{expected}', \
             got '{}'.",
            jws.claims
                .get("aud")
                .map(Value::to_string)
                .unwrap_or_default()
        ),
    ))
}

/// 700025 when this client already used `jti`; otherwise remembers it until `exp` (plus skew)
/// has passed, after which the assertion is refused for its time anyway.
fn check_jti_unused(
    shared: &Shared,
    presenter: &Presenter<'_>,
    jws: &Jws,
    exp: i64,
    now: i64,
) -> Result<(), EntraError> {
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
    let times = check_time_window(jws, clock::unix_now())?;
    check_federated_lifetime(&times)?;
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

/// An assertion's NumericDate claims, in whole seconds.
#[derive(Debug, Clone, Copy)]
struct Times {
    exp: i64,
    nbf: Option<i64>,
    iat: Option<i64>,
}

/// Reads `exp` (required), `nbf` and `iat`; each present one must be a NumericDate, integer or
/// fractional (RFC 7519 §2; MSAL Python sends fractions), else the JWT is invalid (50027).
fn read_times(jws: &Jws) -> Result<Times, EntraError> {
    let claim = |name: &str| {
        jws.claims
            .get(name)
            .map(|value| {
                jwt::numeric_date(value).ok_or_else(|| {
                    invalid_jwt(&format!(
                        "the client_assertion's {name} must be a NumericDate (seconds since the \
                         epoch, at most 9999-12-31)"
                    ))
                })
            })
            .transpose()
    };
    let exp =
        claim("exp")?.ok_or_else(|| invalid_jwt("the client_assertion must carry an exp claim"))?;
    Ok(Times {
        exp,
        nbf: claim("nbf")?,
        iat: claim("iat")?,
    })
}

/// Reads the times (see [`read_times`]) and checks the window both kinds of assertion share:
/// `nbf - skew <= now <= exp + skew` (700024).
///
/// Two more rules close windows that the skew would otherwise leave open. `nbf` after `exp` is
/// refused as Microsoft.IdentityModel's `ValidateLifetime` refuses it (IDX10224) before it looks
/// at the clock. `iat` after `exp` is the sandbox's own rule: Entra documents none, and an
/// assertion that expires before it was issued is a client bug worth showing. A maximum lifetime
/// is not enforced here, see [`FEDERATED_MAX_LIFETIME_SECS`].
fn check_time_window(jws: &Jws, now: i64) -> Result<Times, EntraError> {
    let times = read_times(jws)?;
    let Times { exp, nbf, iat } = times;
    let too_early = nbf.is_some_and(|nbf| now < nbf.saturating_sub(CLOCK_SKEW_SECS));
    let too_late = now > exp.saturating_add(CLOCK_SKEW_SECS);
    let inverted = nbf.is_some_and(|nbf| nbf > exp) || iat.is_some_and(|iat| iat > exp);
    if too_early || too_late || inverted {
        return Err(EntraError::invalid_client(
            code::OUTSIDE_TIME_WINDOW,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion \
                 valid from {}, expiry time of assertion {}.{}",
                clock::entra_timestamp(now),
                // Entra reports a missing nbf as the epoch.
                clock::entra_timestamp(nbf.unwrap_or(0)),
                clock::entra_timestamp(exp),
                if inverted {
                    " sandbox: the assertion's nbf or iat is after its exp."
                } else {
                    ""
                },
            ),
        ));
    }
    Ok(times)
}

/// AADSTS70023 for a federated assertion living longer than [`FEDERATED_MAX_LIFETIME_SECS`]
/// from its `iat`; without `iat` there is nothing to measure from.
fn check_federated_lifetime(times: &Times) -> Result<(), EntraError> {
    match times.iat {
        Some(iat) if times.exp.saturating_sub(iat) > FEDERATED_MAX_LIFETIME_SECS => {
            Err(EntraError::invalid_client(
                code::FEDERATED_LIFETIME,
                format!(
                    "External OIDC Provider token must have a lifetime of less than or equal to \
                     1.01:00:00. Token issued at {iat}. Token expires on {}.",
                    times.exp
                ),
            ))
        }
        _ => Ok(()),
    }
}

fn invalid_jwt(detail: &str) -> EntraError {
    EntraError::invalid_client(code::INVALID_JWT, format!("Invalid JWT token. {detail}"))
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod certificate_tests;
#[cfg(test)]
mod claims_tests;
#[cfg(test)]
mod fixture;
