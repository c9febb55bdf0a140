//! The verified-token cache never changes an answer (issue 13 §5): genuinely signed tokens, judged
//! by a long-lived validator (the cache keeps a token from its second verification, so later
//! validations are hits) and by fresh ones (the full path), must get the same claims or the same
//! rejection. The harness is the one the fuzz target `fuzz/fuzz_targets/cache_agreement.rs`
//! drives; here it runs on stable, deterministically.

mod harness;

use std::collections::BTreeMap;

use botauth_validator::ErrorKind;
use harness::signed::{Activity, Case, OPEN_KID, Outcome, SignedHarness};
use harness::{APP, ISSUER, KID, NOW, Rng, SERVICE_URL};
use openssl::hash::MessageDigest;
use serde_json::json;

fn teams() -> Activity {
    Activity {
        service_url: Some(SERVICE_URL.to_owned()),
        channel_id: Some("msteams".to_owned()),
    }
}

fn case(h: &SignedHarness, kid: &str, second: Activity, second_at: i64, strict: bool) -> Case {
    let header = json!({"alg": "RS256", "kid": kid, "typ": "JWT"}).to_string();
    let claims = json!({"iss": ISSUER, "aud": APP, "serviceurl": SERVICE_URL,
        "nbf": NOW, "exp": NOW + 3600})
    .to_string();
    Case {
        token: h.sign(
            header.as_bytes(),
            claims.as_bytes(),
            MessageDigest::sha256(),
        ),
        strict_endorsements: strict,
        first: teams(),
        first_at: 0,
        second,
        second_at,
    }
}

#[test]
fn named_cases_agree_and_have_exact_outcomes() {
    let h = SignedHarness::new();
    let other_url = Activity {
        service_url: Some("https://smba.trafficmanager.net/amer/".to_owned()),
        ..teams()
    };
    let telegram = Activity {
        channel_id: Some("telegram".to_owned()),
        ..teams()
    };
    let same_url_other_spelling = Activity {
        service_url: Some("HTTPS://SMBA.TRAFFICMANAGER.NET/teams".to_owned()),
        ..teams()
    };
    use ErrorKind::*;
    // (case, kind of the first outcome, kind of the second; `None` is an acceptance).
    let cases = [
        (case(&h, KID, teams(), 60, false), None, None),
        (
            case(&h, KID, same_url_other_spelling, 60, false),
            None,
            None,
        ),
        // Cached at 0 s, judged again at `exp` + 300 s of skew (the first second `exp` excludes):
        // the hit path must expire it.
        (
            case(&h, KID, teams(), 3600 + 300, false),
            None,
            Some(Expired),
        ),
        (case(&h, KID, teams(), 3600 + 299, false), None, None),
        // Before `nbf` - 300 s, and exactly at it.
        (case(&h, KID, teams(), -301, false), None, Some(NotYetValid)),
        (case(&h, KID, teams(), -300, false), None, None),
        (case(&h, KID, other_url, 60, false), None, Some(ServiceUrl)),
        (
            case(&h, KID, telegram.clone(), 60, false),
            None,
            Some(Endorsement),
        ),
        // A key without endorsements: any channel in lax mode, none in strict mode.
        (case(&h, OPEN_KID, telegram, 60, false), None, None),
        (
            case(&h, OPEN_KID, teams(), 60, true),
            Some(Endorsement),
            Some(Endorsement),
        ),
    ];
    for (i, (case, first, second)) in cases.iter().enumerate() {
        let agreed = h.check(case).unwrap_or_else(|e| panic!("case {i}: {e}"));
        assert_eq!(
            (agreed.first.kind(), agreed.second.kind()),
            (*first, *second),
            "case {i}: {agreed:?}"
        );
    }
}

#[test]
fn generated_signed_tokens_get_the_same_answer_from_the_cache_and_the_full_path() {
    let h = SignedHarness::new();
    let mut rng = Rng(0x5eed_1305);
    let mut first_kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut second_kinds: BTreeMap<String, u32> = BTreeMap::new();
    let mut hits = 0;
    for i in 0..3_000 {
        let len = (rng.next() % 160) as usize;
        // Mostly zero bytes (the plausible choice), so that many tokens pass and the cache is
        // hit; every fourth input is uniformly random.
        let zero_bias = if i % 4 == 3 { 0 } else { 80 };
        let data: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                if (r % 100) < zero_bias {
                    0
                } else {
                    (r >> 8) as u8
                }
            })
            .collect();
        let agreed = h
            .run(&data)
            .unwrap_or_else(|e| panic!("input {i} {data:?}: {e}"));
        let name = |o: &Outcome| o.kind().map_or("accepted".to_owned(), |k| k.to_string());
        if matches!(agreed.first, Outcome::Accepted(_)) {
            hits += 1;
        }
        *first_kinds.entry(name(&agreed.first)).or_default() += 1;
        *second_kinds.entry(name(&agreed.second)).or_default() += 1;
    }
    // The generator reaches past the signature, and the second validation of an accepted token
    // (a cache hit) is judged by every per-request rule.
    assert!(hits > 300, "only {hits} accepted: {first_kinds:?}");
    for expected in [
        "accepted",
        "bad_signature",
        "malformed",
        "algorithm",
        "issuer",
        "audience",
        "expired",
        "not_yet_valid",
        "service_url",
        "endorsement",
        "claim_type",
        "missing_claim",
        "unknown_key_id",
        "missing_key_id",
        "critical_header",
    ] {
        assert!(
            first_kinds.contains_key(expected) || second_kinds.contains_key(expected),
            "no {expected} among {first_kinds:?} / {second_kinds:?}"
        );
    }
    for expected in ["expired", "service_url", "endorsement", "not_yet_valid"] {
        assert!(
            second_kinds.contains_key(expected),
            "no {expected} on the second validation: {second_kinds:?}"
        );
    }
}
