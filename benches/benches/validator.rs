//! Criterion benchmarks of inbound validation: the full path, the verified-token cache hit, the
//! unknown-kid rejection, and the bare OpenSSL verification they compare with.

use std::hint::black_box;

use botauth_benches::validator::{
    activity, bot_service_public_key, channel_tokens, openssl_verify, validator,
};
use botauth_sandbox::Sandbox;
use criterion::{Criterion, criterion_group, criterion_main};

fn validation(c: &mut Criterion) {
    let server = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("server runtime");
    let sandbox = server.block_on(Sandbox::start()).expect("sandbox");
    let token = channel_tokens(&sandbox, 1).pop().expect("token");
    let key = server.block_on(bot_service_public_key(&sandbox));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // No verified-token cache: every call takes the full path, as a distinct token does.
    let full = validator(&sandbox, 0);
    let cached = validator(&sandbox, 10_000);
    runtime.block_on(async {
        full.validate(&token, activity()).await.expect("warm");
        cached.validate(&token, activity()).await.expect("warm");
    });
    let unknown_kid = {
        let (_, rest) = token.split_once('.').expect("jws");
        format!("eyJhbGciOiJSUzI1NiIsImtpZCI6InVua25vd24ifQ.{rest}")
    };

    let mut group = c.benchmark_group("validator");
    group.bench_function("openssl_rs256_verify", |b| {
        b.iter(|| assert!(openssl_verify(&key, black_box(&token))))
    });
    group.bench_function("validate_full_path", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                full.validate(black_box(&token), activity())
                    .await
                    .expect("valid"),
            )
        })
    });
    group.bench_function("validate_cache_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                cached
                    .validate(black_box(&token), activity())
                    .await
                    .expect("valid"),
            )
        })
    });
    group.bench_function("reject_unknown_kid", |b| {
        b.to_async(&runtime).iter(|| async {
            black_box(
                cached
                    .validate(black_box(&unknown_kid), activity())
                    .await
                    .expect_err("unknown kid"),
            )
        })
    });
    group.finish();
    drop(sandbox);
}

criterion_group!(benches, validation);
criterion_main!(benches);
