//! `AnygraspToAnygrasp` (DexGen): stable grasps generated per object, then goals that are
//! nearby grasps.

use dex_core::HandModel;
use dex_core::geometry::rotation_distance;
use nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::config::TaskConfig;
use super::hand_core::{HandCore, make_simulator, push_pose};
use super::task::{Task, env_for_task};
use crate::env::{Info, Observation, Step};
use crate::error::{Error, Result};
use crate::object::ObjectSpec;
use crate::simulator::{Simulator, open_configuration, rest_pose_on_palm};

/// A stable grasp: joint targets, the joint configuration they settle to, and the object
/// pose relative to the hand mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Grasp {
    /// PD targets that hold the grasp.
    pub targets: Vec<f64>,
    /// Joint positions once settled.
    pub q: Vec<f64>,
    /// Object pose in the hand mount (palm) frame.
    pub object_in_palm: Isometry3<f64>,
}

/// Settings of grasp generation and of [`AnygraspToAnygrasp`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnygraspConfig {
    /// The object.
    pub object: ObjectSpec,
    /// Grasps to generate (attempts stop at `max_attempts`).
    pub num_grasps: usize,
    /// Most generation attempts.
    pub max_attempts: usize,
    /// Seed of grasp generation (the grasp set is fixed per environment).
    pub grasp_seed: u64,
    /// A grasp is kept if the object moves less than this (m) under each gravity direction.
    pub stability_tolerance: f64,
    /// The object is placed at a yaw drawn from `[-yaw_range, yaw_range]` (rad) before
    /// the hand closes; π (the default) draws every yaw. A small range gives a grasp
    /// set whose grasps hold the object in similar orientations, so that a goal is a
    /// change of finger configuration more than a reorientation.
    pub yaw_range: f64,
    /// Goals are drawn among this many nearest grasps.
    pub neighbours: usize,
    /// A goal is reached when every joint is within this (rad) of the goal configuration…
    pub joint_tolerance: f64,
    /// …and the object within this distance (m)…
    pub position_tolerance: f64,
    /// …and this rotation (rad) of the goal pose.
    pub rotation_tolerance: f64,
    /// Bonus per goal reached.
    pub goal_bonus: f64,
    /// Control steps after which an unreached goal is replaced by a new one (drawn
    /// among the old goal's neighbours; not counted as reached); 0 never replaces it.
    pub goal_timeout_steps: usize,
}

impl Default for AnygraspConfig {
    fn default() -> Self {
        Self {
            object: ObjectSpec::cube(0.05, 0.1),
            num_grasps: 12,
            max_attempts: 60,
            grasp_seed: 0,
            stability_tolerance: 0.01,
            yaw_range: std::f64::consts::PI,
            neighbours: 4,
            joint_tolerance: 0.15,
            position_tolerance: 0.01,
            rotation_tolerance: 0.25,
            goal_bonus: 10.0,
            goal_timeout_steps: 0,
        }
    }
}

/// The settings of [`AnygraspConfig`] a task config file may set (its `[task.anygrasp]`
/// table): the tasks built by name ([`crate::tasks::make_env`], `dex train --task
/// anygrasp`) take them from [`crate::TaskConfig::anygrasp`]; the rest (object, seeds,
/// stability test, neighbours, bonus) keep their defaults. The defaults are
/// [`AnygraspConfig::default`]'s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnygraspOptions {
    /// [`AnygraspConfig::num_grasps`].
    pub num_grasps: usize,
    /// [`AnygraspConfig::max_attempts`].
    pub max_attempts: usize,
    /// [`AnygraspConfig::yaw_range`] (rad, `0..=π`).
    pub yaw_range: f64,
    /// [`AnygraspConfig::joint_tolerance`] (rad).
    pub joint_tolerance: f64,
    /// [`AnygraspConfig::position_tolerance`] (m).
    pub position_tolerance: f64,
    /// [`AnygraspConfig::rotation_tolerance`] (rad).
    pub rotation_tolerance: f64,
    /// [`AnygraspConfig::goal_timeout_steps`] (0: never).
    pub goal_timeout_steps: usize,
}

impl Default for AnygraspOptions {
    fn default() -> Self {
        let d = AnygraspConfig::default();
        Self {
            num_grasps: d.num_grasps,
            max_attempts: d.max_attempts,
            yaw_range: d.yaw_range,
            joint_tolerance: d.joint_tolerance,
            position_tolerance: d.position_tolerance,
            rotation_tolerance: d.rotation_tolerance,
            goal_timeout_steps: d.goal_timeout_steps,
        }
    }
}

impl AnygraspOptions {
    /// `base` with these options in place of its fields of the same names.
    pub fn apply(&self, base: AnygraspConfig) -> AnygraspConfig {
        AnygraspConfig {
            num_grasps: self.num_grasps,
            max_attempts: self.max_attempts,
            yaw_range: self.yaw_range,
            joint_tolerance: self.joint_tolerance,
            position_tolerance: self.position_tolerance,
            rotation_tolerance: self.rotation_tolerance,
            goal_timeout_steps: self.goal_timeout_steps,
            ..base
        }
    }

    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for fewer than 2 grasps, fewer attempts than grasps, a yaw
    /// range outside `0..=π` or a tolerance that is not positive.
    pub fn validate(&self) -> Result<()> {
        let bad = |message: String| Err(Error::Config { message });
        if self.num_grasps < 2 || self.max_attempts < self.num_grasps {
            return bad(format!(
                "anygrasp: num_grasps ≥ 2 and max_attempts ≥ num_grasps needed, got {} and {}",
                self.num_grasps, self.max_attempts
            ));
        }
        if !(0.0..=std::f64::consts::PI).contains(&self.yaw_range) {
            return bad(format!(
                "anygrasp.yaw_range = {}: needs 0..=π",
                self.yaw_range
            ));
        }
        for (name, v) in [
            ("joint_tolerance", self.joint_tolerance),
            ("position_tolerance", self.position_tolerance),
            ("rotation_tolerance", self.rotation_tolerance),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(format!("anygrasp.{name} = {v}: must be positive"));
            }
        }
        Ok(())
    }
}

/// Distance between two grasps for nearest-neighbour goals: joint-space distance (rad)
/// plus 10 × object position distance (m) plus object rotation distance (rad).
pub fn grasp_distance(a: &Grasp, b: &Grasp) -> f64 {
    let dq =
        a.q.iter()
            .zip(&b.q)
            .map(|(x, y)| (x - y).powi(2))
            .sum::<f64>()
            .sqrt();
    let dp = (a.object_in_palm.translation.vector - b.object_in_palm.translation.vector).norm();
    let dr = rotation_distance(&a.object_in_palm.rotation, &b.object_in_palm.rotation);
    dq + 10.0 * dp + dr
}

/// The six axis directions gravity is turned to when a grasp is tested.
fn gravity_directions() -> [Vector3<f64>; 6] {
    let g = 9.81;
    [
        Vector3::new(0.0, 0.0, -g),
        Vector3::new(0.0, 0.0, g),
        Vector3::new(g, 0.0, 0.0),
        Vector3::new(-g, 0.0, 0.0),
        Vector3::new(0.0, g, 0.0),
        Vector3::new(0.0, -g, 0.0),
    ]
}

/// Generates stable grasps of `params.object` with `sim` (whose first object is replaced):
/// the object rests on the palm at a random yaw (within `yaw_range`) and offset; the hand closes from open
/// towards a random flexed configuration (upper 30–90% of each range) under its PD
/// controllers, which stop at contact by the effort limits; after settling, the grasp is
/// kept if the object moves less than `stability_tolerance` when gravity is turned to
/// each of the six axis directions for 0.5 s (DexGen's test). Deterministic for a seed.
pub fn generate_grasps(sim: &mut dyn Simulator, params: &AnygraspConfig) -> Result<Vec<Grasp>> {
    use rand::SeedableRng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(params.grasp_seed);
    let model = sim.model().clone();
    let limits = model.joint_limits();
    let hand = sim.config().hand_pose;
    let gravity = sim.config().gravity;
    let period = sim.config().control_period();
    let steps = |seconds: f64| (seconds / period).ceil().max(1.0) as usize;
    let open = open_configuration(&model);
    let rest = rest_pose_on_palm(&model, &hand, params.object.shape.half_height(), 0.001);
    let mut grasps = Vec::new();
    for _ in 0..params.max_attempts {
        if grasps.len() >= params.num_grasps {
            break;
        }
        let yaw = if params.yaw_range > 0.0 {
            rng.random_range(-params.yaw_range..params.yaw_range)
        } else {
            0.0
        };
        let offset = Vector3::new(
            rng.random_range(-0.01..=0.01),
            rng.random_range(-0.01..=0.01),
            0.0,
        );
        let pose = Isometry3::from_parts(
            Translation3::from(rest.translation.vector + offset),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw),
        );
        sim.set_gravity(gravity)?;
        sim.set_joint_positions(&open)?;
        sim.set_objects(std::slice::from_ref(&params.object), &[pose])?;
        for _ in 0..steps(0.1) {
            sim.step()?;
        }
        let closed: Vec<f64> = limits
            .iter()
            .map(|l| {
                let lo = l.lower.max(0.0);
                lo + (l.upper - lo) * rng.random_range(0.3..=0.9)
            })
            .collect();
        sim.set_joint_targets(&closed)?;
        for _ in 0..steps(0.6) {
            sim.step()?;
        }
        let settled = sim.save_state();
        let start = sim.object_state(0)?.pose;
        let mut stable = true;
        for g in gravity_directions() {
            sim.restore_state(&settled)?;
            sim.set_gravity(g)?;
            for _ in 0..steps(0.5) {
                sim.step()?;
            }
            let moved =
                (sim.object_state(0)?.pose.translation.vector - start.translation.vector).norm();
            if !moved.is_finite() || moved > params.stability_tolerance {
                stable = false;
                break;
            }
        }
        sim.restore_state(&settled)?;
        sim.set_gravity(gravity)?;
        if stable {
            grasps.push(Grasp {
                targets: sim.joint_targets().to_vec(),
                q: sim.joint_state().q,
                object_in_palm: hand.inverse() * start,
            });
        }
    }
    Ok(grasps)
}

/// DexGen's anygrasp-to-anygrasp task.
///
/// **Construction:** [`generate_grasps`] builds the object's grasp set (an error if none
/// is found). **Reset:** a random grasp of the set is the start (hand and object placed
/// there, at rest); the goal is a random one of the start's `neighbours` nearest other
/// grasps ([`grasp_distance`]). A goal not reached within `goal_timeout_steps` (when
/// set) is replaced the same way, uncounted. **Goal reached:** joints within `joint_tolerance` and the
/// object within `position_tolerance` and `rotation_tolerance` of the goal; the next goal
/// is then drawn among the reached goal's neighbours.
///
/// **Reward:** `r = −‖q − q_goal‖ − 10 ‖p − p_goal‖ − rot_err + bonus · 1[goal reached]`.
/// **Termination:** the object falls (more than 10 cm from the palm-frame goal position).
/// Info: `goals_reached`, `dropped` (0/1), `joint_error`, `position_error`,
/// `rotation_error`; success = at least one goal reached in the episode.
///
/// **State:** proprioception, goal configuration (normalised to [−1, 1]), object pose and
/// goal object pose (palm frame: position ×10, quaternion i j k w), fingertips (palm
/// frame, ×10).
pub struct AnygraspToAnygrasp {
    core: HandCore,
    params: AnygraspConfig,
    grasps: Vec<Grasp>,
    goal: usize,
    reached: usize,
    goal_age: usize,
}

impl AnygraspToAnygrasp {
    /// Builds the task for `model`, generating its grasp set.
    pub fn new(model: HandModel, config: TaskConfig, params: AnygraspConfig) -> Result<Self> {
        params.object.validate()?;
        let sim_config = config.sim_config(&model);
        let pose = rest_pose_on_palm(&model, &sim_config.hand_pose, 0.05, 0.0);
        let sim = make_simulator(
            model,
            std::slice::from_ref(&params.object),
            &[pose],
            sim_config,
            config.mock_physics,
        )?;
        Self::with_simulator(sim, config, params)
    }

    /// Builds the task on a simulator of the caller's (any [`Simulator`]: a backend of
    /// their own, a wrapped or pre-configured one). The simulator keeps its own
    /// [`crate::SimConfig`]: `config.dt`, `config.substeps` and `config.mock_physics`
    /// are not used; everything else in `config` applies.
    /// The grasp set is generated on it (see [`generate_grasps`]), which places the
    /// task's object.
    pub fn with_simulator(
        mut sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: AnygraspConfig,
    ) -> Result<Self> {
        params.object.validate()?;
        if !(0.0..=std::f64::consts::PI).contains(&params.yaw_range) {
            return Err(Error::InvalidParameter {
                what: "yaw_range",
                reason: format!("must be in 0..=π, got {}", params.yaw_range),
            });
        }
        let grasps = generate_grasps(sim.as_mut(), &params)?;
        if grasps.len() < 2 {
            return Err(Error::InvalidParameter {
                what: "grasp generation",
                reason: format!(
                    "found {} stable grasps of `{}` in {} attempts; at least 2 are needed",
                    grasps.len(),
                    params.object.name,
                    params.max_attempts
                ),
            });
        }
        let mut core = HandCore::new(sim, config)?;
        let tips = core.sim.model().fingertips().len();
        let dof = core.dof();
        let obs_dim = core.proprio_dim() + dof + 14 + 3 * tips;
        core.set_observation(obs_dim, None);
        Ok(Self {
            core,
            params,
            grasps,
            goal: 0,
            reached: 0,
            goal_age: 0,
        })
    }

    /// The generated grasps.
    pub fn grasps(&self) -> &[Grasp] {
        &self.grasps
    }

    /// The current goal grasp.
    pub fn goal(&self) -> &Grasp {
        &self.grasps[self.goal]
    }

    fn next_goal(&mut self, from: usize) -> usize {
        let mut order: Vec<(f64, usize)> = self
            .grasps
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != from)
            .map(|(i, g)| (grasp_distance(&self.grasps[from], g), i))
            .collect();
        order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let k = self.params.neighbours.clamp(1, order.len());
        order[self.core.rng.random_range(0..k)].1
    }

    fn errors(&self) -> Result<(f64, f64, f64, f64)> {
        let goal = &self.grasps[self.goal];
        let q = self.core.sim.joint_state().q;
        let dq_max = q
            .iter()
            .zip(&goal.q)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let dq = q
            .iter()
            .zip(&goal.q)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        let hand = self.core.sim.config().hand_pose;
        let obj = hand.inverse() * self.core.sim.object_state(0)?.pose;
        let dp = (obj.translation.vector - goal.object_in_palm.translation.vector).norm();
        let dr = rotation_distance(&obj.rotation, &goal.object_in_palm.rotation);
        Ok((dq, dq_max, dp, dr))
    }

    fn observe(&mut self) -> Result<Observation> {
        let mut state = Vec::with_capacity(self.core.obs_spec.state.dim());
        self.core.proprio(&mut state);
        let goal = self.grasps[self.goal].clone();
        for (q, l) in goal.q.iter().zip(&self.core.limits) {
            state.push(l.to_unit(*q) as f32);
        }
        self.core
            .push_palm_pose(&mut state, &self.core.sim.object_state(0)?.pose);
        push_pose(&mut state, &goal.object_in_palm);
        self.core.push_fingertips(&mut state);
        self.core.add_noise(&mut state);
        Ok(Observation { state, depth: None })
    }
}

impl Task for AnygraspToAnygrasp {
    fn core(&self) -> &HandCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut HandCore {
        &mut self.core
    }

    fn task_name(&self) -> &str {
        "anygrasp"
    }

    fn start_episode(&mut self) -> Result<(Observation, Info)> {
        let start = self.core.rng.random_range(0..self.grasps.len());
        let g = self.grasps[start].clone();
        let hand = self.core.sim.config().hand_pose;
        self.core.sim.set_joint_positions(&g.q)?;
        self.core.sim.set_joint_targets(&g.targets)?;
        self.core.sim.set_objects(
            std::slice::from_ref(&self.params.object),
            &[hand * g.object_in_palm],
        )?;
        self.core.begin_episode(None)?;
        self.goal = self.next_goal(start);
        self.reached = 0;
        self.goal_age = 0;
        let mut info = Info::default();
        info.set("goals_reached", 0.0);
        info.set("dropped", 0.0);
        Ok((self.observe()?, info))
    }

    fn after_action(&mut self) -> Result<Step> {
        let (dq, dq_max, dp, dr) = self.errors()?;
        let p = &self.params;
        let reached =
            dq_max <= p.joint_tolerance && dp <= p.position_tolerance && dr <= p.rotation_tolerance;
        let mut reward = -dq - 10.0 * dp - dr;
        self.goal_age += 1;
        let timed_out = p.goal_timeout_steps > 0 && self.goal_age >= p.goal_timeout_steps;
        if reached {
            reward += p.goal_bonus;
            self.reached += 1;
        }
        if reached || timed_out {
            self.goal = self.next_goal(self.goal);
            self.goal_age = 0;
        }
        let dropped = dp > 0.1;
        let mut info = Info::default();
        info.set("goals_reached", self.reached as f64);
        info.set("dropped", if dropped { 1.0 } else { 0.0 });
        info.set("joint_error", dq);
        info.set("position_error", dp);
        info.set("rotation_error", dr);
        info.success = self.reached > 0;
        let truncated = self.core.end_step(dropped);
        Ok(Step {
            obs: self.observe()?,
            reward,
            terminated: dropped,
            truncated,
            info,
        })
    }
}

env_for_task!(AnygraspToAnygrasp);
