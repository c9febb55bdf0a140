//! Criterion benchmarks of the token cache's hit path.

use botauth::TokenRequest;
use botauth_benches::{SCOPE, warm_manager};
use criterion::{Criterion, criterion_group, criterion_main};

fn cache_hit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (manager, request) = runtime.block_on(warm_manager());
    let mut group = c.benchmark_group("token_manager");
    group.bench_function("get_token_cache_hit", |b| {
        b.to_async(&runtime).iter(|| async {
            std::hint::black_box(manager.get_token(&request).await.expect("token"))
        })
    });
    // Same key spelled differently (order, duplicates): still no allocation on the hit path.
    let messy = TokenRequest::with_scopes([SCOPE, SCOPE]);
    group.bench_function("get_token_cache_hit_unnormalized_scopes", |b| {
        b.to_async(&runtime).iter(|| async {
            std::hint::black_box(manager.get_token(&messy).await.expect("token"))
        })
    });
    group.finish();
}

criterion_group!(benches, cache_hit);
criterion_main!(benches);
