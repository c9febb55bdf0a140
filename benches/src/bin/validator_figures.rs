//! Prints the inbound validator's figures as JSON lines (one object per figure).
//!
//! `cargo run --release -p botauth-benches --bin validator-figures [distinct|repeated|flood]…`
//! (all three when none is named).
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use botauth::core::ManualClock;
use botauth::validator::{BotServiceProfile, ErrorKind, Validator};
use botauth_benches::validator::{
    APP, activity, bot_service_public_key, channel_tokens, openssl_verify, validator,
};
use botauth_sandbox::{Route, Sandbox};
use serde_json::json;

const DISTINCT: usize = 3_000;
const ROUNDS: usize = 3;
const REPEATS: u32 = 2_000_000;
const FLOOD: usize = 100_000;
const RATIO_TARGET: f64 = 0.80;
const REPEAT_TARGET: f64 = 1_000_000.0;

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn per_second(n: usize, elapsed: Duration) -> f64 {
    n as f64 / elapsed.as_secs_f64()
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Validates each token once with a fresh validator (warm keys, empty verified-token cache).
fn distinct_rate(rt: &tokio::runtime::Runtime, v: &Validator, tokens: &[String]) -> f64 {
    rt.block_on(async {
        let started = Instant::now();
        for t in tokens {
            black_box(v.validate(t, activity()).await.expect("valid token"));
        }
        per_second(tokens.len(), started.elapsed())
    })
}

/// The 1-minute load average, printed with each figure: these are one-core throughputs, and a
/// busy machine lowers them all alike.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let wanted: Vec<String> = std::env::args().skip(1).collect();
    let run = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    // The sandbox serves keys from its own thread; the measured work runs on this one.
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let sandbox = server.block_on(Sandbox::start()).expect("sandbox");
    let tokens = channel_tokens(&sandbox, 2 * DISTINCT + 1);
    let (warm, tokens) = tokens.split_last().expect("tokens");
    let key = server.block_on(bot_service_public_key(&sandbox));
    let rt = current_thread();
    let token_bytes = warm.len();

    let mut best_validator = 0.0f64;
    if run("distinct") {
        // Figure 1: distinct valid tokens per second vs OpenSSL RSA-2048 verifications per second,
        // interleaved rounds in one run, best of each.
        let mut best_openssl = 0.0f64;
        for _ in 0..ROUNDS {
            let v = validator(&sandbox, 10_000);
            rt.block_on(v.validate(warm, activity())).expect("warm-up");
            best_validator = best_validator.max(distinct_rate(&rt, &v, &tokens[..DISTINCT]));
            let started = Instant::now();
            for t in &tokens[..DISTINCT] {
                assert!(black_box(openssl_verify(&key, t)));
            }
            best_openssl = best_openssl.max(per_second(DISTINCT, started.elapsed()));
        }
        let ratio = best_validator / best_openssl;
        println!(
            "{}",
            json!({
                "figure": "distinct_valid_tokens_per_second",
                "unit": "tokens/s",
                "threads": 1,
                "tokens": DISTINCT,
                "token_bytes": token_bytes,
                "validator": best_validator.round(),
                "openssl_rsa2048_verify": best_openssl.round(),
                "ratio": round(ratio),
                "target_ratio_min": RATIO_TARGET,
                "met": ratio >= RATIO_TARGET,
                "load_average_1m": load_average(),
            })
        );
    }

    if run("repeated") {
        // Figure 2: the same token again and again (verified-token cache hits).
        let v = validator(&sandbox, 10_000);
        let rate = rt.block_on(async {
            v.validate(warm, activity()).await.expect("warm-up");
            let started = Instant::now();
            for _ in 0..REPEATS {
                black_box(
                    v.validate(black_box(warm), activity())
                        .await
                        .expect("valid"),
                );
            }
            per_second(REPEATS as usize, started.elapsed())
        });
        println!(
            "{}",
            json!({
                "figure": "repeated_token_validations_per_second",
                "unit": "validations/s",
                "threads": 1,
                "validations": REPEATS,
                "value": rate.round(),
                "target_min": REPEAT_TARGET,
                "met": rate >= REPEAT_TARGET,
                "load_average_1m": load_average(),
            })
        );
    }

    if run("flood") {
        // Figure 3: 100,000 tokens with random kids. On one thread, each genuine token is preceded
        // by its share of the flood (33 or 34 random-kid tokens); the genuine validations are timed
        // alone and compared with the same measurement without a flood, round by round. The clock
        // stands one cooldown after the warm-up fetch, so a whole flood falls in one cooldown
        // window: at most one refetch.
        let (header_claims, signature) = {
            let dot = warm.rfind('.').expect("jws");
            let claims = warm[..dot].split('.').nth(1).expect("claims").to_owned();
            (claims, warm[dot + 1..].to_owned())
        };
        let flood: Vec<String> = (0..FLOOD)
            .map(|i| {
                let kid = format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let header = json!({"alg": "RS256", "typ": "JWT", "kid": kid});
                format!(
                    "{}.{header_claims}.{signature}",
                    URL_SAFE_NO_PAD.encode(header.to_string())
                )
            })
            .collect();
        let genuine = &tokens[DISTINCT..];
        let per_token = FLOOD.div_ceil(genuine.len());
        let (mut best_quiet, mut best_during, mut max_fetches, mut all_unknown) =
            (0.0f64, 0.0f64, 0, true);
        let mut flood_rate = 0.0f64;
        for _ in 0..ROUNDS {
            for flooded in [false, true] {
                let clock = Arc::new(ManualClock::new());
                let v = Validator::builder(APP)
                    .bot_service(BotServiceProfile::custom(
                        sandbox.bot_service_metadata_url(),
                        sandbox.bot_service_issuer(),
                    ))
                    .clock(clock.clone())
                    .build()
                    .expect("validator");
                let before = sandbox.count(Route::BotServiceJwks);
                let (valid_time, flood_time, unknown) = rt.block_on(async {
                    v.validate(warm, activity()).await.expect("warm-up");
                    clock.advance(Duration::from_secs(300));
                    let (mut valid_time, mut flood_time, mut unknown) =
                        (Duration::ZERO, Duration::ZERO, 0);
                    let mut attack = flood.iter();
                    for t in genuine {
                        if flooded {
                            let started = Instant::now();
                            for bad in attack.by_ref().take(per_token) {
                                if let Err(e) = v.validate(bad, activity()).await {
                                    unknown += usize::from(e.kind() == ErrorKind::UnknownKeyId);
                                }
                            }
                            flood_time += started.elapsed();
                        }
                        let started = Instant::now();
                        black_box(v.validate(t, activity()).await.expect("valid token"));
                        valid_time += started.elapsed();
                    }
                    (valid_time, flood_time, unknown)
                });
                let rate = per_second(genuine.len(), valid_time);
                if flooded {
                    best_during = best_during.max(rate);
                    max_fetches = max_fetches.max(
                        sandbox
                            .count(Route::BotServiceJwks)
                            .saturating_sub(before + 1),
                    );
                    all_unknown &= unknown == FLOOD;
                    flood_rate = flood_rate.max(per_second(FLOOD, flood_time));
                } else {
                    best_quiet = best_quiet.max(rate);
                }
            }
        }
        let flood_ratio = best_during / best_quiet;
        println!(
            "{}",
            json!({
                "figure": "random_kid_flood",
                "threads": 1,
                "flood_tokens": FLOOD,
                "genuine_tokens": genuine.len(),
                "rounds": ROUNDS,
                "all_rejected_unknown_kid": all_unknown,
                "flood_rejections_per_second": flood_rate.round(),
                "jwks_fetches_per_flood_max": max_fetches,
                "cooldown_windows_per_flood": 1,
                "target_max_jwks_fetches": 1,
                "valid_tokens_per_second_during_flood": best_during.round(),
                "valid_tokens_per_second_undisturbed": best_quiet.round(),
                "ratio": round(flood_ratio),
                "target_ratio_min": RATIO_TARGET,
                "met": max_fetches <= 1 && all_unknown && flood_ratio >= RATIO_TARGET,
                "load_average_1m": load_average(),
            })
        );
    }
    drop(sandbox);
}
