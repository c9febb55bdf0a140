//! Genuinely signed tokens with fuzzed contents, shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/cache_agreement.rs` and the stable test `tests/cache_agreement.rs`.
//!
//! The harness in `mod.rs` feeds bytes that almost never carry a valid signature, so the fuzzer
//! stops at signature verification. Here every header and claim set is signed with the RFC 7515
//! A.2 private key, whose public half is the harness's fixed JWKS: what follows the signature
//! check (claims rules, `serviceurl`, endorsements, time) and the verified-token cache are reached.
//!
//! The property checked is that the cache never changes an answer. A token is validated twice
//! against a long-lived validator, whose cache it may already be in from an earlier input and
//! which it enters on success (so the second call is a hit), each time with a possibly different
//! activity and clock; and each time against a fresh validator (an empty cache: the full path). Both
//! must agree on accept or reject, on the claims, and on the rejection's kind and message.
#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use botauth_core::ManualClock;
use botauth_validator::{
    ActivityInfo, BotClaims, BotServiceProfile, Error, ErrorKind, Validator, dangerous,
};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::sign::Signer;
use serde_json::{Value, json};

use super::{APP, ISSUER, KID, METADATA, NOW, SERVICE_URL, b64, vector};

/// A second name for the same key material, listing no endorsements (the lax-mode case).
pub const OPEN_KID: &str = "rfc7515-a2-open";

/// Reads the fuzzer's bytes as a sequence of choices; past the end every read is 0, which always
/// selects the plausible option, so short inputs are valid tokens.
struct Choices<'a> {
    data: &'a [u8],
}

impl<'a> Choices<'a> {
    fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// Index `0` (the plausible option) unless the byte's top bit is set; otherwise an index into
    /// `n` options. A random byte thus picks the plausible option half the time.
    fn pick(&mut self, n: usize) -> usize {
        let b = self.byte();
        if b < 0x80 || n <= 1 {
            0
        } else {
            usize::from(b & 0x7f) % n
        }
    }

    fn offset(&mut self) -> i64 {
        // Minutes and a few seconds, about ±2 h: enough to cross `exp`, `nbf` and the skew.
        let minutes = i64::from(self.byte() as i8);
        minutes * 60 + i64::from(self.byte() % 16)
    }

    /// A length-prefixed run of raw bytes (at most 255).
    fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.byte()).min(self.data.len());
        let (taken, rest) = self.data.split_at(len);
        self.data = rest;
        taken
    }

    fn text(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }
}

/// The activity a token is judged against.
#[derive(Debug, Clone)]
pub struct Activity {
    /// `None`: [`dangerous::unchecked_activity`] (as `botauth validate` without flags).
    pub service_url: Option<String>,
    pub channel_id: Option<String>,
}

impl Activity {
    fn read(c: &mut Choices<'_>) -> Activity {
        let service_url = match c.pick(9) {
            0 => Some(SERVICE_URL.to_owned()),
            1 => Some("HTTPS://SMBA.TRAFFICMANAGER.NET/TEAMS/".to_owned()),
            2 => Some(SERVICE_URL.trim_end_matches('/').to_owned()),
            3 => Some(format!("{SERVICE_URL}/")),
            4 => Some("https://smba.trafficmanager.net/amer/".to_owned()),
            5 => Some(String::new()),
            6 => None,
            _ => Some(c.text()),
        };
        let channel_id = match c.pick(7) {
            0 => Some("msteams".to_owned()),
            1 => Some("webchat".to_owned()),
            2 => Some("MSTEAMS".to_owned()),
            3 => Some(String::new()),
            4 => None,
            _ => Some(c.text()),
        };
        Activity {
            service_url,
            channel_id,
        }
    }

    fn info(&self) -> ActivityInfo<'_> {
        let mut info = dangerous::unchecked_activity();
        if let Some(url) = &self.service_url {
            info = info.with_service_url(url);
        }
        if let Some(channel) = &self.channel_id {
            info = info.with_channel_id(channel);
        }
        info
    }
}

/// One decoded input: a token and the two moments it is judged at.
#[derive(Debug, Clone)]
pub struct Case {
    pub token: String,
    pub strict_endorsements: bool,
    pub first: Activity,
    pub first_at: i64,
    pub second: Activity,
    pub second_at: i64,
}

/// A JSON member as text, so that members can be repeated or malformed on purpose.
fn member(name: &str, value: &str) -> String {
    format!("{}:{value}", json!(name))
}

fn string(s: &str) -> String {
    json!(s).to_string()
}

fn header(c: &mut Choices<'_>) -> (Vec<u8>, MessageDigest) {
    if c.pick(12) == 11 {
        // Any bytes at all, signed with SHA-256.
        return (c.bytes().to_vec(), MessageDigest::sha256());
    }
    let (alg, digest) = match c.pick(8) {
        0 => (Some("RS256"), MessageDigest::sha256()),
        1 => (Some("RS384"), MessageDigest::sha384()),
        2 => (Some("RS512"), MessageDigest::sha512()),
        3 => (Some("none"), MessageDigest::sha256()),
        4 => (Some("HS256"), MessageDigest::sha256()),
        5 => (Some("PS256"), MessageDigest::sha256()),
        6 => (Some("rs256"), MessageDigest::sha256()),
        _ => (None, MessageDigest::sha256()),
    };
    // The digest actually used to sign need not be the one `alg` names.
    let digest = match c.pick(4) {
        0 => digest,
        1 => MessageDigest::sha256(),
        2 => MessageDigest::sha384(),
        _ => MessageDigest::sha512(),
    };
    let mut members = Vec::new();
    if let Some(alg) = alg {
        members.push(member("alg", &string(alg)));
    }
    match c.pick(6) {
        0 => members.push(member("kid", &string(KID))),
        1 => members.push(member("kid", &string(OPEN_KID))),
        2 => members.push(member("kid", &string("unknown"))),
        3 => members.push(member("kid", "7")),
        4 => {}
        _ => members.push(member("kid", &string(&c.text()))),
    }
    match c.pick(6) {
        0 => members.push(member("typ", &string("JWT"))),
        1 => {}
        2 => members.push(member("crit", r#"["exp"]"#)),
        3 => members.push(member("jku", &string("https://evil.example/keys"))),
        4 => members.push(member("alg", &string("none"))),
        _ => members.push(format!("{}:{}", string(&c.text()), c.text())),
    }
    (format!("{{{}}}", members.join(",")).into_bytes(), digest)
}

fn claims(c: &mut Choices<'_>) -> Vec<u8> {
    if c.pick(12) == 11 {
        return c.bytes().to_vec();
    }
    let mut members = Vec::new();
    let mut add = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            members.push(member(name, &value));
        }
    };
    let iss = match c.pick(6) {
        0 => Some(string(ISSUER)),
        1 => Some(string(&format!("{ISSUER}/"))),
        2 => Some(string("https://API.botframework.com")),
        3 => None,
        4 => Some("1".to_owned()),
        _ => Some(string(&c.text())),
    };
    add("iss", iss);
    let aud = match c.pick(8) {
        0 => Some(string(APP)),
        1 => Some(json!([APP]).to_string()),
        2 => Some(json!([APP, "other"]).to_string()),
        3 => Some(json!(["other", APP]).to_string()),
        4 => Some(string("other")),
        5 => None,
        6 => Some("null".to_owned()),
        _ => Some("[]".to_owned()),
    };
    add("aud", aud);
    let exp = match c.pick(7) {
        0 => Some((NOW + 3600).to_string()),
        1 => Some((NOW as i64 + c.offset()).to_string()),
        2 => None,
        3 => Some(string(&(NOW + 3600).to_string())),
        4 => Some(format!("{}.5", NOW as i64 + c.offset())),
        5 => Some("1e20".to_owned()),
        _ => Some("-1".to_owned()),
    };
    add("exp", exp);
    let nbf = match c.pick(5) {
        0 => None,
        1 => Some(NOW.to_string()),
        2 => Some((NOW as i64 + c.offset()).to_string()),
        3 => Some("null".to_owned()),
        _ => Some(string("soon")),
    };
    add("nbf", nbf);
    let service_url = match c.pick(9) {
        0 => Some(string(SERVICE_URL)),
        1 => Some(string("https://SMBA.trafficmanager.net/teams")),
        2 => Some(string(SERVICE_URL.trim_end_matches('/'))),
        3 => Some(string(&format!("{SERVICE_URL}/"))),
        4 => Some(string("https://smba.trafficmanager.net/amer/")),
        5 => None,
        6 => Some("42".to_owned()),
        7 => Some(string("")),
        _ => Some(string(&c.text())),
    };
    add("serviceurl", service_url);
    match c.pick(6) {
        0 => {}
        1 => add("appid", Some(string("caller-app"))),
        2 => add("azp", Some(string("caller-app"))),
        3 => add("appid", Some("[1]".to_owned())),
        4 => add("ver", Some(string("1.0"))),
        _ => {
            let name = c.text();
            let value = c.text();
            add(&name, Some(value));
        }
    }
    // A member given twice (a duplicate must be refused whichever value would win).
    if c.pick(4) == 3 && !members.is_empty() {
        let i = usize::from(c.byte()) % members.len();
        members.push(members[i].clone());
    }
    format!("{{{}}}", members.join(",")).into_bytes()
}

/// Signs fuzzed contents with the RFC 7515 A.2 private key, and runs the agreement check.
pub struct SignedHarness {
    key: PKey<Private>,
    clock: Arc<ManualClock>,
    /// Long-lived validators, whose verified-token caches fill up across inputs.
    warm: Validator,
    warm_strict: Validator,
    runtime: tokio::runtime::Runtime,
}

fn bignum(jwk: &Value, name: &str) -> BigNum {
    let text = jwk[name].as_str().expect("an RSA key component");
    let bytes = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, text)
        .expect("base64url");
    BigNum::from_slice(&bytes).expect("a big number")
}

/// The outcome of one validation, reduced to what must agree.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Accepted(BotClaims),
    Rejected { kind: ErrorKind, message: String },
}

impl Outcome {
    fn of(result: Result<BotClaims, Error>) -> Outcome {
        match result {
            Ok(claims) => Outcome::Accepted(claims),
            Err(e) => Outcome::Rejected {
                kind: e.kind(),
                message: e.to_string(),
            },
        }
    }

    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            Outcome::Accepted(_) => None,
            Outcome::Rejected { kind, .. } => Some(*kind),
        }
    }
}

/// What one input led to, when the cached and the full path agreed.
#[derive(Debug, Clone, PartialEq)]
pub struct Agreed {
    pub first: Outcome,
    pub second: Outcome,
}

impl SignedHarness {
    pub fn new() -> Self {
        let k = &vector()["key"];
        let rsa = Rsa::from_private_components(
            bignum(k, "n"),
            bignum(k, "e"),
            bignum(k, "d"),
            bignum(k, "p"),
            bignum(k, "q"),
            bignum(k, "dp"),
            bignum(k, "dq"),
            bignum(k, "qi"),
        )
        .expect("the RFC 7515 A.2 private key");
        let key = PKey::from_rsa(rsa).expect("a private key");
        let clock = Arc::new(ManualClock::new());
        clock.set(UNIX_EPOCH + Duration::from_secs(NOW));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("harness runtime");
        SignedHarness {
            key,
            // The default capacity: over a long fuzzing run, eviction is exercised too.
            warm: Self::validator_with(&clock, false, 10_000),
            warm_strict: Self::validator_with(&clock, true, 10_000),
            clock,
            runtime,
        }
    }

    fn validator_with(clock: &Arc<ManualClock>, strict: bool, cache: usize) -> Validator {
        let key = &vector()["key"];
        let endorsed = json!({"kty": "RSA", "use": "sig", "kid": KID, "n": key["n"], "e": key["e"],
            "endorsements": ["msteams", "webchat"]});
        let open =
            json!({"kty": "RSA", "use": "sig", "kid": OPEN_KID, "n": key["n"], "e": key["e"]});
        Validator::builder(APP)
            .profile(BotServiceProfile::public())
            .fixed_jwks(METADATA, json!({ "keys": [endorsed, open] }))
            .settings(botauth_http::ClientSettings::new().clock(Arc::<ManualClock>::clone(clock)))
            .strict_endorsements(strict)
            .verified_token_cache(cache)
            .build()
            .expect("harness validator")
    }

    /// Signs `header.claims` with the harness key.
    pub fn sign(&self, header: &[u8], claims: &[u8], digest: MessageDigest) -> String {
        let input = format!("{}.{}", b64(header), b64(claims));
        let mut signer = Signer::new(digest, &self.key).expect("a signer");
        signer.update(input.as_bytes()).expect("signing");
        let signature = signer.sign_to_vec().expect("a signature");
        format!("{input}.{}", b64(&signature))
    }

    /// Decodes one input.
    pub fn case(&self, data: &[u8]) -> Case {
        let mut c = Choices { data };
        let (header, digest) = header(&mut c);
        let claims = claims(&mut c);
        let mut token = self.sign(&header, &claims, digest);
        match c.pick(6) {
            // A signature over other bytes: flip one bit of it.
            1 => {
                let (input, signature) = token.rsplit_once('.').expect("three segments");
                let mut raw = base64::Engine::decode(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD,
                    signature,
                )
                .expect("our own base64url");
                let at = usize::from(c.byte()) % raw.len();
                raw[at] ^= 1 << (c.byte() % 8);
                token = format!("{input}.{}", b64(&raw));
            }
            // Claims swapped after signing.
            2 => {
                let mut parts: Vec<&str> = token.split('.').collect();
                let other = b64(br#"{"iss":"https://api.botframework.com"}"#);
                parts[1] = &other;
                token = parts.join(".");
            }
            3 => token.push_str(".x"),
            4 => token = token.replace('.', ".."),
            _ => {}
        }
        Case {
            token,
            strict_endorsements: c.byte() & 1 == 1,
            first_at: c.offset(),
            first: Activity::read(&mut c),
            second_at: c.offset(),
            second: Activity::read(&mut c),
        }
    }

    fn validate(&self, validator: &Validator, token: &str, activity: &Activity) -> Outcome {
        Outcome::of(
            self.runtime
                .block_on(validator.validate(token, activity.info())),
        )
    }

    fn at(&self, offset: i64) {
        let secs = (NOW as i64).saturating_add(offset).max(0) as u64;
        self.clock.set(UNIX_EPOCH + Duration::from_secs(secs));
    }

    /// Runs one input: `Ok` with the agreed outcomes, or `Err` describing a disagreement (a bug).
    pub fn run(&self, data: &[u8]) -> Result<Agreed, String> {
        let case = self.case(data);
        self.check(&case)
    }

    pub fn check(&self, case: &Case) -> Result<Agreed, String> {
        let warm = if case.strict_endorsements {
            &self.warm_strict
        } else {
            &self.warm
        };
        let fresh = || Self::validator_with(&self.clock, case.strict_endorsements, 10_000);
        let agree = |what: &str, cached: &Outcome, full: &Outcome| {
            if cached == full {
                Ok(())
            } else {
                Err(format!(
                    "{what}: the long-lived validator said {cached:?}, a fresh one {full:?}\n{case:?}"
                ))
            }
        };
        // First: a miss, or a hit left by an earlier input at another time; twice, since the
        // cache keeps a token from its second verification on.
        self.at(case.first_at);
        let first = self.validate(warm, &case.token, &case.first);
        let first_full = self.validate(&fresh(), &case.token, &case.first);
        agree("first validation", &first, &first_full)?;
        let repeat = self.validate(warm, &case.token, &case.first);
        agree("first validation, repeated", &repeat, &first_full)?;
        // Second: a hit whenever the first was accepted.
        self.at(case.second_at);
        let second = self.validate(warm, &case.token, &case.second);
        let second_full = self.validate(&fresh(), &case.token, &case.second);
        agree("second validation", &second, &second_full)?;
        // And once more: a hit, or a repeat of the full path.
        let third = self.validate(warm, &case.token, &case.second);
        agree("third validation", &third, &second_full)?;
        // A validator without a cache is the full path on every call.
        let uncached = Self::validator_with(&self.clock, case.strict_endorsements, 0);
        let twice = [
            self.validate(&uncached, &case.token, &case.second),
            self.validate(&uncached, &case.token, &case.second),
        ];
        agree("uncached validator", &twice[0], &second_full)?;
        agree("uncached validator, again", &twice[1], &second_full)?;
        for outcome in [&first, &second] {
            if let Outcome::Accepted(claims) = outcome {
                if claims.audience() != APP || claims.issuer() != ISSUER {
                    return Err(format!("accepted with foreign claims: {claims:?}"));
                }
            }
        }
        Ok(Agreed { first, second })
    }
}

impl Default for SignedHarness {
    fn default() -> Self {
        Self::new()
    }
}
