//! Hand models: links, joints, shapes, named frames, and the kinematic tree.
//!
//! A [`HandModel`] is loaded from URDF ([`HandModel::from_urdf_str`],
//! [`HandModel::from_urdf_file`]) or taken from the built-in hands
//! ([`HandModel::leap_right`], [`HandModel::allegro_right`]). Its **joint order**
//! (the order of every `q`, `qdot` and target vector in dex) is the declaration
//! order of the URDF's movable, non-mimic joints. The **root link** (the palm for
//! the built-in hands) defines the frame in which every pose is expressed.
//!
//! # The `dex:` URDF extension
//!
//! URDF has no words for fingertips, keypoints or actuator gains, so dex reads a
//! few extra elements in the namespace `urn:dex:urdf:1` (other URDF tools ignore
//! them):
//!
//! ```xml
//! <robot name="my_hand" xmlns:dex="urn:dex:urdf:1">
//!   <!-- links and joints as usual -->
//!   <dex:actuator joint="j1" kp="3.0" kv="0.01" motor_id="0"/>
//!   <dex:fingertip name="index" link="index_distal" xyz="0 0 0.03"/>
//!   <dex:keypoint name="index_tip" link="index_distal" xyz="0 0 0.03"/>
//!   <dex:contact_exclude link1="palm" link2="index_base"/>
//! </robot>
//! ```
//!
//! Without `dex:fingertip` elements, every leaf link below at least one movable
//! joint becomes a fingertip frame at its origin; without `dex:keypoint`
//! elements the keypoints are the fingertips.

pub(crate) mod builtin;
mod urdf;

pub use urdf::DEX_URDF_NAMESPACE;

use std::collections::HashMap;
use std::path::PathBuf;

use nalgebra::{Isometry3, Matrix3, Point3, Unit, UnitQuaternion, Vector3};

use crate::error::{Error, Result};

pub use builtin::BuiltinHand;

/// Index of a link in [`HandModel::links`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct LinkId(pub usize);

/// Index of a joint in [`HandModel::joints`] (all joints, fixed ones included).
///
/// This is not the index into a `q` vector: see [`Joint::dof`].
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct JointId(pub usize);

/// The kind of motion a joint allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JointKind {
    /// Rotation about the axis, within limits (radians).
    Revolute,
    /// Rotation about the axis without limits (radians).
    Continuous,
    /// Translation along the axis, within limits (metres).
    Prismatic,
    /// No motion.
    Fixed,
}

impl JointKind {
    /// Whether the joint has one degree of freedom.
    pub fn is_movable(self) -> bool {
        !matches!(self, JointKind::Fixed)
    }

    /// The URDF word for this kind.
    pub fn as_str(self) -> &'static str {
        match self {
            JointKind::Revolute => "revolute",
            JointKind::Continuous => "continuous",
            JointKind::Prismatic => "prismatic",
            JointKind::Fixed => "fixed",
        }
    }
}

/// Position, velocity and effort limits of a joint (SI units, radians).
///
/// Continuous joints have infinite position limits.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointLimits {
    /// Lowest position (rad or m).
    pub lower: f64,
    /// Highest position (rad or m).
    pub upper: f64,
    /// Largest speed (rad/s or m/s); infinite if unknown.
    pub velocity: f64,
    /// Largest torque or force (N·m or N); infinite if unknown.
    pub effort: f64,
}

impl JointLimits {
    /// Whether `value` lies within `[lower, upper]`.
    pub fn contains(&self, value: f64) -> bool {
        value >= self.lower && value <= self.upper
    }

    /// The middle of the position range (0 for unlimited joints).
    pub fn mid(&self) -> f64 {
        if self.lower.is_finite() && self.upper.is_finite() {
            0.5 * (self.lower + self.upper)
        } else {
            0.0
        }
    }

    /// `unit` ∈ `[-1, 1]` mapped linearly onto the range: `mid + unit · (upper − lower) / 2`
    /// (−1 → `lower`, 1 → `upper`). Values outside `[-1, 1]` map outside the range; the
    /// result is not clamped. This is how dex maps a normalised action to a joint target.
    ///
    /// ```
    /// let l = dex_core::JointLimits { lower: -1.0, upper: 3.0, velocity: 1.0, effort: 1.0 };
    /// assert_eq!(l.from_unit(-1.0), -1.0);
    /// assert_eq!(l.from_unit(0.5), 2.0);
    /// assert_eq!(l.to_unit(2.0), 0.5);
    /// ```
    pub fn from_unit(&self, unit: f64) -> f64 {
        self.mid() + unit * (self.upper - self.lower) / 2.0
    }

    /// The inverse of [`JointLimits::from_unit`]: `(value − mid) / ((upper − lower) / 2)`,
    /// the half-range floored at 1e-9 so that a degenerate range gives a finite value.
    /// How dex normalises joint positions and targets in observations.
    pub fn to_unit(&self, value: f64) -> f64 {
        (value - self.mid()) / ((self.upper - self.lower) / 2.0).max(1e-9)
    }
}

/// Passive joint dynamics (URDF `<dynamics>`).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointDynamics {
    /// Viscous damping (N·m·s/rad or N·s/m).
    pub damping: f64,
    /// Coulomb friction (N·m or N).
    pub friction: f64,
}

/// A position actuator on a joint: `tau = kp (q_target - q) - kv qdot`, clamped to
/// the joint's effort limit (`dex:actuator`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Actuator {
    /// Proportional gain (N·m/rad or N/m).
    pub kp: f64,
    /// Derivative gain (N·m·s/rad or N·s/m).
    pub kv: f64,
    /// ID of the motor on the hardware bus, where known.
    pub motor_id: Option<u32>,
}

/// A joint whose value follows another: `q = multiplier * q_source + offset`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Mimic {
    /// The joint followed (a degree of freedom of the model).
    pub source: JointId,
    /// Multiplier.
    pub multiplier: f64,
    /// Offset (rad or m).
    pub offset: f64,
}

/// One joint of the kinematic tree.
///
/// The joint frame coincides with the child link's frame; `origin` places it in
/// the parent link's frame at zero joint value, and `axis` is expressed in it.
#[derive(Debug, Clone, PartialEq)]
pub struct Joint {
    /// Name, unique in the model.
    pub name: String,
    /// Kind of motion.
    pub kind: JointKind,
    /// The parent link.
    pub parent: LinkId,
    /// The child link.
    pub child: LinkId,
    /// Child frame in the parent frame at zero joint value.
    pub origin: Isometry3<f64>,
    /// Unit axis of motion in the joint (child) frame.
    pub axis: Unit<Vector3<f64>>,
    /// Limits (movable joints only).
    pub limits: Option<JointLimits>,
    /// Passive dynamics.
    pub dynamics: JointDynamics,
    /// Position actuator, if the model declares one.
    pub actuator: Option<Actuator>,
    /// The joint this one mimics, if any.
    pub mimic: Option<Mimic>,
    /// Index of this joint in `q` vectors, for movable non-mimic joints.
    pub dof: Option<usize>,
}

/// Mass properties of a link (URDF `<inertial>`), in the link frame.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Inertial {
    /// Mass (kg).
    pub mass: f64,
    /// Centre of mass in the link frame (m).
    pub com: Point3<f64>,
    /// Inertia tensor about the centre of mass, in link-frame axes (kg·m²).
    pub inertia: Matrix3<f64>,
}

/// A geometric primitive, centred on its own frame.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    /// Axis-aligned box with the given half extents (m).
    Box {
        /// Half of the size along x, y, z.
        half_extents: Vector3<f64>,
    },
    /// Cylinder along z.
    Cylinder {
        /// Radius (m).
        radius: f64,
        /// Full length (m).
        length: f64,
    },
    /// Sphere.
    Sphere {
        /// Radius (m).
        radius: f64,
    },
    /// Capsule along z: a cylinder of `length` capped by two hemispheres.
    Capsule {
        /// Radius (m).
        radius: f64,
        /// Length of the cylindrical part (m); the capsule's total length is `length + 2 radius`.
        length: f64,
    },
    /// A mesh file, kept as a reference (not loaded).
    Mesh {
        /// The file name as written in the URDF (may be a `package://` URI).
        path: PathBuf,
        /// Scale along x, y, z.
        scale: Vector3<f64>,
    },
}

impl Shape {
    /// The URDF-style name of the shape.
    pub fn kind(&self) -> &'static str {
        match self {
            Shape::Box { .. } => "box",
            Shape::Cylinder { .. } => "cylinder",
            Shape::Sphere { .. } => "sphere",
            Shape::Capsule { .. } => "capsule",
            Shape::Mesh { .. } => "mesh",
        }
    }
}

/// A shape placed in a link frame (a collision or visual element).
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    /// Name, if the URDF gives one.
    pub name: Option<String>,
    /// Shape frame in the link frame.
    pub origin: Isometry3<f64>,
    /// The shape.
    pub shape: Shape,
}

/// One rigid body of the hand.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    /// Name, unique in the model.
    pub name: String,
    /// The joint whose child this link is (`None` for the root).
    pub parent_joint: Option<JointId>,
    /// Joints whose parent this link is.
    pub child_joints: Vec<JointId>,
    /// Mass properties, if given.
    pub inertial: Option<Inertial>,
    /// Collision geometry.
    pub collisions: Vec<Geometry>,
    /// Visual geometry.
    pub visuals: Vec<Geometry>,
}

/// A named frame rigidly attached to a link: a fingertip or a keypoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Name, unique among frames of its kind.
    pub name: String,
    /// The link it is attached to.
    pub link: LinkId,
    /// The frame in the link frame.
    pub offset: Isometry3<f64>,
}

/// One step of the forward-kinematics program: place `link` relative to `parent`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FkStep {
    pub link: usize,
    pub parent: usize,
    pub origin_rot: UnitQuaternion<f64>,
    pub origin_t: Vector3<f64>,
    pub motion: Motion,
}

/// How a step moves with the joint value.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Motion {
    Fixed,
    Revolute { axis: Vector3<f64>, q: QSource },
    Prismatic { axis: Vector3<f64>, q: QSource },
}

/// Where a joint value comes from: `multiplier * q[dof] + offset`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QSource {
    pub dof: usize,
    pub multiplier: f64,
    pub offset: f64,
}

impl QSource {
    #[inline(always)]
    pub fn value(&self, q: &[f64]) -> f64 {
        self.multiplier * q[self.dof] + self.offset
    }
}

/// A hand (or any tree-shaped robot): links, joints, named frames, and the
/// precomputed forward-kinematics program.
///
/// # Examples
///
/// ```
/// use dex_core::HandModel;
///
/// let hand = HandModel::leap_right();
/// assert_eq!(hand.dof(), 16);
/// assert_eq!(hand.joint_names()[0], "if_rot"); // motor ID 0 on the real hand
/// let poses = hand.forward_kinematics(&vec![0.0; 16])?;
/// let tip = hand.link_id("if_ds")?;
/// println!("index distal origin in the palm frame: {}", poses[tip.0].translation);
/// # Ok::<(), dex_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct HandModel {
    pub(crate) name: String,
    pub(crate) links: Vec<Link>,
    pub(crate) joints: Vec<Joint>,
    pub(crate) root: LinkId,
    /// Joint ids of the degrees of freedom, in `q` order.
    pub(crate) dofs: Vec<JointId>,
    pub(crate) fingertips: Vec<Frame>,
    pub(crate) keypoints: Vec<Frame>,
    pub(crate) contact_excludes: Vec<(LinkId, LinkId)>,
    pub(crate) program: Vec<FkStep>,
    pub(crate) link_index: HashMap<String, LinkId>,
    pub(crate) joint_index: HashMap<String, JointId>,
}

impl HandModel {
    /// The model's name (URDF `<robot name>`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of degrees of freedom (length of `q`).
    pub fn dof(&self) -> usize {
        self.dofs.len()
    }

    /// All links, in declaration order. Poses from forward kinematics use the same indices.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// All joints, fixed and mimic ones included, in declaration order.
    pub fn joints(&self) -> &[Joint] {
        &self.joints
    }

    /// The root link (the palm for the built-in hands); every pose is in its frame.
    pub fn root(&self) -> LinkId {
        self.root
    }

    /// A link by id.
    ///
    /// # Panics
    ///
    /// If `id` does not come from this model.
    pub fn link(&self, id: LinkId) -> &Link {
        &self.links[id.0]
    }

    /// A joint by id.
    ///
    /// # Panics
    ///
    /// If `id` does not come from this model.
    pub fn joint(&self, id: JointId) -> &Joint {
        &self.joints[id.0]
    }

    /// The joints that are degrees of freedom, in `q` order.
    pub fn dof_joints(&self) -> impl ExactSizeIterator<Item = &Joint> + '_ {
        self.dofs.iter().map(|id| &self.joints[id.0])
    }

    /// Names of the degrees of freedom, in `q` order.
    pub fn joint_names(&self) -> Vec<&str> {
        self.dof_joints().map(|j| j.name.as_str()).collect()
    }

    /// Limits of the degrees of freedom, in `q` order.
    pub fn joint_limits(&self) -> Vec<JointLimits> {
        self.dof_joints()
            .map(|j| {
                j.limits.unwrap_or(JointLimits {
                    lower: f64::NEG_INFINITY,
                    upper: f64::INFINITY,
                    velocity: f64::INFINITY,
                    effort: f64::INFINITY,
                })
            })
            .collect()
    }

    /// The mid-range configuration (0 for unlimited joints).
    pub fn mid_configuration(&self) -> Vec<f64> {
        self.joint_limits().iter().map(JointLimits::mid).collect()
    }

    /// Looks up a link by name.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if there is no such link.
    pub fn link_id(&self, name: &str) -> Result<LinkId> {
        self.link_index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownName {
                kind: "link",
                name: name.to_string(),
                known: Vec::new(),
            })
    }

    /// Looks up a joint by name.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if there is no such joint.
    pub fn joint_id(&self, name: &str) -> Result<JointId> {
        self.joint_index
            .get(name)
            .copied()
            .ok_or_else(|| Error::UnknownName {
                kind: "joint",
                name: name.to_string(),
                known: Vec::new(),
            })
    }

    /// Index in `q` of the degree of freedom named `name`.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] if no degree of freedom has that name (fixed and
    /// mimic joints have none).
    pub fn dof_index(&self, name: &str) -> Result<usize> {
        self.joint_index
            .get(name)
            .and_then(|id| self.joints[id.0].dof)
            .ok_or_else(|| Error::UnknownName {
                kind: "degree of freedom",
                name: name.to_string(),
                known: self.joint_names().iter().map(|s| s.to_string()).collect(),
            })
    }

    /// Fingertip frames, in declaration order.
    pub fn fingertips(&self) -> &[Frame] {
        &self.fingertips
    }

    /// Keypoint frames (DexGen uses 8: each finger's middle joint and tip), in declaration order.
    pub fn keypoints(&self) -> &[Frame] {
        &self.keypoints
    }

    /// Pairs of links whose contacts a simulator should ignore (`dex:contact_exclude`).
    pub fn contact_excludes(&self) -> &[(LinkId, LinkId)] {
        &self.contact_excludes
    }

    /// Total mass of all links (kg).
    pub fn total_mass(&self) -> f64 {
        self.links
            .iter()
            .filter_map(|l| l.inertial.map(|i| i.mass))
            .sum()
    }

    /// Checks that `q` has one finite value per degree of freedom, within limits.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::NonFiniteInput`] or [`Error::OutOfLimits`].
    pub fn check_configuration(&self, q: &[f64]) -> Result<()> {
        crate::error::check_len("joint configuration", self.dof(), q.len())?;
        crate::error::check_finite("joint configuration", q)?;
        for (joint, &value) in self.dof_joints().zip(q) {
            if let Some(l) = joint.limits
                && !l.contains(value)
            {
                return Err(Error::OutOfLimits {
                    joint: joint.name.clone(),
                    value,
                    lower: l.lower,
                    upper: l.upper,
                });
            }
        }
        Ok(())
    }

    /// Clamps `q` into the joint limits, in place. Non-finite values are not touched.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if `q` does not have one value per degree of freedom.
    pub fn clamp_configuration(&self, q: &mut [f64]) -> Result<()> {
        crate::error::check_len("joint configuration", self.dof(), q.len())?;
        for (joint, value) in self.dof_joints().zip(q.iter_mut()) {
            if let Some(l) = joint.limits {
                *value = value.clamp(l.lower, l.upper);
            }
        }
        Ok(())
    }

    /// Builds a configuration from `(joint name, value)` pairs; joints not named are 0.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for a name that is not a degree of freedom.
    pub fn configuration_from_named<'a>(
        &self,
        values: impl IntoIterator<Item = (&'a str, f64)>,
    ) -> Result<Vec<f64>> {
        let mut q = vec![0.0; self.dof()];
        for (name, value) in values {
            q[self.dof_index(name)?] = value;
        }
        Ok(q)
    }
}
