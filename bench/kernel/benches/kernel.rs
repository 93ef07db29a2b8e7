//! CPU per event, the kernel: authenticate + parse + normalize + build the DynamoDB items of one
//! delivery, for every payload `bench/python/bodies.py` wrote (the seed fixtures and synthetic
//! Vox `call_ended` bodies of 1 KiB to 1 MiB). `bench/python/kernel.py` times the same bytes
//! through the Python reference; `make bench` puts the two side by side.
//!
//!     cargo bench -p callhook-bench --bench kernel [-- FILTER]
//!
//! Group `kernel`: one benchmark per payload, named after its file. Group `floor`: the same
//! payloads through what any receiver must spend on a body, the floor the kernel is compared to
//! (an HMAC-SHA256 and a SHA-256 of the body, and a validating parse that builds nothing). Group
//! `stage`: the 6.7 KiB and 1 MiB bodies through each step alone (auth, parse, item), to see
//! where the time goes.
#![allow(clippy::expect_used, missing_docs)]

use callhook::intake::{Delivery, Intake, intake};
use callhook::store::EventItems;
use callhook_bench::{RECEIVED_AT_MS, bodies_dir, config, kernel, payloads, signed_headers};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;

fn benches(c: &mut Criterion) {
    let dir = bodies_dir();
    let payloads = payloads(&dir).unwrap_or_else(|e| {
        panic!(
            "no payloads in {} ({e}): run `bench/.venv/bin/python bench/python/bodies.py` \
             (make bench does)",
            dir.display()
        )
    });
    let config = config().expect("the benchmark configuration is valid");

    let mut group = c.benchmark_group("kernel");
    for (payload, body) in &payloads {
        let headers =
            signed_headers(&config, &payload.provider, body).expect("the provider is configured");
        // The payload must take the stored path, not a refusal.
        let items = kernel(&config, &payload.provider, &headers, body)
            .unwrap_or_else(|e| panic!("{} is refused: {e}", payload.name));
        assert!(items.events >= 1, "{} is quarantined", payload.name);
        let id = payload
            .file
            .trim_end_matches(".json")
            .trim_end_matches(".form");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(id, |b| {
            b.iter(|| kernel(&config, &payload.provider, &headers, black_box(body)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("floor");
    for (payload, body) in &payloads {
        let form = payload.file.ends_with(".form");
        assert!(floor(body, form), "{} does not parse", payload.name);
        let id = payload
            .file
            .trim_end_matches(".json")
            .trim_end_matches(".form");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(id, |b| b.iter(|| floor(black_box(body), form)));
    }
    group.finish();

    let mut group = c.benchmark_group("stage");
    for (payload, body) in payloads.iter().filter(|(p, _)| {
        p.file.starts_with("vox_call_ended_6k7") || p.file.starts_with("vox_call_ended_1m")
    }) {
        let id = payload.file.trim_end_matches(".json");
        let headers =
            signed_headers(&config, &payload.provider, body).expect("the provider is configured");
        let provider = config.provider(&payload.provider).expect("configured");
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(format!("{id}/auth"), |b| {
            b.iter(|| {
                provider
                    .verifier
                    .verify(&headers, None, black_box(body), RECEIVED_AT_MS / 1000)
            })
        });
        let delivery = Delivery {
            method: "POST",
            provider: &payload.provider,
            headers: &headers,
            query_token: None,
            target: None,
            body,
            received_at_ms: RECEIVED_AT_MS,
        };
        group.bench_function(format!("{id}/intake"), |b| {
            b.iter(|| intake(&config, black_box(&delivery)))
        });
        let Ok(Intake::Events { events, body, .. }) = intake(&config, &delivery) else {
            panic!("{} is not stored", payload.name);
        };
        group.bench_function(format!("{id}/item"), |b| {
            b.iter(|| EventItems::for_delivery(&events, black_box(&body), None)?.to_attributes())
        });
    }
    group.finish();
}

/// The floor of one body: an HMAC-SHA256 of it (the signature check), a SHA-256 of it (the
/// dedupe key), and a parse that validates it and builds nothing (JSON into `IgnoredAny`; a form
/// walked pair by pair, each name and value percent-decoded).
fn floor(body: &[u8], form: bool) -> bool {
    use hmac::Mac;
    use sha2::Digest;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"bench-secret").expect("any key");
    mac.update(body);
    black_box(mac.finalize().into_bytes());
    black_box(sha2::Sha256::digest(body));
    if form {
        form_urlencoded::parse(body).fold(0, |n, (k, v)| n + k.len() + v.len()) > 0
    } else {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
    }
}

criterion_group! {
    name = kernel_benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50);
    targets = benches
}
criterion_main!(kernel_benches);
