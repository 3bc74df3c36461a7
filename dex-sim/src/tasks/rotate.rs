//! `InHandRotation`: turn the object about an axis without dropping it.

use dex_core::HandModel;
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::Rng;

use super::config::TaskConfig;
use super::hand_core::{HandCore, make_simulator};
use super::task::{Task, env_for_task};
use crate::env::{Info, Observation, Step};
use crate::error::{Error, Result};
use crate::object::ObjectSpec;
use crate::simulator::{ObjectState, Simulator, rest_pose_on_palm};

/// Which way the palm faces, expressed by turning gravity (the palm itself stays fixed,
/// facing world +z): `Up` — gravity −z; `Down` — gravity +z; `Side` — gravity −y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PalmOrientation {
    /// Palm up.
    #[default]
    Up,
    /// Palm down.
    Down,
    /// Palm on its side.
    Side,
}

impl PalmOrientation {
    /// The gravity vector (m/s², world).
    pub fn gravity(self) -> Vector3<f64> {
        match self {
            PalmOrientation::Up => Vector3::new(0.0, 0.0, -9.81),
            PalmOrientation::Down => Vector3::new(0.0, 0.0, 9.81),
            PalmOrientation::Side => Vector3::new(0.0, -9.81, 0.0),
        }
    }
}

/// Settings of [`InHandRotation`].
#[derive(Debug, Clone, PartialEq)]
pub struct RotateConfig {
    /// The object.
    pub object: ObjectSpec,
    /// Rotation axis (world frame, normalised on use).
    pub axis: Vector3<f64>,
    /// Palm orientation.
    pub palm: PalmOrientation,
    /// Angular velocity about the axis is clipped to ±this (rad/s) in the reward.
    pub angvel_clip: f64,
    /// Weight of the off-axis angular speed penalty.
    pub off_axis_weight: f64,
    /// Weight of the object drift penalty (per m from its start position).
    pub drift_weight: f64,
    /// Weight of the joint work penalty (per W).
    pub work_weight: f64,
    /// Weight of the torque penalty (per N²·m²).
    pub torque_weight: f64,
    /// Rotation (rad) that counts as success.
    pub success_rotation: f64,
    /// The object counts as dropped this far (m) from its start position.
    pub drop_distance: f64,
}

impl Default for RotateConfig {
    fn default() -> Self {
        // Weights in the spirit of DexNDM / AnyRotate: a clipped rotation term dominates,
        // penalties keep the object centred and the motion economical.
        Self {
            object: ObjectSpec::cube(0.05, 0.1),
            axis: Vector3::z(),
            palm: PalmOrientation::Up,
            angvel_clip: 0.5,
            off_axis_weight: 0.3,
            drift_weight: 5.0,
            work_weight: 0.02,
            torque_weight: 0.01,
            success_rotation: std::f64::consts::FRAC_PI_2,
            drop_distance: 0.08,
        }
    }
}

/// Rotate the object about [`RotateConfig::axis`] without dropping it.
///
/// **Reset:** the hand open, the object resting on the palm with a random yaw; mass, size
/// and friction randomised per the task config; gravity from [`RotateConfig::palm`] (palm
/// down or side starts from the same placement, so the object falls unless the policy
/// catches it: those settings need a grasp start, which this task does not generate).
///
/// **Reward:** with ω the object's angular velocity and k the unit axis,
/// `r = clip(ω·k, ±c) − w_off ‖ω − (ω·k) k‖ − w_drift ‖p − p₀‖ − w_work Σ|τ_i q̇_i|
/// − w_tau Σ τ_i²`.
///
/// **Termination:** the object moves more than `drop_distance` from where it started.
/// **Success:** the accumulated rotation `∫ ω·k dt` reaches `success_rotation` (the episode
/// goes on). Info: `rotation` (rad), `time_to_fall` (s, only once dropped), `dropped` (0/1).
///
/// **State:** proprioception, object position (palm frame, ×10) and orientation
/// (quaternion i, j, k, w, palm frame), object angular velocity (world, ×0.1), fingertip
/// positions (palm frame, ×10), the axis.
pub struct InHandRotation {
    core: HandCore,
    params: RotateConfig,
    axis: Vector3<f64>,
    start: Point3<f64>,
    rotation: f64,
}

impl InHandRotation {
    /// Builds the task for `model`.
    pub fn new(model: HandModel, config: TaskConfig, params: RotateConfig) -> Result<Self> {
        params.object.validate()?;
        let axis = params
            .axis
            .try_normalize(1e-9)
            .ok_or(Error::InvalidParameter {
                what: "rotation axis",
                reason: "must be non-zero".into(),
            })?;
        let pose = rest_pose_on_palm(&model, &config.sim_config(&model).hand_pose, 0.05, 0.0);
        let sim_config = config.sim_config(&model);
        let sim = make_simulator(
            model,
            std::slice::from_ref(&params.object),
            &[pose],
            sim_config,
            config.mock_physics,
        )?;
        Self::from_parts(sim, config, params, axis)
    }

    /// Builds the task on a simulator of the caller's (any [`Simulator`]: a backend of
    /// their own, a wrapped or pre-configured one). The simulator keeps its own
    /// [`crate::SimConfig`]: `config.dt`, `config.substeps` and `config.mock_physics`
    /// are not used; everything else in `config` applies.
    /// The task's object is placed on the palm.
    pub fn with_simulator(
        mut sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: RotateConfig,
    ) -> Result<Self> {
        params.object.validate()?;
        let axis = params
            .axis
            .try_normalize(1e-9)
            .ok_or(Error::InvalidParameter {
                what: "rotation axis",
                reason: "must be non-zero".into(),
            })?;
        let pose = rest_pose_on_palm(sim.model(), &sim.config().hand_pose, 0.05, 0.0);
        sim.set_objects(std::slice::from_ref(&params.object), &[pose])?;
        Self::from_parts(sim, config, params, axis)
    }

    fn from_parts(
        sim: Box<dyn Simulator>,
        config: TaskConfig,
        params: RotateConfig,
        axis: nalgebra::Vector3<f64>,
    ) -> Result<Self> {
        let mut core = HandCore::new(sim, config)?;
        let tips = core.sim.model().fingertips().len();
        let obs_dim = core.proprio_dim() + 3 + 4 + 3 + 3 * tips + 3;
        core.set_observation(obs_dim, None);
        Ok(Self {
            core,
            params,
            axis,
            start: Point3::origin(),
            rotation: 0.0,
        })
    }

    fn observe(&mut self, s: &ObjectState) -> Observation {
        let mut state = Vec::with_capacity(self.core.obs_spec.state.dim());
        self.core.proprio(&mut state);
        self.core.push_palm_pose(&mut state, &s.pose);
        state.extend(s.angular_velocity.iter().map(|v| (v * 0.1) as f32));
        self.core.push_fingertips(&mut state);
        state.extend(self.axis.iter().map(|v| *v as f32));
        self.core.add_noise(&mut state);
        Observation { state, depth: None }
    }
}

impl Task for InHandRotation {
    fn core(&self) -> &HandCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut HandCore {
        &mut self.core
    }

    fn task_name(&self) -> &str {
        "rotate"
    }

    fn start_episode(&mut self) -> Result<(Observation, Info)> {
        let object = self.core.randomize_object(&self.params.object);
        let model = self.core.sim.model().clone();
        let hand = self.core.sim.config().hand_pose;
        let yaw = self
            .core
            .rng
            .random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let rest = rest_pose_on_palm(&model, &hand, object.shape.half_height(), 0.001);
        let pose = Isometry3::from_parts(
            Translation3::from(rest.translation.vector),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw),
        );
        let open = self.core.open_configuration();
        self.core.sim.set_joint_positions(&open)?;
        self.core.sim.set_objects(&[object], &[pose])?;
        self.core.begin_episode(Some(self.params.palm.gravity()))?;
        self.start = Point3::from(pose.translation.vector);
        self.rotation = 0.0;
        let mut info = Info::default();
        info.set("rotation", 0.0);
        info.set("dropped", 0.0);
        let s = self.core.sim.object_state(0)?;
        Ok((self.observe(&s), info))
    }

    fn after_action(&mut self) -> Result<Step> {
        let p = &self.params;
        let s = self.core.sim.object_state(0)?;
        let w = s.angular_velocity;
        let along = w.dot(&self.axis);
        self.rotation += along * self.core.sim.config().control_period();
        let off = (w - self.axis * along).norm();
        let drift = (Point3::from(s.pose.translation.vector) - self.start).norm();
        let js = self.core.sim.joint_state();
        let work: f64 = js
            .effort
            .iter()
            .zip(&js.qdot)
            .map(|(t, v)| (t * v).abs())
            .sum();
        let torque: f64 = js.effort.iter().map(|t| t * t).sum();
        let reward = along.clamp(-p.angvel_clip, p.angvel_clip)
            - p.off_axis_weight * off
            - p.drift_weight * drift
            - p.work_weight * work
            - p.torque_weight * torque;
        let dropped = drift > p.drop_distance;
        let mut info = Info::default();
        info.set("rotation", self.rotation);
        info.set("dropped", if dropped { 1.0 } else { 0.0 });
        if dropped {
            info.set(
                "time_to_fall",
                self.core.steps as f64 * self.core.sim.config().control_period(),
            );
        }
        info.success = self.rotation >= p.success_rotation;
        let truncated = self.core.end_step(dropped);
        Ok(Step {
            obs: self.observe(&s),
            reward,
            terminated: dropped,
            truncated,
            info,
        })
    }
}

env_for_task!(InHandRotation);
