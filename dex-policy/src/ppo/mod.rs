//! Proximal Policy Optimization on a [`dex_sim::VecEnv`]: GAE, clipped surrogate, clipped value
//! loss, entropy bonus, running observation normalisation, reward scaling, minibatch
//! epochs with a KL early stop, gradient clipping and a learning-rate schedule.

mod config;
mod losses;
mod policy;
mod trainer;

pub use crate::checkpoint::{META_FILE, WEIGHTS_FILE};
pub use config::{ADAPTIVE_LR_BOUNDS, LrSchedule, PpoConfig, adapt_learning_rate};
pub use losses::{ActorCritic, PpoLosses, PpoMinibatch, gae, ppo_gradient_step, ppo_losses};
pub use policy::{CheckpointMeta, GaussianPolicy};
pub use trainer::{PpoTrainer, UpdateStats};
