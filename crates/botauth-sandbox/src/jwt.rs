//! The one place that signs and verifies compact JWS (RS256 / PS256) and generates the sandbox's keys.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Signer, Verifier};
use openssl::x509::{X509, X509NameBuilder};
use serde_json::{Map, Value, json};

/// Base64url without padding, as JOSE requires.
pub(crate) fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The `x5t` thumbprint: base64url of the raw SHA-1 digest of the certificate DER.
pub(crate) fn x5t(cert_der: &[u8]) -> String {
    b64url(&openssl::sha::sha1(cert_der))
}

/// The `x5t#S256` thumbprint: base64url of the raw SHA-256 digest of the certificate DER.
#[cfg(test)]
pub(crate) fn x5t_s256(cert_der: &[u8]) -> String {
    b64url(&openssl::sha::sha256(cert_der))
}

/// Base64url that accepts the value with or without its `=` padding. JOSE forbids padding
/// (RFC 7515 §2), yet MSAL Python sends padded thumbprints (`…Uew=`) and Entra accepts them
/// (docs/protocol.md §3); padding that is present must still be the canonical amount.
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Decodes a header thumbprint (`x5t`, `x5t#S256`) to its digest bytes; `None` when it is not
/// base64url. The caller compares bytes, so a digest of the wrong length simply matches nothing.
pub(crate) fn decode_thumbprint(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_ANY_PAD.decode(text).ok()
}

/// The DER certificates of an `x5c` header: a non-empty array of standard-base64 strings, leaf
/// first (RFC 7515 §4.1.6). ASCII whitespace inside each string is ignored, as .NET's
/// `Convert.FromBase64String` on Entra's side ignores it: MSAL Python copies the PEM body,
/// line breaks included. `None` for any other shape; whether each DER is a certificate is the
/// caller's question.
pub(crate) fn decode_x5c(value: &Value) -> Option<Vec<Vec<u8>>> {
    let entries = value.as_array().filter(|entries| !entries.is_empty())?;
    entries
        .iter()
        .map(|entry| {
            let compact: String = entry
                .as_str()?
                .chars()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            STANDARD.decode(compact).ok()
        })
        .collect()
}

/// The last second a NumericDate may name: 9999-12-31T23:59:59Z. Entra reports assertion times
/// as .NET `DateTime`s, which end there.
const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// A NumericDate (RFC 7519 §2): a JSON number of seconds since the epoch, integer or fractional
/// (MSAL Python sends `time.time()` values such as `1796203800.275`). Returns whole seconds, the
/// fraction dropped (far inside any clock skew). `None` for anything else: strings (even
/// numeric ones), booleans, and numbers before the epoch or past [`MAX_NUMERIC_DATE`].
/// `NaN` and `Infinity` are not JSON, so such claims never get this far.
pub(crate) fn numeric_date(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    let seconds = match number.as_i64() {
        Some(whole) => whole,
        None => {
            let real = number.as_f64().filter(|r| r.is_finite())?;
            if !(0.0..(MAX_NUMERIC_DATE + 1) as f64).contains(&real) {
                return None;
            }
            // In range, so the conversion is exact up to the dropped fraction.
            real.trunc() as i64
        }
    };
    (0..=MAX_NUMERIC_DATE).contains(&seconds).then_some(seconds)
}

/// The JWS algorithms the sandbox understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alg {
    Rs256,
    Ps256,
}

impl Alg {
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        match name {
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            _ => None,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
        }
    }
}

/// Signs `header.claims` with `key`. `header` must already carry `alg` matching `alg`.
pub(crate) fn sign_jws(
    header: &Value,
    claims: &Value,
    alg: Alg,
    key: &PKeyRef<Private>,
) -> Result<String, ErrorStack> {
    sign_with(
        header,
        claims,
        MessageDigest::sha256(),
        alg == Alg::Ps256,
        key,
    )
}

/// The one place that signs: RSA with `digest`, PKCS#1 v1.5 or (with `pss`) PSS with a
/// digest-length salt, over `b64url(header).b64url(claims)`.
pub(crate) fn sign_with(
    header: &Value,
    claims: &Value,
    digest: MessageDigest,
    pss: bool,
    key: &PKeyRef<Private>,
) -> Result<String, ErrorStack> {
    let signing_input = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let mut signer = Signer::new(digest, key)?;
    if pss {
        signer.set_rsa_padding(Padding::PKCS1_PSS)?;
        signer.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
    }
    signer.update(signing_input.as_bytes())?;
    let signature = signer.sign_to_vec()?;
    Ok(format!("{signing_input}.{}", b64url(&signature)))
}

/// A parsed (not yet verified) compact JWS.
#[derive(Debug)]
pub(crate) struct Jws {
    pub(crate) header: Map<String, Value>,
    pub(crate) claims: Map<String, Value>,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses three base64url segments whose first two are JSON objects; `None` for anything else.
    pub(crate) fn parse(token: &str) -> Option<Self> {
        let mut parts = token.split('.');
        let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let object = |segment: &str| -> Option<Map<String, Value>> {
            let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
            match serde_json::from_slice(&bytes).ok()? {
                Value::Object(map) => Some(map),
                _ => None,
            }
        };
        Some(Self {
            header: object(h)?,
            claims: object(c)?,
            signing_input: format!("{h}.{c}"),
            signature: URL_SAFE_NO_PAD.decode(s).ok()?,
        })
    }

    /// The header's `alg`, when it is one the sandbox supports.
    pub(crate) fn alg(&self) -> Option<Alg> {
        self.header_str("alg").and_then(Alg::from_name)
    }

    pub(crate) fn header_str(&self, name: &str) -> Option<&str> {
        self.header.get(name).and_then(Value::as_str)
    }

    pub(crate) fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// An integer claim; `None` when missing or not an integer (JWT times are integers).
    pub(crate) fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Verifies the signature with `key` using `alg` (chosen by the caller, never by the token alone).
    pub(crate) fn verify<T: HasPublic>(&self, alg: Alg, key: &PKeyRef<T>) -> bool {
        let check = || -> Result<bool, ErrorStack> {
            let mut verifier = Verifier::new(MessageDigest::sha256(), key)?;
            if alg == Alg::Ps256 {
                verifier.set_rsa_padding(Padding::PKCS1_PSS)?;
                verifier.set_rsa_pss_saltlen(RsaPssSaltlen::DIGEST_LENGTH)?;
            }
            verifier.update(self.signing_input.as_bytes())?;
            verifier.verify(&self.signature)
        };
        check().unwrap_or(false)
    }
}

/// An RSA-2048 key pair with a self-signed certificate, as Microsoft publishes its signing keys.
pub(crate) struct SigningKey {
    kid: String,
    key: PKey<Private>,
    cert_der: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// Generates a fresh key (≈100 ms of CPU: call from a blocking context).
    pub(crate) fn generate(common_name: &str) -> Result<Self, ErrorStack> {
        let key = PKey::from_rsa(Rsa::generate(2048)?)?;
        let cert = self_signed_certificate(&key, common_name, 365)?;
        let cert_der = cert.to_der()?;
        Ok(Self {
            kid: x5t(&cert_der),
            key,
            cert_der,
        })
    }

    /// Key id, which like Microsoft's is the certificate's `x5t`.
    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    pub(crate) fn key(&self) -> &PKeyRef<Private> {
        &self.key
    }

    #[cfg(test)]
    pub(crate) fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// An RS256 JWT with header `{"typ":"JWT","alg":"RS256","kid":…}`.
    ///
    /// The header deliberately carries no `x5t`: the token endpoint tells certificate assertions
    /// (which have one) from federated ones (which do not) by it.
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": Alg::Rs256.name(), "kid": self.kid});
        // Signing with a well-formed in-memory RSA key only fails when OpenSSL cannot allocate.
        sign_jws(&header, claims, Alg::Rs256, &self.key).expect("RSA signing failed")
    }

    /// Verifies a token this key signed and whose `exp` has not passed; returns its claims.
    pub(crate) fn verify_unexpired(&self, token: &str) -> Result<Value, String> {
        let jws = self.verify(token)?;
        let exp = jws.claim_i64("exp").ok_or("no integer exp claim")?;
        if exp <= crate::clock::unix_now() {
            return Err("token has expired".into());
        }
        Ok(Value::Object(jws.claims))
    }

    /// Verifies a token this key signed (RS256 only) and returns it parsed.
    pub(crate) fn verify(&self, token: &str) -> Result<Jws, String> {
        let jws = Jws::parse(token).ok_or("not a compact JWS")?;
        if jws.alg() != Some(Alg::Rs256) {
            return Err("alg is not RS256".into());
        }
        if jws.header_str("kid").is_some_and(|kid| kid != self.kid) {
            return Err("kid does not name the sandbox key".into());
        }
        if !jws.verify(Alg::Rs256, &self.key) {
            return Err("signature does not verify".into());
        }
        Ok(jws)
    }

    /// The public JWK, with `x5c` holding the certificate as Microsoft's JWKS do.
    pub(crate) fn jwk(&self) -> Map<String, Value> {
        let (n, e) = self
            .key
            .rsa()
            .map(|rsa| (b64url(&rsa.n().to_vec()), b64url(&rsa.e().to_vec())))
            .unwrap_or_default();
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": n,
            "e": e,
            "x5c": [STANDARD.encode(&self.cert_der)],
        });
        match jwk {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// A self-signed certificate for `key`, valid from now for `days` days.
pub(crate) fn self_signed_certificate(
    key: &PKeyRef<Private>,
    common_name: &str,
    days: u32,
) -> Result<X509, ErrorStack> {
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", common_name)?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let mut cert = X509::builder()?;
    cert.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    let (not_before, not_after) = (Asn1Time::days_from_now(0)?, Asn1Time::days_from_now(days)?);
    cert.set_serial_number(&serial)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(key)?;
    cert.set_not_before(&not_before)?;
    cert.set_not_after(&not_after)?;
    cert.sign(key, MessageDigest::sha256())?;
    Ok(cert.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x5t_is_base64url_of_raw_digest() {
        // docs/protocol.md §3 vector: the hex digest's bytes, not its text, are encoded.
        let digest = [
            0x84, 0xE0, 0x5C, 0x1D, 0x98, 0xBC, 0xE3, 0xA5, 0x42, 0x1D, 0x22, 0x5B, 0x14, 0x0B,
            0x36, 0xE8, 0x6A, 0x3D, 0x55, 0x34,
        ];
        assert_eq!(b64url(&digest), "hOBcHZi846VCHSJbFAs26Go9VTQ");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let key = SigningKey::generate("test").unwrap();
        let token = key.sign(&json!({"a": 1}));
        let jws = key.verify(&token).unwrap();
        assert_eq!(jws.claim_i64("a"), Some(1));
        assert_eq!(jws.header_str("kid"), Some(key.kid()));
        let other = SigningKey::generate("other").unwrap();
        assert!(other.verify(&token).is_err());
        let ps = sign_jws(&json!({"alg": "PS256"}), &json!({}), Alg::Ps256, key.key()).unwrap();
        let jws = Jws::parse(&ps).unwrap();
        assert!(jws.verify(Alg::Ps256, key.key()));
        assert!(!jws.verify(Alg::Rs256, key.key()));
    }

    #[test]
    fn thumbprints_decode_with_or_without_padding() {
        let digest = openssl::sha::sha1(b"certificate");
        let bare = b64url(&digest);
        assert_eq!(decode_thumbprint(&bare), Some(digest.to_vec()));
        assert_eq!(
            decode_thumbprint(&format!("{bare}=")),
            Some(digest.to_vec())
        );
        for bad in [format!("{bare}=="), format!("{bare}!"), "a+b/".to_owned()] {
            assert_eq!(decode_thumbprint(&bad), None, "{bad}");
        }
    }

    #[test]
    fn x5c_is_standard_base64_with_whitespace_ignored() {
        let der = b"DER bytes of some length".to_vec();
        let text = STANDARD.encode(&der);
        let spaced = format!(" {}\r\n{} \n", &text[..10], &text[10..]);
        assert_eq!(
            decode_x5c(&json!([text, spaced])),
            Some(vec![der.clone(), der])
        );
        for bad in [
            json!(text),
            json!([]),
            json!([1]),
            // The URL-safe alphabet is not x5c's.
            json!(["-_8="]),
            json!([&text[1..]]),
        ] {
            assert_eq!(decode_x5c(&bad), None, "{bad}");
        }
    }

    #[test]
    fn numeric_dates_are_non_negative_numbers_up_to_year_9999() {
        for (value, seconds) in [
            (json!(0), 0),
            (json!(1_796_203_800), 1_796_203_800),
            (json!(1_796_203_800.275), 1_796_203_800),
            (json!(0.999), 0),
            (json!(253_402_300_799_i64), 253_402_300_799),
            (json!(253_402_300_799.5), 253_402_300_799),
        ] {
            assert_eq!(numeric_date(&value), Some(seconds), "{value}");
        }
        for value in [
            json!(-1),
            json!(-0.001),
            json!(253_402_300_800_i64),
            json!(1e300),
            json!(u64::MAX),
            json!("1796203800"),
            json!(true),
            Value::Null,
            json!([1]),
        ] {
            assert_eq!(numeric_date(&value), None, "{value}");
        }
    }

    #[test]
    fn parse_rejects_malformed() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "!!.e30.AA",
            "e30.W10.AA",
            "e30.e30.!!",
        ] {
            assert!(Jws::parse(bad).is_none(), "{bad}");
        }
        assert!(Jws::parse("e30.e30.").is_some());
    }
}
