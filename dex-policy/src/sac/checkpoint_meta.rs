//! What a SAC checkpoint directory holds besides the weights, and reading it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{checkpoint_error, read_checkpoint_meta};
use crate::error::Result;

use super::config::*;

/// What a SAC checkpoint directory holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacCheckpointMeta {
    /// SAC settings (networks included).
    pub sac: SacConfig,
    /// Observation width (image values included).
    pub observation_dim: usize,
    /// `[height, width]` of the image at the end of each observation; empty for state
    /// observations.
    #[serde(default)]
    pub image: Vec<usize>,
    /// Lower action bounds.
    pub action_low: Vec<f32>,
    /// Upper action bounds.
    pub action_high: Vec<f32>,
    /// Gradient updates done.
    pub updates: usize,
    /// Environment steps done.
    pub env_steps: u64,
    /// Free-form description of the environment, for the caller (task, hand, …).
    pub env: toml::Table,
}

pub(super) fn read_sac_meta(dir: &Path) -> Result<SacCheckpointMeta> {
    let fail = |reason: String| checkpoint_error(dir, reason);
    let meta: SacCheckpointMeta = read_checkpoint_meta(dir)?;
    meta.sac.validate().map_err(|e| fail(e.to_string()))?;
    if meta.action_low.len() != meta.action_high.len()
        || meta.action_low.is_empty()
        || meta.observation_dim == 0
    {
        return Err(fail(
            "empty or mismatched action bounds / observation width".into(),
        ));
    }
    Ok(meta)
}
