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

/// Settings of [`InHandRotation`]: the object and axis. Its palm orientation, start
/// pose and reward weights come from the task config ([`TaskConfig::rotate`], the
/// `[task.rotate]` table).
#[derive(Debug, Clone, PartialEq)]
pub struct RotateConfig {
    /// The object.
    pub object: ObjectSpec,
    /// Rotation axis (world frame, normalised on use).
    pub axis: Vector3<f64>,
}

impl Default for RotateConfig {
    fn default() -> Self {
        Self {
            object: ObjectSpec::cube(0.05, 0.1),
            axis: Vector3::z(),
        }
    }
}

/// Appends the task-specific part of [`InHandRotation`]'s state (after the
/// proprioception block, see [`super::Proprioception`]): the object's pose in the palm
/// frame (position ×10, quaternion i, j, k, w), its angular velocity (world, ×0.1), the
/// fingertip positions (palm frame, ×10) and the unit rotation axis (world). What a
/// policy trained on the task is fed on a hand whose object is tracked.
pub fn rotate_state(
    object_palm: &Isometry3<f64>,
    angular_velocity: &Vector3<f64>,
    tips_palm: &[Point3<f64>],
    axis: &Vector3<f64>,
    out: &mut Vec<f32>,
) {
    super::hand_core::push_pose(out, object_palm);
    out.extend(angular_velocity.iter().map(|v| (v * 0.1) as f32));
    for p in tips_palm {
        out.extend(p.iter().map(|v| (v * 10.0) as f32));
    }
    out.extend(axis.iter().map(|v| *v as f32));
}

/// Rotate the object about [`RotateConfig::axis`] without dropping it.
///
/// **Reset:** the hand at [`crate::RotateOptions::start_configuration`] (open by
/// default), the object resting on the palm with a random yaw; mass, size and friction
/// randomised per the task config; gravity from [`crate::RotateOptions::palm`] (palm
/// down or side starts from the same placement, so the object falls unless the policy
/// catches it: those settings need a grasp start, which this task does not generate).
/// The options are the task config's ([`TaskConfig::rotate`]).
///
/// **Reward:** with ω the object's angular velocity and k the unit axis,
/// `r = clip(ω·k, ±c) − w_off ‖ω − (ω·k) k‖ − w_drift ‖p − p₀‖ − w_work Σ|τ_i q̇_i|
/// − w_tau Σ τ_i² − w_lin ‖v‖² − w_pose ‖q − q₀‖²`, and `− drop_penalty` on the step the
/// object drops (weights: [`crate::RotateOptions`]).
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
    q_start: Vec<f64>,
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
        config.rotate.validate(sim.model())?;
        let mut core = HandCore::new(sim, config)?;
        let tips = core.sim.model().fingertips().len();
        let obs_dim = core.proprio_dim() + 3 + 4 + 3 + 3 * tips + 3;
        core.set_observation(obs_dim, None);
        Ok(Self {
            core,
            params,
            axis,
            start: Point3::origin(),
            q_start: Vec::new(),
            rotation: 0.0,
        })
    }

    fn observe(&mut self, s: &ObjectState) -> Observation {
        let mut state = Vec::with_capacity(self.core.obs_spec.state.dim());
        self.core.proprio(&mut state);
        let hand = self.core.sim.config().hand_pose;
        let tips: Vec<Point3<f64>> = self
            .core
            .sim
            .fingertip_positions()
            .iter()
            .map(|p| self.core.to_palm(p))
            .collect();
        rotate_state(
            &(hand.inverse() * s.pose),
            &s.angular_velocity,
            &tips,
            &self.axis,
            &mut state,
        );
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
        let start = if self.core.config.rotate.start_configuration.is_empty() {
            self.core.open_configuration()
        } else {
            self.core.config.rotate.start_configuration.clone()
        };
        self.core.sim.set_joint_positions(&start)?;
        self.q_start = start;
        self.core.sim.set_objects(&[object], &[pose])?;
        self.core
            .begin_episode(Some(self.core.config.rotate.palm.gravity()))?;
        self.start = Point3::from(pose.translation.vector);
        self.rotation = 0.0;
        let mut info = Info::default();
        info.set("rotation", 0.0);
        info.set("dropped", 0.0);
        let s = self.core.sim.object_state(0)?;
        Ok((self.observe(&s), info))
    }

    fn after_action(&mut self) -> Result<Step> {
        let p = &self.core.config.rotate;
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
        let pose: f64 =
            js.q.iter()
                .zip(&self.q_start)
                .map(|(q, q0)| (q - q0).powi(2))
                .sum();
        let dropped = drift > p.drop_distance;
        let terms = [
            along.clamp(-p.angvel_clip, p.angvel_clip),
            -p.off_axis_weight * off,
            -p.drift_weight * drift,
            -p.work_weight * work,
            -p.torque_weight * torque,
            -p.linvel_weight * s.linear_velocity.norm_squared(),
            -p.pose_weight * pose,
            if dropped { -p.drop_penalty } else { 0.0 },
        ];
        let reward: f64 = terms.iter().sum();
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
