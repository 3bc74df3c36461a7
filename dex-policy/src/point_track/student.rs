//! [`PointTrackPolicy`]: the Dex4D student as a [`Policy`], with its checkpoint.

use std::path::Path;

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use ndarray::{Array2, ArrayView2};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::net::{PointTrackBatch, PointTrackConfig, PointTrackInputs, PointTrackNet, is_head};
use crate::checkpoint::{checkpoint_error, load_weights, read_checkpoint_meta, write_checkpoint};
use crate::convert::to_array;
use crate::error::{Result, check_len, invalid};
use crate::nets::{frozen_builder, init_seeded, new_store};
use crate::policy::{ActMode, Policy, check_observations};

/// What a point-track checkpoint holds besides the weights (`[point_track]` and the
/// rest of `checkpoint.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PointTrackMeta {
    /// The network.
    pub point_track: PointTrackConfig,
    /// Where its inputs sit in the observation.
    pub inputs: PointTrackInputs,
    /// Observation width.
    pub observation_dim: usize,
    /// Action width.
    pub action_dim: usize,
    /// Seed of the initialisation.
    pub seed: u64,
    /// Environment steps the student was trained on.
    pub env_steps: u64,
    /// Free-form description of the environment, for the caller.
    pub env: toml::Table,
}

/// The Dex4D student acting on an environment's observation: it reads joint
/// positions, velocities, the last action and the paired points from
/// [`PointTrackInputs`]; a point that is zero in both sets is hidden. Actions are
/// clamped to `[−1, 1]` (Dex4D's environment clips them). Deterministic and stochastic
/// modes act alike.
pub struct PointTrackPolicy {
    pub(crate) varmap: VarMap,
    /// Built on the variables (records a graph, for training).
    pub(crate) net: PointTrackNet,
    /// Built on detached views of the same variables (for acting).
    infer: PointTrackNet,
    pub(crate) meta: PointTrackMeta,
}

impl std::fmt::Debug for PointTrackPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PointTrackPolicy")
            .field("config", &self.meta.point_track)
            .field("inputs", &self.meta.inputs)
            .finish_non_exhaustive()
    }
}

impl PointTrackPolicy {
    /// An untrained student.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidSetting`] for a bad config or inputs that do not fit
    /// `observation_dim`.
    pub fn new(
        config: &PointTrackConfig,
        inputs: PointTrackInputs,
        observation_dim: usize,
        action_dim: usize,
        seed: u64,
        env: toml::Table,
    ) -> Result<Self> {
        inputs.validate(observation_dim)?;
        check_len("last action width", inputs.last_action.len(), action_dim)?;
        if inputs.qpos.len() != inputs.qvel.len() {
            return Err(invalid(format!(
                "joint positions ({}) and velocities ({}) must have the same width",
                inputs.qpos.len(),
                inputs.qvel.len()
            )));
        }
        let (varmap, vb) = new_store();
        let (j, n) = (inputs.qpos.len(), inputs.points());
        let net = PointTrackNet::new(config, j, action_dim, n, &vb)?;
        init_seeded(&varmap, seed, |name| if is_head(name) { 0.01 } else { 1.0 })?;
        let infer = PointTrackNet::new(config, j, action_dim, n, &frozen_builder(&varmap)?)?;
        Ok(Self {
            varmap,
            net,
            infer,
            meta: PointTrackMeta {
                point_track: config.clone(),
                inputs,
                observation_dim,
                action_dim,
                seed,
                env_steps: 0,
                env,
            },
        })
    }

    /// The checkpoint description.
    pub fn meta(&self) -> &PointTrackMeta {
        &self.meta
    }

    /// The network (for inspection and custom losses).
    pub fn net(&self) -> &PointTrackNet {
        &self.net
    }

    /// The inputs of a batch of observations, as the network takes them.
    ///
    /// # Errors
    ///
    /// A batch of the wrong width or with NaN.
    pub fn batch(&self, observations: ArrayView2<'_, f32>) -> Result<PointTrackBatch> {
        check_observations(observations, self.meta.observation_dim)?;
        let inputs = &self.meta.inputs;
        let b = observations.nrows();
        let n = inputs.points();
        let take = |r: &std::ops::Range<usize>| -> Result<Tensor> {
            let mut data = Vec::with_capacity(b * r.len());
            for row in observations.rows() {
                data.extend(row.iter().skip(r.start).take(r.len()).copied());
            }
            Ok(Tensor::from_vec(data, (b, r.len()), &Device::Cpu)?)
        };
        let mut visible = Vec::with_capacity(b * n);
        for row in observations.rows() {
            for i in 0..n {
                let hidden = (0..3).all(|c| {
                    row[inputs.current.start + 3 * i + c] == 0.0
                        && row[inputs.goal.start + 3 * i + c] == 0.0
                });
                visible.push(if hidden { 0.0f32 } else { 1.0 });
            }
        }
        Ok(PointTrackBatch {
            qpos: take(&inputs.qpos)?,
            qvel: take(&inputs.qvel)?,
            last_action: take(&inputs.last_action)?,
            current: take(&inputs.current)?.reshape((b, n, 3))?,
            goal: take(&inputs.goal)?.reshape((b, n, 3))?,
            visible: Tensor::from_vec(visible, (b, n), &Device::Cpu)?,
        })
    }

    /// Writes `policy.safetensors` and `checkpoint.toml` to `dir`.
    ///
    /// # Errors
    ///
    /// File-system or tensor errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        write_checkpoint(dir, &self.varmap, &self.meta)
    }

    /// Loads a checkpoint written by [`PointTrackPolicy::save`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::Checkpoint`] for a missing, corrupt or mismatched checkpoint.
    pub fn load(dir: &Path) -> Result<Self> {
        let meta: PointTrackMeta = read_checkpoint_meta(dir)?;
        let mut policy = Self::new(
            &meta.point_track,
            meta.inputs.clone(),
            meta.observation_dim,
            meta.action_dim,
            meta.seed,
            meta.env.clone(),
        )
        .map_err(|e| checkpoint_error(dir, e.to_string()))?;
        load_weights(dir, &mut policy.varmap)?;
        policy.meta = meta;
        Ok(policy)
    }
}

impl Policy for PointTrackPolicy {
    fn observation_dim(&self) -> usize {
        self.meta.observation_dim
    }

    fn action_dim(&self) -> usize {
        self.meta.action_dim
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let x = self.batch(observations)?;
        let a = self.infer.forward(&x)?.action.clamp(-1.0, 1.0)?;
        to_array(&a)
    }
}
