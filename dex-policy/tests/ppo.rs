//! PPO, GAE, gradients, checkpoints and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{VarBuilder, VarMap};
use dex_policy::nets::init_seeded;
use dex_policy::{
    ActMode, Activation, Error, GaussianPolicy, Mlp, MlpConfig, Policy, PpoConfig, PpoTrainer,
    evaluate, gae,
};
mod common;
use common::point_envs;
use ndarray::{Array2, array};
use rand::SeedableRng;

#[test]
fn gae_matches_hand_computed_values() {
    // One env, 3 steps; episode ends (terminated) at step 1; step 2 is an auto-reset.
    let rewards = array![[1.0f32], [2.0], [0.0]];
    let values = array![[0.5f32], [1.0], [9.0], [3.0]];
    let done = array![[false], [true], [false]];
    let terminated = array![[false], [true], [false]];
    let valid = array![[true], [true], [false]];
    let (adv, ret) = gae(&rewards, &values, &done, &terminated, &valid, 0.9, 0.8);
    // Step 1: terminal, no bootstrap: 2 − 1 = 1.
    assert!((adv[(1, 0)] - 1.0).abs() < 1e-6);
    // Step 0: δ = 1 + 0.9·1 − 0.5 = 1.4; A = 1.4 + 0.9·0.8·1 = 2.12.
    assert!((adv[(0, 0)] - 2.12).abs() < 1e-6);
    assert_eq!(adv[(2, 0)], 0.0);
    assert!((ret[(0, 0)] - 2.62).abs() < 1e-6);
    // Truncation bootstraps from the next observation's value.
    let terminated = array![[false], [false], [false]];
    let (adv, _) = gae(&rewards, &values, &done, &terminated, &valid, 0.9, 0.8);
    assert!((adv[(1, 0)] - (2.0 + 0.9 * 9.0 - 1.0)).abs() < 1e-5);
}

fn numeric_gradient_check(config: MlpConfig) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
    let mlp = Mlp::new(&config, &vb).unwrap();
    init_seeded(&varmap, 3, |_| 1.0).unwrap();
    // Non-trivial LayerNorm parameters, so their gradients are checked too.
    for (name, var) in varmap.data().lock().unwrap().iter() {
        if name.contains(".n") {
            let n = var.dims()[0];
            let v: Vec<f64> = (0..n).map(|i| 0.5 + 0.1 * i as f64).collect();
            var.set(&Tensor::from_vec(v, n, &Device::Cpu).unwrap())
                .unwrap();
        }
    }
    let x = Tensor::from_vec(
        (0..12)
            .map(|i| (f64::from(i) * 0.37).sin())
            .collect::<Vec<f64>>(),
        (3, 4),
        &Device::Cpu,
    )
    .unwrap();
    let loss = |m: &Mlp| -> Tensor { m.forward(&x).unwrap().sqr().unwrap().sum_all().unwrap() };
    let grads = loss(&mlp).backward().unwrap();
    let vars = varmap.all_vars();
    let mut checked = 0;
    for var in &vars {
        let g = grads
            .get(var.as_tensor())
            .expect("every parameter gets a gradient");
        let g: Vec<f64> = g.flatten_all().unwrap().to_vec1().unwrap();
        let base: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        for k in [0, base.len() / 2, base.len() - 1] {
            let h = 1e-6;
            let mut plus = base.clone();
            plus[k] += h;
            var.set(&Tensor::from_vec(plus, var.dims(), &Device::Cpu).unwrap())
                .unwrap();
            let lp: f64 = loss(&mlp).to_scalar().unwrap();
            let mut minus = base.clone();
            minus[k] -= h;
            var.set(&Tensor::from_vec(minus, var.dims(), &Device::Cpu).unwrap())
                .unwrap();
            let lm: f64 = loss(&mlp).to_scalar().unwrap();
            var.set(&Tensor::from_vec(base.clone(), var.dims(), &Device::Cpu).unwrap())
                .unwrap();
            let numeric = (lp - lm) / (2.0 * h);
            assert!(
                (numeric - g[k]).abs() < 1e-5 * (1.0 + numeric.abs()),
                "{config:?}: parameter {k}: numeric {numeric}, autograd {}",
                g[k]
            );
            checked += 1;
        }
    }
    assert!(checked >= 3 * vars.len());
}

#[test]
fn mlp_gradients_match_finite_differences() {
    for (activation, layer_norm) in [
        (Activation::Elu, true),
        (Activation::Relu, false),
        (Activation::Tanh, true),
    ] {
        numeric_gradient_check(MlpConfig {
            input: 4,
            hidden: vec![5, 3],
            output: 2,
            activation,
            layer_norm,
        });
    }
}

fn small_config(seed: u64) -> PpoConfig {
    PpoConfig {
        num_envs: 16,
        horizon: 32,
        hidden: vec![32, 32],
        learning_rate: 3e-3,
        seed,
        ..PpoConfig::default()
    }
}

#[test]
fn ppo_solves_a_point_task_within_a_bounded_number_of_updates() {
    let mut trainer = PpoTrainer::new(point_envs(16), small_config(1), toml::Table::new()).unwrap();
    let mut policy = trainer.policy().unwrap();
    let before = evaluate(
        &mut policy,
        &mut point_envs(16),
        100,
        7,
        ActMode::Deterministic,
    )
    .unwrap();
    for _ in 0..60 {
        trainer.update().unwrap();
    }
    let mut policy = trainer.policy().unwrap();
    let after = evaluate(
        &mut policy,
        &mut point_envs(16),
        100,
        7,
        ActMode::Deterministic,
    )
    .unwrap();
    assert!(
        after.success_rate >= 0.9 && after.success_rate > before.success_rate + 0.3,
        "success {:.2} → {:.2}",
        before.success_rate,
        after.success_rate
    );
}

#[test]
fn same_seed_same_checkpoint_bytes_and_same_evaluation() {
    let dir = std::env::temp_dir().join(format!("dex-policy-det-{}", std::process::id()));
    let mut bytes = Vec::new();
    let mut evals = Vec::new();
    for run in 0..2 {
        let mut t = PpoTrainer::new(point_envs(16), small_config(5), toml::Table::new()).unwrap();
        for _ in 0..3 {
            t.update().unwrap();
        }
        let d = dir.join(format!("run{run}"));
        t.save(&d).unwrap();
        bytes.push(std::fs::read(d.join(dex_policy::ppo::WEIGHTS_FILE)).unwrap());
        let (mut p, meta) = GaussianPolicy::load(&d).unwrap();
        assert_eq!(meta.updates, 3);
        evals.push(evaluate(&mut p, &mut point_envs(16), 50, 9, ActMode::Deterministic).unwrap());
    }
    assert_eq!(bytes[0], bytes[1]);
    assert_eq!(evals[0], evals[1]);
    // A different seed gives different weights.
    let mut t = PpoTrainer::new(point_envs(16), small_config(6), toml::Table::new()).unwrap();
    t.update().unwrap();
    t.save(&dir.join("other")).unwrap();
    assert_ne!(
        std::fs::read(dir.join("other").join(dex_policy::ppo::WEIGHTS_FILE)).unwrap(),
        bytes[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_checkpoints_and_nan_observations_are_clear_errors() {
    let dir = std::env::temp_dir().join(format!("dex-policy-bad-{}", std::process::id()));
    let t = PpoTrainer::new(point_envs(16), small_config(2), toml::Table::new()).unwrap();
    t.save(&dir).unwrap();
    assert!(matches!(
        GaussianPolicy::load(&dir.join("missing")),
        Err(Error::Checkpoint { .. })
    ));
    // Wrong shapes: the metadata claims wider hidden layers than the weights hold.
    let meta = std::fs::read_to_string(dir.join(dex_policy::ppo::META_FILE)).unwrap();
    std::fs::write(
        dir.join(dex_policy::ppo::META_FILE),
        meta.replace("hidden = [32, 32]", "hidden = [64, 32]"),
    )
    .unwrap();
    let err = GaussianPolicy::load(&dir).unwrap_err();
    assert!(matches!(err, Error::Checkpoint { .. }), "{err}");
    std::fs::write(dir.join(dex_policy::ppo::META_FILE), &meta).unwrap();
    // A corrupt weights file.
    std::fs::write(dir.join(dex_policy::ppo::WEIGHTS_FILE), b"not safetensors").unwrap();
    assert!(matches!(
        GaussianPolicy::load(&dir),
        Err(Error::Checkpoint { .. })
    ));
    // NaN observations are reported.
    let mut p = t.policy().unwrap();
    let obs = Array2::from_shape_vec((1, 2), vec![0.0f32, f32::NAN]).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    assert!(matches!(
        p.act(obs.view(), ActMode::Deterministic, &mut rng),
        Err(Error::NonFiniteObservation { row: 0, index: 1 })
    ));
    // A config that does not fit the VecEnv.
    let bad = PpoConfig {
        num_envs: 4,
        ..small_config(0)
    };
    assert!(PpoTrainer::new(point_envs(16), bad, toml::Table::new()).is_err());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn adaptive_rate_follows_the_kl_within_its_bounds() {
    use dex_policy::ppo::{ADAPTIVE_LR_BOUNDS, adapt_learning_rate};
    let target = 0.016;
    // Too large a step: slower; too small: faster; in the band: unchanged.
    assert!((adapt_learning_rate(3e-4, 0.05, target) - 2e-4).abs() < 1e-12);
    assert!((adapt_learning_rate(3e-4, 0.001, target) - 4.5e-4).abs() < 1e-12);
    assert_eq!(adapt_learning_rate(3e-4, 0.02, target), 3e-4);
    let (lo, hi) = ADAPTIVE_LR_BOUNDS;
    assert_eq!(adapt_learning_rate(lo, 1.0, target), lo);
    assert_eq!(adapt_learning_rate(hi, 0.0, target), hi);
}

#[test]
fn adaptive_schedule_moves_the_rate_and_resumes_it() {
    use dex_policy::ppo::LrSchedule;
    let config = PpoConfig {
        lr_schedule: LrSchedule::Adaptive,
        target_kl: 0.01,
        ..small_config(3)
    };
    // It needs a KL to steer to.
    let bad = PpoConfig {
        target_kl: 0.0,
        ..config.clone()
    };
    assert!(matches!(
        PpoTrainer::new(point_envs(16), bad, toml::Table::new()),
        Err(Error::InvalidSetting { .. })
    ));
    let mut t = PpoTrainer::new(point_envs(16), config.clone(), toml::Table::new()).unwrap();
    let mut rates = Vec::new();
    for _ in 0..4 {
        rates.push(t.update().unwrap().learning_rate);
    }
    assert!(
        rates.iter().any(|&r| r != config.learning_rate),
        "the rate never moved: {rates:?}"
    );
    let dir = std::env::temp_dir().join(format!("dex-policy-adaptive-{}", std::process::id()));
    t.save(&dir).unwrap();
    let mut resumed = PpoTrainer::new(point_envs(16), config.clone(), toml::Table::new()).unwrap();
    let meta = resumed.resume(&dir).unwrap();
    // The next update runs at the saved rate, resumed or not.
    let saved = meta.adaptive_learning_rate.unwrap();
    assert_eq!(t.update().unwrap().learning_rate, saved);
    assert_eq!(resumed.update().unwrap().learning_rate, saved);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn without_a_step_the_policy_ratio_is_one() {
    // With a vanishing learning rate the networks do not move, so the loss must see
    // exactly the log-probabilities the rollout recorded: ratio 1, KL 0.
    let config = PpoConfig {
        learning_rate: 1e-30,
        epochs: 2,
        minibatches: 4,
        target_kl: 0.0,
        ..small_config(4)
    };
    let mut t = PpoTrainer::new(point_envs(16), config, toml::Table::new()).unwrap();
    for _ in 0..3 {
        let s = t.update().unwrap();
        assert!(s.approx_kl.abs() < 1e-6, "approximate KL {}", s.approx_kl);
    }
}
