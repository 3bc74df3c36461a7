//! `FingertipReach`: move every fingertip to a random target.

use dex_core::HandModel;
use nalgebra::Point3;
use rand::Rng;

use super::config::TaskConfig;
use super::hand_core::{HandCore, make_simulator};
use super::task::{Task, env_for_task};
use crate::camera::Camera;
use crate::env::{Info, Observation, Step};
use crate::error::Result;
use crate::simulator::Simulator;

/// Settings of [`FingertipReach`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReachConfig {
    /// A fingertip counts as arrived within this distance of its target (m).
    pub success_radius: f64,
    /// Reward bonus on success.
    pub success_bonus: f64,
    /// Targets come from joint configurations drawn in the central fraction of each range.
    pub range_fraction: f64,
    /// Control steps the hand is driven (under physics, from the open hand) towards the
    /// drawn configuration at reset; the targets are where the fingertips then are. With
    /// 0 the targets are the drawn configuration's fingertips by kinematics alone, and
    /// some cannot be reached: the drawn configuration may cross two fingers.
    pub settle_steps: usize,
    /// Observe the targets through the depth camera ([`super::TaskConfig::depth_view`])
    /// instead of as coordinates: the state is proprioception, fingertip positions (by
    /// kinematics of the measured joints, palm frame, ×10) and the squinted depth
    /// image, with the targets drawn into it as spheres. Task name `reach-depth`.
    pub depth: bool,
}

impl Default for ReachConfig {
    fn default() -> Self {
        Self {
            success_radius: 0.02,
            success_bonus: 10.0,
            range_fraction: 0.8,
            settle_steps: 10,
            depth: false,
        }
    }
}

/// Appends the task-specific part of [`FingertipReach`]'s state (after the
/// proprioception block, see [`super::Proprioception`]): fingertip positions, target
/// positions and `target − tip`, palm frame, ×10.
pub fn reach_state(tips_palm: &[Point3<f64>], goals_palm: &[Point3<f64>], out: &mut Vec<f32>) {
    for p in tips_palm {
        out.extend(p.iter().map(|v| (v * 10.0) as f32));
    }
    for p in goals_palm {
        out.extend(p.iter().map(|v| (v * 10.0) as f32));
    }
    for (t, g) in tips_palm.iter().zip(goals_palm) {
        out.extend((g - t).iter().map(|v| (v * 10.0) as f32));
    }
}

/// Fingertips to random targets: the quick sanity task.
///
/// **Reset:** a joint configuration is drawn uniformly in the central
/// [`ReachConfig::range_fraction`] of every range; the hand, starting open, is driven
/// towards it by its PD controller for [`ReachConfig::settle_steps`] control steps, and
/// each fingertip's target is where that fingertip then is (so every target set is
/// reachable under physics: fingers that would cross stop at contact). Then the hand
/// starts open (0 clamped into the limits, plus uniform noise of ±0.05 rad).
///
/// **Reward:** `r = -20 · mean_i ‖tip_i − target_i‖ + bonus · 1[success]`, distances in m.
/// **Success:** every fingertip within `success_radius`; it terminates the episode.
///
/// **State:** proprioception (see [module docs](crate::tasks)), then fingertip positions,
/// target positions and `target − tip`, all in the palm frame and ×10 (decimetres),
/// `3 × tips` values each. Info: `mean_distance` (m), `max_distance` (m).
///
/// **Depth variant** ([`ReachConfig::depth`], task `reach-depth`): proprioception, the
/// fingertip positions, then the `side × side` squinted depth image row by row as
/// `depth / max_depth` (see [`super::DepthView`]); the image is also in
/// [`Observation::depth`] (m). The targets appear only as spheres drawn into the image.
pub struct FingertipReach {
    core: HandCore,
    params: ReachConfig,
    goals: Vec<Point3<f64>>,
    camera: Option<Camera>,
}

impl FingertipReach {
    /// Builds the task for `model`.
    pub fn new(model: HandModel, config: TaskConfig, params: ReachConfig) -> Result<Self> {
        let sim_config = config.sim_config(&model);
        let sim = make_simulator(model, &[], &[], sim_config, config.mock_physics)?;
        Self::with_simulator(sim, config, params)
    }

    /// Builds the task on a simulator of the caller's (any [`Simulator`]: a backend of
    /// their own, a wrapped or pre-configured one). The simulator keeps its own
    /// [`crate::SimConfig`]: `config.dt`, `config.substeps` and `config.mock_physics`
    /// are not used; everything else in `config` applies.
    pub fn with_simulator(
        sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: ReachConfig,
    ) -> Result<Self> {
        let mut core = HandCore::new(sim, config)?;
        let tips = core.sim.model().fingertips().len();
        let (obs_dim, camera, depth) = if params.depth {
            let view = &core.config.depth_view;
            let side = view.side();
            (
                core.proprio_dim() + 3 * tips + side * side,
                Some(view.camera(core.sim.as_ref())?),
                Some((side, side)),
            )
        } else {
            (core.proprio_dim() + 9 * tips, None, None)
        };
        core.set_observation(obs_dim, depth);
        Ok(Self {
            core,
            params,
            goals: Vec::new(),
            camera,
        })
    }

    /// The current targets (world frame).
    pub fn goals(&self) -> &[Point3<f64>] {
        &self.goals
    }

    /// Replaces the targets (world frame, one per fingertip).
    pub fn set_goals(&mut self, goals: Vec<Point3<f64>>) -> Result<()> {
        let n = self.core.sim.model().fingertips().len();
        if goals.len() != n {
            return Err(crate::Error::LengthMismatch {
                what: "fingertip goals",
                expected: n,
                got: goals.len(),
            });
        }
        self.goals = goals;
        Ok(())
    }

    fn observe(&mut self) -> Result<(Observation, Info)> {
        let mut state = Vec::with_capacity(self.core.obs_spec.state.dim());
        self.core.proprio(&mut state);
        let tips = self.core.sim.fingertip_positions();
        let mut image = None;
        if let Some(camera) = &self.camera {
            self.core.push_fingertips(&mut state);
            self.core.add_noise(&mut state);
            let view = &self.core.config.depth_view;
            let depth = view.observe(self.core.sim.as_ref(), camera, &self.goals, &mut state)?;
            image = Some(depth);
        } else {
            let tips_palm: Vec<Point3<f64>> = tips.iter().map(|p| self.core.to_palm(p)).collect();
            let goals_palm: Vec<Point3<f64>> =
                self.goals.iter().map(|p| self.core.to_palm(p)).collect();
            reach_state(&tips_palm, &goals_palm, &mut state);
            self.core.add_noise(&mut state);
        }
        let d: Vec<f64> = tips
            .iter()
            .zip(&self.goals)
            .map(|(t, g)| (t - g).norm())
            .collect();
        let mut info = Info::default();
        let mean = d.iter().sum::<f64>() / d.len().max(1) as f64;
        let max = d.iter().copied().fold(0.0, f64::max);
        info.set("mean_distance", mean);
        info.set("max_distance", max);
        info.success = !d.is_empty() && max <= self.params.success_radius;
        Ok((
            Observation {
                state,
                depth: image,
            },
            info,
        ))
    }
}

impl Task for FingertipReach {
    fn core(&self) -> &HandCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut HandCore {
        &mut self.core
    }

    fn task_name(&self) -> &str {
        if self.params.depth {
            "reach-depth"
        } else {
            "reach"
        }
    }

    fn start_episode(&mut self) -> Result<(Observation, Info)> {
        let model = self.core.sim.model().clone();
        let f = self.params.range_fraction;
        let goal_q: Vec<f64> = self
            .core
            .limits
            .iter()
            .map(|l| {
                let half = (l.upper - l.lower) * f / 2.0;
                l.mid() + self.core.rng.random_range(-half..=half)
            })
            .collect();
        let hand = self.core.sim.config().hand_pose;
        self.goals = if self.params.settle_steps > 0 {
            let open = self.core.open_configuration();
            self.core.sim.set_joint_positions(&open)?;
            self.core.sim.set_joint_targets(&goal_q)?;
            for _ in 0..self.params.settle_steps {
                self.core.sim.step()?;
            }
            self.core.sim.fingertip_positions()
        } else {
            model
                .fingertip_positions(&goal_q)?
                .iter()
                .map(|p| hand * p)
                .collect()
        };
        let mut start = self.core.open_configuration();
        for (q, l) in start.iter_mut().zip(&self.core.limits) {
            *q = (*q + self.core.rng.random_range(-0.05..=0.05)).clamp(l.lower, l.upper);
        }
        self.core.sim.set_joint_positions(&start)?;
        self.core.begin_episode(None)?;
        self.observe()
    }

    fn after_action(&mut self) -> Result<Step> {
        let (obs, info) = self.observe()?;
        let mean = info.get("mean_distance").unwrap_or(0.0);
        let reward = -20.0 * mean
            + if info.success {
                self.params.success_bonus
            } else {
                0.0
            };
        let terminated = info.success;
        let truncated = self.core.end_step(terminated);
        Ok(Step {
            obs,
            reward,
            terminated,
            truncated,
            info,
        })
    }
}

env_for_task!(FingertipReach);
