//! `AnyposeToAnypose` (Dex4D): bring a random object from a random start pose to a random
//! goal pose given as object-centric point tracks.

use dex_core::HandModel;
use dex_core::geometry::point_set_rotation_error;
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::Rng;

use super::config::TaskConfig;
use super::hand_core::{HandCore, make_simulator};
use super::sampling::random_rotation;
use super::task::{Task, env_for_task};
use crate::env::{Info, Observation, Step};
use crate::error::{Error, Result};
use crate::object::{ObjectSpec, RandomObjectParams, random_object};
use crate::simulator::{Simulator, rest_pose_on_palm};

/// Settings of [`AnyposeToAnypose`].
#[derive(Debug, Clone, PartialEq)]
pub struct AnyposeConfig {
    /// Object points tracked (the goal is given as these points at the goal pose).
    pub num_points: usize,
    /// Random object generator settings.
    pub objects: RandomObjectParams,
    /// Use this object instead of random ones.
    pub fixed_object: Option<ObjectSpec>,
    /// λ1: weight of the position error (per m).
    pub position_weight: f64,
    /// λ2: weight of the rotation error (per rad).
    pub rotation_weight: f64,
    /// λ3: bonus while successful.
    pub success_bonus: f64,
    /// Mean keypoint distance (m) under which the object is at the goal (Dex4D: 5 cm).
    pub success_distance: f64,
    /// Control steps the goal must be held for success (Dex4D: 30).
    pub hold_steps: usize,
    /// Largest horizontal goal offset (m) from the start position.
    pub goal_offset: f64,
    /// Largest goal lift (m) above the start position.
    pub goal_lift: f64,
}

impl Default for AnyposeConfig {
    fn default() -> Self {
        Self {
            num_points: 64,
            objects: RandomObjectParams::default(),
            fixed_object: None,
            position_weight: 10.0,
            rotation_weight: 1.0,
            success_bonus: 10.0,
            success_distance: 0.02,
            hold_steps: 30,
            goal_offset: 0.02,
            goal_lift: 0.03,
        }
    }
}

/// The object's state against the goal after a step.
struct Measure {
    pose: Isometry3<f64>,
    /// The tracked points at the current pose (world).
    current: Vec<Point3<f64>>,
    /// Mean distance of the points to their goals (m).
    mean: f64,
    /// Kabsch rotation error (rad).
    rot: f64,
    /// Position error (m).
    pos: f64,
}

/// Dex4D's anypose-to-anypose task.
///
/// **Reset:** a random object (or [`AnyposeConfig::fixed_object`]) rests on the palm with a
/// random yaw; the goal pose is the start position moved by up to `goal_offset`
/// horizontally and `goal_lift` upwards, with a uniformly random orientation. The object's
/// `num_points` surface points (fixed per episode) at the goal pose form the goal tracks.
///
/// **Reward:** `r = −λ1 ‖p − p*‖ − λ2 rot_err + λ3 1[at goal]`, with `p` the object
/// position and `rot_err` the angle of the Kabsch rotation between current and goal points.
/// **At goal:** mean point distance ≤ `success_distance`. **Success** (terminates): at goal
/// for `hold_steps` consecutive control steps. **Termination** also when the object falls
/// (more than 15 cm from its start). Info: `mean_point_distance` (m), `rotation_error`
/// (rad), `position_error` (m), `dropped` (0/1).
///
/// **State:** proprioception, current object points then goal points (palm frame, ×10,
/// `3 × num_points` each), the object pose (palm frame position ×10, quaternion i j k w;
/// privileged), fingertip positions (palm frame, ×10).
pub struct AnyposeToAnypose {
    core: HandCore,
    params: AnyposeConfig,
    points: Vec<Point3<f64>>,
    goal_pose: Isometry3<f64>,
    goal_points: Vec<Point3<f64>>,
    start: Point3<f64>,
    held: usize,
}

impl AnyposeToAnypose {
    /// Builds the task for `model`.
    pub fn new(model: HandModel, config: TaskConfig, params: AnyposeConfig) -> Result<Self> {
        let first = Self::first_object(&params)?;
        let pose = rest_pose_on_palm(&model, &config.sim_config(&model).hand_pose, 0.05, 0.0);
        let sim_config = config.sim_config(&model);
        let sim = make_simulator(model, &[first], &[pose], sim_config, config.mock_physics)?;
        Self::from_parts(sim, config, params)
    }

    /// Builds the task on a simulator of the caller's (any [`Simulator`]: a backend of
    /// their own, a wrapped or pre-configured one). The simulator keeps its own
    /// [`crate::SimConfig`]: `config.dt`, `config.substeps` and `config.mock_physics`
    /// are not used; everything else in `config` applies.
    /// The first object is placed on the palm.
    pub fn with_simulator(
        mut sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: AnyposeConfig,
    ) -> Result<Self> {
        let first = Self::first_object(&params)?;
        let pose = rest_pose_on_palm(sim.model(), &sim.config().hand_pose, 0.05, 0.0);
        sim.set_objects(&[first], &[pose])?;
        Self::from_parts(sim, config, params)
    }

    /// Checks `params` and returns the object the scene starts with.
    fn first_object(params: &AnyposeConfig) -> Result<ObjectSpec> {
        if params.num_points < 3 {
            return Err(Error::InvalidParameter {
                what: "num_points",
                reason: format!("needs at least 3 points, got {}", params.num_points),
            });
        }
        let first = params
            .fixed_object
            .clone()
            .unwrap_or_else(|| ObjectSpec::cube(0.05, 0.1));
        first.validate()?;
        Ok(first)
    }

    fn from_parts(
        sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: AnyposeConfig,
    ) -> Result<Self> {
        let mut core = HandCore::new(sim, config)?;
        let tips = core.sim.model().fingertips().len();
        let obs_dim = core.proprio_dim() + 6 * params.num_points + 7 + 3 * tips;
        core.set_observation(obs_dim, None);
        Ok(Self {
            core,
            params,
            points: Vec::new(),
            goal_pose: Isometry3::identity(),
            goal_points: Vec::new(),
            start: Point3::origin(),
            held: 0,
        })
    }

    /// The goal pose of the object (world frame).
    pub fn goal_pose(&self) -> Isometry3<f64> {
        self.goal_pose
    }

    /// The goal point tracks: the object points at the goal pose (world frame).
    pub fn goal_points(&self) -> &[Point3<f64>] {
        &self.goal_points
    }

    /// The tracked object points in the object frame.
    pub fn object_points(&self) -> &[Point3<f64>] {
        &self.points
    }

    fn measure(&self) -> Result<Measure> {
        let s = self.core.sim.object_state(0)?;
        let current: Vec<Point3<f64>> = self.points.iter().map(|p| s.pose * p).collect();
        let mean = current
            .iter()
            .zip(&self.goal_points)
            .map(|(a, b)| (a - b).norm())
            .sum::<f64>()
            / current.len() as f64;
        let rot = point_set_rotation_error(&current, &self.goal_points)?;
        let pos = (s.pose.translation.vector - self.goal_pose.translation.vector).norm();
        Ok(Measure {
            pose: s.pose,
            current,
            mean,
            rot,
            pos,
        })
    }

    fn observe(&mut self, m: &Measure) -> Observation {
        let mut state = Vec::with_capacity(self.core.obs_spec.state.dim());
        self.core.proprio(&mut state);
        for p in m.current.iter().chain(&self.goal_points) {
            state.extend(self.core.to_palm(p).iter().map(|v| (v * 10.0) as f32));
        }
        self.core.push_palm_pose(&mut state, &m.pose);
        self.core.push_fingertips(&mut state);
        self.core.add_noise(&mut state);
        Observation { state, depth: None }
    }

    fn info(&self, m: &Measure, dropped: bool) -> Info {
        let mut info = Info::default();
        info.set("mean_point_distance", m.mean);
        info.set("rotation_error", m.rot);
        info.set("position_error", m.pos);
        info.set("dropped", if dropped { 1.0 } else { 0.0 });
        info.success = self.held >= self.params.hold_steps;
        info
    }
}

impl Task for AnyposeToAnypose {
    fn core(&self) -> &HandCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut HandCore {
        &mut self.core
    }

    fn task_name(&self) -> &str {
        "anypose"
    }

    fn start_episode(&mut self) -> Result<(Observation, Info)> {
        let base = match &self.params.fixed_object {
            Some(o) => o.clone(),
            None => random_object(&mut self.core.rng, &self.params.objects),
        };
        let object = self.core.randomize_object(&base);
        self.points = object
            .shape
            .sample_surface(self.params.num_points, &mut self.core.rng);
        let model = self.core.sim.model().clone();
        let hand = self.core.sim.config().hand_pose;
        let rest = rest_pose_on_palm(&model, &hand, object.shape.half_height(), 0.001);
        let yaw = self
            .core
            .rng
            .random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let pose = Isometry3::from_parts(
            Translation3::from(rest.translation.vector),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw),
        );
        let r = &self.params;
        let offset = Vector3::new(
            self.core.rng.random_range(-r.goal_offset..=r.goal_offset),
            self.core.rng.random_range(-r.goal_offset..=r.goal_offset),
            self.core.rng.random_range(0.0..=r.goal_lift),
        );
        self.goal_pose = Isometry3::from_parts(
            Translation3::from(rest.translation.vector + offset),
            random_rotation(&mut self.core.rng),
        );
        self.goal_points = self.points.iter().map(|p| self.goal_pose * p).collect();
        let open = self.core.open_configuration();
        self.core.sim.set_joint_positions(&open)?;
        self.core.sim.set_objects(&[object], &[pose])?;
        self.core.begin_episode(None)?;
        self.start = Point3::from(pose.translation.vector);
        self.held = 0;
        let m = self.measure()?;
        let info = self.info(&m, false);
        Ok((self.observe(&m), info))
    }

    fn after_action(&mut self) -> Result<Step> {
        let m = self.measure()?;
        let at_goal = m.mean <= self.params.success_distance;
        self.held = if at_goal { self.held + 1 } else { 0 };
        let dropped = (Point3::from(m.pose.translation.vector) - self.start).norm() > 0.15;
        let p = &self.params;
        let reward = -p.position_weight * m.pos - p.rotation_weight * m.rot
            + if at_goal { p.success_bonus } else { 0.0 };
        let info = self.info(&m, dropped);
        let terminated = info.success || dropped;
        let truncated = self.core.end_step(terminated);
        Ok(Step {
            obs: self.observe(&m),
            reward,
            terminated,
            truncated,
            info,
        })
    }
}

env_for_task!(AnyposeToAnypose);
