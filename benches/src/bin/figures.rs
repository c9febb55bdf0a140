//! Prints botauth's headline figures as JSON lines (one object per figure).
//!
//! `cargo run --release -p botauth-benches --bin figures`
#![allow(clippy::print_stdout)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use botauth::{BotAuth, BotAuthConfig};
use botauth_benches::cpu::Stopwatch;
use botauth_benches::{signing, warm_manager};
use botauth_sandbox::{DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID, Fault, Route, Sandbox};
use serde_json::json;

const HIT_TARGET_NS: f64 = 80.0;
const CALLERS: usize = 10_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Cache-hit `get_token` latency on one core: a current-thread runtime, batches of calls, each
/// batch timed by the thread's time on the CPU (the machine may be shared with other work).
fn cache_hit() -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (manager, request) = runtime.block_on(warm_manager());
    const BATCH: u32 = 10_000;
    const BATCHES: usize = 600;
    let mut clock = "wall";
    let mut per_call = Vec::with_capacity(BATCHES);
    runtime.block_on(async {
        for round in 0..BATCHES + 60 {
            let started = Stopwatch::start();
            clock = started.clock();
            for _ in 0..BATCH {
                black_box(manager.get_token(&request).await.expect("token"));
            }
            // The first 60 batches warm caches and branch predictors.
            if round >= 60 {
                per_call.push(started.elapsed().as_nanos() as f64 / f64::from(BATCH));
            }
        }
    });
    per_call.sort_by(f64::total_cmp);
    let median = percentile(&per_call, 0.5);
    json!({
        "figure": "cache_hit_get_token_latency",
        "unit": "ns",
        "median": (median * 10.0).round() / 10.0,
        "p99": (percentile(&per_call, 0.99) * 10.0).round() / 10.0,
        "calls": BATCHES as u64 * u64::from(BATCH),
        "threads": 1,
        "clock": clock,
        "target_median_max": HIT_TARGET_NS,
        "met": median <= HIT_TARGET_NS,
    })
}

/// Token requests caused by 10,000 concurrent callers on a cold key, through real HTTP.
fn cold_key_callers() -> serde_json::Value {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let sandbox = Sandbox::start().await.expect("sandbox");
        // A realistic token endpoint takes tens of milliseconds; callers keep arriving meanwhile.
        sandbox.inject(Route::Token, Fault::Delay(Duration::from_millis(50)));
        let config = BotAuthConfig::from_vars([
            ("CLIENT_ID", DEMO_CLIENT_ID.to_owned()),
            ("CLIENT_SECRET", DEMO_CLIENT_SECRET.to_owned()),
            ("TENANT_ID", DEMO_TENANT_ID.to_owned()),
            ("BOTAUTH_AUTHORITY_HOST", sandbox.url()),
        ])
        .expect("config");
        let auth = BotAuth::from_config(config).expect("credential");
        let started = Instant::now();
        let tasks: Vec<_> = (0..CALLERS)
            .map(|_| {
                let auth = auth.clone();
                tokio::spawn(async move { auth.connector_token().await })
            })
            .collect();
        let mut ok = 0usize;
        for task in tasks {
            if matches!(task.await, Ok(Ok(_))) {
                ok += 1;
            }
        }
        let elapsed = started.elapsed();
        let requests = sandbox.count(Route::Token);
        json!({
            "figure": "cold_key_concurrent_callers",
            "callers": CALLERS,
            "succeeded": ok,
            "token_requests": requests,
            "elapsed_ms": elapsed.as_millis() as u64,
            "target_token_requests": 1,
            "met": requests == 1 && ok == CALLERS,
        })
    })
}

/// Certificate-assertion signing throughput next to a raw OpenSSL RSA-2048 signing loop, measured
/// in the same run, interleaved in rounds (who goes first taking turns) so that frequency changes
/// and other work hit both alike, each timed by the thread's time on the CPU. The throughputs are
/// the totals'; the ratio is the median of the rounds' own ratios.
fn assertion_signing() -> serde_json::Value {
    const ROUNDS: usize = 20;
    const PER_ROUND: usize = 100;
    // Issue 14 keeps assertion signing within 5 % of the raw loop.
    const TARGET_RATIO: f64 = 0.95;
    let assertion = signing::assertion();
    let key = signing::raw_key();
    let input = signing::raw_input();
    // Warm-up.
    for _ in 0..50 {
        black_box(signing::botauth_sign(&assertion));
        black_box(signing::raw_sign(&key, &input));
    }
    let (mut ours, mut raw) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut spent = [Duration::ZERO; 2];
        for which in [round % 2, 1 - round % 2] {
            let started = Stopwatch::start();
            for _ in 0..PER_ROUND {
                if which == 0 {
                    black_box(signing::botauth_sign(&assertion));
                } else {
                    black_box(signing::raw_sign(&key, black_box(&input)));
                }
            }
            spent[which] = started.elapsed();
        }
        ours += spent[0];
        raw += spent[1];
        // Signatures per second, ours over raw: the raw loop's time over ours.
        ratios.push(spent[1].as_secs_f64() / spent[0].as_secs_f64());
    }
    ratios.sort_by(f64::total_cmp);
    let ratio = (ratios[ROUNDS / 2 - 1] + ratios[ROUNDS / 2]) / 2.0;
    let n = (ROUNDS * PER_ROUND) as f64;
    let ours_per_s = n / ours.as_secs_f64();
    let raw_per_s = n / raw.as_secs_f64();
    json!({
        "figure": "certificate_assertion_signing",
        "unit": "signatures_per_s",
        "botauth_rs256_assertion": ours_per_s.round(),
        "raw_openssl_rs256_2048": raw_per_s.round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "signatures_each": ROUNDS * PER_ROUND,
        "threads": 1,
        "clock": Stopwatch::start().clock(),
        "ratios": "median of the rounds' ratios",
        "target_ratio_min": TARGET_RATIO,
        "met": ratio >= TARGET_RATIO,
    })
}

fn main() {
    println!("{}", cache_hit());
    println!("{}", cold_key_callers());
    println!("{}", assertion_signing());
}
