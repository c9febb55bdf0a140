//! Shared pieces of the inbound-validator benchmarks: a sandbox, realistic channel tokens, and
//! the plain OpenSSL verification they are compared with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth::validator::{ActivityInfo, BotServiceProfile, Validator};
use botauth_sandbox::{ChannelTokenClaims, Sandbox};
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::md::Md;
use openssl::pkey::{PKey, Public};
use openssl::pkey_ctx::PkeyCtx;
use openssl::rsa::{Padding, Rsa};
use openssl::sha::Sha256;
use openssl::sign::Verifier;
use serde_json::{Value, json};

/// The bot's app id in the benchmarks.
pub const APP: &str = "9e1f3c2a-0000-4000-8000-00000000b07a";
/// The Teams service URL in the benchmarks.
pub const TEAMS: &str = "https://smba.trafficmanager.net/amer/";

/// The activity every benchmark token is checked against.
pub fn activity() -> ActivityInfo<'static> {
    ActivityInfo::new(TEAMS, "msteams")
}

/// `n` distinct channel tokens shaped like Bot Service's (RS256, `kid` + `x5t`, the usual claims).
pub fn channel_tokens(sandbox: &Sandbox, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let mut claims = ChannelTokenClaims::new(APP, TEAMS);
            claims.extra.insert("serviceurl".into(), json!(TEAMS));
            claims
                .extra
                .insert("jti".into(), json!(format!("bench-{i:08}")));
            sandbox.mint_channel_token(claims)
        })
        .collect()
}

/// A validator for the sandbox's Bot Service keys, fetched over HTTP.
pub fn validator(sandbox: &Sandbox, verified_cache: usize) -> Validator {
    Validator::builder(APP)
        .profile(BotServiceProfile::custom(
            sandbox.bot_service_metadata_url(),
            sandbox.bot_service_issuer(),
        ))
        .verified_token_cache(verified_cache)
        .build()
        .expect("validator")
}

/// The sandbox's current Bot Service public key, from its JWKS.
pub async fn bot_service_public_key(sandbox: &Sandbox) -> PKey<Public> {
    let url = sandbox
        .bot_service_metadata_url()
        .replace("openidconfiguration", "keys");
    let body = reqwest::get(url)
        .await
        .expect("jwks")
        .bytes()
        .await
        .expect("jwks body");
    let jwks: Value = serde_json::from_slice(&body).expect("jwks json");
    let kid = sandbox.bot_service_kid();
    let jwk = jwks["keys"]
        .as_array()
        .and_then(|keys| keys.iter().find(|k| k["kid"] == kid.as_str()))
        .expect("current key");
    let component = |name: &str| {
        let bytes = URL_SAFE_NO_PAD
            .decode(jwk[name].as_str().expect("component"))
            .expect("base64url");
        BigNum::from_slice(&bytes).expect("bignum")
    };
    let rsa = Rsa::from_public_components(component("n"), component("e")).expect("rsa");
    PKey::from_rsa(rsa).expect("pkey")
}

/// The bare OpenSSL work of checking one RS256 JWS: SHA-256 over the signing input and an
/// RSA-2048 PKCS#1 verification, nothing else (no parsing, no claims), written the usual way:
/// a new `Verifier` (OpenSSL's generic digest-and-verify path) per token. The figures before
/// issue 14 compared with this loop; they still print it.
pub fn openssl_verify(key: &PKey<Public>, token: &str) -> bool {
    let Some(dot) = token.rfind('.') else {
        return false;
    };
    let signature = URL_SAFE_NO_PAD
        .decode(&token[dot + 1..])
        .unwrap_or_default();
    Verifier::new(MessageDigest::sha256(), key)
        .and_then(|mut v| v.verify_oneshot(&signature, &token.as_bytes()[..dot]))
        .unwrap_or(false)
}

/// The best loop a JWT verifier built on OpenSSL can reach per token: one verify context,
/// initialised once (PKCS#1 padding, SHA-256) and reused; the signing input hashed with the
/// low-level SHA-256 functions; the signature decoded into a stack buffer. Nothing else.
pub struct ReusedVerifier {
    ctx: PkeyCtx<Public>,
}

impl std::fmt::Debug for ReusedVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReusedVerifier").finish_non_exhaustive()
    }
}

impl ReusedVerifier {
    /// A context for `key`, ready to verify RS256 signatures.
    pub fn new(key: &PKey<Public>) -> Self {
        let mut ctx = PkeyCtx::new(key).expect("context");
        ctx.verify_init().expect("verify_init");
        ctx.set_rsa_padding(Padding::PKCS1).expect("padding");
        ctx.set_signature_md(Md::sha256()).expect("digest");
        ReusedVerifier { ctx }
    }

    /// Checks one RS256 JWS.
    pub fn verify(&mut self, token: &str) -> bool {
        let Some(dot) = token.rfind('.') else {
            return false;
        };
        let mut signature = [0u8; 512];
        let Ok(len) = URL_SAFE_NO_PAD.decode_slice(&token[dot + 1..], &mut signature) else {
            return false;
        };
        let mut sha = Sha256::new();
        sha.update(&token.as_bytes()[..dot]);
        self.ctx
            .verify(&sha.finish(), &signature[..len])
            .unwrap_or(false)
    }
}
