//! The data source: DexGen's task at 10 Hz ([`TaskSettings`]) and a scripted
//! grasp-to-grasp expert ([`GraspExpert`]).
//!
//! DexGen trains its prior on rollouts of PPO experts on anygrasp-to-anygrasp. dex's
//! expert is scripted instead: it knows the object's grasp set (privileged, as a
//! simulation expert may) and moves the joint targets from the current grasp's towards
//! the goal grasp's at a bounded rate per control step. It never loosens a grip faster
//! than that rate, so it rarely drops the object, which is what the prior must learn.

use dex_core::{HandModel, JointLimits};
use dex_policy::{ActMode, Policy, check_observations};
use dex_sim::tasks::{AnygraspConfig, AnygraspOptions, AnygraspToAnygrasp, Grasp};
use dex_sim::{ActionMode, Randomization, TaskConfig};
use ndarray::{Array2, ArrayView2};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How DexGen's data and evaluation environment is set up: anygrasp-to-anygrasp on a
/// hand at 10 Hz (DexGen's control rate, §III-D), gravity in any direction, relative
/// joint-target actions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskSettings {
    /// Control steps per episode (10 per simulated second).
    pub episode_steps: usize,
    /// Radians per unit action (actions are relative target increments, so that
    /// DexGen's "slow expert", an action scaled by U(0, a), is slow).
    pub relative_scale: f64,
    /// Largest tilt of gravity from the palm-down direction (rad); π draws every
    /// direction, so that a lost grasp drops the object.
    pub gravity_tilt: f64,
    /// Candidate grasp generation attempts per object.
    pub grasp_attempts: usize,
    /// Grasps kept per object.
    pub grasps: usize,
    /// The object's yaw range during grasp generation (see
    /// [`AnygraspConfig::yaw_range`]).
    pub yaw_range: f64,
    /// A goal is reached when every joint is within this (rad) of the goal grasp…
    pub joint_tolerance: f64,
    /// …and the object within this distance (m)…
    pub position_tolerance: f64,
    /// …and this rotation (rad) of the goal grasp's object pose.
    pub rotation_tolerance: f64,
    /// Control steps after which an unreached goal is replaced (uncounted), so the
    /// expert keeps moving between grasps instead of waiting at one it cannot reach.
    pub goal_timeout_steps: usize,
}

impl Default for TaskSettings {
    fn default() -> Self {
        Self {
            episode_steps: 600,
            relative_scale: 0.4,
            gravity_tilt: std::f64::consts::PI,
            grasp_attempts: 60,
            grasps: 12,
            yaw_range: 0.0,
            joint_tolerance: 0.3,
            position_tolerance: 0.03,
            rotation_tolerance: 0.6,
            goal_timeout_steps: 50,
        }
    }
}

impl TaskSettings {
    /// The task configuration: dt 2 ms, 50 substeps (10 Hz), history 1 (the controller
    /// keeps its own), relative actions, gravity drawn per episode.
    pub fn task_config(&self) -> TaskConfig {
        TaskConfig {
            dt: 0.002,
            substeps: 50,
            episode_steps: self.episode_steps,
            history: 1,
            action_mode: ActionMode::Relative,
            relative_scale: self.relative_scale,
            relative_lead: 0.0,
            randomization: Randomization {
                gravity_tilt: self.gravity_tilt,
                ..Randomization::default()
            },
            anygrasp: AnygraspOptions {
                num_grasps: self.grasps,
                max_attempts: self.grasp_attempts,
                yaw_range: self.yaw_range,
                joint_tolerance: self.joint_tolerance,
                position_tolerance: self.position_tolerance,
                rotation_tolerance: self.rotation_tolerance,
                goal_timeout_steps: self.goal_timeout_steps,
            },
            ..TaskConfig::default()
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero length or count, a non-positive scale or a
    /// tilt outside `0..=π`.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, reason: String| Err(Error::InvalidSetting { what, reason });
        if self.episode_steps == 0 || self.grasps < 2 || self.grasp_attempts < self.grasps {
            return bad(
                "task settings",
                format!(
                    "episode_steps ≥ 1, grasps ≥ 2 and grasp_attempts ≥ grasps needed, got {}, {}, {}",
                    self.episode_steps, self.grasps, self.grasp_attempts
                ),
            );
        }
        if !(self.relative_scale.is_finite() && self.relative_scale > 0.0) {
            return bad(
                "relative_scale",
                format!("must be positive, got {}", self.relative_scale),
            );
        }
        if !(0.0..=std::f64::consts::PI).contains(&self.yaw_range) {
            return bad(
                "yaw_range",
                format!("must be in 0..=π, got {}", self.yaw_range),
            );
        }
        if !(0.0..=std::f64::consts::PI).contains(&self.gravity_tilt) {
            return bad(
                "gravity_tilt",
                format!("must be in 0..=π, got {}", self.gravity_tilt),
            );
        }
        Ok(())
    }

    /// As [`TaskSettings::build`], with `None` when the object has fewer than two stable
    /// grasps (collection and evaluation move on to the next object then); every other
    /// error is returned.
    ///
    /// # Errors
    ///
    /// As [`TaskSettings::build`], but for too few grasps.
    pub fn try_build(
        &self,
        model: HandModel,
        object: dex_sim::ObjectSpec,
        grasp_seed: u64,
    ) -> Result<Option<AnygraspToAnygrasp>> {
        match self.build(model, object, grasp_seed) {
            Ok(task) => Ok(Some(task)),
            Err(Error::Sim(dex_sim::Error::InvalidParameter {
                what: "grasp generation",
                ..
            })) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The task on `model` with `object`, its grasp set generated with `grasp_seed`.
    ///
    /// # Errors
    ///
    /// Invalid settings; the task's errors (no two stable grasps found, a bad object).
    pub fn build(
        &self,
        model: HandModel,
        object: dex_sim::ObjectSpec,
        grasp_seed: u64,
    ) -> Result<AnygraspToAnygrasp> {
        self.validate()?;
        let config = self.task_config();
        let params = config.anygrasp.apply(AnygraspConfig {
            object,
            grasp_seed,
            ..AnygraspConfig::default()
        });
        Ok(AnygraspToAnygrasp::new(model, config, params)?)
    }
}

/// The scripted grasp-to-grasp expert, a [`Policy`] on anygrasp observations of a task
/// built with [`ActionMode::Relative`] and history 1.
///
/// Row `i` of a batch belongs to environment `i`, whose grasp set the expert was given.
/// It reads the targets in force and the goal configuration from the observation, takes
/// the goal grasp to be the set's grasp nearest that configuration, and moves each
/// target towards the goal grasp's target by at most `max_step` rad.
#[derive(Debug, Clone)]
pub struct GraspExpert {
    grasps: Vec<Vec<Grasp>>,
    limits: Vec<JointLimits>,
    relative_scale: f64,
    max_step: f64,
    observation_dim: usize,
}

impl GraspExpert {
    /// For environments with grasp sets `grasps` (one per environment) of `model`,
    /// whose observations are `observation_dim` wide, acting through relative actions of
    /// `relative_scale` rad per unit, moving at most `max_step` rad per step.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for no environment, an empty grasp set, a grasp of the
    /// wrong width, a non-positive step, or `max_step > relative_scale` (more than one
    /// action unit).
    pub fn new(
        model: &HandModel,
        grasps: Vec<Vec<Grasp>>,
        observation_dim: usize,
        relative_scale: f64,
        max_step: f64,
    ) -> Result<Self> {
        let limits = model.joint_limits();
        let bad = |reason: String| {
            Err(Error::InvalidSetting {
                what: "grasp expert",
                reason,
            })
        };
        if grasps.is_empty() || grasps.iter().any(Vec::is_empty) {
            return bad("needs a non-empty grasp set per environment".into());
        }
        if grasps
            .iter()
            .flatten()
            .any(|g| g.q.len() != limits.len() || g.targets.len() != limits.len())
        {
            return bad(format!("grasps must have {} joints", limits.len()));
        }
        if !(max_step > 0.0 && relative_scale > 0.0 && max_step <= relative_scale) {
            return bad(format!(
                "needs 0 < max_step ≤ relative_scale, got {max_step} and {relative_scale}"
            ));
        }
        let dof = limits.len();
        if observation_dim < 4 * dof {
            return bad(format!(
                "observation width {observation_dim} is too small for anygrasp on {dof} joints"
            ));
        }
        Ok(Self {
            grasps,
            limits,
            relative_scale,
            max_step,
            observation_dim,
        })
    }

    /// The goal grasp of environment `env` for an observation row.
    fn goal(&self, env: usize, row: &[f32]) -> &Grasp {
        let dof = self.limits.len();
        // History 1: [q, targets, qdot·0.1], then the goal configuration in [-1, 1].
        let goal = &row[3 * dof..4 * dof];
        let set = &self.grasps[env];
        let distance = |g: &Grasp| -> f64 {
            g.q.iter()
                .zip(goal)
                .zip(&self.limits)
                .map(|((q, u), l)| (l.to_unit(*q) - f64::from(*u)).powi(2))
                .sum()
        };
        let mut best = &set[0];
        for g in &set[1..] {
            if distance(g) < distance(best) {
                best = g;
            }
        }
        best
    }
}

impl Policy for GraspExpert {
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    fn action_dim(&self) -> usize {
        self.limits.len()
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> dex_policy::Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        let rows = observations.nrows();
        if rows > self.grasps.len() {
            return Err(dex_policy::Error::LengthMismatch {
                what: "batch rows (one per environment given a grasp set)",
                expected: self.grasps.len(),
                got: rows,
            });
        }
        let dof = self.limits.len();
        let mut out = Array2::zeros((rows, dof));
        for (i, row) in observations.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let goal = self.goal(i, &row);
            for j in 0..dof {
                let l = &self.limits[j];
                let target = l.from_unit(f64::from(row[dof + j]));
                let step = (goal.targets[j] - target).clamp(-self.max_step, self.max_step);
                out[[i, j]] = (step / self.relative_scale) as f32;
            }
        }
        Ok(out)
    }
}
