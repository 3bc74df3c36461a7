//! DDPM on a 2-D toy distribution (two modes at (±0.8, 0.4)): trains a small denoiser,
//! samples with DDIM and prints how many samples land within 0.2 of a mode.
//!
//! `cargo run --release -p dex-diffusion --example toy2d -- [STEPS] [LR] [HIDDEN] [DDIM] [CLIP]`
//! (CLIP 0: no clamp of the denoised estimate).

use dex_diffusion::{DdimSampler, DenoiserConfig, DiffusionTrainer, NoiseSchedule, TrainConfig};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize, d: f64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    let (steps, lr, hidden, ddim) = (
        arg(1, 1500.0) as usize,
        arg(2, 3e-3),
        arg(3, 64.0) as usize,
        arg(4, 20.0) as usize,
    );
    let config = DenoiserConfig {
        motion_dim: 2,
        condition_dim: 1,
        hidden,
        blocks: 1,
        state_layers: 1,
        state_hidden: 16,
        group_size: 8,
        time_dim: 16,
    };
    let schedule = NoiseSchedule::cosine(50)?;
    let train = TrainConfig {
        learning_rate: lr,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut trainer = DiffusionTrainer::new(&config, schedule.clone(), &train)?;
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let batch = 128;
    let cond = Array2::<f32>::zeros((batch, 1));
    let start = std::time::Instant::now();
    let mut window = Vec::new();
    for i in 0..steps {
        let mut x0 = Array2::<f32>::zeros((batch, 2));
        for mut row in x0.rows_mut() {
            let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            row[0] = side * 0.8 + rng.random_range(-0.03..0.03);
            row[1] = 0.4 + rng.random_range(-0.03..0.03);
        }
        window.push(trainer.step(x0.view(), cond.view())?);
        if (i + 1) % 500 == 0 {
            println!(
                "step {} loss {:.4}",
                i + 1,
                window.iter().sum::<f64>() / window.len() as f64
            );
            window.clear();
        }
    }
    let mut predictor = trainer.predictor()?;
    let clip = arg(5, 0.0) as f32;
    let sampler = DdimSampler::new(schedule, ddim)?;
    let sampler = if clip > 0.0 {
        sampler.with_clip(clip)?
    } else {
        sampler
    };
    let n = 200;
    let samples = sampler.sample(
        &mut predictor,
        Array2::<f32>::zeros((n, 1)).view(),
        2,
        None,
        &mut ChaCha8Rng::seed_from_u64(9),
    )?;
    let (mut left, mut right) = (0, 0);
    for row in samples.rows() {
        let d = |m: f32| ((row[0] - m).powi(2) + (row[1] - 0.4).powi(2)).sqrt();
        if d(-0.8) < 0.2 {
            left += 1
        } else if d(0.8) < 0.2 {
            right += 1
        }
    }
    println!(
        "{} of {n} on the modes ({left} left, {right} right) in {:.1} s; first samples {:?}",
        left + right,
        start.elapsed().as_secs_f64(),
        samples
            .rows()
            .into_iter()
            .take(4)
            .map(|r| (r[0], r[1]))
            .collect::<Vec<_>>()
    );
    Ok(())
}
