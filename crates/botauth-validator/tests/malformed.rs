//! Malformed and mutated tokens through the fuzz harness, on stable and deterministically: the
//! named cases of the issue with their exact outcomes, then many generated inputs that must all
//! end in a typed rejection without panicking.

mod harness;

use botauth_validator::ErrorKind;
use harness::{APP, Harness, ISSUER, KID, NOW, Rng, SERVICE_URL, b64, vector};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

fn bn(jwk: &Value, name: &str) -> BigNum {
    let bytes = base64::Engine::decode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        jwk[name].as_str().expect("component"),
    )
    .expect("base64url");
    BigNum::from_slice(&bytes).expect("bignum")
}

/// Signs with the RFC 7515 A.2 private key.
fn sign(header: &str, claims: &str) -> String {
    let k = &vector()["key"];
    let rsa = Rsa::from_private_components(
        bn(k, "n"),
        bn(k, "e"),
        bn(k, "d"),
        bn(k, "p"),
        bn(k, "q"),
        bn(k, "dp"),
        bn(k, "dq"),
        bn(k, "qi"),
    )
    .expect("rsa");
    let key = PKey::from_rsa(rsa).expect("pkey");
    let input = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let mut signer = Signer::new(MessageDigest::sha256(), &key).expect("signer");
    signer.update(input.as_bytes()).expect("update");
    format!("{input}.{}", b64(&signer.sign_to_vec().expect("sign")))
}

fn header() -> String {
    format!(r#"{{"alg":"RS256","kid":"{KID}","typ":"JWT"}}"#)
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": APP, "serviceurl": SERVICE_URL, "nbf": NOW, "exp": NOW + 3600})
}

fn kind(h: &Harness, authorization: &str) -> ErrorKind {
    let mut input = vec![0u8];
    input.extend_from_slice(authorization.as_bytes());
    h.run(&input).expect_err("must be rejected").kind()
}

#[test]
fn the_rfc_vector_key_signs_what_the_harness_accepts() {
    let h = Harness::new();
    // Our signer reproduces the RFC's signature exactly (PKCS#1 v1.5 is deterministic) ...
    let v = vector();
    let payload = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            v["payload_b64u"].as_str().unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        sign(v["protected"].as_str().unwrap(), &payload),
        v["compact"].as_str().unwrap()
    );
    // ... and the RFC token itself names no kid, so it is refused on that ground.
    assert_eq!(
        kind(&h, &format!("Bearer {}", v["compact"].as_str().unwrap())),
        ErrorKind::MissingKeyId
    );
    let token = sign(&header(), &claims().to_string());
    let mut input = vec![0u8];
    input.extend_from_slice(format!("Bearer {token}").as_bytes());
    let ok = h.run(&input).unwrap();
    assert_eq!(ok.audience(), APP);
}

#[test]
fn named_malformed_inputs_have_exact_outcomes() {
    let h = Harness::new();
    let token = sign(&header(), &claims().to_string());
    let segments: Vec<&str> = token.split('.').collect();
    let (hd, cl, sg) = (segments[0], segments[1], segments[2]);
    let with_claims = |c: Value| format!("Bearer {}", sign(&header(), &c.to_string()));
    let edit = |name: &str, value: Value| {
        let mut c = claims();
        c[name] = value;
        with_claims(c)
    };
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(5000), "]".repeat(5000));
    let cases: Vec<(String, ErrorKind)> = vec![
        (format!("Bearer {hd}.{cl}"), ErrorKind::Malformed),
        (format!("Bearer {hd}.{cl}.{sg}.{sg}"), ErrorKind::Malformed),
        (format!("Bearer {hd}.{cl}.{sg}."), ErrorKind::Malformed),
        (format!("Bearer {hd}.{cl}.{sg}=="), ErrorKind::Malformed),
        (
            format!("Bearer {hd}.{}.{sg}", cl.replace(['A', 'B'], "+")),
            ErrorKind::Malformed,
        ),
        (format!("Bearer {hd}.{cl}$.{sg}"), ErrorKind::Malformed),
        (
            format!(
                "Bearer {}.{cl}.{sg}",
                b64(format!(
                    r#"{{"alg":"RS256","kid":"{KID}","x":"{}"}}"#,
                    "y".repeat(4000)
                )
                .as_bytes())
            ),
            ErrorKind::TooLarge,
        ),
        (
            format!("Bearer {hd}.{}.{sg}", b64(deep.as_bytes())),
            ErrorKind::Malformed,
        ),
        (
            format!(
                "Bearer {}.{cl}.{sg}",
                b64(b"{\"alg\":\"RS256\",\"kid\":\"\xff\xfe\"}")
            ),
            ErrorKind::Malformed,
        ),
        (
            format!("Bearer {hd}.{}.{sg}", b64(b"{\"iss\":\"\xc3\x28\"}")),
            ErrorKind::Malformed,
        ),
        (
            format!("Bearer {hd}.{}.{sg}", b64(b"not json")),
            ErrorKind::Malformed,
        ),
        (
            format!("Bearer {hd}.{}.{sg}", b64(b"[]")),
            ErrorKind::Malformed,
        ),
        (
            format!(
                "Bearer {hd}.{}.{sg}",
                b64(format!(r#"{{"iss":"{ISSUER}","iss":"x"}}"#).as_bytes())
            ),
            ErrorKind::Malformed,
        ),
        (
            format!("Bearer {}", "A".repeat(20_000)),
            ErrorKind::TooLarge,
        ),
        (
            edit("exp", json!((NOW + 3600).to_string())),
            ErrorKind::ClaimType,
        ),
        (edit("exp", json!([NOW + 3600])), ErrorKind::ClaimType),
        (edit("nbf", json!({"t": NOW})), ErrorKind::ClaimType),
        (edit("aud", json!({"id": APP})), ErrorKind::ClaimType),
        (edit("iss", json!(null)), ErrorKind::ClaimType),
        (edit("serviceurl", json!(true)), ErrorKind::ClaimType),
        (edit("exp", json!(NOW - 300)), ErrorKind::Expired),
        ("Bearer \u{fffd}\u{fffd}".into(), ErrorKind::Malformed),
    ];
    for (i, (auth, expected)) in cases.iter().enumerate() {
        assert_eq!(kind(&h, auth), *expected, "case {i}: {:.60}", auth);
    }
    // Non-UTF-8 bytes in the header value itself reach the parser as replacement characters.
    let mut raw = b"\x00Bearer ".to_vec();
    raw.extend_from_slice(b"\xff\xfe.\x80.\x81");
    assert_eq!(h.run(&raw).unwrap_err().kind(), ErrorKind::Malformed);
}

#[test]
fn generated_inputs_never_panic_and_always_get_a_typed_rejection() {
    let h = Harness::new();
    let token = sign(&header(), &claims().to_string());
    let genuine = format!("Bearer {token}");
    let alphabet = b"ABCxyz019-_.=+/ {}\":,[]\\\x00\xff";
    let mut rng = Rng(0x0b07_a117);
    let mut kinds = std::collections::BTreeMap::new();
    for i in 0..20_000 {
        let mut input: Vec<u8> = match i % 4 {
            // Mutations of a genuine token: flips, deletions, insertions, truncation.
            0 | 1 => {
                let mut bytes = genuine.clone().into_bytes();
                for _ in 0..=rng.below(4) {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = rng.below(bytes.len());
                    match rng.below(4) {
                        0 => bytes[at] ^= 1 << rng.below(8),
                        1 => {
                            bytes.remove(at);
                        }
                        2 => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
                        _ => bytes.truncate(at),
                    }
                }
                let mut input = vec![0u8];
                input.extend(bytes);
                input
            }
            // Random bytes in every harness mode.
            _ => (0..rng.below(600)).map(|_| rng.next() as u8).collect(),
        };
        if i % 4 == 3 && !input.is_empty() {
            // Structured JSON-ish claims (mode 2) from the alphabet.
            input[0] = 2;
            for b in input.iter_mut().skip(1) {
                *b = alphabet[(*b as usize) % alphabet.len()];
            }
        }
        match h.run(&input) {
            Ok(_) => {
                // Only an unaltered token may pass (the scheme's case or spacing may change).
                let text = String::from_utf8_lossy(&input[1..]).into_owned();
                assert!(
                    text.contains(&token),
                    "a mutated token was accepted: {text:.80}"
                );
            }
            Err(e) => {
                assert!(e.is_rejection(), "{e:?}");
                *kinds.entry(e.kind().to_string()).or_insert(0u32) += 1;
            }
        }
    }
    // The generator reaches deep into the validator, not only the first check.
    for expected in ["malformed", "bad_signature", "bad_scheme", "algorithm"] {
        assert!(
            kinds.contains_key(expected),
            "no {expected} among {kinds:?}"
        );
    }
}
