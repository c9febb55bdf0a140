//! Criterion benchmarks of certificate-assertion signing next to a raw OpenSSL RSA-2048 loop.

use std::hint::black_box;

use botauth_benches::signing;
use criterion::{Criterion, criterion_group, criterion_main};

fn signing(c: &mut Criterion) {
    let assertion = signing::assertion();
    let key = signing::raw_key();
    let input = signing::raw_input();
    let mut group = c.benchmark_group("certificate_assertion");
    group.bench_function("botauth_rs256_assertion", |b| {
        b.iter(|| black_box(signing::botauth_sign(&assertion)))
    });
    group.bench_function("raw_openssl_rs256_2048", |b| {
        b.iter(|| black_box(signing::raw_sign(&key, black_box(&input))))
    });
    group.finish();
}

criterion_group!(benches, signing);
criterion_main!(benches);
