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
mod tests {
    use std::time::Duration;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use openssl::asn1::Asn1Time;
    use openssl::bn::{BigNum, MsbOption};
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, PKeyRef, Private};
    use openssl::rsa::Rsa;
    use openssl::x509::extension::BasicConstraints;
    use openssl::x509::{X509, X509NameBuilder};
    use serde_json::{Value, json};

    use super::JWT_BEARER;
    use crate::clock::unix_now;
    use crate::jwt::{Alg, SigningKey, b64url, sign_jws, x5t, x5t_s256};
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

        /// [`Self::assert_code`] that names the failing case.
        async fn assert_case(&self, case: &str, assertion: &str, code: u64) {
            let reply = self.post(assertion).await;
            assert_eq!(
                reply.json()["error_codes"],
                json!([code]),
                "{case}: {}",
                reply.text
            );
            reply.assert_entra_error(401, "invalid_client", code);
        }

        /// [`Self::assert_ok`] that names the failing case.
        async fn assert_ok_case(&self, case: &str, assertion: &str) {
            let reply = self.post(assertion).await;
            assert_eq!(reply.status, 200, "{case}: {}", reply.text);
        }

        /// A federated assertion with these claims, signed by the sandbox's MI key.
        fn federated(&self, claims: &Value) -> String {
            self.sandbox.shared.mi_key.sign(claims)
        }

        /// Claims of a federated assertion the fixture's app trusts.
        fn federated_claims(&self) -> Value {
            let now = unix_now();
            json!({
                "iss": self.sandbox.managed_identity_issuer(),
                "sub": MI_SUBJECT,
                "aud": EXCHANGE,
                "iat": now,
                "nbf": now,
                "exp": now + 3600,
            })
        }
    }

    /// Signs `claims` under `header`, with the header's alg (RS256 unless it says PS256).
    fn sign(header: &Value, claims: &Value, key: &PKeyRef<Private>) -> String {
        let alg = if header["alg"] == "PS256" {
            Alg::Ps256
        } else {
            Alg::Rs256
        };
        sign_jws(header, claims, alg, key).unwrap()
    }

    /// An RS256 JWS over claims given as raw text, which need not be valid JSON.
    fn sign_raw(header: &Value, claims: &str, key: &PKeyRef<Private>) -> String {
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.as_bytes())
        );
        let mut signer = openssl::sign::Signer::new(MessageDigest::sha256(), key).unwrap();
        signer.update(input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(&signer.sign_to_vec().unwrap()))
    }

    /// The standard base64 of `der` in PEM's 64-character lines, joined by `newline`.
    fn pem_body(der: &[u8], newline: &str) -> String {
        let text = STANDARD.encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|line| std::str::from_utf8(line).unwrap())
            .collect();
        lines.join(newline)
    }

    /// A certificate and its key.
    struct Issued {
        cert: X509,
        key: PKey<Private>,
    }

    impl Issued {
        fn der(&self) -> Vec<u8> {
            self.cert.to_der().unwrap()
        }
    }

    /// A certificate for a fresh RSA key with subject `CN=common_name`, issued by `issuer`
    /// (self-signed without one), a CA when `ca`, valid from `from` to `to` (Unix seconds).
    fn issue(common_name: &str, issuer: Option<&Issued>, ca: bool, from: i64, to: i64) -> Issued {
        let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", common_name).unwrap();
        let name = name.build();
        let mut serial = BigNum::new().unwrap();
        serial.rand(64, MsbOption::MAYBE_ZERO, false).unwrap();
        let mut builder = X509::builder().unwrap();
        builder.set_version(2).unwrap();
        builder
            .set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        builder.set_subject_name(&name).unwrap();
        builder
            .set_issuer_name(issuer.map_or(&name, |i| i.cert.subject_name()))
            .unwrap();
        builder.set_pubkey(&key).unwrap();
        builder
            .set_not_before(&Asn1Time::from_unix(from).unwrap())
            .unwrap();
        builder
            .set_not_after(&Asn1Time::from_unix(to).unwrap())
            .unwrap();
        if ca {
            let constraints = BasicConstraints::new().critical().ca().build().unwrap();
            builder.append_extension(constraints).unwrap();
        }
        builder
            .sign(issuer.map_or(&key, |i| &i.key), MessageDigest::sha256())
            .unwrap();
        Issued {
            cert: builder.build(),
            key,
        }
    }

    /// Ten years either side of now: comfortably valid.
    fn decade() -> (i64, i64) {
        let now = unix_now();
        (now - 86_400 * 3650, now + 86_400 * 3650)
    }

    fn fixture_file(name: &str) -> Vec<u8> {
        let path = format!("{}/../../fixtures/certs/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
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
    async fn thumbprints_are_accepted_with_or_without_padding() {
        let f = Fixture::new().await;
        let der = f.cert.cert_der();
        // MSAL Python: base64.urlsafe_b64encode of the digest, padding kept.
        let sha1 = format!("{}=", x5t(der));
        let sha256 = format!("{}=", x5t_s256(der));
        assert_eq!(sha1.len(), 28);
        assert_eq!(sha256.len(), 44);
        let headers = [
            json!({"alg": "RS256", "typ": "JWT", "x5t": sha1}),
            json!({"alg": "PS256", "typ": "JWT", "x5t#S256": sha256}),
            json!({"alg": "PS256", "typ": "JWT", "x5t": sha1, "x5t#S256": sha256}),
            json!({"alg": "PS256", "typ": "JWT", "x5t": x5t(der), "x5t#S256": sha256}),
        ];
        for header in headers {
            f.assert_ok_case(
                &header.to_string(),
                &sign(&header, &f.claims(), f.cert.key()),
            )
            .await;
        }
    }

    #[tokio::test]
    async fn unreadable_or_wrong_length_thumbprints_match_nothing() {
        let f = Fixture::new().await;
        let der = f.cert.cert_der();
        let sha1 = openssl::sha::sha1(der);
        let sha256 = openssl::sha::sha256(der);
        let cases = [
            ("x5t", json!("not base64url!")),
            // One `=` is canonical for 20 bytes; two is not.
            ("x5t", json!(format!("{}==", x5t(der)))),
            ("x5t", json!(b64url(&sha1[..19]))),
            ("x5t", json!(b64url(&[&sha1[..], &[0]].concat()))),
            ("x5t", json!(b64url(&sha256))),
            ("x5t#S256", json!(b64url(&sha1))),
            ("x5t#S256", json!(b64url(&sha256[..31]))),
            ("x5t", json!(42)),
            ("x5t", Value::Null),
        ];
        for (name, thumbprint) in cases {
            let header = json!({"alg": "RS256", "typ": "JWT", name: thumbprint});
            let assertion = sign(&header, &f.claims(), f.cert.key());
            f.assert_case(&header.to_string(), &assertion, 700_027)
                .await;
        }
        // Entra shows the thumbprint it looked for as hex digest bytes.
        let stranger = openssl::sha::sha1(b"stranger");
        let header = json!({"alg": "RS256", "x5t": format!("{}=", b64url(&stranger))});
        let reply = f.post(&sign(&header, &f.claims(), f.cert.key())).await;
        let hex: String = stranger.iter().map(|b| format!("{b:02X}")).collect();
        assert!(reply.text.contains(&format!("'{hex}'")), "{}", reply.text);
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
    async fn x5c_names_a_registered_certificate() {
        let f = Fixture::new().await;
        let other = SigningKey::generate("second registered").unwrap();
        f.sandbox.register_app(
            AppRegistration::new(CLIENT_ID, TENANT)
                .with_certificate_der(f.cert.cert_der())
                .with_certificate_der(other.cert_der()),
        );
        let der = f.cert.cert_der();
        let good = [
            json!({"alg": "RS256", "x5c": [STANDARD.encode(der)]}),
            // MSAL Python copies the PEM body, line breaks and all.
            json!({"alg": "RS256", "x5c": [pem_body(der, "\n")]}),
            json!({"alg": "RS256", "x5c": [format!("\r\n{}\r\n", pem_body(der, "\r\n"))]}),
            json!({"alg": "RS256", "x5c": [pem_body(der, " ")]}),
            json!({"alg": "RS256", "x5t": x5t(der), "x5c": [STANDARD.encode(der)]}),
            json!({"alg": "PS256", "x5t#S256": x5t_s256(der), "x5c": [pem_body(der, "\n")]}),
        ];
        for header in good {
            f.assert_ok_case(
                &header.to_string(),
                &sign(&header, &f.claims(), f.cert.key()),
            )
            .await;
        }
        // The thumbprint names another registered certificate than the x5c leaf.
        let header = json!({"alg": "RS256", "x5t": x5t(other.cert_der()),
            "x5c": [STANDARD.encode(der)]});
        let assertion = sign(&header, &f.claims(), f.cert.key());
        f.assert_case("x5t names another", &assertion, 700_027)
            .await;
        let assertion = sign(&header, &f.claims(), other.key());
        f.assert_case("x5t names another, its key", &assertion, 700_027)
            .await;
        // An unregistered leaf, even a well-formed one with its own valid signature.
        let stranger = SigningKey::generate("unregistered").unwrap();
        let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(stranger.cert_der())]});
        let assertion = sign(&header, &f.claims(), stranger.key());
        f.assert_case("unregistered leaf", &assertion, 700_027)
            .await;
        // The registered leaf, signed with another key.
        let header = json!({"alg": "RS256", "x5c": [STANDARD.encode(der)]});
        let assertion = sign(&header, &f.claims(), stranger.key());
        f.assert_case("wrong key", &assertion, 7_000_274).await;
    }

    #[tokio::test]
    async fn malformed_x5c_is_50027() {
        let f = Fixture::new().await;
        let der = f.cert.cert_der();
        let good = STANDARD.encode(der);
        let malformed = [
            json!(good),
            json!([]),
            json!([42]),
            json!([good, 42]),
            json!({"0": good}),
            json!(["!!not base64!!"]),
            json!([crate::jwt::b64url(der)]),
            json!([&good[..good.len() - 1]]),
            json!([STANDARD.encode(b"not a certificate")]),
            json!([STANDARD.encode([der, &[0][..]].concat())]),
            json!([good, STANDARD.encode(b"not a certificate")]),
        ];
        for x5c in malformed {
            let header = json!({"alg": "RS256", "x5t": x5t(der), "x5c": x5c});
            let assertion = sign(&header, &f.claims(), f.cert.key());
            f.assert_case(&x5c.to_string(), &assertion, 50027).await;
        }
    }

    #[tokio::test]
    async fn trusted_subject_accepts_any_certificate_its_ca_issues() {
        let f = Fixture::new().await;
        let (from, to) = decade();
        let now = unix_now();
        let ca = issue("Contoso Root", None, true, from, to);
        let intermediate = issue("Contoso Issuing", Some(&ca), true, from, to);
        let leaf = issue("bot.contoso.com", Some(&ca), false, now - 60, now + 86_400);
        let renewed = issue("bot.contoso.com", Some(&ca), false, now - 60, now + 86_400);
        let via_intermediate = issue("bot.contoso.com", Some(&intermediate), false, from, to);
        f.sandbox.register_app(
            AppRegistration::new(CLIENT_ID, TENANT)
                .with_trusted_subject("CN=bot.contoso.com", ca.der()),
        );
        let assertion = |x5c: &[&Issued], signer: &Issued, thumbprint: bool| {
            let chain: Vec<String> = x5c.iter().map(|c| STANDARD.encode(c.der())).collect();
            let mut header = json!({"alg": "RS256", "typ": "JWT", "x5c": chain});
            if thumbprint {
                header["x5t"] = json!(x5t(&x5c[0].der()));
            }
            sign(&header, &f.claims(), &signer.key)
        };

        f.assert_ok_case("leaf", &assertion(&[&leaf], &leaf, false))
            .await;
        f.assert_ok_case("leaf + x5t", &assertion(&[&leaf], &leaf, true))
            .await;
        f.assert_ok_case("leaf, CA", &assertion(&[&leaf, &ca], &leaf, true))
            .await;
        f.assert_ok_case("renewed", &assertion(&[&renewed], &renewed, true))
            .await;
        let chain = [&via_intermediate, &intermediate];
        f.assert_ok_case("intermediate", &assertion(&chain, &via_intermediate, true))
            .await;
        let chain = [&via_intermediate, &intermediate, &ca];
        f.assert_ok_case("full chain", &assertion(&chain, &via_intermediate, true))
            .await;

        // Without x5c nothing shows the chain: the leaf is not registered.
        let header = json!({"alg": "RS256", "x5t": x5t(&leaf.der())});
        let only_x5t = sign(&header, &f.claims(), &leaf.key);
        f.assert_case("x5t only", &only_x5t, 700_027).await;
        let refused = [
            ("intermediate missing", vec![&via_intermediate]),
            ("wrong subject", vec![&intermediate]),
        ];
        for (case, chain) in refused {
            f.assert_case(case, &assertion(&chain, chain[0], true), 700_027)
                .await;
        }
        let self_signed = issue("bot.contoso.com", None, false, from, to);
        let other_ca = issue("Contoso Root", None, true, from, to);
        let foreign = issue("bot.contoso.com", Some(&other_ca), false, from, to);
        let not_yet = issue("bot.contoso.com", Some(&ca), false, now + 86_400, to);
        let old_ca = issue("Old Issuing", Some(&ca), true, from, now - 86_400);
        let under_expired = issue("bot.contoso.com", Some(&old_ca), false, from, to);
        let not_a_ca = issue("Contoso Web Server", Some(&ca), false, from, to);
        let under_not_a_ca = issue("bot.contoso.com", Some(&not_a_ca), false, from, to);
        let refused = [
            ("self-signed", vec![&self_signed]),
            ("other CA of the same name", vec![&foreign, &other_ca]),
            ("not yet valid", vec![&not_yet]),
            ("expired intermediate", vec![&under_expired, &old_ca]),
            ("issued by a non-CA", vec![&under_not_a_ca, &not_a_ca]),
        ];
        for (case, chain) in refused {
            f.assert_case(case, &assertion(&chain, chain[0], false), 700_027)
                .await;
        }
        // Trusted, but signed with another key.
        f.assert_case("wrong key", &assertion(&[&leaf], &renewed, true), 7_000_274)
            .await;
        // Trusted, but past its end date: as for a registered certificate.
        let expired = issue("bot.contoso.com", Some(&ca), false, from, now - 60);
        f.assert_case(
            "expired",
            &assertion(&[&expired], &expired, true),
            1_000_502,
        )
        .await;
        // The thumbprint must name the x5c leaf.
        let mut header = json!({"alg": "RS256", "x5c": [STANDARD.encode(leaf.der())]});
        header["x5t"] = json!(x5t(&renewed.der()));
        let mismatch = sign(&header, &f.claims(), &leaf.key);
        f.assert_case("x5t names another", &mismatch, 700_027).await;
    }

    #[tokio::test]
    async fn trusted_subject_compares_rfc_4514_names() {
        let f = Fixture::new().await;
        // fixtures/certs: leaf.pem has -subj "/CN=botauth fixture leaf/O=botauth tests", by ca.pem.
        let chain = X509::stack_from_pem(&fixture_file("chain.pem")).unwrap();
        let key = PKey::private_key_from_pem(&fixture_file("leaf.key")).unwrap();
        let ca = X509::from_pem(&fixture_file("ca.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        let x5c: Vec<String> = chain
            .iter()
            .map(|c| pem_body(&c.to_der().unwrap(), "\n"))
            .collect();
        let header = json!({"alg": "RS256", "typ": "JWT", "x5c": x5c});
        let cases = [
            ("O=botauth tests,CN=botauth fixture leaf", true),
            ("O=botauth tests, CN=botauth fixture leaf", true),
            (" o = BOTAUTH Tests ,  cn=botauth fixture leaf ", true),
            ("O=botauth\\20tests,CN=botauth fixture leaf", true),
            (
                "2.5.4.10=botauth tests,OID.2.5.4.3=botauth fixture leaf",
                true,
            ),
            // The certificate's own (DER) order is not RFC 4514's.
            ("CN=botauth fixture leaf, O=botauth tests", false),
            ("CN=botauth fixture leaf", false),
            ("O=botauth tests,CN=botauth fixture", false),
            ("O=botauth tests,CN=botauth fixture leaf,C=US", false),
            ("O=botauth tests+CN=botauth fixture leaf", false),
            ("", false),
        ];
        for (subject, accepted) in cases {
            f.sandbox.register_app(
                AppRegistration::new(CLIENT_ID, TENANT).with_trusted_subject(subject, ca.clone()),
            );
            let assertion = sign(&header, &f.claims(), &key);
            if accepted {
                f.assert_ok_case(subject, &assertion).await;
            } else {
                f.assert_case(subject, &assertion, 700_027).await;
            }
        }
        // The trusted subject under another CA does not vouch for this leaf.
        let other_ca = X509::from_pem(&fixture_file("rsa2048.pem"))
            .unwrap()
            .to_der()
            .unwrap();
        f.sandbox.register_app(
            AppRegistration::new(CLIENT_ID, TENANT)
                .with_trusted_subject("O=botauth tests,CN=botauth fixture leaf", other_ca),
        );
        f.assert_case("other CA", &sign(&header, &f.claims(), &key), 700_027)
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
