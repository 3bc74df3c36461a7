//! Policies for dex: the [`Policy`] trait and its wrappers, networks on candle, PPO
//! trained on dex-sim's vectorised environments, evaluation and checkpoints.
//!
//! ```no_run
//! use dex_policy::{PpoConfig, PpoTrainer, evaluate, ActMode};
//! use dex_sim::{TaskConfig, VecEnv, make_env};
//! use dex_core::HandModel;
//!
//! let config = PpoConfig { num_envs: 8, ..PpoConfig::default() };
//! let make = |_| make_env("reach", HandModel::leap_right(), TaskConfig::default());
//! let mut trainer = PpoTrainer::new(VecEnv::from_fn(8, make)?, config, Default::default())?;
//! for _ in 0..10 {
//!     let stats = trainer.update()?;
//!     println!("update {} success {:.2}", stats.update, stats.success_rate);
//! }
//! let mut policy = trainer.policy()?;
//! let mut eval_envs = VecEnv::from_fn(8, make)?;
//! let result = evaluate(&mut policy, &mut eval_envs, 20, 1, ActMode::Deterministic)?;
//! println!("success {:.2}", result.success_rate);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bc;
pub mod dataset;
pub mod encoders;
mod error;
mod eval;
pub mod experts;
pub mod fused;
pub mod nets;
mod normalize;
mod policy;
pub mod ppo;
pub mod sac;
mod train;
mod util;

pub use bc::{
    BcConfig, BcTrainer, DaggerConfig, DaggerIteration, StudentCheckpointMeta, StudentPolicy,
    dagger,
};
pub use dataset::{Dataset, DatasetMeta, DatasetWriter};
pub use encoders::{
    CnnConfig, CnnEncoder, PointNet, PointNetConfig, TransformerConfig, TransformerEncoder,
};
pub use error::{Error, Result};
pub use eval::{EvalResult, evaluate};
pub use experts::ReachIkExpert;
pub use nets::{Activation, Mlp, MlpConfig};
pub use normalize::RunningMeanStd;
pub use policy::{
    ActMode, ActionNoise, Clip, MockPolicy, NoiseKind, NormalizeObservations, Policy, Residual,
    ScriptedPolicy, check_observations,
};
pub use ppo::{
    ActorCritic, CheckpointMeta, GaussianPolicy, LrSchedule, PpoConfig, PpoLosses, PpoMinibatch,
    PpoTrainer, UpdateStats, gae, ppo_gradient_step, ppo_losses,
};
pub use sac::{
    Batch, ReplayBuffer, SacCheckpointMeta, SacConfig, SacLosses, SacPolicy, SacTrainer,
    c51_project,
};
pub use train::{LoadedCheckpoint, Metrics, Trainer, load_checkpoint};
