//! One guided DDIM sampling (8 steps) of 48-value motions (T = 2, K = 8) with the
//! mock predictor: the sampler's own cost per control step, without a network.
//!
//! Run with `cargo bench -p dex-diffusion`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use dex_diffusion::{DdimSampler, Guidance, MockPredictor, NoiseSchedule};
use ndarray::Array2;
use rand::SeedableRng;

fn sampling(c: &mut Criterion) {
    let schedule = NoiseSchedule::cosine(100).unwrap();
    let sampler = DdimSampler::new(schedule.clone(), 8).unwrap();
    for batch in [1usize, 64] {
        let cond = Array2::<f32>::zeros((batch, 240));
        let cmd = Array2::<f32>::from_elem((batch, 24), 0.01);
        let mut p = MockPredictor::zeros(schedule.clone());
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        c.bench_function(&format!("ddim8_guided/batch_{batch}"), |b| {
            b.iter(|| {
                let g = Guidance {
                    strength: 100.0,
                    command: cmd.view(),
                };
                sampler
                    .sample(&mut p, cond.view(), 48, Some(g), &mut rng)
                    .unwrap()
            });
        });
    }
}

criterion_group!(benches, sampling);
criterion_main!(benches);
