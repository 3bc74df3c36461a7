//! Criterion benches of dex-policy's training workloads (see `common/mod.rs` for the
//! shapes; `benches/peers/torch_policy.py` runs the same in PyTorch).
//!
//! mimalloc is the global allocator here, with purging off, as in the `dex` binary
//! (see `dex_alloc`): candle allocates a buffer per op, and glibc's allocator maps and
//! unmaps the large ones every time.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn workloads(c: &mut Criterion) {
    dex_alloc::keep_freed_memory();
    let mut f = common::ppo_update();
    c.bench_function("ppo_update/obs96_mlp512-256-128_batch4096", |b| {
        b.iter(&mut f)
    });
    let mut f = common::sac_c51_update();
    c.bench_function("sac_c51_update/obs64_act16_hidden256ln_batch1024", |b| {
        b.iter(&mut f)
    });
    let mut f = common::sac_depth_update();
    c.bench_function(
        "sac_depth_update/img16x16_cnn32x3_obs64_act16_c51-101_batch512",
        |b| b.iter(&mut f),
    );
    let mut f = common::pointnet_forward();
    c.bench_function("pointnet_forward/64x512_3-64-128-256", |b| b.iter(&mut f));
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = workloads
}
criterion_main!(benches);
