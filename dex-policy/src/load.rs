//! Loading any checkpoint of this crate's trainers, telling the algorithm from its
//! `checkpoint.toml`.

use std::path::Path;

use crate::error::{Error, Result};
use crate::policy::Policy;

/// A checkpoint loaded without knowing beforehand which algorithm wrote it.
pub struct LoadedCheckpoint {
    /// The algorithm that wrote it (`ppo`, `sac`, `dagger` (MLP and point-track
    /// students), `gait`).
    pub algorithm: &'static str,
    /// The policy, ready to act.
    pub policy: Box<dyn Policy>,
    /// The environment description the trainer stored.
    pub env: toml::Table,
    /// Environment steps of training (for a student: the dataset rows it learnt from).
    pub env_steps: u64,
}

impl std::fmt::Debug for LoadedCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedCheckpoint")
            .field("algorithm", &self.algorithm)
            .field("env", &self.env)
            .field("env_steps", &self.env_steps)
            .finish_non_exhaustive()
    }
}

/// Loads a checkpoint directory written by any trainer of this crate, telling the
/// algorithm from its `checkpoint.toml`.
///
/// # Errors
///
/// [`Error::Checkpoint`] for a missing, unreadable, corrupt or mismatched checkpoint.
pub fn load_checkpoint(dir: &Path) -> Result<LoadedCheckpoint> {
    let table: toml::Table = crate::checkpoint::read_checkpoint_meta(dir)?;
    if table.contains_key("ppo") {
        let (policy, meta) = crate::ppo::GaussianPolicy::load(dir)?;
        Ok(LoadedCheckpoint {
            algorithm: "ppo",
            policy: Box::new(policy),
            env: meta.env,
            env_steps: meta.env_steps,
        })
    } else if table.contains_key("sac") {
        let (policy, meta) = crate::sac::SacPolicy::load(dir)?;
        Ok(LoadedCheckpoint {
            algorithm: "sac",
            policy: Box::new(policy),
            env: meta.env,
            env_steps: meta.env_steps,
        })
    } else if table.contains_key("bc") {
        let student = crate::bc::StudentPolicy::load(dir)?;
        let env = student.meta().env.clone();
        Ok(LoadedCheckpoint {
            algorithm: "dagger",
            env,
            env_steps: student.meta().rows as u64,
            policy: Box::new(student),
        })
    } else if table.contains_key("gait") {
        let gait = crate::gait::GaitPolicy::load(dir)?;
        Ok(LoadedCheckpoint {
            algorithm: "gait",
            env: gait.meta().env.clone(),
            env_steps: gait.meta().env_steps,
            policy: Box::new(gait),
        })
    } else if table.contains_key("point_track") {
        let student = crate::point_track::PointTrackPolicy::load(dir)?;
        Ok(LoadedCheckpoint {
            algorithm: "dagger",
            env: student.meta().env.clone(),
            env_steps: student.meta().env_steps,
            policy: Box::new(student),
        })
    } else {
        Err(Error::Checkpoint {
            path: dir.display().to_string(),
            reason: "not a PPO, SAC, student, point-track or gait checkpoint (no [ppo], [sac], \
                     [bc], [point_track] or [gait] table)"
                .into(),
        })
    }
}
