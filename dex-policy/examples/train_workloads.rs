//! Times dex-policy's training workloads (the criterion bench's, see
//! `benches/common/mod.rs`) on one thread and prints one line each:
//! `NAME ms_per_call`. The PyTorch side-by-side (`benches/peers/torch_policy.py`) runs
//! this and compares. mimalloc is the global allocator with purging off, as in the
//! `dex` binary (see `dex_alloc`).
//!
//! ```sh
//! RAYON_NUM_THREADS=1 cargo run --release -p dex-policy --example train_workloads -- [SECONDS] [WORKLOAD]
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::time::Instant;

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

/// Calls `f` for about `seconds` after 3 warm-up calls; returns ms per call.
fn time(mut f: impl FnMut(), seconds: f64) -> f64 {
    for _ in 0..3 {
        f();
    }
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 3 || start.elapsed().as_secs_f64() < seconds {
        f();
        calls += 1;
    }
    start.elapsed().as_secs_f64() * 1e3 / f64::from(calls)
}

fn main() {
    dex_alloc::keep_freed_memory();
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("SECONDS must be a number"))
        .unwrap_or(5.0);
    // An optional second argument runs one workload only (for profiling).
    let only = std::env::args().nth(2);
    let wanted = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if wanted("ppo_update") {
        println!("ppo_update {:.3}", time(common::ppo_update(), seconds));
    }
    if wanted("sac_c51_update") {
        let ms = time(common::sac_c51_update(), seconds);
        println!("sac_c51_update {ms:.3}");
    }
    if wanted("sac_depth_update") {
        let ms = time(common::sac_depth_update(), seconds);
        println!("sac_depth_update {ms:.3}");
    }
    if wanted("pointnet_forward") {
        let ms = time(common::pointnet_forward(), seconds);
        println!("pointnet_forward {ms:.3}");
    }
}
