//! The manipulation tasks and the machinery they share: action mapping, proprioception
//! history, domain randomisation and the choice of simulator.
//!
//! **Actions** are in `[-1, 1]^dof`. In [`ActionMode::Absolute`] (default) action `a_i`
//! maps linearly onto joint `i`'s range: `q*_i = mid_i + a_i (upper_i - lower_i) / 2`. In
//! [`ActionMode::Relative`], `q*_i += a_i · relative_scale` from the previous target.
//!
//! **Proprioception** (the first block of every task's state vector): the last
//! `history` control steps (newest first) of joint positions normalised to `[-1, 1]` over
//! their ranges and of the targets likewise normalised, then joint velocities × 0.1.

mod anygrasp;
mod anypose;
mod reach;
mod rotate;

use std::collections::VecDeque;

use dex_core::{HandModel, JointLimits};
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::camera::Camera;
use crate::error::{Result, SimError};
use crate::object::ObjectSpec;
use crate::simulator::{SimConfig, Simulator, nominal_gains, open_configuration};

pub use anygrasp::{AnygraspConfig, AnygraspToAnygrasp, Grasp, generate_grasps, grasp_distance};
pub use anypose::{AnyposeConfig, AnyposeToAnypose};
pub use reach::{FingertipReach, ReachConfig, reach_state};
pub use rotate::{InHandRotation, PalmOrientation, RotateConfig};

/// How actions become joint targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionMode {
    /// `a ∈ [-1, 1]` maps onto the joint range.
    #[default]
    Absolute,
    /// `a` scaled by `relative_scale` is added to the previous target, and the sum is
    /// clamped into the joint limits. The targets integrate the actions, so a policy
    /// that keeps pushing against a remaining error removes it (no steady-state error),
    /// where an absolute target must be exact.
    Relative,
}

/// Domain randomisation, drawn at every reset. Scales multiply the nominal value; a range
/// `[1, 1]` (the default) disables an item. Read from TOML with
/// [`Randomization::from_toml`]; unknown keys are rejected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Randomization {
    /// Object mass scale range.
    pub object_mass: [f64; 2],
    /// Object size scale range.
    pub object_size: [f64; 2],
    /// Object friction scale range.
    pub object_friction: [f64; 2],
    /// PD gain (`Kp` and `Kd`) scale range.
    pub pd_gains: [f64; 2],
    /// Joint damping scale range.
    pub joint_damping: [f64; 2],
    /// Standard deviation of Gaussian noise added to every state observation.
    pub observation_noise: f64,
    /// Action latency range in control steps (inclusive); actions are applied this many
    /// steps late (the first steps repeat the reset targets).
    pub action_latency: [usize; 2],
    /// Largest tilt (rad) of gravity away from its nominal direction, about a random
    /// horizontal axis (turns the wrist).
    pub gravity_tilt: f64,
}

impl Default for Randomization {
    fn default() -> Self {
        Self {
            object_mass: [1.0, 1.0],
            object_size: [1.0, 1.0],
            object_friction: [1.0, 1.0],
            pd_gains: [1.0, 1.0],
            joint_damping: [1.0, 1.0],
            observation_noise: 0.0,
            action_latency: [0, 0],
            gravity_tilt: 0.0,
        }
    }
}

impl Randomization {
    /// Parses TOML (every key optional; unknown keys are an error).
    pub fn from_toml(text: &str) -> Result<Self> {
        let r: Self = toml::from_str(text).map_err(|e| SimError::Config {
            message: e.to_string(),
        })?;
        r.validate()?;
        Ok(r)
    }

    /// Checks that ranges are ordered, positive and finite.
    pub fn validate(&self) -> Result<()> {
        for (what, r) in [
            ("object_mass", self.object_mass),
            ("object_size", self.object_size),
            ("object_friction", self.object_friction),
            ("pd_gains", self.pd_gains),
            ("joint_damping", self.joint_damping),
        ] {
            if !(r[0].is_finite() && r[1].is_finite() && r[0] > 0.0 && r[0] <= r[1]) {
                return Err(SimError::Config {
                    message: format!("{what} = {r:?}: needs 0 < low <= high"),
                });
            }
        }
        if !(self.observation_noise.is_finite() && self.observation_noise >= 0.0) {
            return Err(SimError::Config {
                message: format!("observation_noise = {}: needs >= 0", self.observation_noise),
            });
        }
        if self.action_latency[0] > self.action_latency[1] || self.action_latency[1] > 100 {
            return Err(SimError::Config {
                message: format!(
                    "action_latency = {:?}: needs low <= high <= 100",
                    self.action_latency
                ),
            });
        }
        if !(self.gravity_tilt.is_finite()
            && (0.0..=std::f64::consts::PI).contains(&self.gravity_tilt))
        {
            return Err(SimError::Config {
                message: format!("gravity_tilt = {}: needs 0..=π", self.gravity_tilt),
            });
        }
        Ok(())
    }
}

/// Settings every task shares.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TaskConfig {
    /// Physics step (s).
    pub dt: f64,
    /// Physics steps per control step.
    pub substeps: usize,
    /// Control steps per episode (then `truncated`).
    pub episode_steps: usize,
    /// Control steps of proprioception history in the observation.
    pub history: usize,
    /// How actions become targets.
    pub action_mode: ActionMode,
    /// Radians per unit action in [`ActionMode::Relative`].
    pub relative_scale: f64,
    /// In [`ActionMode::Relative`], how far (rad) a target may lead the measured joint
    /// position: the integrated target is clamped into `q ± relative_lead` after each
    /// action, so a finger blocked by another finger or an object does not wind its
    /// target up far past where it is. 0 (the default) leaves the targets unbounded
    /// but for the joint limits.
    pub relative_lead: f64,
    /// Domain randomisation.
    pub randomization: Randomization,
    /// Use the kinematic [`crate::MockSimulator`] instead of the physics backend.
    pub mock_physics: bool,
    /// The depth camera of the tasks that observe depth (`reach-depth`).
    pub depth_view: DepthView,
}

/// The depth camera of tasks that observe depth images, Squint's recipe by default:
/// render at 128 × 128, then area-downsample ("squint") by 8 to 16 × 16.
///
/// The camera looks at the open hand's fingertips from above and the side
/// ([`crate::Camera::overview`], 60° field of view). In the state vector the squinted
/// image is stored row by row as `depth / max_depth`, in `[0, 1]`, 0 where the ray
/// hits nothing within `max_depth`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DepthView {
    /// Rendered image side (pixels; the image is square).
    pub render: usize,
    /// Area-downsampling factor; the observed image side is `render / squint`.
    pub squint: usize,
    /// Rays end at this distance (m); also the depth normalisation.
    pub max_depth: f64,
    /// Radius of the spheres that mark targets in the depth image (m); the spheres are
    /// drawn, not simulated: nothing collides with them. The default, 3 cm, makes a
    /// marker two to three squinted pixels wide: with the default view one pixel of the
    /// 16² image spans about 2 cm at the fingertips, so a marker of the success radius
    /// or smaller is averaged into one pixel by the squint.
    pub marker_radius: f64,
    /// Ablation: observe an all-zero image (nothing rendered), to measure what a policy
    /// learns without seeing.
    pub blind: bool,
}

impl Default for DepthView {
    fn default() -> Self {
        Self {
            // Squint (Almuzairee et al., 2025) renders 128² and downsamples to 16².
            render: 128,
            squint: 8,
            max_depth: 0.5,
            marker_radius: 0.03,
            blind: false,
        }
    }
}

impl DepthView {
    /// Side of the observed (squinted) image.
    pub fn side(&self) -> usize {
        self.render / self.squint.max(1)
    }

    /// The camera for `sim`'s hand: above the middle of the palm and the open hand's
    /// fingertips (hands are mounted palm up, world z up), looking down, tilted a
    /// little, so the fingers and the space above the palm fill the view.
    pub fn camera(&self, sim: &dyn Simulator) -> Result<Camera> {
        let hand = sim.config().hand_pose;
        let points = sim
            .model()
            .fingertip_positions(&open_configuration(sim.model()))?;
        let tips_centre = points
            .iter()
            .fold(Vector3::zeros(), |acc, p| acc + (hand * p).coords)
            / points.len().max(1) as f64;
        let centre: Point3<f64> = ((tips_centre + hand.translation.vector) / 2.0).into();
        let offset = Vector3::new(-0.03, -0.03, 0.3);
        let intrinsics =
            dex_core::CameraIntrinsics::from_fov_y(self.render, self.render, 60f64.to_radians())?;
        let mut camera = Camera::look_at(intrinsics, centre + offset, centre, Vector3::x())?;
        camera.max_depth = self.max_depth;
        Ok(camera)
    }

    /// Renders `sim` through `camera` with `markers` drawn as spheres, squints, appends
    /// the image to `state` as `depth / max_depth` and returns it (m). With `blind` the
    /// image is all zeros and nothing is rendered.
    pub fn observe(
        &self,
        sim: &dyn Simulator,
        camera: &Camera,
        markers: &[Point3<f64>],
        state: &mut Vec<f32>,
    ) -> Result<Array2<f32>> {
        let depth = if self.blind {
            Array2::zeros((self.side(), self.side()))
        } else {
            let mut frame = sim.render_depth(camera)?;
            frame.draw_spheres(markers, self.marker_radius);
            frame.squint(self.squint)?.depth.view().to_owned()
        };
        let scale = (1.0 / self.max_depth) as f32;
        state.extend(depth.iter().map(|d| (d * scale).clamp(0.0, 1.0)));
        Ok(depth)
    }

    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| SimError::InvalidParameter {
            what: "depth_view",
            reason,
        };
        if self.render == 0 || self.squint == 0 || !self.render.is_multiple_of(self.squint) {
            return Err(bad(format!(
                "render ({}) and squint ({}) must be positive, squint dividing render",
                self.render, self.squint
            )));
        }
        if !(self.max_depth.is_finite() && self.max_depth > 0.0) {
            return Err(bad(format!(
                "max_depth must be positive, got {}",
                self.max_depth
            )));
        }
        if !(self.marker_radius.is_finite() && self.marker_radius > 0.0) {
            return Err(bad(format!(
                "marker_radius must be positive, got {}",
                self.marker_radius
            )));
        }
        Ok(())
    }
}

impl Default for TaskConfig {
    fn default() -> Self {
        Self {
            dt: 0.002,
            // 20 Hz control, as Dex4D and DexGen policies run (LEAP software at ~30 Hz).
            substeps: 25,
            episode_steps: 60,
            history: 3,
            action_mode: ActionMode::Absolute,
            relative_scale: 0.1,
            relative_lead: 0.0,
            randomization: Randomization::default(),
            mock_physics: false,
            depth_view: DepthView::default(),
        }
    }
}

impl TaskConfig {
    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.episode_steps == 0 || self.history == 0 {
            return Err(SimError::InvalidParameter {
                what: "task config",
                reason: "episode_steps and history must be at least 1".into(),
            });
        }
        if !(self.relative_scale.is_finite() && self.relative_scale > 0.0) {
            return Err(SimError::InvalidParameter {
                what: "relative_scale",
                reason: format!("must be positive, got {}", self.relative_scale),
            });
        }
        if !(self.relative_lead.is_finite() && self.relative_lead >= 0.0) {
            return Err(SimError::InvalidParameter {
                what: "relative_lead",
                reason: format!(
                    "must be 0 (unbounded) or positive, got {}",
                    self.relative_lead
                ),
            });
        }
        self.randomization.validate()?;
        self.depth_view.validate()?;
        SimConfig {
            dt: self.dt,
            substeps: self.substeps,
            ..SimConfig::default()
        }
        .validate()
    }

    /// The joint targets `action` commands under these settings, for joints with
    /// `limits`: in [`ActionMode::Absolute`] `limits[i].from_unit(action[i])`; in
    /// [`ActionMode::Relative`] `previous[i] + action[i] · relative_scale`, kept within
    /// `measured[i] ± relative_lead` when a lead bound is set and `measured` (the joint
    /// positions) is given. Either way the targets are clamped into the limits. The same
    /// mapping serves the tasks and a policy deployed on a hand: there `previous` are
    /// the targets last sent and `measured` what the driver read.
    ///
    /// ```
    /// use dex_sim::{ActionMode, TaskConfig};
    /// let limits = dex_core::HandModel::leap_right().joint_limits();
    /// let previous = vec![0.0; 16];
    /// let relative = TaskConfig { action_mode: ActionMode::Relative, relative_scale: 0.25, ..TaskConfig::default() };
    /// let t = relative.action_targets(&limits, &[0.4; 16], &previous, None)?;
    /// assert!((t[1] - 0.1).abs() < 1e-6);
    /// let absolute = TaskConfig::default();
    /// let t = absolute.action_targets(&limits, &[0.0; 16], &previous, None)?;
    /// assert_eq!(t[1], limits[1].mid());
    /// # Ok::<(), dex_sim::SimError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`SimError::WrongLength`] unless `action`, `previous` (and `measured`) have one
    /// value per joint; [`SimError::NotFinite`] for a NaN or infinite action value.
    pub fn action_targets(
        &self,
        limits: &[JointLimits],
        action: &[f32],
        previous: &[f64],
        measured: Option<&[f64]>,
    ) -> Result<Vec<f64>> {
        let n = limits.len();
        for (what, got) in [
            ("action", action.len()),
            ("previous targets", previous.len()),
            ("measured joint positions", measured.map_or(n, <[f64]>::len)),
        ] {
            if got != n {
                return Err(SimError::WrongLength {
                    what,
                    expected: n,
                    got,
                });
            }
        }
        if let Some(index) = action.iter().position(|a| !a.is_finite()) {
            return Err(SimError::NotFinite {
                what: "action",
                index,
                value: f64::from(action[index]),
            });
        }
        let lead = self.relative_lead;
        Ok((0..n)
            .map(|i| {
                let l = &limits[i];
                let a = f64::from(action[i]);
                let t = match self.action_mode {
                    ActionMode::Absolute => l.from_unit(a),
                    ActionMode::Relative => {
                        let mut t = previous[i] + a * self.relative_scale;
                        if let (true, Some(q)) = (lead > 0.0, measured) {
                            // max/min rather than clamp: a NaN reading must not panic.
                            t = t.max(q[i] - lead).min(q[i] + lead);
                        }
                        t
                    }
                };
                // max/min rather than clamp: an unlimited joint has infinite bounds.
                t.max(l.lower).min(l.upper)
            })
            .collect())
    }

    /// The simulator settings these task settings imply for `model`.
    pub fn sim_config(&self, model: &HandModel) -> SimConfig {
        SimConfig {
            dt: self.dt,
            substeps: self.substeps,
            ..SimConfig::for_hand(model)
        }
    }
}

/// Builds the simulator a task asks for: the kinematic [`crate::MockSimulator`] when
/// `mock` is true, else the rapier physics backend.
///
/// # Errors
///
/// [`SimError::FeatureDisabled`] when physics is asked for (`mock == false`) and the
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
    #[cfg(feature = "rapier")]
    {
        Ok(Box::new(crate::RapierSim::new(
            model, objects, poses, config,
        )?))
    }
    #[cfg(not(feature = "rapier"))]
    {
        let _ = (model, objects, poses, config);
        Err(SimError::FeatureDisabled {
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

/// A standard normal sample (Box–Muller).
pub(crate) fn gaussian<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A uniformly random rotation.
pub(crate) fn random_rotation<R: Rng>(rng: &mut R) -> UnitQuaternion<f64> {
    let q = nalgebra::Quaternion::new(gaussian(rng), gaussian(rng), gaussian(rng), gaussian(rng));
    UnitQuaternion::new_normalize(q)
}

fn sample_range<R: Rng>(rng: &mut R, r: [f64; 2]) -> f64 {
    if r[0] == r[1] {
        r[0]
    } else {
        rng.random_range(r[0]..=r[1])
    }
}

/// The proprioception block of every task's state vector, kept outside any simulator:
/// what a policy trained in simulation needs to be fed on a real (or emulated) hand.
///
/// [`Proprioception::record`] once per control step the measured joint positions and
/// the targets in force; [`Proprioception::write`] appends the last `history` records
/// (newest first) of positions and targets normalised to `[-1, 1]` over the joint
/// ranges, then the joint velocities × 0.1 — the layout the tasks use (see the
/// [module docs](self)). The first record after [`Proprioception::reset`] fills the
/// whole history.
#[derive(Debug, Clone)]
pub struct Proprioception {
    limits: Vec<JointLimits>,
    history: usize,
    entries: VecDeque<(Vec<f64>, Vec<f64>)>,
}

impl Proprioception {
    /// For `model`, with `history` steps (the task config's `history`).
    ///
    /// # Errors
    ///
    /// [`SimError::InvalidParameter`] for a history of 0.
    pub fn new(model: &HandModel, history: usize) -> Result<Self> {
        if history == 0 {
            return Err(SimError::InvalidParameter {
                what: "history",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            limits: model.joint_limits(),
            history,
            entries: VecDeque::with_capacity(history),
        })
    }

    /// Values [`Proprioception::write`] appends.
    pub fn dim(&self) -> usize {
        self.limits.len() * (2 * self.history + 1)
    }

    /// Forgets the history (at the start of an episode).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Records one control step: measured positions and the targets in force (rad).
    ///
    /// # Errors
    ///
    /// [`SimError::WrongLength`] unless both have one value per joint.
    pub fn record(&mut self, q: &[f64], targets: &[f64]) -> Result<()> {
        let dof = self.limits.len();
        for (what, v) in [("joint positions", q), ("joint targets", targets)] {
            if v.len() != dof {
                return Err(SimError::WrongLength {
                    what,
                    expected: dof,
                    got: v.len(),
                });
            }
        }
        let norm = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&self.limits)
                .map(|(x, l)| l.to_unit(*x))
                .collect()
        };
        let entry = (norm(q), norm(targets));
        if self.entries.is_empty() {
            self.entries
                .extend(std::iter::repeat_n(entry, self.history));
        } else {
            self.entries.push_front(entry);
            self.entries.truncate(self.history);
        }
        Ok(())
    }

    /// Appends the block for the present velocities `qdot` (rad/s) to `out`.
    ///
    /// # Errors
    ///
    /// [`SimError::NeedsReset`] before the first record; [`SimError::WrongLength`] for
    /// a `qdot` of the wrong length.
    pub fn write(&self, qdot: &[f64], out: &mut Vec<f32>) -> Result<()> {
        if self.entries.is_empty() {
            return Err(SimError::NeedsReset {
                reason: "no joint state recorded yet".into(),
            });
        }
        if qdot.len() != self.limits.len() {
            return Err(SimError::WrongLength {
                what: "joint velocities",
                expected: self.limits.len(),
                got: qdot.len(),
            });
        }
        for (q, t) in &self.entries {
            out.extend(q.iter().map(|v| *v as f32));
            out.extend(t.iter().map(|v| *v as f32));
        }
        out.extend(qdot.iter().map(|v| (v * 0.1) as f32));
        Ok(())
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
}

impl HandCore {
    pub(crate) fn new(sim: Box<dyn Simulator>, config: TaskConfig) -> Result<Self> {
        config.validate()?;
        let model = sim.model();
        let limits = model.joint_limits();
        let (nominal_kp, nominal_kd) = model.dof_joints().map(nominal_gains).unzip();
        let nominal_damping = model.dof_joints().map(|j| j.dynamics.damping).collect();
        let nominal_gravity = sim.config().gravity;
        let targets = sim.joint_targets().to_vec();
        let history = Proprioception::new(model, config.history)?;
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
        })
    }

    pub(crate) fn dof(&self) -> usize {
        self.limits.len()
    }

    pub(crate) fn proprio_dim(&self) -> usize {
        self.history.dim()
    }

    pub(crate) fn reseed(&mut self, seed: Option<u64>) {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
    }

    /// Draws the episode's randomisation and resets history; call after placing the hand.
    /// `gravity`: the episode's nominal gravity, or `None` for the simulator's initial one.
    pub(crate) fn begin_episode(&mut self, gravity: Option<Vector3<f64>>) -> Result<()> {
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
    pub(crate) fn apply_action(&mut self, action: &[f32], space: &crate::BoxSpace) -> Result<()> {
        if self.needs_reset {
            return Err(SimError::NeedsReset {
                reason: String::new(),
            });
        }
        space.check("action", action)?;
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

    /// Appends the proprioception block to `out`.
    pub(crate) fn proprio(&self, out: &mut Vec<f32>) {
        // Every episode records its first step in `begin_episode`.
        let _ = self.history.write(&self.sim.joint_state().qdot, out);
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

/// The task names [`make_env`] accepts.
pub const TASK_NAMES: &[&str] = &["reach", "reach-depth", "rotate", "anypose", "anygrasp"];

/// Builds a task by name (`reach`, `reach-depth`, `rotate`, `anypose`, `anygrasp`) for
/// `model` with default task-specific settings. `reach-depth` is `reach` observed
/// through [`TaskConfig::depth_view`]: the targets are seen only as spheres in the depth
/// image (see [`ReachConfig::depth`]).
pub fn make_env(name: &str, model: HandModel, config: TaskConfig) -> Result<Box<dyn crate::Env>> {
    Ok(match name {
        "reach" => Box::new(FingertipReach::new(model, config, ReachConfig::default())?),
        "reach-depth" => Box::new(FingertipReach::new(
            model,
            config,
            ReachConfig {
                depth: true,
                ..ReachConfig::default()
            },
        )?),
        "rotate" => Box::new(InHandRotation::new(model, config, RotateConfig::default())?),
        "anypose" => Box::new(AnyposeToAnypose::new(
            model,
            config,
            AnyposeConfig::default(),
        )?),
        "anygrasp" => Box::new(AnygraspToAnygrasp::new(
            model,
            config,
            AnygraspConfig::default(),
        )?),
        other => {
            return Err(SimError::UnknownName {
                kind: "task",
                name: other.to_string(),
                known: TASK_NAMES.join(", "),
            });
        }
    })
}
