//! What a PPO checkpoint holds besides the weights, and [`GaussianPolicy`], the trained actor loaded from it.

use std::path::Path;

use candle_core::{Module, Tensor};
use candle_nn::VarMap;

use ndarray::{Array2, ArrayView2};

use rand::RngCore;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{checkpoint_error, load_weights, read_checkpoint_meta};
use crate::convert::{to_array, to_tensor};
use crate::error::Result;

use crate::nets::{Mlp, new_store};
use crate::normalize::RunningMeanStd;
use crate::policy::{ActMode, Policy, check_observations};
use crate::random::standard_normal;

use super::config::*;
use super::losses::*;

/// What a checkpoint directory holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// PPO settings (networks included).
    pub ppo: PpoConfig,
    /// Observation width.
    pub observation_dim: usize,
    /// Action width.
    pub action_dim: usize,
    /// Observation statistics (identity when normalisation is off).
    pub observation_stats: RunningMeanStd,
    /// Updates done.
    pub updates: usize,
    /// Environment steps done.
    pub env_steps: u64,
    /// Free-form description of the environment, for the caller (task, hand, …).
    pub env: toml::Table,
    /// Running statistics of the discounted return that scale rewards (for resuming).
    #[serde(default)]
    pub return_stats: Option<RunningMeanStd>,
    /// The rate [`LrSchedule::Adaptive`] had reached (for resuming).
    #[serde(default)]
    pub adaptive_learning_rate: Option<f64>,
}

/// Reads and checks `checkpoint.toml` in `dir`.
pub(super) fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    let fail = |reason: String| checkpoint_error(dir, reason);
    let meta: CheckpointMeta = read_checkpoint_meta(dir)?;
    meta.ppo.validate().map_err(|e| fail(e.to_string()))?;
    if meta.observation_stats.dim() != meta.observation_dim {
        return Err(fail("observation statistics of the wrong width".into()));
    }
    Ok(meta)
}

/// A trained Gaussian MLP policy (mean = actor output, fixed log std), with its
/// observation normalisation: what PPO produces and checkpoints hold.
pub struct GaussianPolicy {
    pub(super) actor: Mlp,
    pub(super) log_std: Tensor,
    pub(super) stats: Option<RunningMeanStd>,
    pub(super) _varmap: VarMap,
}

impl std::fmt::Debug for GaussianPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaussianPolicy")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl GaussianPolicy {
    /// Loads a checkpoint directory written by [`crate::PpoTrainer::save`]; returns the policy
    /// and the metadata.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Checkpoint`] for a missing, unreadable, corrupt or mismatched file.
    pub fn load(dir: &Path) -> Result<(Self, CheckpointMeta)> {
        let fail = |reason: String| checkpoint_error(dir, reason);
        let meta = read_meta(dir)?;
        let (mut varmap, vb) = new_store();
        let net = ActorCritic::new(meta.observation_dim, meta.action_dim, &meta.ppo, &vb)
            .map_err(|e| fail(e.to_string()))?;
        load_weights(dir, &mut varmap)?;
        let policy = Self {
            actor: net.actor,
            log_std: net.log_std.detach(),
            stats: meta
                .ppo
                .normalize_observations
                .then(|| meta.observation_stats.clone()),
            _varmap: varmap,
        };
        Ok((policy, meta))
    }
}

impl Policy for GaussianPolicy {
    fn observation_dim(&self) -> usize {
        self.actor.config().input
    }
    fn action_dim(&self) -> usize {
        self.actor.config().output
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let x = match &self.stats {
            Some(s) => s.normalize(observations, 5.0),
            None => observations.to_owned(),
        };
        let mut mu = to_array(&self.actor.forward(&to_tensor(x.view())?)?)?;
        if mode == ActMode::Stochastic {
            let std: Vec<f32> = self.log_std.exp()?.to_vec1()?;
            for mut row in mu.rows_mut() {
                for (v, s) in row.iter_mut().zip(&std) {
                    *v += s * standard_normal(rng) as f32;
                }
            }
        }
        Ok(mu)
    }
}
