//! Times the Dex4D student's workloads for the side-by-side with PyTorch
//! (`benches/peers/torch_dex4d.py`): one training step (batch 512 of pose-proxy
//! observations with 64 point pairs, a quarter of them hidden; forward, L1 behaviour
//! cloning + L1 world model, backward, Adam) and one action at batch 1, for the CPU
//! default and the paper-size network. Prints `NAME ms_per_call` per line.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p dex-policy --example dex4d_workloads -- 5`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use dex_policy::point_track::{
    PointTrackConfig, PointTrackInputs, PointTrackPolicy, PointTrackTrainer,
};
use dex_policy::{ActMode, Policy};
use dex_sim::ProxyLayout;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn time_calls(seconds: f64, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    for _ in 0..3 {
        f()?;
    }
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 3 || start.elapsed().as_secs_f64() < seconds {
        f()?;
        calls += 1;
    }
    Ok(start.elapsed().as_secs_f64() * 1e3 / f64::from(calls))
}

/// Observations of the proxy's layout: values in ±1, a quarter of the points zeroed in
/// both sets.
fn observations(rows: usize, layout: &ProxyLayout, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let mut x = Array2::from_shape_fn((rows, layout.dim()), |_| rng.random_range(-1.0f32..1.0));
    let n = layout.current.len() / 3;
    for r in 0..rows {
        for i in 0..n {
            if rng.random::<f64>() < 0.25 {
                for c in 0..3 {
                    x[[r, layout.current.start + 3 * i + c]] = 0.0;
                    x[[r, layout.goal.start + 3 * i + c]] = 0.0;
                }
            }
        }
    }
    x
}

fn main() -> anyhow::Result<()> {
    dex_alloc::keep_freed_memory();
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3.0);
    let layout = ProxyLayout::new(64);
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let batch = observations(512, &layout, &mut rng);
    let labels = Array2::from_shape_fn((512, 6), |_| rng.random_range(-1.0f32..1.0));
    let next = Array2::from_shape_fn((512, 12), |_| rng.random_range(-1.0f32..1.0));
    let one = observations(1, &layout, &mut rng);
    for (name, config) in [
        ("default", PointTrackConfig::default()),
        ("paper", PointTrackConfig::paper()),
    ] {
        let inputs = PointTrackInputs::proxy(&layout);
        let policy =
            PointTrackPolicy::new(&config, inputs, layout.dim(), 6, 0, Default::default())?;
        let mut trainer = PointTrackTrainer::new(policy, 3e-4)?;
        let ms = time_calls(seconds, || {
            trainer.step(batch.view(), labels.view(), next.view())?;
            Ok(())
        })?;
        println!("dex4d_train_{name} {ms}");
        let mut policy = trainer.into_student();
        let ms = time_calls(seconds, || {
            policy.act(one.view(), ActMode::Deterministic, &mut rng)?;
            Ok(())
        })?;
        println!("dex4d_act_{name} {ms}");
    }
    Ok(())
}
