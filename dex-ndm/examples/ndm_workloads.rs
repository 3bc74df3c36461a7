//! Times the dynamics models' workloads for the side-by-side with PyTorch
//! (`benches/peers/torch_ndm.py`): a training step (batch 256 gathered from a dataset,
//! features, forward, squared error, backward, AdamW) of the joint-wise and the
//! whole-hand model, and one prediction for 16 joints at batch 1. Prints
//! `NAME ms_per_call` per line; a training step is a 50-step `fit` divided by 50 (its
//! two held-out scores are of one sample each).
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p dex-ndm --example ndm_workloads -- 5`

use std::time::Instant;

use dex_ndm::synthetic::{Plant, joint_data};
use dex_ndm::{DynamicsModel, FitConfig, JointWise, JointWiseConfig, WholeHand, WholeHandConfig};
use ndarray::Array3;

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

fn main() -> anyhow::Result<()> {
    dex_alloc::keep_freed_memory();
    let seconds: f64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(3.0);
    let data = joint_data(16, 40, 400, Plant::servo(), 0)?;
    let (train, valid) = data.split(0.05, 0);
    const STEPS: usize = 50;
    let config = FitConfig {
        max_steps: STEPS,
        eval_every: 1_000_000,
        eval_samples: 1,
        ..FitConfig::default()
    };
    let models: Vec<(&str, Box<dyn DynamicsModel>)> = vec![
        (
            "joint",
            Box::new(JointWise::new(16, JointWiseConfig::default())?),
        ),
        (
            "whole",
            Box::new(WholeHand::new(16, WholeHandConfig::default())?),
        ),
    ];
    for (name, mut model) in models {
        model.fit(&train, &valid, &config, &mut |_| {})?;
        let ms = time_calls(seconds, || {
            model.fit(&train, &valid, &config, &mut |_| {})?;
            Ok(())
        })?;
        println!("ndm_train_{name} {}", ms / STEPS as f64);
        let q = Array3::from_shape_fn((1, 10, 16), |(_, t, j)| (t + j) as f32 * 0.01);
        let a = q.mapv(|x| x + 0.02);
        let ms = time_calls(seconds, || {
            model.predict(q.view(), a.view())?;
            Ok(())
        })?;
        println!("ndm_predict_{name} {ms}");
    }
    Ok(())
}
