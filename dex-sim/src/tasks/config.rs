//! The settings every task shares: [`TaskConfig`], [`ActionMode`] with the one
//! action → joint-target mapping, and [`Randomization`].

use dex_core::{HandModel, JointLimits};
use serde::{Deserialize, Serialize};

use super::anygrasp::AnygraspOptions;
use super::depth_view::DepthView;
use super::pose_proxy::PoseProxyConfig;
use super::rotate_options::RotateOptions;
use crate::error::{Error, Result};
use crate::simulator::SimConfig;
use crate::wrist::WristConfig;

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
        let r: Self = toml::from_str(text).map_err(|e| Error::Config {
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
                return Err(Error::Config {
                    message: format!("{what} = {r:?}: needs 0 < low <= high"),
                });
            }
        }
        if !(self.observation_noise.is_finite() && self.observation_noise >= 0.0) {
            return Err(Error::Config {
                message: format!("observation_noise = {}: needs >= 0", self.observation_noise),
            });
        }
        if self.action_latency[0] > self.action_latency[1] || self.action_latency[1] > 100 {
            return Err(Error::Config {
                message: format!(
                    "action_latency = {:?}: needs low <= high <= 100",
                    self.action_latency
                ),
            });
        }
        if !(self.gravity_tilt.is_finite()
            && (0.0..=std::f64::consts::PI).contains(&self.gravity_tilt))
        {
            return Err(Error::Config {
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
    /// The physics engine: `rapier` (the default) or `mujoco` (dex built with the
    /// `mujoco` feature).
    pub backend: crate::Backend,
    /// The hand from the user's own MJCF file (`[task.mjcf]`: `path`, `joints` as a
    /// table of model name = file name, `tolerance`), MuJoCo backend only; see
    /// [`crate::MjcfHand`]. `None` (the default): dex's model of the hand.
    pub mjcf: Option<crate::MjcfHand>,
    /// The depth camera of the tasks that observe depth (`reach-depth`).
    pub depth_view: DepthView,
    /// The `anygrasp` task's grasp-set and goal settings (`[task.anygrasp]`; other
    /// tasks ignore them).
    pub anygrasp: AnygraspOptions,
    /// The `rotate` task's palm orientation, start pose and reward weights
    /// (`[task.rotate]`; other tasks ignore them).
    pub rotate: RotateOptions,
    /// Mount the hand on a 6-DoF wrist (`[task.wrist]`, see [`crate::wrist`]): every
    /// action then starts with six wrist deltas (Dex4D's shape: wrist deltas, then the
    /// hand's joint targets as `action_mode` maps them), and the proprioception block
    /// ends with the wrist's coordinates and rates. `None` (the default): a fixed palm.
    pub wrist: Option<WristConfig>,
    /// Wrist motion per unit action and control step: metres for x, y, z and radians
    /// for yaw, pitch, roll. The deltas add up into the wrist's target (clamped to its
    /// limits), which the wrist follows at its speed.
    pub wrist_step: [f64; 2],
    /// Wrist coordinates at the start of every episode.
    pub wrist_start: [f64; 6],
    /// The physics-free `anypose-proxy` task's settings (`[task.proxy]`; other tasks
    /// ignore them, and it ignores every other field).
    pub proxy: PoseProxyConfig,
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
            backend: crate::Backend::Rapier,
            mjcf: None,
            depth_view: DepthView::default(),
            anygrasp: AnygraspOptions::default(),
            rotate: RotateOptions::default(),
            wrist: None,
            wrist_step: [0.02, 0.1],
            wrist_start: [0.0; 6],
            proxy: PoseProxyConfig::default(),
        }
    }
}

impl TaskConfig {
    /// Checks the fields.
    pub fn validate(&self) -> Result<()> {
        if self.episode_steps == 0 || self.history == 0 {
            return Err(Error::InvalidParameter {
                what: "task config",
                reason: "episode_steps and history must be at least 1".into(),
            });
        }
        if !(self.relative_scale.is_finite() && self.relative_scale > 0.0) {
            return Err(Error::InvalidParameter {
                what: "relative_scale",
                reason: format!("must be positive, got {}", self.relative_scale),
            });
        }
        if !(self.relative_lead.is_finite() && self.relative_lead >= 0.0) {
            return Err(Error::InvalidParameter {
                what: "relative_lead",
                reason: format!(
                    "must be 0 (unbounded) or positive, got {}",
                    self.relative_lead
                ),
            });
        }
        self.randomization.validate()?;
        self.depth_view.validate()?;
        self.anygrasp.validate()?;
        self.proxy.validate()?;
        if self.wrist_step.iter().any(|v| !(v.is_finite() && *v > 0.0))
            || self.wrist_start.iter().any(|v| !v.is_finite())
        {
            return Err(Error::InvalidParameter {
                what: "wrist_step / wrist_start",
                reason: format!(
                    "the step must be positive and the start finite, got {:?} and {:?}",
                    self.wrist_step, self.wrist_start
                ),
            });
        }
        SimConfig {
            dt: self.dt,
            substeps: self.substeps,
            wrist: self.wrist,
            mjcf: self.mjcf.clone(),
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
    /// # Ok::<(), dex_sim::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] unless `action`, `previous` (and `measured`) have one
    /// value per joint; [`Error::NotFinite`] for a NaN or infinite action value.
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
                return Err(Error::LengthMismatch {
                    what,
                    expected: n,
                    got,
                });
            }
        }
        if let Some(index) = action.iter().position(|a| !a.is_finite()) {
            return Err(Error::NotFinite {
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
            wrist: self.wrist,
            backend: self.backend,
            mjcf: self.mjcf.clone(),
            ..SimConfig::for_hand(model)
        }
    }
}
