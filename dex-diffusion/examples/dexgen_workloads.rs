//! Times DexGen's workloads for the side-by-side with PyTorch
//! (`benches/peers/torch_dexgen.py`): one denoiser training step (batch 256, AdamW and
//! the weight average) and one guided control step (DDIM 10 + IDM, batch 1), for the
//! default and the paper-size networks. Prints `NAME ms_per_call` per line.
//!
//! `RAYON_NUM_THREADS=1 cargo run --release -p dex-diffusion --example dexgen_workloads -- 5`

use std::time::Instant;

use dex_diffusion::dataset::StepLayout;
use dex_diffusion::{
    DenoiserConfig, DexGen, DexGenConfig, DiffusionTrainer, NoiseSchedule, TrainConfig,
};
use ndarray::Array2;
use rand::SeedableRng;

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
    let layout = StepLayout::for_model(&dex_core::HandModel::leap_right());
    for (name, denoiser) in [
        ("default", DenoiserConfig::default()),
        ("paper", DenoiserConfig::paper()),
    ] {
        let mut d = denoiser.clone();
        d.condition_dim = 242;
        let mut trainer =
            DiffusionTrainer::new(&d, NoiseSchedule::cosine(100)?, &TrainConfig::default())?;
        let x0 = Array2::from_shape_fn((256, 48), |(i, j)| ((i * 3 + j) % 11) as f32 * 0.1 - 0.5);
        let cond = Array2::from_shape_fn((256, 242), |(i, j)| ((i + 2 * j) % 13) as f32 * 0.1);
        let ms = time_calls(seconds, || {
            trainer.step(x0.view(), cond.view())?;
            Ok(())
        })?;
        println!("dexgen_train_{name} {ms:.4}");
        let config = DexGenConfig {
            denoiser,
            ..DexGenConfig::default()
        };
        let mut model = DexGen::untrained(config, &layout, 0)?;
        let condition = Array2::from_shape_fn((1, 242), |(_, j)| (j % 7) as f32 * 0.1);
        let command = Array2::from_elem((1, 24), 0.003f32);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let ms = time_calls(seconds, || {
            model.control(condition.view(), Some((command.view(), 10.0)), &mut rng)?;
            Ok(())
        })?;
        println!("dexgen_control_{name} {ms:.4}");
        model.set_precision(dex_diffusion::Precision::F16)?;
        let ms = time_calls(seconds, || {
            model.control(condition.view(), Some((command.view(), 10.0)), &mut rng)?;
            Ok(())
        })?;
        println!("dexgen_control_{name}_f16 {ms:.4}");
    }
    Ok(())
}
