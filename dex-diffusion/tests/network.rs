//! The denoiser: gradients against finite differences, and DDPM training of a tiny one
//! on a 2-D toy distribution whose samples must land on it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dex_diffusion::{
    DdimSampler, Denoiser, DenoiserConfig, DiffusionTrainer, NoiseSchedule, Precision, TrainConfig,
    timestep_embedding,
};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn tiny() -> DenoiserConfig {
    DenoiserConfig {
        motion_dim: 4,
        condition_dim: 3,
        hidden: 8,
        blocks: 2,
        state_layers: 2,
        state_hidden: 8,
        group_size: 4,
        time_dim: 4,
    }
}

#[test]
fn every_weight_gets_the_gradient_finite_differences_give() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    let net = Denoiser::new(&tiny(), &vb).unwrap();
    // Non-trivial weights: the default init leaves norms at 1 and biases at 0.
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for var in varmap.all_vars() {
        let n = var.elem_count();
        let v: Vec<f64> = (0..n).map(|_| rng.random_range(-0.5..0.5)).collect();
        var.set(
            &Tensor::from_vec(v, var.dims(), &Device::Cpu)
                .unwrap()
                .reshape(var.shape())
                .unwrap(),
        )
        .unwrap();
    }
    let x = Tensor::from_vec(
        (0..12).map(|i| (i as f64 * 0.7).sin()).collect::<Vec<_>>(),
        (3, 4),
        &Device::Cpu,
    )
    .unwrap();
    let steps: Vec<f32> = vec![3.0, 17.0, 40.0];
    let time = Tensor::from_vec(timestep_embedding(&steps, 4), (3, 4), &Device::Cpu)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let cond = Tensor::from_vec(
        (0..9).map(|i| (i as f64 * 0.3).cos()).collect::<Vec<_>>(),
        (3, 3),
        &Device::Cpu,
    )
    .unwrap();
    let loss = || {
        let code = net.encode_condition(&cond).unwrap();
        net.forward(&x, &time, &code)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let grads = loss().backward().unwrap();
    let data = varmap.data().lock().unwrap();
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    let h = 1e-6;
    for name in names {
        let var = &data[name];
        let g = grads
            .get(var.as_tensor())
            .unwrap_or_else(|| panic!("{name} gets no gradient"));
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        // A few entries per variable.
        for k in [0, base.len() / 2, base.len() - 1] {
            let set = |delta: f64| {
                let mut v = base.clone();
                v[k] += delta;
                var.set(
                    &Tensor::from_vec(v, base.len(), &Device::Cpu)
                        .unwrap()
                        .reshape(var.shape())
                        .unwrap(),
                )
                .unwrap();
                loss().to_scalar::<f64>().unwrap()
            };
            let fd = (set(h) - set(-h)) / (2.0 * h);
            set(0.0);
            assert!(
                (fd - g[k]).abs() <= 1e-5 * (1.0 + fd.abs()),
                "{name}[{k}]: finite difference {fd}, gradient {}",
                g[k]
            );
        }
    }
}

#[test]
fn a_tiny_model_learns_a_two_point_distribution() {
    // Two modes at (±0.8, 0.4) with a little spread: a DDPM prior must put its samples
    // on them, in both.
    let config = DenoiserConfig {
        motion_dim: 2,
        condition_dim: 1,
        hidden: 64,
        blocks: 1,
        state_layers: 1,
        state_hidden: 16,
        group_size: 8,
        time_dim: 16,
    };
    let schedule = NoiseSchedule::cosine(50).unwrap();
    let train = TrainConfig {
        learning_rate: 3e-3,
        seed: 1,
        ..TrainConfig::default()
    };
    let mut trainer = DiffusionTrainer::new(&config, schedule.clone(), &train).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let batch = 128;
    let cond = Array2::<f32>::zeros((batch, 1));
    let mut last = f64::NAN;
    for _ in 0..1500 {
        let mut x0 = Array2::<f32>::zeros((batch, 2));
        for mut row in x0.rows_mut() {
            let side = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
            row[0] = side * 0.8 + rng.random_range(-0.03..0.03);
            row[1] = 0.4 + rng.random_range(-0.03..0.03);
        }
        last = trainer.step(x0.view(), cond.view()).unwrap();
    }
    assert!(last < 0.5, "final loss {last}");
    let mut predictor = trainer.predictor().unwrap();
    // DexGen's 8 DDIM steps, the denoised estimate clamped to the data's range.
    let sampler = DdimSampler::new(schedule, 8)
        .unwrap()
        .with_clip(1.5)
        .unwrap();
    let n = 200;
    let samples = sampler
        .sample(
            &mut predictor,
            Array2::<f32>::zeros((n, 1)).view(),
            2,
            None,
            &mut ChaCha8Rng::seed_from_u64(9),
        )
        .unwrap();
    let (mut left, mut right) = (0, 0);
    for row in samples.rows() {
        let d = |m: f32| ((row[0] - m).powi(2) + (row[1] - 0.4).powi(2)).sqrt();
        if d(-0.8) < 0.2 {
            left += 1;
        } else if d(0.8) < 0.2 {
            right += 1;
        }
    }
    let on = left + right;
    assert!(
        on as f64 >= 0.8 * n as f64,
        "{on} of {n} samples on the modes ({left} left, {right} right)"
    );
    assert!(
        left >= n / 5 && right >= n / 5,
        "both modes: {left} left, {right} right"
    );
}

#[test]
fn bad_sizes_are_refused_and_the_paper_preset_is_the_papers() {
    let p = DenoiserConfig::paper();
    assert_eq!(
        (
            p.hidden,
            p.blocks,
            p.state_layers,
            p.state_hidden,
            p.group_size
        ),
        (768, 3, 6, 1024, 8)
    );
    p.validate().unwrap();
    DenoiserConfig::default().validate().unwrap();
    for bad in [
        DenoiserConfig {
            hidden: 0,
            ..tiny()
        },
        DenoiserConfig {
            time_dim: 5,
            ..tiny()
        },
        DenoiserConfig {
            hidden: 10,
            ..tiny()
        },
    ] {
        assert!(bad.validate().is_err(), "{bad:?}");
    }
}

#[test]
fn the_moving_average_follows_the_weights_at_its_decay() {
    let config = DenoiserConfig {
        motion_dim: 2,
        condition_dim: 1,
        hidden: 8,
        blocks: 1,
        state_layers: 1,
        state_hidden: 8,
        group_size: 4,
        time_dim: 4,
    };
    let schedule = NoiseSchedule::cosine(10).unwrap();
    let decay = 0.9;
    let train = TrainConfig {
        ema_decay: decay,
        seed: 3,
        ..TrainConfig::default()
    };
    let mut trainer = DiffusionTrainer::new(&config, schedule.clone(), &train).unwrap();
    let weights = |t: &DiffusionTrainer| -> std::collections::HashMap<String, Vec<f32>> {
        t.varmap()
            .data()
            .lock()
            .unwrap()
            .iter()
            .map(|(n, v)| {
                (
                    n.clone(),
                    v.as_tensor().flatten_all().unwrap().to_vec1().unwrap(),
                )
            })
            .collect()
    };
    let before = weights(&trainer);
    let x0 = Array2::from_elem((8, 2), 0.5f32);
    let cond = Array2::<f32>::zeros((8, 1));
    trainer.step(x0.view(), cond.view()).unwrap();
    let after = weights(&trainer);
    let ema = trainer.ema_weights().unwrap();
    let mut moved = 0;
    for (name, w1) in &after {
        let w0 = &before[name];
        let e: Vec<f32> = ema[name].flatten_all().unwrap().to_vec1().unwrap();
        for k in 0..w1.len() {
            let want = decay as f32 * w0[k] + (1.0 - decay as f32) * w1[k];
            assert!(
                (e[k] - want).abs() < 1e-6,
                "{name}[{k}]: {} vs {want}",
                e[k]
            );
            moved += usize::from(w1[k] != w0[k]);
        }
    }
    assert!(moved > 0, "the step changed the weights");
    // Off: no average kept; a decay of 1 or more is refused.
    let off = DiffusionTrainer::new(
        &config,
        schedule.clone(),
        &TrainConfig {
            ema_decay: 0.0,
            ..train.clone()
        },
    )
    .unwrap();
    assert!(off.ema_weights().is_none());
    assert!(
        DiffusionTrainer::new(
            &config,
            schedule,
            &TrainConfig {
                ema_decay: 1.0,
                ..train
            }
        )
        .is_err()
    );
}

#[test]
fn the_split_film_projections_give_the_full_forward() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = Denoiser::new(&tiny(), &vb).unwrap();
    dex_policy::nets::init_seeded(&varmap, 3, |_| 1.0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let mut values =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let x = Tensor::from_vec(values(3 * 4), (3, 4), &Device::Cpu).unwrap();
    let cond = Tensor::from_vec(values(3 * 3), (3, 3), &Device::Cpu).unwrap();
    let code = net.encode_condition(&cond).unwrap();
    let t = 17.0f32;
    let time3 = Tensor::from_vec(timestep_embedding(&[t; 3], 4), (3, 4), &Device::Cpu).unwrap();
    let time1 = Tensor::from_vec(timestep_embedding(&[t], 4), (1, 4), &Device::Cpu).unwrap();
    let full = net.forward(&x, &time3, &code).unwrap();
    let parts = net
        .forward_parts(
            &x,
            &net.film_code_parts(&code).unwrap(),
            &net.film_time_parts(&time1).unwrap(),
        )
        .unwrap();
    let diff = (full - parts).unwrap().abs().unwrap().max_all().unwrap();
    assert!(diff.to_scalar::<f32>().unwrap() < 1e-5);
    assert!(net.forward_parts(&x, &[], &[]).is_err());
}

/// Half-precision step weights (inference only) stay within f16's rounding of the full
/// network's output, and are really used: the outputs are not bit-identical.
#[test]
fn half_precision_steps_stay_close_to_full_precision() {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    let net = Denoiser::new(&tiny(), &vb).unwrap();
    dex_policy::nets::init_seeded(&varmap, 5, |_| 1.0).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let mut values =
        |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-1.0..1.0)).collect() };
    let x = Tensor::from_vec(values(3 * 4), (3, 4), &Device::Cpu).unwrap();
    let cond = Tensor::from_vec(values(3 * 3), (3, 3), &Device::Cpu).unwrap();
    let code = net.encode_condition(&cond).unwrap();
    let time = Tensor::from_vec(timestep_embedding(&[17.0], 4), (1, 4), &Device::Cpu).unwrap();
    let (code_parts, time_parts) = (
        net.film_code_parts(&code).unwrap(),
        net.film_time_parts(&time).unwrap(),
    );
    let run = |n: &Denoiser| -> Vec<f32> {
        n.forward_parts(&x, &code_parts, &time_parts)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let full = run(&net);
    let same = run(&net.with_step_precision(Precision::F32).unwrap());
    assert_eq!(full, same);
    let half = run(&net.with_step_precision(Precision::F16).unwrap());
    let scale = full.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = full
        .iter()
        .zip(&half)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst > 0.0, "the f16 copy computed in f32");
    assert!(
        worst < 1e-2 * scale,
        "{worst} against outputs up to {scale}"
    );
    assert!("f16".parse::<Precision>().unwrap() == Precision::F16);
    assert!("f8".parse::<Precision>().is_err());
}
