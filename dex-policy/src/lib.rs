//! Policies for dex: the [`Policy`] trait and its wrappers, networks on candle, PPO,
//! SAC and DAgger trained on dex-sim's vectorised environments, evaluation and
//! checkpoints.
//!
//! Features: `candle` (default) adds the networks, the trainers and checkpoints.
//! Without it the crate keeps [`Policy`], its wrappers, [`MockPolicy`], the scripted
//! [`ReachIkExpert`], [`evaluate`] and the dataset types, and compiles neither candle
//! nor a physics engine.
//!
//! With the default `candle` feature (networks and trainers):
//!
//! ```no_run
//! # #[cfg(feature = "candle")] {
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
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod batch;
mod checkpoint;
pub mod chunk_files;
pub mod dataset;
mod error;
mod eval;
pub mod experts;
pub mod gait;
mod normalize;
mod policy;
pub mod proxy;
pub mod tabletop;

#[cfg(feature = "candle")]
pub mod bc;
#[cfg(feature = "candle")]
pub mod convert;
#[cfg(feature = "candle")]
pub mod encoders;
#[cfg(feature = "candle")]
pub mod fused;
#[cfg(feature = "candle")]
mod gradients;
#[cfg(feature = "candle")]
mod load;
#[cfg(feature = "candle")]
pub mod nets;
#[cfg(feature = "candle")]
pub mod point_track;
#[cfg(feature = "candle")]
pub mod ppo;
pub mod random;
#[cfg(feature = "candle")]
pub mod run;
#[cfg(feature = "candle")]
pub mod sac;
#[cfg(feature = "candle")]
mod train;
#[cfg(feature = "candle")]
mod vars;

pub use checkpoint::{META_FILE, WEIGHTS_FILE};
pub use dataset::{Dataset, DatasetMeta, DatasetWriter};
pub use error::{Error, Result};
pub use eval::{EvalResult, evaluate};
pub use experts::ReachIkExpert;
pub use gait::{Gait, GaitPolicy, GaitSearchConfig, search_gait};
pub use normalize::RunningMeanStd;
pub use policy::{
    ActMode, ActionNoise, Clip, MockPolicy, NoiseKind, NormalizeObservations, Policy, Residual,
    ScriptedPolicy, check_observations,
};
pub use proxy::PoseProxyExpert;
pub use tabletop::{TabletopExpert, TabletopExpertConfig};

#[cfg(feature = "candle")]
pub use bc::{
    BcConfig, BcTrainer, DaggerConfig, DaggerIteration, StudentCheckpointMeta, StudentPolicy,
    dagger,
};
#[cfg(feature = "candle")]
pub use encoders::{
    CnnConfig, CnnEncoder, PointNet, PointNetConfig, TransformerConfig, TransformerEncoder,
};
#[cfg(feature = "candle")]
pub use fused::Activation;
#[cfg(feature = "candle")]
pub use load::{LoadedCheckpoint, load_checkpoint};
#[cfg(feature = "candle")]
pub use nets::{Mlp, MlpConfig};
#[cfg(feature = "candle")]
pub use ppo::{
    ActorCritic, CheckpointMeta, GaussianPolicy, LrSchedule, PpoConfig, PpoLosses, PpoMinibatch,
    PpoTrainer, UpdateStats, gae, ppo_gradient_step, ppo_losses,
};
#[cfg(feature = "candle")]
pub use sac::{
    Batch, ReplayBuffer, SacCheckpointMeta, SacConfig, SacLosses, SacPolicy, SacTrainer,
    c51_project,
};
#[cfg(feature = "candle")]
pub use train::{Metrics, Trainer};

/// The types most programs using dex-policy need, in one import.
pub mod prelude {
    pub use crate::{
        ActMode, ActionNoise, Clip, Error, EvalResult, MockPolicy, Policy, Residual, Result,
        ScriptedPolicy, evaluate,
    };
    #[cfg(feature = "candle")]
    pub use crate::{
        GaussianPolicy, PpoConfig, PpoTrainer, SacConfig, SacPolicy, SacTrainer, StudentPolicy,
        Trainer, load_checkpoint,
    };
}

// Foreign crates whose types appear in our signatures.
#[cfg(feature = "candle")]
pub use candle_core;
#[cfg(feature = "candle")]
pub use candle_nn;
pub use dex_sim;
pub use ndarray;
