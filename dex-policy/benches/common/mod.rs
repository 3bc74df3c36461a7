//! The training workloads that the criterion bench and the `train_workloads` example
//! time, on the shapes that `benches/peers/torch_policy.py` runs in PyTorch:
//!
//! - `ppo_update`: one PPO minibatch step (losses, backward, gradient clip, Adam),
//!   observations 96, MLP [512, 256, 128] ELU, actions 16, batch 4,096;
//! - `sac_c51_update`: one SAC update with twin C51 critics (51 atoms), hidden
//!   [256, 256] with LayerNorm, observations 64, actions 16, batch 1,024 (sampling
//!   from the replay buffer included);
//! - `sac_depth_update`: the same update with `reach-depth`'s defaults: a 16 × 16
//!   image (through the CNN encoder, 3 convolutions of 32 channels) beside 64 state
//!   values, C51 with 101 atoms, batch 512;
//! - `pointnet_forward`: PointNet 3 → 64 → 128 → 256, max-pool, linear 256, on
//!   64 clouds of 512 points, from detached weights.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs, dead_code)]

use candle_core::{DType, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use dex_policy::nets::{frozen_builder, init_seeded, new_store};
use dex_policy::{
    ActorCritic, PointNet, PointNetConfig, PpoConfig, PpoMinibatch, SacConfig, SacTrainer,
    ppo_gradient_step,
};
use dex_sim::VecEnv;
use dex_sim::env::{BoxSpace, Env, Info, Observation, ObservationSpec, Step};
use rand::{Rng, SeedableRng};
use std::hint::black_box;

fn uniform(rng: &mut rand_chacha::ChaCha8Rng, shape: &[usize], a: f32) -> Tensor {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-a..a)).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

/// One PPO minibatch step per call.
pub fn ppo_update() -> impl FnMut() {
    let (obs, act, batch) = (96, 16, 4096);
    let config = PpoConfig {
        hidden: vec![512, 256, 128],
        ..PpoConfig::default()
    };
    let (varmap, vb) = new_store();
    let net = ActorCritic::new(obs, act, &config, &vb).unwrap();
    init_seeded(&varmap, 0, |_| 1.0).unwrap();
    let vars: Vec<Var> = varmap.all_vars();
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: 3e-4,
            weight_decay: 0.0,
            ..ParamsAdamW::default()
        },
    )
    .unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mb = PpoMinibatch {
        observations: uniform(&mut rng, &[batch, obs], 1.0),
        actions: uniform(&mut rng, &[batch, act], 1.0),
        old_log_prob: uniform(&mut rng, &[batch], 1.0).affine(1.0, -10.0).unwrap(),
        advantages: uniform(&mut rng, &[batch], 1.0),
        returns: uniform(&mut rng, &[batch], 1.0),
        old_values: uniform(&mut rng, &[batch], 1.0),
    };
    move || {
        black_box(ppo_gradient_step(&net, &vars, &mut opt, &config, &mb).unwrap());
    }
}

/// Random 64-value observations (then, with an image, `h·w` values in [0, 1]),
/// 16 actions, reward = −‖a‖²: shapes only.
struct WideEnv {
    rng: rand_chacha::ChaCha8Rng,
    action_space: BoxSpace,
    spec: ObservationSpec,
    steps: usize,
}

impl WideEnv {
    fn new() -> Self {
        Self::with_image(None)
    }
    fn with_image(image: Option<(usize, usize)>) -> Self {
        let extra = image.map_or(0, |(h, w)| h * w);
        Self {
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(0),
            action_space: BoxSpace::uniform(16, -1.0, 1.0),
            spec: ObservationSpec {
                state: BoxSpace::uniform(64 + extra, f32::NEG_INFINITY, f32::INFINITY),
                depth: image,
            },
            steps: 0,
        }
    }
    fn obs(&mut self) -> Observation {
        let mut state: Vec<f32> = (0..64).map(|_| self.rng.random_range(-1.0..1.0)).collect();
        let extra = self.spec.state.dim() - 64;
        state.extend((0..extra).map(|_| self.rng.random_range(0.0..1.0f32)));
        Observation { state, depth: None }
    }
}

impl Env for WideEnv {
    fn name(&self) -> &str {
        "wide"
    }
    fn action_space(&self) -> &BoxSpace {
        &self.action_space
    }
    fn observation_spec(&self) -> &ObservationSpec {
        &self.spec
    }
    fn reset(&mut self, seed: Option<u64>) -> dex_sim::Result<(Observation, Info)> {
        if let Some(s) = seed {
            self.rng = rand_chacha::ChaCha8Rng::seed_from_u64(s);
        }
        self.steps = 0;
        Ok((self.obs(), Info::default()))
    }
    fn step(&mut self, action: &[f32]) -> dex_sim::Result<Step> {
        self.steps += 1;
        Ok(Step {
            obs: self.obs(),
            reward: -action.iter().map(|a| f64::from(a * a)).sum::<f64>(),
            terminated: false,
            truncated: self.steps >= 50,
            info: Info::default(),
        })
    }
}

/// One SAC C51 update per call.
pub fn sac_c51_update() -> impl FnMut() {
    let n = 16;
    let venv = VecEnv::from_fn(n, |_| Ok(Box::new(WideEnv::new()) as Box<dyn Env>)).unwrap();
    let config = SacConfig {
        num_envs: n,
        batch_size: 1024,
        buffer_size: 16 * 200,
        learning_starts: 16 * 200,
        hidden: vec![256, 256],
        layer_norm: true,
        distributional: true,
        atoms: 51,
        v_min: -10.0,
        v_max: 10.0,
        ..SacConfig::default()
    };
    let mut trainer = SacTrainer::new(venv, config, toml::Table::new()).unwrap();
    // Fill the buffer with random-action transitions (no updates before learning_starts).
    for _ in 0..199 {
        trainer.step().unwrap();
    }
    assert_eq!(trainer.updates(), 0);
    move || {
        black_box(trainer.update().unwrap());
    }
}

/// One SAC update on 16 × 16 images with `reach-depth`'s defaults per call.
pub fn sac_depth_update() -> impl FnMut() {
    let n = 16;
    let venv = VecEnv::from_fn(n, |_| {
        Ok(Box::new(WideEnv::with_image(Some((16, 16)))) as Box<dyn Env>)
    })
    .unwrap();
    let config = SacConfig {
        num_envs: n,
        buffer_size: 16 * 200,
        learning_starts: 16 * 200,
        ..SacConfig::default()
    };
    let mut trainer = SacTrainer::new(venv, config, toml::Table::new()).unwrap();
    for _ in 0..199 {
        trainer.step().unwrap();
    }
    move || {
        black_box(trainer.update().unwrap());
    }
}

/// One PointNet forward pass per call.
pub fn pointnet_forward() -> impl FnMut() {
    let (varmap, vb) = new_store();
    let config = PointNetConfig {
        input: 3,
        hidden: vec![64, 128, 256],
        output: 256,
        ..PointNetConfig::default()
    };
    let _net = PointNet::new(&config, &vb).unwrap();
    init_seeded(&varmap, 0, |_| 1.0).unwrap();
    // Inference from detached tensors: no graph is recorded.
    let detached = PointNet::new(&config, &frozen_builder(&varmap).unwrap()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let x = uniform(&mut rng, &[64, 512, 3], 0.1);
    assert_eq!(x.dtype(), DType::F32);
    move || {
        black_box(detached.forward(&x).unwrap());
    }
}
