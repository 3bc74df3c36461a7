//! One-step prediction for a 16-joint hand at batch 1 and 1024 (each model), and the
//! training throughput of the learned models (20 AdamW steps of batch 256).
//!
//! Run with `RAYON_NUM_THREADS=1 cargo bench -p dex-ndm --bench predict` for the
//! one-core figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dex_ndm::synthetic::{Plant, joint_data};
use dex_ndm::{
    Dataset, DynamicsModel, FirstOrderPd, FitConfig, JointWise, JointWiseConfig, PdConfig,
    WholeHand, WholeHandConfig,
};
use ndarray::Array3;

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn models() -> Vec<(&'static str, Box<dyn DynamicsModel>)> {
    vec![
        (
            "joint",
            Box::new(JointWise::new(16, JointWiseConfig::default()).unwrap()),
        ),
        (
            "joint_shared",
            Box::new(
                JointWise::new(
                    16,
                    JointWiseConfig {
                        shared: true,
                        ..JointWiseConfig::default()
                    },
                )
                .unwrap(),
            ),
        ),
        (
            "whole",
            Box::new(WholeHand::new(16, WholeHandConfig::default()).unwrap()),
        ),
        (
            "pd",
            Box::new(FirstOrderPd::new(16, PdConfig::default()).unwrap()),
        ),
    ]
}

fn data() -> Dataset {
    joint_data(16, 20, 200, Plant::servo(), 0).unwrap()
}

fn predict(c: &mut Criterion) {
    dex_alloc::keep_freed_memory();
    let data = data();
    let one = FitConfig {
        max_steps: 1,
        ..FitConfig::default()
    };
    let mut group = c.benchmark_group("predict");
    for (name, mut model) in models() {
        model.fit(&data, &data, &one, &mut |_| {}).unwrap();
        for batch in [1usize, 1024] {
            let q = Array3::from_shape_fn((batch, 10, 16), |(b, t, j)| {
                ((b * 7 + t * 3 + j) % 11) as f32 * 0.05
            });
            let a = q.mapv(|x| x + 0.02);
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{name}_b{batch}"), |b| {
                b.iter(|| model.predict(q.view(), a.view()).unwrap());
            });
        }
    }
    group.finish();
}

fn train(c: &mut Criterion) {
    dex_alloc::keep_freed_memory();
    let data = data();
    let (train, valid) = data.split(0.05, 0);
    let config = FitConfig {
        max_steps: 20,
        eval_every: 1000,
        eval_samples: 16,
        ..FitConfig::default()
    };
    let mut group = c.benchmark_group("train_20_steps_b256");
    group.sample_size(10);
    group.throughput(Throughput::Elements(20 * 256));
    for (name, mut model) in models().into_iter().filter(|(n, _)| *n != "pd") {
        model.fit(&train, &valid, &config, &mut |_| {}).unwrap();
        group.bench_function(name, |b| {
            b.iter(|| model.fit(&train, &valid, &config, &mut |_| {}).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, predict, train);
criterion_main!(benches);
