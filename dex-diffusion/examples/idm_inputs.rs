//! What the inverse dynamics model learns from: held-out MSE of the target change
//! (normalised) for motions of the measured or the target keypoints, with and without
//! the history and the motion in its input.
//!
//! ```text
//! cargo run --release -p dex-diffusion --example idm_inputs -- DATA [STEPS]
//! ```
//!
//! The last chunk of `DATA` is held out. One line per variant:
//! `motion=<measured|targets> input=<...> train <mse> held_out <mse>`.

#![allow(missing_docs)]

use dex_diffusion::dataset::{DataReader, MotionOf, SampleSpec, Samples, hand_for};
use dex_diffusion::ndarray::{Array2, Axis, concatenate};
use dex_diffusion::{IdmConfig, IdmTrainer, Normalizer};
use rand::{Rng, SeedableRng};

type Parts = (Array2<f32>, Array2<f32>, Array2<f32>);

/// Normalised samples of `chunks` (`norm` and `hand` fitted once per spec).
fn load(
    reader: &DataReader,
    spec: &SampleSpec,
    norm: &Normalizer,
    hand: Option<&dex_core::HandModel>,
    chunks: std::ops::Range<usize>,
) -> anyhow::Result<Parts> {
    let layout = &reader.manifest().layout;
    let (mut c, mut m, mut d) = (vec![], vec![], vec![]);
    for k in chunks {
        let s = Samples::from_chunk(&reader.chunk(k)?, layout, spec, hand)?;
        c.push(norm.condition(s.condition.view()));
        m.push(s.motion.mapv(|v| v / norm.motion_scale));
        d.push(norm.change(s.target_change.view()));
    }
    let cat = |v: Vec<Array2<f32>>| -> anyhow::Result<Array2<f32>> {
        let views: Vec<_> = v.iter().map(|a| a.view()).collect();
        Ok(concatenate(Axis(0), &views)?)
    };
    Ok((cat(c)?, cat(m)?, cat(d)?))
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: idm_inputs DATA [STEPS]"))?;
    let steps: usize = args.next().map_or(Ok(2000), |s| s.parse())?;
    let reader = DataReader::open(std::path::Path::new(&dir))?;
    let n = reader.chunks();
    anyhow::ensure!(n >= 2, "need at least two chunks (the last is held out)");
    let layout = reader.manifest().layout.clone();
    for motion in [MotionOf::Measured, MotionOf::Targets] {
        let spec = SampleSpec {
            motion,
            ..SampleSpec::default()
        };
        let norm = Normalizer::fit(&reader, &spec)?;
        let hand = hand_for(reader.manifest(), &spec)?;
        let (ct, mt, dt) = load(&reader, &spec, &norm, hand.as_ref(), 0..n - 1)?;
        let (cv, mv, dv) = load(&reader, &spec, &norm, hand.as_ref(), n - 1..n)?;
        let (sd, cd) = (spec.step_dim(&layout), ct.ncols());
        // The newest history step and the mode.
        let newest: Vec<usize> = (0..sd).chain(cd - 2..cd).collect();
        let history: Vec<usize> = (0..cd).collect();
        let all_motion: Vec<usize> = (0..mt.ncols()).collect();
        let variants: [(&str, &[usize], &[usize]); 3] = [
            ("history+motion", &history, &all_motion),
            ("history", &history, &[]),
            ("newest+motion", &newest, &all_motion),
        ];
        for (name, cs, ms) in variants {
            let build = |c: &Array2<f32>, m: &Array2<f32>| -> anyhow::Result<Array2<f32>> {
                let (a, b) = (c.select(Axis(1), cs), m.select(Axis(1), ms));
                Ok(concatenate(Axis(1), &[a.view(), b.view()])?)
            };
            let (xt, xv) = (build(&ct, &mt)?, build(&cv, &mv)?);
            let config = IdmConfig {
                input_dim: xt.ncols(),
                output_dim: dt.ncols(),
                ..IdmConfig::default()
            };
            let mut trainer = IdmTrainer::new(&config, 1e-3, 7)?;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            for _ in 0..steps {
                let rows: Vec<usize> = (0..256).map(|_| rng.random_range(0..xt.nrows())).collect();
                let (x, y) = (xt.select(Axis(0), &rows), dt.select(Axis(0), &rows));
                trainer.step(x.view(), y.view())?;
            }
            let mse = |x: &Array2<f32>, y: &Array2<f32>| {
                let rows: Vec<usize> = (0..x.nrows().min(8192)).collect();
                trainer.mse(
                    x.select(Axis(0), &rows).view(),
                    y.select(Axis(0), &rows).view(),
                )
            };
            println!(
                "motion={motion:?} input={name} train {:.3} held_out {:.3}",
                mse(&xt, &dt)?,
                mse(&xv, &dv)?
            );
        }
    }
    Ok(())
}
