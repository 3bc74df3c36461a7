//! [`SacPolicy`]: a trained actor (with its encoder), loaded from a checkpoint, acting.

use std::path::Path;

use candle_nn::{VarBuilder, VarMap};
use ndarray::{Array2, ArrayView2};

use crate::checkpoint::{checkpoint_error, load_weights};
use crate::convert::to_array;
use crate::encoders::CnnEncoder;
use crate::error::Result;
use crate::nets::new_store;
use crate::policy::{ActMode, Policy, check_observations};
use crate::random::standard_normal;

use super::checkpoint_meta::*;
use super::config::*;
use super::networks::*;

/// What acting needs: the actor and, for image observations, the critics' encoder.
pub(super) fn policy_networks(
    config: &SacConfig,
    layout: ObsLayout,
    (low, high): (&[f32], &[f32]),
    vb: &VarBuilder<'_>,
) -> Result<(Actor, Option<CnnEncoder>)> {
    let actor = Actor::new(
        config,
        layout.feature_dim(config),
        low,
        high,
        &vb.pp("actor"),
    )?;
    let enc = layout
        .cnn(config)
        .map(|c| CnnEncoder::new(&c, &vb.pp("qenc")))
        .transpose()?;
    Ok((actor, enc))
}

/// A trained SAC policy: deterministic mode acts with tanh of the mean, stochastic
/// mode samples the squashed Gaussian; both scaled to the action bounds.
pub struct SacPolicy {
    pub(super) actor: Actor,
    pub(super) enc: Option<CnnEncoder>,
    pub(super) layout: ObsLayout,
    pub(super) _varmap: VarMap,
}

impl std::fmt::Debug for SacPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SacPolicy")
            .field("actor", &self.actor.net)
            .finish_non_exhaustive()
    }
}

impl SacPolicy {
    /// Loads a checkpoint directory written by [`crate::SacTrainer::save`] (only the actor's
    /// weights are read).
    ///
    /// # Errors
    ///
    /// [`crate::Error::Checkpoint`] for a missing, unreadable, corrupt or mismatched file.
    pub fn load(dir: &Path) -> Result<(Self, SacCheckpointMeta)> {
        let meta = read_sac_meta(dir)?;
        let fail = |reason: String| checkpoint_error(dir, reason);
        let (mut varmap, vb) = new_store();
        let layout = ObsLayout::from_meta(meta.observation_dim, &meta.image)
            .map_err(|e| fail(e.to_string()))?;
        let bounds = (meta.action_low.as_slice(), meta.action_high.as_slice());
        let (actor, enc) =
            policy_networks(&meta.sac, layout, bounds, &vb).map_err(|e| fail(e.to_string()))?;
        load_weights(dir, &mut varmap)?;
        Ok((
            Self {
                actor,
                enc,
                layout,
                _varmap: varmap,
            },
            meta,
        ))
    }
}

impl Policy for SacPolicy {
    fn observation_dim(&self) -> usize {
        self.layout.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.actor.action_dim
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn rand::RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let x = self.layout.input(self.enc.as_ref(), observations)?;
        let (mu, log_std) = self.actor.dist(&x)?;
        let mut a = to_array(&mu)?;
        if mode == ActMode::Stochastic {
            let s = to_array(&log_std)?;
            for (v, l) in a.iter_mut().zip(&s) {
                *v += l.exp() * standard_normal(rng) as f32;
            }
        }
        a.mapv_inplace(f32::tanh);
        self.actor.scale(&mut a);
        Ok(a)
    }
}
