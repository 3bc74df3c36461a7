//! One DexGen control step (history in, target changes out: DDIM 10 steps with guidance,
//! then the inverse dynamics model) at batch 1 and 64, for the default (CPU) and the
//! paper-size networks, with f32 and f16 step weights (`_f16`); and one training step of each denoiser (batch 256).
//!
//! Run with `RAYON_NUM_THREADS=1 cargo bench -p dex-diffusion --bench control` for the
//! one-core figures.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use dex_diffusion::dataset::StepLayout;
use dex_diffusion::{
    DenoiserConfig, DexGen, DexGenConfig, DiffusionTrainer, NoiseSchedule, Precision, TrainConfig,
};
use ndarray::Array2;
use rand::SeedableRng;

#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

fn presets() -> [(&'static str, DenoiserConfig); 2] {
    [
        ("default", DenoiserConfig::default()),
        ("paper", DenoiserConfig::paper()),
    ]
}

fn control(c: &mut Criterion) {
    dex_alloc::keep_freed_memory();
    let layout = StepLayout::for_model(&dex_core::HandModel::leap_right());
    let mut group = c.benchmark_group("control_step");
    group.sample_size(20);
    for (name, denoiser) in presets() {
        let config = DexGenConfig {
            denoiser,
            ..DexGenConfig::default()
        };
        let mut model = DexGen::untrained(config, &layout, 0).unwrap();
        let cd = model.file().config.denoiser.condition_dim;
        for batch in [1usize, 64] {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
            let condition = Array2::from_shape_fn((batch, cd), |(i, j)| ((i + j) % 7) as f32 * 0.1);
            let command = Array2::from_elem((batch, 24), 0.003f32);
            for precision in [Precision::F32, Precision::F16] {
                model.set_precision(precision).unwrap();
                let suffix = match precision {
                    Precision::F32 => "",
                    Precision::F16 => "_f16",
                };
                group.bench_function(format!("{name}/batch_{batch}{suffix}"), |b| {
                    b.iter(|| {
                        model
                            .control(condition.view(), Some((command.view(), 10.0)), &mut rng)
                            .unwrap()
                    });
                });
            }
        }
    }
    group.finish();
}

fn training(c: &mut Criterion) {
    dex_alloc::keep_freed_memory();
    let mut group = c.benchmark_group("train_step");
    group.sample_size(10);
    for (name, mut denoiser) in presets() {
        denoiser.condition_dim = 242;
        let mut trainer = DiffusionTrainer::new(
            &denoiser,
            NoiseSchedule::cosine(100).unwrap(),
            &TrainConfig::default(),
        )
        .unwrap();
        let x0 = Array2::from_shape_fn((256, 48), |(i, j)| ((i * 3 + j) % 11) as f32 * 0.1 - 0.5);
        let cond = Array2::from_shape_fn((256, 242), |(i, j)| ((i + 2 * j) % 13) as f32 * 0.1);
        group.bench_function(format!("{name}/batch_256"), |b| {
            b.iter(|| trainer.step(x0.view(), cond.view()).unwrap());
        });
    }
    group.finish();
}

criterion_group!(benches, control, training);
criterion_main!(benches);
