//! What the assertion tests share: an app with a registered certificate and a federated
//! credential, assertions signed for it, and certificates issued on the fly.

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
use crate::jwt::{Alg, SigningKey, b64url, sign_jws, x5t};
use crate::testkit::{BOT_SCOPE, Reply, post_form};
use crate::{AppRegistration, FederatedCredential, Sandbox};

pub(super) const CLIENT_ID: &str = "c0ffee00-1111-2222-3333-444444444444";
pub(super) const TENANT: &str = "cert-tenant";
pub(super) const MI_SUBJECT: &str = "mi-object-id";
pub(super) const EXCHANGE: &str = "api://AzureADTokenExchange";

pub(super) type Mutation = Box<dyn FnOnce(&mut Value)>;

pub(super) struct Fixture {
    pub(super) sandbox: Sandbox,
    pub(super) cert: SigningKey,
}

impl Fixture {
    pub(super) async fn new() -> Self {
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
    pub(super) fn claims(&self) -> Value {
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

    pub(super) fn assertion(&self, claims: &Value) -> String {
        let header = json!({"alg": "RS256", "typ": "JWT", "x5t": x5t(self.cert.cert_der())});
        sign_jws(&header, claims, Alg::Rs256, self.cert.key()).unwrap()
    }

    pub(super) fn assertion_with(&self, mutate: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        mutate(&mut claims);
        self.assertion(&claims)
    }

    pub(super) async fn post(&self, assertion: &str) -> Reply {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("scope", BOT_SCOPE),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion),
        ];
        post_form(&self.sandbox.token_endpoint(TENANT), &form, &[]).await
    }

    pub(super) async fn assert_code(&self, assertion: &str, code: u64) {
        self.post(assertion)
            .await
            .assert_entra_error(401, "invalid_client", code);
    }

    pub(super) async fn assert_ok(&self, assertion: &str) -> Value {
        let reply = self.post(assertion).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let token = reply.json()["access_token"].as_str().unwrap().to_owned();
        self.sandbox.verify_access_token(&token).unwrap()
    }

    /// [`Self::assert_code`] that names the failing case.
    pub(super) async fn assert_case(&self, case: &str, assertion: &str, code: u64) {
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
    pub(super) async fn assert_ok_case(&self, case: &str, assertion: &str) {
        let reply = self.post(assertion).await;
        assert_eq!(reply.status, 200, "{case}: {}", reply.text);
    }

    /// A federated assertion with these claims, signed by the sandbox's MI key.
    pub(super) fn federated(&self, claims: &Value) -> String {
        self.sandbox.shared.mi_key.sign(claims)
    }

    /// Claims of a federated assertion the fixture's app trusts.
    pub(super) fn federated_claims(&self) -> Value {
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
pub(super) fn sign(header: &Value, claims: &Value, key: &PKeyRef<Private>) -> String {
    let alg = if header["alg"] == "PS256" {
        Alg::Ps256
    } else {
        Alg::Rs256
    };
    sign_jws(header, claims, alg, key).unwrap()
}

/// An RS256 JWS over claims given as raw text, which need not be valid JSON.
pub(super) fn sign_raw(header: &Value, claims: &str, key: &PKeyRef<Private>) -> String {
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
pub(super) fn pem_body(der: &[u8], newline: &str) -> String {
    let text = STANDARD.encode(der);
    let lines: Vec<&str> = text
        .as_bytes()
        .chunks(64)
        .map(|line| std::str::from_utf8(line).unwrap())
        .collect();
    lines.join(newline)
}

/// A certificate and its key.
pub(super) struct Issued {
    pub(super) cert: X509,
    pub(super) key: PKey<Private>,
}

impl Issued {
    pub(super) fn der(&self) -> Vec<u8> {
        self.cert.to_der().unwrap()
    }
}

/// A certificate for a fresh RSA key with subject `CN=common_name`, issued by `issuer`
/// (self-signed without one), a CA when `ca`, valid from `from` to `to` (Unix seconds).
pub(super) fn issue(
    common_name: &str,
    issuer: Option<&Issued>,
    ca: bool,
    from: i64,
    to: i64,
) -> Issued {
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
pub(super) fn decade() -> (i64, i64) {
    let now = unix_now();
    (now - 86_400 * 3650, now + 86_400 * 3650)
}

pub(super) fn fixture_file(name: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/certs/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
