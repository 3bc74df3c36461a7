//! What every trainer offers a training front-end: one iteration at a time, metrics,
//! checkpoints, resuming, and the current policy.

use std::path::Path;

use crate::error::Result;
use crate::policy::Policy;

/// Metrics of one training iteration (a PPO update; a SAC round of steps and updates).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metrics {
    /// Iterations done (from 1).
    pub iteration: usize,
    /// Environment steps so far.
    pub env_steps: u64,
    /// Episodes that ended during this iteration.
    pub episodes: usize,
    /// Success fraction of those episodes (NaN when none ended).
    pub success_rate: f64,
    /// Mean undiscounted return of those episodes (NaN when none ended).
    pub mean_return: f64,
    /// Algorithm-specific figures (losses, entropy, learning rate…), in a fixed order.
    pub extra: Vec<(&'static str, f64)>,
}

/// A reinforcement-learning trainer that a front-end can drive generically.
pub trait Trainer {
    /// Short name (`ppo`, `sac`), also written into checkpoints.
    fn algorithm(&self) -> &'static str;
    /// Runs one iteration.
    ///
    /// # Errors
    ///
    /// Environment errors, NaN observations, divergence.
    fn iterate(&mut self) -> Result<Metrics>;
    /// Environment steps so far.
    fn env_steps(&self) -> u64;
    /// Writes a checkpoint into `dir` (created if needed).
    ///
    /// # Errors
    ///
    /// File-system or tensor errors.
    fn save(&self, dir: &Path) -> Result<()>;
    /// Continues from a checkpoint this kind of trainer wrote with the same networks.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Checkpoint`] for a missing, corrupt or mismatched checkpoint.
    fn resume(&mut self, dir: &Path) -> Result<()>;
    /// The current policy, detached from training.
    ///
    /// # Errors
    ///
    /// Tensor errors.
    fn current_policy(&self) -> Result<Box<dyn Policy>>;
}
