//! The mocks: [`MockSimulator`], a kinematic, contact-free, deterministic stand-in for a
//! physics backend, and [`MockEnv`], an environment without physics that records what
//! it is asked.

use dex_core::{DepthImage, HandModel, JointState};
use nalgebra::{Isometry3, Point3, Vector3};
use ndarray::Array2;

use crate::camera::{Camera, DepthFrame, LABEL_NONE, object_label};
use crate::env::{BoxSpace, Env, Info, Observation, ObservationSpec, Step};
use crate::error::{Error, Result, check_finite, check_vector};
use crate::object::ObjectSpec;
use crate::simulator::{
    Contact, ObjectState, SimConfig, SimState, Simulator, check_non_negative, clamp_targets,
    open_configuration, validate_objects,
};
use crate::texture::{self, Surface};

const BACKEND: &str = "mock";

#[derive(Clone)]
struct MockState {
    q: Vec<f64>,
    qdot: Vec<f64>,
    targets: Vec<f64>,
    time: f64,
    objects: Vec<ObjectSpec>,
    poses: Vec<Isometry3<f64>>,
    /// Object poses at the end of the previous step, and the velocities derived from them.
    prev_poses: Vec<Isometry3<f64>>,
    velocities: Vec<(Vector3<f64>, Vector3<f64>)>,
}

/// A kinematic hand: each joint moves towards its target as a first-order lag with time
/// constant [`MockSimulator::TIME_CONSTANT`], exactly, without dynamics or contacts. Objects
/// stay where they are put (no gravity); an object moved with `set_object_pose` between
/// two steps reports the velocity of that motion over the control period after the step. Depth renders objects as their bounding spheres.
/// It records every target it is sent ([`MockSimulator::target_log`]).
#[derive(Clone)]
pub struct MockSimulator {
    model: HandModel,
    config: SimConfig,
    state: MockState,
    log: Vec<Vec<f64>>,
}

impl std::fmt::Debug for MockSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockSimulator")
            .field("hand", &self.model.name())
            .field("time", &self.state.time)
            .finish_non_exhaustive()
    }
}

impl MockSimulator {
    /// Time constant of the joints' first-order response (s).
    pub const TIME_CONSTANT: f64 = 0.05;

    /// A mock of `model` with `config` (only `dt`, `substeps`, `hand_pose` and `gravity`
    /// matter), starting open (0 clamped into the limits).
    pub fn new(model: HandModel, config: SimConfig) -> Result<Self> {
        config.validate()?;
        let dof = model.dof();
        let q = open_configuration(&model);
        Ok(Self {
            model,
            config,
            state: MockState {
                qdot: vec![0.0; dof],
                targets: q.clone(),
                q,
                time: 0.0,
                objects: Vec::new(),
                poses: Vec::new(),
                prev_poses: Vec::new(),
                velocities: Vec::new(),
            },
            log: Vec::new(),
        })
    }

    /// Every target vector sent with `set_joint_targets`, in order (after clamping).
    pub fn target_log(&self) -> &[Vec<f64>] {
        &self.log
    }
}

impl Simulator for MockSimulator {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn model(&self) -> &HandModel {
        &self.model
    }

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn time(&self) -> f64 {
        self.state.time
    }

    fn set_joint_targets(&mut self, targets: &[f64]) -> Result<()> {
        check_vector("joint targets", targets, self.model.dof())?;
        let mut t = vec![0.0; targets.len()];
        clamp_targets(&self.model, targets, &mut t);
        self.log.push(t.clone());
        self.state.targets = t;
        Ok(())
    }

    fn joint_targets(&self) -> &[f64] {
        &self.state.targets
    }

    fn set_pd_gains(&mut self, kp: &[f64], kd: &[f64]) -> Result<()> {
        check_non_negative("kp", kp, self.model.dof())?;
        check_non_negative("kd", kd, self.model.dof())
    }

    fn set_joint_damping(&mut self, damping: &[f64]) -> Result<()> {
        check_non_negative("joint damping", damping, self.model.dof())
    }

    fn step(&mut self) -> Result<()> {
        let period = self.config.control_period();
        let decay = (-period / Self::TIME_CONSTANT).exp();
        for i in 0..self.state.q.len() {
            let next = self.state.targets[i] + (self.state.q[i] - self.state.targets[i]) * decay;
            self.state.qdot[i] = (next - self.state.q[i]) / period;
            self.state.q[i] = next;
        }
        self.state.time += period;
        let st = &mut self.state;
        st.velocities = st
            .poses
            .iter()
            .zip(&st.prev_poses)
            .map(|(now, before)| {
                let lin = (now.translation.vector - before.translation.vector) / period;
                let ang = (now.rotation * before.rotation.inverse()).scaled_axis() / period;
                (lin, ang)
            })
            .collect();
        st.prev_poses = st.poses.clone();
        Ok(())
    }

    fn joint_state(&self) -> JointState {
        JointState {
            q: self.state.q.clone(),
            qdot: self.state.qdot.clone(),
            effort: vec![0.0; self.state.q.len()],
        }
    }

    fn set_joint_positions(&mut self, q: &[f64]) -> Result<()> {
        check_vector("joint positions", q, self.model.dof())?;
        self.model.check_configuration(q)?;
        self.state.q = q.to_vec();
        self.state.targets = q.to_vec();
        self.state.qdot.fill(0.0);
        Ok(())
    }

    fn link_poses(&self) -> Vec<Isometry3<f64>> {
        let hand = self.config.hand_pose;
        self.model
            .forward_kinematics(&self.state.q)
            .map(|poses| poses.into_iter().map(|p| hand * p).collect())
            .unwrap_or_default()
    }

    fn objects(&self) -> &[ObjectSpec] {
        &self.state.objects
    }

    fn set_objects(&mut self, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
        validate_objects(objects, poses)?;
        self.state.objects = objects.to_vec();
        self.state.poses = poses.to_vec();
        self.state.prev_poses = poses.to_vec();
        self.state.velocities = vec![(Vector3::zeros(), Vector3::zeros()); poses.len()];
        Ok(())
    }

    fn object_state(&self, index: usize) -> Result<ObjectState> {
        let pose = *self.state.poses.get(index).ok_or(Error::NoSuchObject {
            index,
            count: self.state.poses.len(),
        })?;
        let (linear_velocity, angular_velocity) = self.state.velocities[index];
        Ok(ObjectState {
            pose,
            linear_velocity,
            angular_velocity,
        })
    }

    fn set_object_pose(&mut self, index: usize, pose: &Isometry3<f64>) -> Result<()> {
        check_finite("object pose", pose.translation.vector.as_slice())?;
        let count = self.state.poses.len();
        let slot = self
            .state
            .poses
            .get_mut(index)
            .ok_or(Error::NoSuchObject { index, count })?;
        *slot = *pose;
        Ok(())
    }

    fn contacts(&self) -> Vec<Contact> {
        Vec::new()
    }

    fn set_gravity(&mut self, gravity: Vector3<f64>) -> Result<()> {
        check_finite("gravity", gravity.as_slice())?;
        self.config.gravity = gravity;
        Ok(())
    }

    fn save_state(&self) -> SimState {
        SimState::new(BACKEND, self.state.clone())
    }

    fn restore_state(&mut self, state: &SimState) -> Result<()> {
        let s: &MockState = state.downcast(BACKEND)?;
        if s.q.len() != self.model.dof() {
            return Err(Error::StateMismatch {
                reason: "the state belongs to another hand".into(),
            });
        }
        self.state = s.clone();
        Ok(())
    }

    fn render_depth(&self, camera: &Camera) -> Result<DepthFrame> {
        let (w, h) = (camera.intrinsics.width, camera.intrinsics.height);
        let mut depth = Array2::<f32>::zeros((h, w));
        let mut seg = Array2::<i16>::from_elem((h, w), LABEL_NONE);
        let mut gray = Array2::<u8>::from_elem((h, w), texture::BACKGROUND_GRAY);
        let inv = camera.pose.inverse();
        let spheres: Vec<(Vector3<f64>, f64)> = self
            .state
            .objects
            .iter()
            .zip(&self.state.poses)
            .map(|(o, p)| ((inv * p).translation.vector, o.shape.bounding_radius()))
            .collect();
        // Camera frame → object frame, per object.
        let inv_poses: Vec<Isometry3<f64>> = self
            .state
            .poses
            .iter()
            .map(|p| (camera.pose.inverse() * p).inverse())
            .collect();
        for v in 0..h {
            for u in 0..w {
                let (dir, z_per_len) = camera.ray_direction(u, v);
                let mut best = camera.max_depth;
                for (k, (c, r)) in spheres.iter().enumerate() {
                    let b = dir.dot(c);
                    let disc = b * b - (c.norm_squared() - r * r);
                    if disc < 0.0 {
                        continue;
                    }
                    let t = b - disc.sqrt();
                    if t > 0.0 && t < best {
                        best = t;
                        depth[(v, u)] = (t * z_per_len) as f32;
                        seg[(v, u)] = object_label(k);
                        // Textured in the object's frame, shaded by the sphere's normal.
                        let hit = dir * t;
                        let normal = (hit - c) / *r;
                        let local = inv_poses[k] * Point3::from(hit);
                        gray[(v, u)] =
                            texture::shade(texture::albedo(Surface::Object, &local), &normal, &dir);
                    }
                }
            }
        }
        Ok(DepthFrame {
            camera: *camera,
            depth: DepthImage::new(depth),
            segmentation: seg,
            gray,
        })
    }
}

/// A deterministic environment without physics, for tests of code that drives an
/// [`Env`] (trainers, evaluation, wrappers): it records every reset and action.
///
/// Observations have `observation_dim` values: the step count of the episode, then the
/// last action (zero-padded or cut to fit). The reward is `−Σ a²`; a step whose every
/// action value is within 0.05 of zero counts as a success (and terminates the episode);
/// an episode is truncated after `episode_steps` steps. Actions lie in `[-1, 1]^n`.
///
/// ```
/// use dex_sim::{Env, MockEnv};
///
/// let mut env = MockEnv::new(3, 2, 5);
/// env.reset(Some(1))?;
/// let step = env.step(&[0.5, 0.0])?;
/// assert_eq!(step.obs.state, vec![1.0, 0.5, 0.0]);
/// assert_eq!(env.actions, vec![vec![0.5, 0.0]]);
/// # Ok::<(), dex_sim::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MockEnv {
    /// Every action stepped, in order.
    pub actions: Vec<Vec<f32>>,
    /// The seed of every reset, in order.
    pub resets: Vec<Option<u64>>,
    /// Steps after which an episode is truncated.
    pub episode_steps: usize,
    action_space: BoxSpace,
    obs_spec: ObservationSpec,
    steps: usize,
    needs_reset: bool,
}

impl Default for MockEnv {
    /// Observations of 4 values, actions of 2, episodes of 10 steps.
    fn default() -> Self {
        Self::new(4, 2, 10)
    }
}

impl MockEnv {
    /// An environment with observations of `observation_dim` values, actions of
    /// `action_dim` and episodes of `episode_steps` steps.
    pub fn new(observation_dim: usize, action_dim: usize, episode_steps: usize) -> Self {
        Self {
            actions: Vec::new(),
            resets: Vec::new(),
            episode_steps,
            action_space: BoxSpace::uniform(action_dim, -1.0, 1.0),
            obs_spec: ObservationSpec {
                state: BoxSpace::uniform(observation_dim, f32::NEG_INFINITY, f32::INFINITY),
                depth: None,
            },
            steps: 0,
            needs_reset: true,
        }
    }

    fn observe(&self, action: &[f32]) -> Observation {
        let dim = self.obs_spec.state.dim();
        let mut state = vec![0.0f32; dim];
        if let Some(first) = state.first_mut() {
            *first = self.steps as f32;
        }
        for (s, a) in state.iter_mut().skip(1).zip(action) {
            *s = *a;
        }
        Observation { state, depth: None }
    }
}

impl Env for MockEnv {
    fn name(&self) -> &str {
        "mock"
    }
    fn action_space(&self) -> &BoxSpace {
        &self.action_space
    }
    fn observation_spec(&self) -> &ObservationSpec {
        &self.obs_spec
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Observation, Info)> {
        self.resets.push(seed);
        self.steps = 0;
        self.needs_reset = false;
        Ok((self.observe(&[]), Info::default()))
    }
    fn step(&mut self, action: &[f32]) -> Result<Step> {
        if self.needs_reset {
            return Err(Error::NeedsReset {
                reason: String::new(),
            });
        }
        self.action_space.check("action", action)?;
        self.actions.push(action.to_vec());
        self.steps += 1;
        let success = action.iter().all(|a| a.abs() <= 0.05);
        let truncated = !success && self.steps >= self.episode_steps;
        self.needs_reset = success || truncated;
        Ok(Step {
            obs: self.observe(action),
            reward: -action.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>(),
            terminated: success,
            truncated,
            info: Info {
                success,
                ..Info::default()
            },
        })
    }
}
