//! [`EnvSpec`]: which environment a policy was trained on, as its checkpoint stores it
//! (the `env` table of `checkpoint.toml`), and how to build that environment again.

use dex_core::HandModel;
use serde::{Deserialize, Serialize};

use crate::env::VecEnv;
use crate::error::{Error, Result};
use crate::tasks::{TASK_NAMES, TaskConfig, make_env};

/// Which environment a policy was trained on: task, hand, observation kind and task
/// settings. Trainers store it in their checkpoints (the `env` table of
/// `checkpoint.toml`); [`EnvSpec::build`] rebuilds the environment, so that a checkpoint
/// is evaluated or deployed under the settings it was trained with (its action mode
/// above all).
///
/// ```
/// use dex_sim::{ActionMode, EnvSpec, TaskConfig};
///
/// let spec = EnvSpec {
///     task: "reach".into(),
///     hand: "leap".into(),
///     obs: "state".into(),
///     config: TaskConfig { mock_physics: true, action_mode: ActionMode::Relative, ..TaskConfig::default() },
/// };
/// let table = spec.to_table()?;
/// assert_eq!(EnvSpec::from_table(&table)?, spec);
/// let venv = spec.build(2)?;
/// assert_eq!(venv.num_envs(), 2);
/// # Ok::<(), dex_sim::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvSpec {
    /// Task name (one of [`TASK_NAMES`] without a `-depth` suffix).
    pub task: String,
    /// Hand: a built-in name (`leap`, `allegro`) or a URDF path.
    pub hand: String,
    /// Observation kind: `state`, or `depth` for the task's `-depth` variant.
    pub obs: String,
    /// Task settings.
    pub config: TaskConfig,
}

impl EnvSpec {
    /// State observations of `task` on `hand` with `config`.
    pub fn state(task: &str, hand: &str, config: TaskConfig) -> Self {
        Self {
            task: task.to_string(),
            hand: hand.to_string(),
            obs: "state".into(),
            config,
        }
    }

    /// The spec as a TOML table (what a checkpoint stores).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] if a value cannot be written as TOML.
    pub fn to_table(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).map_err(|e| Error::Config {
            message: format!("the environment description: {e}"),
        })
    }

    /// Reads a spec from a checkpoint's `env` table; unknown keys are refused.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming what does not fit.
    pub fn from_table(table: &toml::Table) -> Result<Self> {
        let spec: Self =
            toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| Error::Config {
                    message: format!("the environment description: {e}"),
                })?;
        spec.config.validate()?;
        Ok(spec)
    }

    /// The dex-sim task that gives these observations: the task itself for `state`,
    /// its `-depth` variant for `depth`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for an observation kind other than `state` and `depth`, or
    /// a task without a depth variant.
    pub fn sim_task(&self) -> Result<String> {
        match self.obs.as_str() {
            "state" => Ok(self.task.clone()),
            "depth" => {
                let name = format!("{}-depth", self.task);
                if TASK_NAMES.contains(&name.as_str()) {
                    Ok(name)
                } else {
                    let with: Vec<&str> = TASK_NAMES
                        .iter()
                        .filter_map(|t| t.strip_suffix("-depth"))
                        .collect();
                    Err(Error::Config {
                        message: format!(
                            "task `{}` has no depth observations (tasks with depth: {})",
                            self.task,
                            with.join(", ")
                        ),
                    })
                }
            }
            other => Err(Error::Config {
                message: format!("observation kind `{other}` is not available (state, depth)"),
            }),
        }
    }

    /// The hand model ([`HandModel::load`]: a built-in name or a URDF file).
    ///
    /// # Errors
    ///
    /// As [`HandModel::load`].
    pub fn model(&self) -> Result<HandModel> {
        Ok(HandModel::load(&self.hand)?)
    }

    /// `n` environments of this kind, in a [`VecEnv`].
    ///
    /// # Errors
    ///
    /// An unknown hand, task or observation kind; invalid settings; a backend error.
    pub fn build(&self, n: usize) -> Result<VecEnv> {
        let model = self.model()?;
        let task = self.sim_task()?;
        VecEnv::from_fn(n, |_| make_env(&task, model.clone(), self.config.clone()))
    }
}
