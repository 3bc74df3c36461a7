//! The [`Simulator`] trait: the physics of one hand and its objects.
//!
//! **Frames.** The world frame has z up; gravity points along -z unless changed with
//! [`Simulator::set_gravity`] (turning gravity is how a fixed hand is put palm down or on
//! its side). The hand's root link (the palm) is fixed in the world at
//! [`SimConfig::hand_pose`]. Link poses, keypoints, object poses and contacts are in the
//! world frame.
//!
//! **Units.** SI and radians: m, kg, s, N, N·m, rad, rad/s.
//!
//! **Time.** One [`Simulator::step`] advances one control period made of
//! [`SimConfig::substeps`] physics steps of [`SimConfig::dt`] seconds; joint targets are
//! held over the period.

use std::any::Any;

use dex_core::{FingertipKeypoints, HandModel, JointState};
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use serde::{Deserialize, Serialize};

use crate::camera::{Camera, DepthFrame};
use crate::error::{Error, Result};
use crate::object::ObjectSpec;
use crate::wrist::{WristConfig, WristState};

/// Settings shared by every backend.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Physics time step (s).
    pub dt: f64,
    /// Physics steps per control period ([`Simulator::step`]).
    pub substeps: usize,
    /// Pose of the hand's root link in the world.
    pub hand_pose: Isometry3<f64>,
    /// Gravity (m/s²), world frame.
    pub gravity: Vector3<f64>,
    /// Solver iterations per physics step (backend-specific meaning; rapier: PGS iterations).
    pub solver_iterations: usize,
    /// Natural frequency of contact springs (Hz); higher is stiffer.
    pub contact_frequency: f64,
    /// Whether links of different fingers collide with each other.
    pub hand_self_collision: bool,
    /// Distance (m) below which two shapes get a (predictive) contact; larger is safer
    /// against tunnelling, smaller is faster (fewer idle contacts between close fingers).
    pub prediction_distance: f64,
    /// Friction coefficient of the hand's surfaces (a contact uses the mean of the two
    /// bodies' coefficients).
    pub hand_friction: f64,
    /// Static walls around a box (world frame) that objects collide with and the hand
    /// does not (as the ground): a container, e.g. for a [`crate::chaos_box`] of balls.
    /// Not rendered. `None` (the default): only the ground.
    pub enclosure: Option<Enclosure>,
    /// A position-controlled 6-DoF wrist carrying the hand (see [`crate::wrist`]);
    /// `None` (the default): the palm is fixed at `hand_pose`.
    pub wrist: Option<WristConfig>,
    /// A static table that objects and the hand collide with (the hand does not collide
    /// with the ground). Depth images see it (segmentation: background).
    pub table: Option<Table>,
    /// The physics engine tasks build ([`crate::tasks::make_simulator`]).
    pub backend: Backend,
    /// The hand from the user's own MJCF file instead of the one dex writes from the
    /// [`HandModel`] (MuJoCo backend only; see [`MjcfHand`]). `None` (the default):
    /// dex's model.
    pub mjcf: Option<MjcfHand>,
}

/// A hand from the user's own MJCF file (e.g. one of MuJoCo Menagerie's), for the MuJoCo
/// backend, with the map from the [`HandModel`]'s joints to the file's.
///
/// The file's bodies, geoms, inertias, joint damping and friction, contact settings and
/// exclusions are used as written; its actuators on the mapped joints are switched off
/// and dex drives the joints with its PD law and the model's gains and effort limits
/// (as on every backend). The hand is placed so that its joints coincide with the
/// model's at [`SimConfig::hand_pose`]: the rigid transform between the file's hand
/// body and the model's root link is fitted to the joint anchors and axes of both
/// in a few configurations, and loading fails when they disagree by more than
/// [`MjcfHand::tolerance`]. Link poses, fingertips and keypoints come from the model's
/// kinematics at the file's joint positions; contacts and rendering use the file's
/// geometry. The file's friction is used (not [`SimConfig::hand_friction`]), and so
/// are its collision bits (dex's objects collide with bit 1, the ground with bit 3:
/// a hand on MuJoCo's default bits touches objects and the table, not the ground).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MjcfHand {
    /// The MJCF file; its includes and meshes are found as MuJoCo finds them (relative
    /// to the file's directory and its `meshdir`).
    pub path: std::path::PathBuf,
    /// The model's joint name → the file's, for the joints whose names differ (a joint
    /// not listed keeps its name).
    #[serde(default)]
    pub joints: std::collections::BTreeMap<String, String>,
    /// The largest distance (m) allowed between a joint anchor of the file and the
    /// model's (and between points 2 cm along their axes) once the hand is placed.
    #[serde(default = "MjcfHand::default_tolerance")]
    pub tolerance: f64,
}

impl MjcfHand {
    fn default_tolerance() -> f64 {
        0.002
    }

    /// The file at `path`, with the model's joint names and the default tolerance (2 mm).
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        Self {
            path: path.into(),
            joints: Default::default(),
            tolerance: Self::default_tolerance(),
        }
    }

    /// Maps the model's joint `model_joint` to the file's joint `file_joint`.
    pub fn with_joint(mut self, model_joint: &str, file_joint: &str) -> Self {
        self.joints
            .insert(model_joint.to_string(), file_joint.to_string());
        self
    }

    /// The file's name for the model's joint `model_joint`.
    pub fn file_joint<'a>(&'a self, model_joint: &'a str) -> &'a str {
        self.joints
            .get(model_joint)
            .map_or(model_joint, String::as_str)
    }
}

/// A physics engine behind [`Simulator`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// rapier (`RapierSim`, feature `rapier`, on by default).
    #[default]
    Rapier,
    /// MuJoCo 3.17 (`MujocoSim`, feature `mujoco`).
    Mujoco,
}

impl Backend {
    /// The backend's name in settings (`rapier`, `mujoco`).
    pub fn name(self) -> &'static str {
        match self {
            Backend::Rapier => "rapier",
            Backend::Mujoco => "mujoco",
        }
    }
}

impl std::str::FromStr for Backend {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "rapier" => Ok(Backend::Rapier),
            "mujoco" => Ok(Backend::Mujoco),
            other => Err(Error::UnknownName {
                kind: "backend",
                name: other.to_string(),
                known: "rapier, mujoco".into(),
            }),
        }
    }
}

/// A table: a static box whose top is a horizontal rectangle (world frame).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Table {
    /// The centre of the top surface (m).
    pub top_center: [f64; 3],
    /// Half sizes of the top along x and y (m).
    pub half_extents: [f64; 2],
    /// Friction coefficient of its surface.
    pub friction: f64,
}

/// The inside of a closed box of six static walls, world frame (m).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Enclosure {
    /// The lowest corner.
    pub min: Point3<f64>,
    /// The highest corner.
    pub max: Point3<f64>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            dt: 0.002,
            substeps: 10,
            hand_pose: palm_up_pose(),
            gravity: Vector3::new(0.0, 0.0, -9.81),
            solver_iterations: 1,
            // rapier-notes: 100 Hz lets a 40 N grip sink 0.4 mm, the default 3.4 mm.
            contact_frequency: 150.0,
            hand_self_collision: true,
            prediction_distance: 0.002,
            hand_friction: 1.0,
            enclosure: None,
            wrist: None,
            table: None,
            backend: Backend::Rapier,
            mjcf: None,
        }
    }
}

impl SimConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<()> {
        let bad = |what, reason: String| Err(Error::InvalidParameter { what, reason });
        if !(self.dt.is_finite() && self.dt > 0.0 && self.dt <= 0.1) {
            return bad("dt", format!("must lie in (0, 0.1] s, got {}", self.dt));
        }
        if self.substeps == 0 {
            return bad("substeps", "must be at least 1".into());
        }
        if let Some(e) = &self.enclosure
            && !(e.min.iter().chain(e.max.iter()).all(|v| v.is_finite())
                && (0..3).all(|i| e.min[i] < e.max[i]))
        {
            return bad(
                "enclosure",
                format!("needs finite corners with min < max, got {e:?}"),
            );
        }
        if self.solver_iterations == 0 {
            return bad("solver_iterations", "must be at least 1".into());
        }
        if !(self.contact_frequency.is_finite() && self.contact_frequency > 0.0) {
            return bad(
                "contact_frequency",
                format!("must be positive, got {}", self.contact_frequency),
            );
        }
        if !(self.prediction_distance.is_finite() && self.prediction_distance > 0.0) {
            return bad(
                "prediction_distance",
                format!("must be positive, got {}", self.prediction_distance),
            );
        }
        if !(self.hand_friction.is_finite() && self.hand_friction >= 0.0) {
            return bad(
                "hand_friction",
                format!("must be >= 0, got {}", self.hand_friction),
            );
        }
        if self.gravity.iter().any(|g| !g.is_finite()) {
            return bad("gravity", "must be finite".into());
        }
        let t = &self.hand_pose.translation.vector;
        if t.iter().any(|v| !v.is_finite()) {
            return bad("hand_pose", "must be finite".into());
        }
        if let Some(w) = &self.wrist {
            w.validate()?;
        }
        if let Some(m) = &self.mjcf
            && !(m.tolerance.is_finite() && m.tolerance > 0.0)
        {
            return bad(
                "mjcf.tolerance",
                format!("must be positive, got {}", m.tolerance),
            );
        }
        if let Some(t) = &self.table
            && !(t.top_center.iter().all(|v| v.is_finite())
                && t.half_extents.iter().all(|v| v.is_finite() && *v > 0.0)
                && t.friction.is_finite()
                && t.friction >= 0.0)
        {
            return bad(
                "table",
                format!("needs a finite top, positive half sizes and friction ≥ 0, got {t:?}"),
            );
        }
        Ok(())
    }

    /// The defaults with the hand mounted palm up as its MuJoCo Menagerie scene mounts it
    /// (see [`mount_pose`]).
    pub fn for_hand(model: &HandModel) -> Self {
        Self {
            hand_pose: mount_pose(model),
            ..Self::default()
        }
    }

    /// The control period: `dt × substeps` (s).
    pub fn control_period(&self) -> f64 {
        self.dt * self.substeps as f64
    }
}

/// The default hand mount: root link 0.1 m above the world origin, turned half a turn
/// about x so that a LEAP hand's palm faces up (the MuJoCo Menagerie LEAP scene mounts
/// its palm body at pos `0 0 0.1`, quat `0 1 0 0`).
pub fn palm_up_pose() -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(0.0, 0.0, 0.1),
        UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI),
    )
}

/// The palm-up mount of a hand, 0.1 m above the world origin: for Allegro hands (model
/// name starting with `allegro`) the Menagerie `wonik_allegro` palm orientation, quat
/// `0 1 0 1` (half a turn about the x+z diagonal); for every other hand [`palm_up_pose`]
/// (the Menagerie LEAP mount).
pub fn mount_pose(model: &HandModel) -> Isometry3<f64> {
    if model.name().starts_with("allegro") {
        Isometry3::from_parts(
            Translation3::new(0.0, 0.0, 0.1),
            UnitQuaternion::new_normalize(nalgebra::Quaternion::new(0.0, 1.0, 0.0, 1.0)),
        )
    } else {
        palm_up_pose()
    }
}

/// Which body a contact touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BodyRef {
    /// A link of the hand (index into [`HandModel::links`]).
    Link(usize),
    /// An object (index into the scene's objects).
    Object(usize),
    /// The static environment (ground, table), if any.
    Static,
}

/// One contact point between two bodies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contact {
    /// First body.
    pub body1: BodyRef,
    /// Second body.
    pub body2: BodyRef,
    /// Contact point (world frame, on body 1's surface).
    pub point: Point3<f64>,
    /// Unit normal from body 1 towards body 2 (world frame).
    pub normal: Vector3<f64>,
    /// Signed distance (m): negative when the bodies overlap.
    pub distance: f64,
    /// Normal force magnitude (N) over the last physics step.
    pub normal_force: f64,
}

/// Pose and velocity of an object.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectState {
    /// Pose of the object frame in the world.
    pub pose: Isometry3<f64>,
    /// Linear velocity of the object frame's origin (m/s, world).
    pub linear_velocity: Vector3<f64>,
    /// Angular velocity (rad/s, world).
    pub angular_velocity: Vector3<f64>,
}

/// A full snapshot of a simulator's state, opaque to callers; restore it with
/// [`Simulator::restore_state`] into the simulator that saved it (or a clone).
pub struct SimState {
    pub(crate) backend: &'static str,
    pub(crate) inner: Box<dyn Any + Send + Sync>,
}

impl SimState {
    /// Wraps a backend's state; `backend` names it in mismatch errors.
    pub fn new<T: Any + Send + Sync>(backend: &'static str, state: T) -> Self {
        Self {
            backend,
            inner: Box::new(state),
        }
    }

    /// The backend's state, if it is of type `T`.
    pub fn downcast<T: Any>(&self, expected_backend: &'static str) -> Result<&T> {
        self.inner
            .downcast_ref::<T>()
            .ok_or_else(|| Error::StateMismatch {
                reason: format!(
                    "a {} state cannot be restored into a {expected_backend} simulator",
                    self.backend
                ),
            })
    }
}

impl std::fmt::Debug for SimState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimState")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// The physics of one hand plus objects.
///
/// Joint vectors follow the model's joint order ([`HandModel::joint_names`]). Targets
/// are position targets of per-joint PD controllers,
/// `tau = Kp (q_target - q) - Kd qdot`, limited to the joint's effort limit.
pub trait Simulator: Send {
    /// The name of the backend (`"rapier"`, `"mock"`).
    fn backend(&self) -> &'static str;

    /// The hand.
    fn model(&self) -> &HandModel;

    /// The settings the simulator was built with (gravity as last set).
    fn config(&self) -> &SimConfig;

    /// Simulated time since construction (s).
    fn time(&self) -> f64;

    /// Sets the PD position targets (rad or m, joint order). Targets outside the joint
    /// limits are clamped to them (a position servo cannot be sent past its limits);
    /// a wrong length or a non-finite value is an error and changes nothing.
    fn set_joint_targets(&mut self, targets: &[f64]) -> Result<()>;

    /// The current targets (after clamping).
    fn joint_targets(&self) -> &[f64];

    /// Sets PD gains per joint (`kp` in N·m/rad, `kd` in N·m·s/rad); both non-negative.
    fn set_pd_gains(&mut self, kp: &[f64], kd: &[f64]) -> Result<()>;

    /// Sets each joint's viscous damping (N·m·s/rad), non-negative; the model's
    /// `<dynamics damping>` is the initial value.
    fn set_joint_damping(&mut self, damping: &[f64]) -> Result<()>;

    /// Sets a feed-forward torque per joint (N·m) applied at every physics step until
    /// changed, on top of the PD's; the sum is capped at the effort limit. With zero
    /// gains ([`Simulator::set_pd_gains`]) the joints are torque-controlled: an
    /// actuator model outside the engine (a servo's current loop) drives them. The
    /// default is [`Error::Unsupported`].
    fn set_joint_efforts(&mut self, efforts: &[f64]) -> Result<()> {
        let _ = efforts;
        Err(Error::Unsupported {
            backend: self.backend(),
            what: "feed-forward joint torques".into(),
        })
    }

    /// Sets each joint's dry (Coulomb) friction (N·m), non-negative; the model's
    /// `<dynamics friction>` is the initial value. The default is
    /// [`Error::Unsupported`].
    fn set_joint_friction(&mut self, friction: &[f64]) -> Result<()> {
        let _ = friction;
        Err(Error::Unsupported {
            backend: self.backend(),
            what: "joint friction".into(),
        })
    }

    /// Sets each joint's armature (kg·m²; reflected rotor inertia added to the joint's
    /// own), non-negative; initially 0. The default is [`Error::Unsupported`].
    fn set_joint_armature(&mut self, armature: &[f64]) -> Result<()> {
        let _ = armature;
        Err(Error::Unsupported {
            backend: self.backend(),
            what: "joint armature".into(),
        })
    }

    /// Advances one control period. A non-finite state after the step is
    /// [`Error::Diverged`].
    fn step(&mut self) -> Result<()>;

    /// Joint positions, velocities and the efforts (PD plus feed-forward) applied during
    /// the last physics step.
    fn joint_state(&self) -> JointState;

    /// Teleports the hand to `q` at rest (targets = `q`); values outside the limits are an
    /// error.
    fn set_joint_positions(&mut self, q: &[f64]) -> Result<()>;

    /// World poses of every link, in [`HandModel::links`] order.
    fn link_poses(&self) -> Vec<Isometry3<f64>>;

    /// World positions of the model's fingertips and keypoints.
    fn keypoints(&self) -> FingertipKeypoints {
        let poses = self.link_poses();
        let model = self.model();
        let frames = if model.keypoints().is_empty() {
            model.fingertips()
        } else {
            model.keypoints()
        };
        FingertipKeypoints::new(
            frames
                .iter()
                .map(|f| Point3::from(model.frame_pose(&poses, f).translation.vector))
                .collect(),
        )
    }

    /// World positions of the model's fingertips.
    fn fingertip_positions(&self) -> Vec<Point3<f64>> {
        let poses = self.link_poses();
        let model = self.model();
        model
            .fingertips()
            .iter()
            .map(|f| Point3::from(model.frame_pose(&poses, f).translation.vector))
            .collect()
    }

    /// The objects in the scene.
    fn objects(&self) -> &[ObjectSpec];

    /// Replaces every object by `objects`, each at `poses[i]` at rest.
    fn set_objects(&mut self, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()>;

    /// Pose and velocity of object `index`.
    fn object_state(&self, index: usize) -> Result<ObjectState>;

    /// Teleports object `index` to `pose` at rest.
    fn set_object_pose(&mut self, index: usize, pose: &Isometry3<f64>) -> Result<()>;

    /// The contacts of the last physics step (touching pairs only).
    fn contacts(&self) -> Vec<Contact>;

    /// Sets the gravity vector (m/s², world frame); must be finite.
    fn set_gravity(&mut self, gravity: Vector3<f64>) -> Result<()>;

    /// A full snapshot: restoring it and stepping reproduces the same trajectory bit for bit.
    fn save_state(&self) -> SimState;

    /// Restores a snapshot taken by this simulator (or one built identically).
    fn restore_state(&mut self, state: &SimState) -> Result<()>;

    /// Renders depth and segmentation from `camera`.
    fn render_depth(&self, camera: &Camera) -> Result<DepthFrame>;

    /// The wrist's state when the hand is on one ([`SimConfig::wrist`]); `None` for a
    /// fixed palm.
    fn wrist_state(&self) -> Option<WristState> {
        None
    }

    /// Sends the wrist toward `target` (`x, y, z, yaw, pitch, roll`, see
    /// [`crate::wrist`]): clamped to its limits, reached no faster than its speed.
    ///
    /// # Errors
    ///
    /// [`Error::NotFinite`] for NaN or infinity; [`Error::Unsupported`] when the hand has
    /// no wrist.
    fn set_wrist_target(&mut self, target: &[f64; 6]) -> Result<()> {
        let _ = target;
        Err(Error::Unsupported {
            backend: self.backend(),
            what: "a wrist: this simulator's hand is fixed (SimConfig::wrist is None)".into(),
        })
    }

    /// Puts the wrist at `position` at rest (a teleport, as
    /// [`Simulator::set_joint_positions`] for the hand), its targets there too. Clamped to
    /// the limits.
    ///
    /// # Errors
    ///
    /// As [`Simulator::set_wrist_target`].
    fn set_wrist_position(&mut self, position: &[f64; 6]) -> Result<()> {
        self.set_wrist_target(position)
    }

    /// A 64-bit hash of the dynamic state (time, joint positions and velocities, the
    /// wrist's coordinates and rates, object poses and velocities, bit for bit): equal
    /// states give equal digests.
    fn state_digest(&self) -> u64 {
        let mut h = Fnv::default();
        h.f64(self.time());
        let js = self.joint_state();
        for v in js.q.iter().chain(&js.qdot) {
            h.f64(*v);
        }
        if let Some(w) = self.wrist_state() {
            for v in w.position.iter().chain(&w.velocity) {
                h.f64(*v);
            }
        }
        for i in 0..self.objects().len() {
            if let Ok(s) = self.object_state(i) {
                let p = s.pose;
                for v in p
                    .translation
                    .vector
                    .iter()
                    .chain(p.rotation.coords.iter())
                    .chain(s.linear_velocity.iter())
                    .chain(s.angular_velocity.iter())
                {
                    h.f64(*v);
                }
            }
        }
        h.finish()
    }
}

impl<S: Simulator + ?Sized> Simulator for Box<S> {
    fn backend(&self) -> &'static str {
        (**self).backend()
    }
    fn model(&self) -> &HandModel {
        (**self).model()
    }
    fn config(&self) -> &SimConfig {
        (**self).config()
    }
    fn time(&self) -> f64 {
        (**self).time()
    }
    fn set_joint_targets(&mut self, targets: &[f64]) -> Result<()> {
        (**self).set_joint_targets(targets)
    }
    fn joint_targets(&self) -> &[f64] {
        (**self).joint_targets()
    }
    fn set_pd_gains(&mut self, kp: &[f64], kd: &[f64]) -> Result<()> {
        (**self).set_pd_gains(kp, kd)
    }
    fn set_joint_damping(&mut self, damping: &[f64]) -> Result<()> {
        (**self).set_joint_damping(damping)
    }
    fn set_joint_efforts(&mut self, efforts: &[f64]) -> Result<()> {
        (**self).set_joint_efforts(efforts)
    }
    fn set_joint_friction(&mut self, friction: &[f64]) -> Result<()> {
        (**self).set_joint_friction(friction)
    }
    fn set_joint_armature(&mut self, armature: &[f64]) -> Result<()> {
        (**self).set_joint_armature(armature)
    }
    fn step(&mut self) -> Result<()> {
        (**self).step()
    }
    fn joint_state(&self) -> JointState {
        (**self).joint_state()
    }
    fn set_joint_positions(&mut self, q: &[f64]) -> Result<()> {
        (**self).set_joint_positions(q)
    }
    fn link_poses(&self) -> Vec<Isometry3<f64>> {
        (**self).link_poses()
    }
    fn keypoints(&self) -> FingertipKeypoints {
        (**self).keypoints()
    }
    fn fingertip_positions(&self) -> Vec<Point3<f64>> {
        (**self).fingertip_positions()
    }
    fn objects(&self) -> &[ObjectSpec] {
        (**self).objects()
    }
    fn set_objects(&mut self, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
        (**self).set_objects(objects, poses)
    }
    fn object_state(&self, index: usize) -> Result<ObjectState> {
        (**self).object_state(index)
    }
    fn set_object_pose(&mut self, index: usize, pose: &Isometry3<f64>) -> Result<()> {
        (**self).set_object_pose(index, pose)
    }
    fn contacts(&self) -> Vec<Contact> {
        (**self).contacts()
    }
    fn set_gravity(&mut self, gravity: Vector3<f64>) -> Result<()> {
        (**self).set_gravity(gravity)
    }
    fn wrist_state(&self) -> Option<WristState> {
        (**self).wrist_state()
    }
    fn set_wrist_target(&mut self, target: &[f64; 6]) -> Result<()> {
        (**self).set_wrist_target(target)
    }
    fn set_wrist_position(&mut self, position: &[f64; 6]) -> Result<()> {
        (**self).set_wrist_position(position)
    }
    fn save_state(&self) -> SimState {
        (**self).save_state()
    }
    fn restore_state(&mut self, state: &SimState) -> Result<()> {
        (**self).restore_state(state)
    }
    fn render_depth(&self, camera: &Camera) -> Result<DepthFrame> {
        (**self).render_depth(camera)
    }
    fn state_digest(&self) -> u64 {
        (**self).state_digest()
    }
}

/// FNV-1a, 64-bit: a small, stable hash for digests (std's hasher may change between
/// releases).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    pub(crate) fn f64(&mut self, v: f64) {
        self.bytes(&v.to_bits().to_le_bytes());
    }

    pub(crate) fn finish(self) -> u64 {
        self.0
    }
}

/// PD gains of a joint: its `dex:actuator` `(kp, kv)`, or 1 N·m/rad and 0.05 N·m·s/rad
/// for a joint without one.
pub(crate) fn nominal_gains(joint: &dex_core::Joint) -> (f64, f64) {
    joint
        .actuator
        .as_ref()
        .map_or((1.0, 0.05), |a| (a.kp, a.kv))
}

/// The PD gains every backend starts with, `(Kp, Kd)` per joint in model order: each
/// joint's `dex:actuator` gains, or 1 N·m/rad and 0.05 N·m·s/rad without one.
pub fn nominal_pd_gains(model: &HandModel) -> (Vec<f64>, Vec<f64>) {
    model.dof_joints().map(nominal_gains).unzip()
}

/// The open hand: 0 on every joint, clamped into the joint's range where 0 lies outside.
pub fn open_configuration(model: &HandModel) -> Vec<f64> {
    let mut q = vec![0.0; model.dof()];
    clamp_targets(model, &vec![0.0; model.dof()], &mut q);
    q
}

/// Checks a scene's objects and poses (lengths match, objects valid, poses finite).
pub(crate) fn validate_objects(objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
    if objects.len() != poses.len() {
        return Err(Error::LengthMismatch {
            what: "object poses",
            expected: objects.len(),
            got: poses.len(),
        });
    }
    for (o, p) in objects.iter().zip(poses) {
        o.validate()?;
        crate::error::check_finite("object pose", p.translation.vector.as_slice())?;
    }
    Ok(())
}

/// Checks a per-joint vector of gains or damping: length, finite, non-negative.
pub(crate) fn check_non_negative(what: &'static str, values: &[f64], dof: usize) -> Result<()> {
    crate::error::check_vector(what, values, dof)?;
    match values.iter().find(|v| **v < 0.0) {
        Some(v) => Err(Error::InvalidParameter {
            what,
            reason: format!("must be non-negative, got {v}"),
        }),
        None => Ok(()),
    }
}

/// Clamps targets to the model's limits (continuous joints are left as they are).
pub(crate) fn clamp_targets(model: &HandModel, targets: &[f64], out: &mut [f64]) {
    for ((o, t), j) in out.iter_mut().zip(targets).zip(model.dof_joints()) {
        *o = match j.limits {
            Some(l) if j.kind != dex_core::JointKind::Continuous => t.clamp(l.lower, l.upper),
            _ => *t,
        };
    }
}

/// The world pose at which an object of half height `half_height` rests on the palm:
/// above the centre of the top face of the root link's collision boxes' bounding box,
/// `clearance` metres above it.
pub fn rest_pose_on_palm(
    model: &HandModel,
    hand_pose: &Isometry3<f64>,
    half_height: f64,
    clearance: f64,
) -> Isometry3<f64> {
    let root = model.link(model.root());
    let mut lo = Vector3::repeat(f64::INFINITY);
    let mut hi = Vector3::repeat(f64::NEG_INFINITY);
    for g in &root.collisions {
        let half = match &g.shape {
            dex_core::Shape::Box { half_extents } => *half_extents,
            dex_core::Shape::Sphere { radius } => Vector3::repeat(*radius),
            dex_core::Shape::Cylinder { radius, length } => {
                Vector3::new(*radius, *radius, length / 2.0)
            }
            dex_core::Shape::Capsule { radius, length } => {
                Vector3::new(*radius, *radius, length / 2.0 + radius)
            }
            dex_core::Shape::Mesh { .. } => continue,
        };
        let pose = hand_pose * g.origin;
        let r = pose.rotation.to_rotation_matrix();
        let extent = r.matrix().abs() * half;
        lo = lo.inf(&(pose.translation.vector - extent));
        hi = hi.sup(&(pose.translation.vector + extent));
    }
    if lo.x.is_infinite() {
        lo = hand_pose.translation.vector;
        hi = lo;
    }
    let centre = (lo + hi) / 2.0;
    Isometry3::translation(centre.x, centre.y, hi.z + half_height + clearance)
}
