//! What the tasks share: the choice of simulator ([`make_simulator`]) and
//! [`HandCore`] (simulator, random stream, targets, history, latency, randomisation).

use std::collections::VecDeque;

use dex_core::{HandModel, JointLimits};
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::{ActionMode, TaskConfig};
use super::proprio::Proprioception;
use super::sampling::gaussian;
use crate::env::{BoxSpace, ObservationSpec};
use crate::error::{Error, Result};
use crate::object::ObjectSpec;
use crate::simulator::{SimConfig, SimState, Simulator, nominal_gains, open_configuration};

/// Builds the simulator a task asks for: the kinematic [`crate::MockSimulator`] when
/// `mock` is true, else the physics backend `config.backend` names (rapier or MuJoCo).
///
/// # Errors
///
/// [`Error::FeatureDisabled`] when physics is asked for (`mock == false`) and the
/// crate was built without its `rapier` feature: a task never falls back to the mock
/// silently. Errors of the backend's constructor otherwise.
pub fn make_simulator(
    model: HandModel,
    objects: &[ObjectSpec],
    poses: &[Isometry3<f64>],
    config: SimConfig,
    mock: bool,
) -> Result<Box<dyn Simulator>> {
    if mock {
        let mut sim = crate::MockSimulator::new(model, config)?;
        sim.set_objects(objects, poses)?;
        return Ok(Box::new(sim));
    }
    if config.mjcf.is_some() && config.backend != crate::Backend::Mujoco {
        return Err(Error::InvalidParameter {
            what: "mjcf",
            reason: "a hand from an MJCF file needs the MuJoCo backend (`backend = \"mujoco\"`)"
                .into(),
        });
    }
    if config.backend == crate::Backend::Mujoco {
        #[cfg(feature = "mujoco")]
        return Ok(Box::new(crate::MujocoSim::new(
            model, objects, poses, config,
        )?));
        #[cfg(not(feature = "mujoco"))]
        return Err(Error::FeatureDisabled {
            feature: "mujoco",
            what: "the MuJoCo backend (`backend = \"mujoco\"`; build with `--features mujoco` after `eval \"$(scripts/mujoco-setup.sh)\"`)",
        });
    }
    #[cfg(feature = "rapier")]
    {
        Ok(Box::new(crate::RapierSim::new(
            model, objects, poses, config,
        )?))
    }
    #[cfg(not(feature = "rapier"))]
    {
        let _ = (model, objects, poses, config);
        Err(Error::FeatureDisabled {
            feature: "rapier",
            what: "a task with physics (set `mock_physics` for the kinematic mock)",
        })
    }
}

/// Appends a pose: position ×10 (decimetres), then the quaternion i, j, k, w.
pub(crate) fn push_pose(out: &mut Vec<f32>, pose: &Isometry3<f64>) {
    out.extend(pose.translation.vector.iter().map(|v| (v * 10.0) as f32));
    out.extend(pose.rotation.coords.iter().map(|v| *v as f32));
}

fn sample_range<R: Rng>(rng: &mut R, r: [f64; 2]) -> f64 {
    if r[0] == r[1] {
        r[0]
    } else {
        rng.random_range(r[0]..=r[1])
    }
}

/// The state shared by the tasks: simulator, random stream, targets, history, latency.
pub(crate) struct HandCore {
    pub(crate) sim: Box<dyn Simulator>,
    pub(crate) config: TaskConfig,
    pub(crate) rng: ChaCha8Rng,
    pub(crate) limits: Vec<JointLimits>,
    pub(crate) targets: Vec<f64>,
    history: Proprioception,
    pending: VecDeque<Vec<f64>>,
    latency: usize,
    nominal_kp: Vec<f64>,
    nominal_kd: Vec<f64>,
    nominal_damping: Vec<f64>,
    nominal_gravity: Vector3<f64>,
    pub(crate) steps: usize,
    pub(crate) needs_reset: bool,
    /// The wrist's target, the sum of the episode's deltas (on a wrist).
    wrist_target: [f64; 6],
    /// The last action applied (zeros at the start of an episode).
    pub(crate) last_action: Vec<f32>,
    /// The task's action space (`[-1, 1]` per joint).
    pub(crate) action_space: BoxSpace,
    /// The task's observation shapes (set by the task with [`HandCore::set_observation`]).
    pub(crate) obs_spec: ObservationSpec,
    /// The simulator's state at the first reset, restored at every later one.
    initial: Option<SimState>,
}

impl HandCore {
    pub(crate) fn new(sim: Box<dyn Simulator>, config: TaskConfig) -> Result<Self> {
        config.validate()?;
        let model = sim.model();
        let limits = model.joint_limits();
        let limits_len = limits.len();
        let (nominal_kp, nominal_kd) = model.dof_joints().map(nominal_gains).unzip();
        let nominal_damping = model.dof_joints().map(|j| j.dynamics.damping).collect();
        let nominal_gravity = sim.config().gravity;
        let targets = sim.joint_targets().to_vec();
        let history = Proprioception::new(model, config.history)?;
        if config.wrist.is_some() && sim.wrist_state().is_none() {
            return Err(Error::InvalidParameter {
                what: "task wrist",
                reason: format!(
                    "the task config mounts the hand on a wrist but the {} simulator has none \
                     (build it with SimConfig::wrist, or leave task.wrist unset)",
                    sim.backend()
                ),
            });
        }
        let wrist_dims = if config.wrist.is_some() { 6 } else { 0 };
        let wrist_target = config.wrist_start;
        Ok(Self {
            sim,
            config,
            rng: ChaCha8Rng::seed_from_u64(0),
            limits,
            targets,
            history,
            pending: VecDeque::new(),
            latency: 0,
            nominal_kp,
            nominal_kd,
            nominal_damping,
            nominal_gravity,
            steps: 0,
            needs_reset: true,
            wrist_target,
            last_action: vec![0.0; wrist_dims + limits_len],
            action_space: BoxSpace::uniform(wrist_dims + limits_len, -1.0, 1.0),
            obs_spec: ObservationSpec {
                state: BoxSpace::uniform(0, f32::NEG_INFINITY, f32::INFINITY),
                depth: None,
            },
            initial: None,
        })
    }

    /// Puts the simulator back in the state it had at the first reset (saving it then),
    /// so that an episode depends only on the random stream at its start, not on the
    /// episodes before it: `reset(Some(seed))` replays the same episode after any
    /// history. Changes made to the simulator before the first reset are kept; changes
    /// made between episodes are undone.
    pub(crate) fn restore_initial(&mut self) -> Result<()> {
        match &self.initial {
            Some(state) => self.sim.restore_state(state),
            None => {
                self.initial = Some(self.sim.save_state());
                Ok(())
            }
        }
    }

    /// Sets the observation shapes: a state vector of `state_dim` values (unbounded)
    /// and a `depth` image of `(height, width)` if the task renders one.
    pub(crate) fn set_observation(&mut self, state_dim: usize, depth: Option<(usize, usize)>) {
        self.obs_spec = ObservationSpec {
            state: BoxSpace::uniform(state_dim, f32::NEG_INFINITY, f32::INFINITY),
            depth,
        };
    }

    pub(crate) fn dof(&self) -> usize {
        self.limits.len()
    }

    pub(crate) fn proprio_dim(&self) -> usize {
        self.history.dim() + if self.config.wrist.is_some() { 12 } else { 0 }
    }

    pub(crate) fn reseed(&mut self, seed: Option<u64>) {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
    }

    /// Draws the episode's randomisation and resets history; call after placing the hand.
    /// `gravity`: the episode's nominal gravity, or `None` for the simulator's initial one.
    pub(crate) fn begin_episode(&mut self, gravity: Option<Vector3<f64>>) -> Result<()> {
        if self.config.wrist.is_some() {
            self.sim.set_wrist_position(&self.config.wrist_start)?;
            self.wrist_target = self
                .sim
                .wrist_state()
                .map_or(self.config.wrist_start, |w| w.requested);
        }
        let r = self.config.randomization.clone();
        let g = sample_range(&mut self.rng, r.pd_gains);
        let kp: Vec<f64> = self.nominal_kp.iter().map(|k| k * g).collect();
        let kd: Vec<f64> = self.nominal_kd.iter().map(|k| k * g).collect();
        self.sim.set_pd_gains(&kp, &kd)?;
        let d = sample_range(&mut self.rng, r.joint_damping);
        let damping: Vec<f64> = self.nominal_damping.iter().map(|v| v * d).collect();
        self.sim.set_joint_damping(&damping)?;
        let mut gravity = gravity.unwrap_or(self.nominal_gravity);
        if r.gravity_tilt > 0.0 {
            let angle = self.rng.random_range(0.0..=r.gravity_tilt);
            let phi = self.rng.random_range(0.0..std::f64::consts::TAU);
            let axis = Vector3::new(phi.cos(), phi.sin(), 0.0);
            gravity = UnitQuaternion::from_scaled_axis(axis * angle) * gravity;
        }
        self.sim.set_gravity(gravity)?;
        self.latency = if r.action_latency[0] == r.action_latency[1] {
            r.action_latency[0]
        } else {
            self.rng
                .random_range(r.action_latency[0]..=r.action_latency[1])
        };
        self.targets = self.sim.joint_targets().to_vec();
        self.pending.clear();
        self.history.reset();
        self.steps = 0;
        self.needs_reset = false;
        self.last_action.fill(0.0);
        self.record_history();
        Ok(())
    }

    /// Randomises an object's mass, size and friction per the config.
    pub(crate) fn randomize_object(&mut self, object: &ObjectSpec) -> ObjectSpec {
        let r = self.config.randomization.clone();
        let mut o = object.scaled(sample_range(&mut self.rng, r.object_size));
        o.mass *= sample_range(&mut self.rng, r.object_mass);
        o.friction *= sample_range(&mut self.rng, r.object_friction);
        o
    }

    /// Checks the action, maps it to targets (through the latency queue) and steps.
    pub(crate) fn apply_action(&mut self, action: &[f32]) -> Result<()> {
        if self.needs_reset {
            return Err(Error::NeedsReset {
                reason: String::new(),
            });
        }
        self.action_space.check("action", action)?;
        self.last_action.copy_from_slice(action);
        let action = match &self.config.wrist {
            Some(w) => {
                let (deltas, hand) = action.split_at(6);
                let step = self.config.wrist_step;
                let moved: [f64; 6] = std::array::from_fn(|i| {
                    self.wrist_target[i] + f64::from(deltas[i]) * step[usize::from(i >= 3)]
                });
                self.wrist_target = w.clamp(&moved);
                self.sim.set_wrist_target(&self.wrist_target)?;
                hand
            }
            None => action,
        };
        // The measured joints, only where a lead bound applies.
        let lead_q = (self.config.action_mode == ActionMode::Relative
            && self.config.relative_lead > 0.0)
            .then(|| self.sim.joint_state().q);
        let targets =
            self.config
                .action_targets(&self.limits, action, &self.targets, lead_q.as_deref())?;
        self.targets = targets.clone();
        self.pending.push_back(targets);
        let applied = if self.pending.len() > self.latency {
            self.pending.pop_front()
        } else {
            None
        };
        if let Some(t) = applied {
            self.sim.set_joint_targets(&t)?;
        }
        self.sim.step()?;
        self.steps += 1;
        self.record_history();
        Ok(())
    }

    fn record_history(&mut self) {
        let js = self.sim.joint_state();
        // Lengths come from the simulator of this model: they always match.
        let _ = self.history.record(&js.q, self.sim.joint_targets());
    }

    /// Appends the proprioception block to `out`; on a wrist it ends with the wrist's
    /// coordinates and rates (x, y, z ×10, angles as they are; rates likewise).
    pub(crate) fn proprio(&self, out: &mut Vec<f32>) {
        // Every episode records its first step in `begin_episode`.
        let _ = self.history.write(&self.sim.joint_state().qdot, out);
        if self.config.wrist.is_some() {
            let (position, velocity) = self.observed_wrist();
            out.extend(position.iter().chain(&velocity).map(|v| *v as f32));
        }
    }

    /// The wrist's coordinates and rates as observations carry them: x, y, z ×10, the
    /// angles as they are (zeros without a wrist).
    pub(crate) fn observed_wrist(&self) -> ([f64; 6], [f64; 6]) {
        let (position, velocity) = self
            .sim
            .wrist_state()
            .map_or(([0.0; 6], [0.0; 6]), |w| (w.position, w.velocity));
        let scale = |v: [f64; 6]| std::array::from_fn(|i| if i < 3 { v[i] * 10.0 } else { v[i] });
        (scale(position), scale(velocity))
    }

    /// Adds the configured observation noise to `obs`.
    pub(crate) fn add_noise(&mut self, obs: &mut [f32]) {
        let std = self.config.randomization.observation_noise;
        if std > 0.0 {
            for v in obs {
                *v += (std * gaussian(&mut self.rng)) as f32;
            }
        }
    }

    /// The open hand ([`open_configuration`]).
    pub(crate) fn open_configuration(&self) -> Vec<f64> {
        open_configuration(self.sim.model())
    }

    /// Appends the fingertip positions (palm frame, ×10) to `out`.
    pub(crate) fn push_fingertips(&self, out: &mut Vec<f32>) {
        for p in self.sim.fingertip_positions() {
            out.extend(self.to_palm(&p).iter().map(|v| (v * 10.0) as f32));
        }
    }

    /// Appends a world pose in the palm frame to `out` (see [`push_pose`]).
    pub(crate) fn push_palm_pose(&self, out: &mut Vec<f32>, world: &Isometry3<f64>) {
        push_pose(out, &(self.sim.config().hand_pose.inverse() * world));
    }

    /// Ends a step: the episode is truncated at the time limit unless `terminated`;
    /// either way the next step needs a reset. Returns `truncated`.
    pub(crate) fn end_step(&mut self, terminated: bool) -> bool {
        let truncated = !terminated && self.truncated();
        self.needs_reset = terminated || truncated;
        truncated
    }

    /// A world point in the palm (hand mount) frame.
    pub(crate) fn to_palm(&self, p: &Point3<f64>) -> Point3<f64> {
        self.sim.config().hand_pose.inverse_transform_point(p)
    }

    pub(crate) fn truncated(&self) -> bool {
        self.steps >= self.config.episode_steps
    }
}
