//! The rapier backend's data: [`RapierSim`]'s fields, how model links and degrees of
//! freedom map onto rapier bodies and joints, the state a snapshot copies, and
//! conversions between nalgebra (f64) and rapier's (f32) types.

use dex_core::HandModel;
use nalgebra::{Isometry3, Quaternion, Translation3, UnitQuaternion, Vector3};
use rapier3d::prelude::*;

use crate::object::ObjectSpec;
use crate::simulator::SimConfig;

pub(crate) const BACKEND: &str = "rapier";

/// How one degree of freedom maps onto rapier.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dof {
    pub(crate) joint: MultibodyJointHandle,
    pub(crate) prismatic: bool,
    pub(crate) kp: f64,
    pub(crate) kd: f64,
    pub(crate) effort: f64,
    /// Feed-forward torque (N·m) added to the PD's, [`crate::Simulator::set_joint_efforts`].
    pub(crate) feedforward: f64,
}

impl Dof {
    /// The free axis of the joint (its frame's x axis).
    pub(crate) fn axis(&self) -> (JointAxis, usize) {
        joint_axis(self.prismatic)
    }
}

/// The free axis of a one-axis joint along or about its frame's x axis, and the index
/// of its coordinate in rapier's joint coordinates.
pub(crate) fn joint_axis(prismatic: bool) -> (JointAxis, usize) {
    if prismatic {
        (JointAxis::LinX, 0)
    } else {
        (JointAxis::AngX, 3)
    }
}

/// The wrist's joints, targets and the velocities of the hand on it.
///
/// On a wrist the whole hand is one multibody, and rapier's multibody velocities after
/// a step leave out the position correction of its stabilisation pass: under a steady
/// load (the hand's weight on the turned wrist) they read tenths of a radian per second
/// for joints that do not move. The velocities reported on a wrist are therefore the
/// positions' change over the last physics step, the motion that happened.
#[derive(Debug, Clone)]
pub(crate) struct WristDrive {
    /// x, y, z, yaw, pitch, roll.
    pub(crate) joints: [MultibodyJointHandle; 6],
    /// The target the drives follow now (rate-limited).
    pub(crate) target: [f64; 6],
    /// The target last requested (clamped).
    pub(crate) requested: [f64; 6],
    /// The wrist's rates over the last physics step.
    pub(crate) velocity: [f64; 6],
    /// The hand joints' rates over the last physics step.
    pub(crate) joint_velocity: Vec<f64>,
}

/// Where a model link lives: its rigid body and the link frame in that body's frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LinkBody {
    pub(crate) body: RigidBodyHandle,
    pub(crate) offset: Isometry3<f64>,
}

/// The physics state that a snapshot copies.
#[derive(Clone)]
pub(crate) struct WorldState {
    pub(crate) gravity: Vector,
    pub(crate) islands: IslandManager,
    pub(crate) broad_phase: BroadPhaseBvh,
    pub(crate) narrow_phase: NarrowPhase,
    pub(crate) bodies: RigidBodySet,
    pub(crate) colliders: ColliderSet,
    pub(crate) impulse_joints: ImpulseJointSet,
    pub(crate) multibody_joints: MultibodyJointSet,
    pub(crate) ccd_solver: CCDSolver,
}

/// A hand and its objects simulated by rapier3d (see the module docs for the layout).
pub struct RapierSim {
    pub(crate) model: HandModel,
    pub(crate) config: SimConfig,
    pub(crate) world: PhysicsWorld,
    pub(crate) links: Vec<LinkBody>,
    pub(crate) dofs: Vec<Dof>,
    pub(crate) objects: Vec<ObjectSpec>,
    pub(crate) object_bodies: Vec<RigidBodyHandle>,
    pub(crate) ground: Option<ColliderHandle>,
    pub(crate) targets: Vec<f64>,
    pub(crate) time: f64,
    pub(crate) warnings: Vec<String>,
    pub(crate) wrist: Option<WristDrive>,
}

impl std::fmt::Debug for RapierSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RapierSim")
            .field("hand", &self.model.name())
            .field("objects", &self.objects.len())
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

pub(crate) fn vec3(v: &Vector3<f64>) -> Vector {
    Vector::new(v.x as f32, v.y as f32, v.z as f32)
}

pub(crate) fn to_pose(iso: &Isometry3<f64>) -> Pose {
    let q = iso.rotation.quaternion();
    Pose::from_parts(
        vec3(&iso.translation.vector),
        Rotation::from_xyzw(q.i as f32, q.j as f32, q.k as f32, q.w as f32).normalize(),
    )
}

pub(crate) fn from_vec(v: Vector) -> Vector3<f64> {
    Vector3::new(f64::from(v.x), f64::from(v.y), f64::from(v.z))
}

pub(crate) fn from_pose(p: &Pose) -> Isometry3<f64> {
    let r = p.rotation;
    Isometry3::from_parts(
        Translation3::from(from_vec(p.translation)),
        UnitQuaternion::new_normalize(Quaternion::new(
            f64::from(r.w),
            f64::from(r.x),
            f64::from(r.y),
            f64::from(r.z),
        )),
    )
}
