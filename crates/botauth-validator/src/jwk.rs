//! One JWKS key: parsed once into an OpenSSL public key, with a small pool of initialised verify
//! contexts, and the signature check itself (PKCS#1 v1.5 over the low-level SHA-2 digest of the
//! signing input; docs/protocol.md §6 rule 2).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth_http::internal::display_endpoint;
use openssl::bn::BigNum;
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::jwt::Algorithm;

/// The smallest RSA modulus accepted (docs/protocol.md §6: smaller RSA keys are never used).
pub(crate) const MIN_RSA_BITS: u32 = 2048;

/// One key of a JWKS, parsed once into an OpenSSL public key.
pub(crate) struct Jwk {
    kid: String,
    key: std::result::Result<PKey<Public>, &'static str>,
    alg: Option<Algorithm>,
    endorsements: Option<Vec<String>>,
    /// Initialised verify contexts (PKCS#1 padding and digest set), one pool per algorithm.
    verifiers: [VerifierPool; 3],
}

/// How many idle verify contexts a key keeps per algorithm: one per thread that verifies at the
/// same moment is enough; more would only hold memory.
const POOL_MAX: usize = 8;

/// Idle verify contexts of one key and algorithm. OpenSSL 3 spends about 4 µs of a 24 µs RSA-2048
/// verification building a context (provider look-ups under a process-wide lock, allocations);
/// a context that has been initialised once verifies again and again. A context is only ever
/// used by one verification at a time (it is taken out of the pool), and one that saw anything
/// but a good signature is dropped rather than returned, so no error state can carry over.
#[derive(Default)]
struct VerifierPool(Mutex<Vec<PkeyCtx<Public>>>);

impl VerifierPool {
    fn take(&self, key: &PKey<Public>, alg: Algorithm) -> Option<PkeyCtx<Public>> {
        if let Some(ctx) = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return Some(ctx);
        }
        let mut ctx = PkeyCtx::new(key).ok()?;
        ctx.verify_init().ok()?;
        ctx.set_rsa_padding(Padding::PKCS1).ok()?;
        ctx.set_signature_md(alg.md()).ok()?;
        Some(ctx)
    }

    fn give_back(&self, ctx: PkeyCtx<Public>) {
        let mut idle = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < POOL_MAX {
            idle.push(ctx);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl std::fmt::Debug for Jwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("usable", &self.key.is_ok())
            .field("alg", &self.alg)
            .field("endorsements", &self.endorsements)
            .finish_non_exhaustive()
    }
}

impl Jwk {
    /// Verifies `signature` over `input` with the algorithm the allow-list accepted, provided the
    /// key permits it: the algorithm is never the token's word alone (docs/protocol.md §6 rule 2).
    pub(crate) fn verify(&self, alg: Algorithm, input: &[u8], signature: &[u8]) -> Result<()> {
        let key = self
            .key
            .as_ref()
            .map_err(|&problem| Error::UnusableKey { problem })?;
        if self.alg.is_some_and(|a| a != alg) {
            return Err(Error::UnusableKey {
                problem: "the key's `alg` differs from the token's",
            });
        }
        let pool = &self.verifiers[alg.index()];
        let mut ctx = pool.take(key, alg).ok_or(Error::BadSignature)?;
        // The signing input is hashed with OpenSSL's low-level SHA-2 functions: the generic
        // digest path would look the method up (under a lock) and allocate a context per call.
        let ok = match alg {
            Algorithm::Rs256 => ctx.verify(&sha256(input), signature),
            Algorithm::Rs384 => ctx.verify(&sha384(input), signature),
            Algorithm::Rs512 => ctx.verify(&sha512(input), signature),
        };
        if matches!(ok, Ok(true)) {
            pool.give_back(ctx);
            Ok(())
        } else {
            // Dropped, not returned: a context that failed starts afresh next time.
            Err(Error::BadSignature)
        }
    }

    /// Whether `other` holds the same public key (a kid could be reused for new key material).
    pub(crate) fn same_key(&self, other: &Jwk) -> bool {
        match (&self.key, &other.key) {
            (Ok(a), Ok(b)) => a.public_eq(b),
            _ => false,
        }
    }

    /// The channels the key endorses, when it says.
    pub(crate) fn endorsements(&self) -> Option<&[String]> {
        self.endorsements.as_deref()
    }
}

fn sha256(input: &[u8]) -> [u8; 32] {
    let mut h = openssl::sha::Sha256::new();
    h.update(input);
    h.finish()
}

fn sha384(input: &[u8]) -> [u8; 48] {
    let mut h = openssl::sha::Sha384::new();
    h.update(input);
    h.finish()
}

fn sha512(input: &[u8]) -> [u8; 64] {
    let mut h = openssl::sha::Sha512::new();
    h.update(input);
    h.finish()
}

/// Parses one JWK. `None` for keys that are not RSA signing keys (ignored, docs/protocol.md §6) or lack a
/// `kid`; unusable RSA keys are kept so that their tokens get a precise rejection.
fn parse_jwk(value: &Value) -> Option<Jwk> {
    let obj = value.as_object()?;
    if obj.get("kty").and_then(Value::as_str) != Some("RSA") {
        return None;
    }
    if obj.get("use").is_some_and(|u| u.as_str() != Some("sig")) {
        return None;
    }
    let kid = obj.get("kid").and_then(Value::as_str)?.to_owned();
    let component = |name: &str| -> Option<BigNum> {
        let text = obj.get(name)?.as_str()?;
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        BigNum::from_slice(&bytes).ok()
    };
    let key = match (component("n"), component("e")) {
        (Some(n), Some(e)) => Rsa::from_public_components(n, e)
            .ok()
            .and_then(|rsa| PKey::from_rsa(rsa).ok())
            .ok_or("its `n`/`e` do not form an RSA key")
            .and_then(|key| {
                if key.bits() >= MIN_RSA_BITS {
                    Ok(key)
                } else {
                    Err("RSA keys shorter than 2048 bits are not accepted")
                }
            }),
        _ => Err("its `n`/`e` are missing or not base64url"),
    };
    let (alg, key) = match obj.get("alg") {
        None => (None, key),
        Some(v) => match v.as_str().and_then(Algorithm::from_name) {
            Some(a) => (Some(a), key),
            None => (
                None,
                Err("its `alg` is not an RSA PKCS#1 signing algorithm"),
            ),
        },
    };
    // A malformed endorsements member endorses nothing, rather than everything.
    let endorsements = obj.get("endorsements").map(|v| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    });
    Some(Jwk {
        kid,
        key,
        alg,
        endorsements,
        verifiers: Default::default(),
    })
}

/// Parses a JWKS document. Fails when it holds no usable key: an empty or garbled answer must not
/// replace keys that work.
pub(crate) fn parse_jwks(
    doc: &Value,
    endpoint: &str,
) -> std::result::Result<HashMap<String, Arc<Jwk>>, botauth_core::Error> {
    let invalid = |message: &str| botauth_core::Error::InvalidResponse {
        endpoint: display_endpoint(endpoint),
        status: 200,
        message: message.to_owned(),
    };
    let keys = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the JWKS has no `keys` array"))?;
    let mut map = HashMap::with_capacity(keys.len());
    for jwk in keys.iter().filter_map(parse_jwk) {
        if map.contains_key(&jwk.kid) {
            tracing::warn!(kid = %jwk.kid, "JWKS lists a kid twice; keeping the first");
            continue;
        }
        map.insert(jwk.kid.clone(), Arc::new(jwk));
    }
    if !map.values().any(|k| k.key.is_ok()) {
        return Err(invalid("the JWKS has no usable RSA signing key"));
    }
    Ok(map)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn rsa_jwk(bits: u32, kid: &str) -> Value {
        let rsa = Rsa::generate(bits).unwrap();
        json!({
            "kty": "RSA", "use": "sig", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec()),
        })
    }

    #[test]
    fn jwks_parsing_keeps_rsa_signing_keys_only() {
        let good = rsa_jwk(2048, "good");
        let weak = rsa_jwk(1024, "weak");
        let mut enc = rsa_jwk(2048, "enc");
        enc["use"] = json!("enc");
        let mut hs = rsa_jwk(2048, "hs");
        hs["alg"] = json!("HS256");
        let mut endorsed = rsa_jwk(2048, "endorsed");
        endorsed["endorsements"] = json!(["msteams", 7]);
        let mut garbled = rsa_jwk(2048, "garbled");
        garbled["endorsements"] = json!("msteams");
        let doc = json!({"keys": [
            good, weak, enc, hs, endorsed, garbled,
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kty": "oct", "kid": "oct", "k": "AA"},
            {"kty": "RSA", "n": "AA", "e": "AQAB"},
            {"kty": "RSA", "kid": "bad-n", "n": "!!", "e": "AQAB"},
            "not an object",
        ]});
        let keys = parse_jwks(&doc, "http://127.0.0.1/keys").unwrap();
        let mut kids: Vec<_> = keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        assert_eq!(kids, ["bad-n", "endorsed", "garbled", "good", "hs", "weak"]);
        assert!(keys["good"].key.is_ok());
        assert_eq!(
            keys["weak"].key.as_ref().err(),
            Some(&"RSA keys shorter than 2048 bits are not accepted")
        );
        assert!(keys["hs"].key.is_err());
        assert!(keys["bad-n"].key.is_err());
        assert_eq!(
            keys["endorsed"].endorsements(),
            Some(&["msteams".to_owned()][..])
        );
        assert_eq!(keys["garbled"].endorsements(), Some(&[][..]));
        assert_eq!(keys["good"].endorsements(), None);
        let e = keys["weak"]
            .verify(Algorithm::Rs256, b"x", b"y")
            .unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::UnusableKey);
    }

    /// The verify-context pool: contexts are reused per algorithm, a context that saw a bad
    /// signature (or a signature of the wrong size) is dropped, and a reused context still tells
    /// good from bad for every algorithm, in any order.
    #[test]
    fn verify_contexts_are_pooled_and_dropped_after_a_failure() {
        use openssl::hash::MessageDigest;
        use openssl::sign::Signer;
        let rsa = Rsa::generate(2048).unwrap();
        let private = PKey::from_rsa(rsa.clone()).unwrap();
        let doc = json!({"keys": [{"kty": "RSA", "kid": "k",
            "n": URL_SAFE_NO_PAD.encode(rsa.n().to_vec()),
            "e": URL_SAFE_NO_PAD.encode(rsa.e().to_vec())}]});
        let jwk = parse_jwks(&doc, "http://127.0.0.1/keys")
            .unwrap()
            .remove("k")
            .unwrap();
        let sign = |md: MessageDigest, input: &[u8]| {
            let mut s = Signer::new(md, &private).unwrap();
            s.sign_oneshot_to_vec(input).unwrap()
        };
        let cases = [
            (Algorithm::Rs256, MessageDigest::sha256()),
            (Algorithm::Rs384, MessageDigest::sha384()),
            (Algorithm::Rs512, MessageDigest::sha512()),
        ];
        for round in 0..3 {
            for (alg, md) in cases {
                let input = format!("header.payload-{round}");
                let good = sign(md, input.as_bytes());
                jwk.verify(alg, input.as_bytes(), &good).unwrap();
                assert_eq!(jwk.verifiers[alg.index()].idle(), 1, "{alg} reused");
                // Another input, the same signature: refused, and the context is dropped.
                let e = jwk.verify(alg, b"header.other", &good).unwrap_err();
                assert_eq!(e.kind(), crate::ErrorKind::BadSignature);
                let mut flipped = good.clone();
                flipped[10] ^= 1;
                jwk.verify(alg, input.as_bytes(), &flipped).unwrap_err();
                jwk.verify(alg, input.as_bytes(), &good[..100]).unwrap_err();
                // A signature made with another digest does not pass under this one.
                let (other, other_md) = cases[(alg.index() + 1) % 3];
                let wrong = sign(other_md, input.as_bytes());
                assert_eq!(
                    jwk.verify(alg, input.as_bytes(), &wrong)
                        .unwrap_err()
                        .kind(),
                    crate::ErrorKind::BadSignature,
                    "{alg} vs {other}"
                );
                // After the failures a fresh context verifies again.
                jwk.verify(alg, input.as_bytes(), &good).unwrap();
            }
        }
        // Many verifications at once never keep more than the bound idle.
        let input = b"header.payload";
        let good = sign(MessageDigest::sha256(), input);
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..20 {
                        jwk.verify(Algorithm::Rs256, input, &good).unwrap();
                    }
                });
            }
        });
        assert!(jwk.verifiers[0].idle() <= POOL_MAX);
    }
}
