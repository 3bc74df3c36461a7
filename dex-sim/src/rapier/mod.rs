//! The rapier3d backend: reduced-coordinate multibody fingers with PD motors, primitive
//! and convex-hull colliders, and a ray-cast depth camera.
//!
//! # Layout
//!
//! The root link (the palm) is a fixed rigid body at [`SimConfig::hand_pose`]. Every joint
//! whose parent is the palm starts its own multibody, rooted on a collider-less fixed
//! "mount" body at the palm's pose: one multibody per finger is about 2.8× faster than one
//! for the whole hand at the same accuracy (measured on this machine), because the
//! joint-space mass matrix rebuilt every step is a few 4×4 blocks instead of one 16×16.
//! Links joined by `fixed` joints are merged into their parent's body. Mimic joints are
//! not supported by this backend (an error names the joint).
//!
//! # Control
//!
//! Each movable joint has a force-based rapier motor with stiffness `Kp` and damping `Kd`
//! from the model's `dex:actuator` (or a default of 1 N·m/rad and 0.05 N·m·s/rad), capped
//! at the joint's effort limit; the joint's damping and friction come from the URDF
//! `<dynamics>`. Rapier's own default multibody damping (0.1 N·m·s/rad) would make tracking
//! about 9× worse and is replaced by the model's value.
//!
//! # Collisions
//!
//! Every hand body gets its own collision group: bodies joined by a joint, bodies in one of
//! the model's `dex:contact_exclude` pairs, and (unless
//! [`SimConfig::hand_self_collision`]) all hand-hand pairs are filtered out before the
//! narrow phase. Objects collide with the hand, each other and the ground plane (z = 0, not
//! rendered); the hand does not collide with the ground.

mod build;
mod render;
mod world;

pub use world::RapierSim;

use dex_core::{HandModel, JointState};
use nalgebra::{Isometry3, Point3, Vector3};
use rapier3d::prelude::*;

use self::world::{
    BACKEND, Dof, WorldState, WristDrive, from_pose, from_vec, joint_axis, to_pose, vec3,
};
use crate::camera::{Camera, DepthFrame};
use crate::error::{Error, Result, check_finite, check_vector};
use crate::object::ObjectSpec;
use crate::simulator::{
    BodyRef, Contact, ObjectState, SimConfig, SimState, Simulator, check_non_negative,
    clamp_targets, validate_objects,
};
use crate::wrist::WristState;

#[derive(Clone)]
struct Snapshot {
    world: WorldState,
    targets: Vec<f64>,
    time: f64,
    objects: Vec<ObjectSpec>,
    object_bodies: Vec<RigidBodyHandle>,
    kp: Vec<f64>,
    kd: Vec<f64>,
    feedforward: Vec<f64>,
    wrist: Option<WristDrive>,
}

impl RapierSim {
    /// Builds the hand of `model` with `objects` at `poses` (world frame), at the model's
    /// mid configuration clamped to include 0 where the range allows (the open hand).
    pub fn new(
        model: HandModel,
        objects: &[ObjectSpec],
        poses: &[Isometry3<f64>],
        config: SimConfig,
    ) -> Result<Self> {
        config.validate()?;
        if config.mjcf.is_some() {
            return Err(Error::Unsupported {
                backend: "rapier",
                what: "a hand from an MJCF file (`SimConfig::mjcf`; use the MuJoCo backend)".into(),
            });
        }
        let mut sim = build::build_hand(model, config)?;
        sim.set_objects(objects, poses)?;
        Ok(sim)
    }

    /// A hand alone.
    pub fn hand_only(model: HandModel, config: SimConfig) -> Result<Self> {
        Self::new(model, &[], &[], config)
    }

    /// Things the builder skipped (mesh collision shapes it could not load), one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Number of collider pairs in the narrow phase and how many touch (diagnostics).
    pub fn contact_pair_counts(&self) -> (usize, usize) {
        let all = self.world.narrow_phase.contact_pairs().count();
        let touching = self
            .world
            .narrow_phase
            .contact_pairs()
            .filter(|p| p.rigid().is_some_and(|r| r.has_any_active_contact()))
            .count();
        (all, touching)
    }

    /// Runs `n` physics steps of [`SimConfig::dt`] (not a whole control period).
    pub fn step_physics(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.drive_wrist();
            let before = self.wrist.as_ref().map(|d| self.raw_positions(d));
            self.world.step();
            if let Some((q0, w0)) = before
                && let Some(d) = &self.wrist
            {
                let (q1, w1) = self.raw_positions(d);
                let dt = self.config.dt;
                let joint_velocity = q1.iter().zip(&q0).map(|(a, b)| (a - b) / dt).collect();
                let velocity = std::array::from_fn(|i| (w1[i] - w0[i]) / dt);
                if let Some(d) = self.wrist.as_mut() {
                    d.joint_velocity = joint_velocity;
                    d.velocity = velocity;
                }
            }
            self.time += self.config.dt;
        }
        self.check_finite()
    }

    /// Brings collider poses and the broad phase's bounding volumes up to date with bodies
    /// moved by hand (teleported objects, joints set directly), so that rendering sees the
    /// new state before the next step. Contacts are left as the last step computed them.
    ///
    /// The bodies' change flags are left for the next step to process (rapier's own
    /// collision-only update would consume them, and a new body would never join the
    /// simulation islands).
    fn refresh_queries(&mut self) {
        let handles: Vec<ColliderHandle> = self.world.colliders.iter().map(|(h, _)| h).collect();
        for h in handles {
            let Some(collider) = self.world.colliders.get(h) else {
                continue;
            };
            let (Some(parent), Some(offset)) = (collider.parent(), collider.position_wrt_parent())
            else {
                continue;
            };
            let Some(body) = self.world.bodies.get(parent) else {
                continue;
            };
            let pose = body.position() * offset;
            if let Some(c) = self.world.colliders.get_mut(h) {
                c.set_position(pose);
                let aabb = c.compute_aabb();
                self.world
                    .broad_phase
                    .set_aabb(&self.world.integration_parameters, h, aabb);
            }
        }
    }

    /// Moves the wrist's drive targets one physics step toward the requested target (at
    /// most its speed) and sets its motors, with the target's rate as their velocity.
    fn drive_wrist(&mut self) {
        let (Some(config), Some(drive)) = (self.config.wrist, self.wrist.as_mut()) else {
            return;
        };
        let dt = self.config.dt;
        let next = config.advance(&drive.target, &drive.requested, dt);
        for (i, h) in drive.joints.iter().enumerate() {
            let k = usize::from(i >= 3);
            let axis = if i < 3 {
                JointAxis::LinX
            } else {
                JointAxis::AngX
            };
            let rate = (next[i] - drive.target[i]) / dt;
            if let Some((mb, id)) = self.world.multibody_joints.get_mut(*h)
                && let Some(link) = mb.link_mut(id)
            {
                link.joint.data.set_motor(
                    axis,
                    next[i] as f32,
                    rate as f32,
                    config.stiffness[k] as f32,
                    config.damping[k] as f32,
                );
            }
        }
        drive.target = next;
    }

    /// The hand joints' and the wrist's coordinates as rapier holds them.
    fn raw_positions(&self, drive: &WristDrive) -> (Vec<f64>, [f64; 6]) {
        let q = self.dofs.iter().map(|d| self.dof_value(d).0).collect();
        let w = std::array::from_fn(|i| self.joint_value(drive.joints[i], i < 3).0);
        (q, w)
    }

    fn check_finite(&self) -> Result<()> {
        let js = self.joint_state();
        if let Some(i) = js.q.iter().chain(&js.qdot).position(|v| !v.is_finite()) {
            return Err(Error::Diverged {
                time: self.time,
                what: format!("joint value {i}"),
            });
        }
        for (i, h) in self.object_bodies.iter().enumerate() {
            let b = &self.world.bodies[*h];
            if !(b.translation().is_finite() && b.linvel().is_finite()) {
                return Err(Error::Diverged {
                    time: self.time,
                    what: format!("object {i} ({})", self.objects[i].name),
                });
            }
        }
        Ok(())
    }

    fn dof_value(&self, dof: &Dof) -> (f64, f64) {
        self.joint_value(dof.joint, dof.prismatic)
    }

    /// Position and rate of a one-axis multibody joint (its frame's x axis).
    fn joint_value(&self, joint: MultibodyJointHandle, prismatic: bool) -> (f64, f64) {
        let coord = joint_axis(prismatic).1;
        match self.world.multibody_joints.get(joint) {
            Some((mb, id)) => match mb.link(id) {
                Some(link) => {
                    let q = f64::from(link.joint().coords()[coord]);
                    let qd = mb.joint_velocity(link);
                    (q, qd.get(0).map_or(0.0, |v| f64::from(*v)))
                }
                None => (0.0, 0.0),
            },
            None => (0.0, 0.0),
        }
    }

    /// Sets joint `i`'s rapier motor to its PD plus feed-forward torque `ff`: with a
    /// stiffness the position target is shifted by `ff/Kp`, with damping alone the
    /// velocity target is `ff/Kd`; with neither, the motor chases an unreachable velocity
    /// at a force capped at `|ff|`, which applies exactly `ff`.
    fn apply_motor(&mut self, i: usize) {
        let dof = self.dofs[i];
        let ff = dof.feedforward.clamp(-dof.effort, dof.effort);
        let (pos, vel, kp, kd, max) = if dof.kp > 0.0 {
            (
                self.targets[i] + ff / dof.kp,
                0.0,
                dof.kp,
                dof.kd,
                dof.effort,
            )
        } else if dof.kd > 0.0 {
            (self.targets[i], ff / dof.kd, 0.0, dof.kd, dof.effort)
        } else {
            (0.0, ff.signum() * 1e6, 0.0, 1e6, ff.abs())
        };
        if let Some((mb, id)) = self.world.multibody_joints.get_mut(dof.joint)
            && let Some(link) = mb.link_mut(id)
        {
            let axis = dof.axis().0;
            link.joint
                .data
                .set_motor(axis, pos as f32, vel as f32, kp as f32, kd as f32)
                .set_motor_max_force(axis, max.min(f64::from(f32::MAX)) as f32);
        }
    }

    /// Writes one value per joint into a per-DoF vector of the joint's multibody.
    fn set_per_dof(
        &mut self,
        what: &'static str,
        values: &[f64],
        field: fn(&mut Multibody) -> &mut DVector,
    ) -> Result<()> {
        check_non_negative(what, values, self.dofs.len())?;
        for (dof, v) in self.dofs.iter().zip(values) {
            if let Some((mb, id)) = self.world.multibody_joints.get_mut(dof.joint)
                && let Some(link) = mb.link(id)
            {
                let k = link.assembly_id();
                field(mb)[k] = *v as f32;
            }
        }
        Ok(())
    }

    fn object_handle(&self, index: usize) -> Result<RigidBodyHandle> {
        self.object_bodies
            .get(index)
            .copied()
            .ok_or(Error::NoSuchObject {
                index,
                count: self.objects.len(),
            })
    }

    fn object_body(&self, index: usize) -> Result<&RigidBody> {
        Ok(&self.world.bodies[self.object_handle(index)?])
    }

    fn world_state(&self) -> WorldState {
        let w = &self.world;
        WorldState {
            gravity: w.gravity,
            islands: w.islands.clone(),
            broad_phase: w.broad_phase.clone(),
            narrow_phase: w.narrow_phase.clone(),
            bodies: w.bodies.clone(),
            colliders: w.colliders.clone(),
            impulse_joints: w.impulse_joints.clone(),
            multibody_joints: w.multibody_joints.clone(),
            ccd_solver: w.ccd_solver.clone(),
        }
    }

    fn body_ref(&self, collider: ColliderHandle) -> BodyRef {
        self.world
            .colliders
            .get(collider)
            .map_or(BodyRef::Static, |c| build::decode_user_data(c.user_data))
    }
}

impl Simulator for RapierSim {
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
        self.time
    }

    fn set_joint_targets(&mut self, targets: &[f64]) -> Result<()> {
        check_vector("joint targets", targets, self.dofs.len())?;
        let mut clamped = vec![0.0; targets.len()];
        clamp_targets(&self.model, targets, &mut clamped);
        self.targets = clamped;
        for i in 0..self.dofs.len() {
            self.apply_motor(i);
        }
        Ok(())
    }

    fn joint_targets(&self) -> &[f64] {
        &self.targets
    }

    fn set_pd_gains(&mut self, kp: &[f64], kd: &[f64]) -> Result<()> {
        check_non_negative("kp", kp, self.dofs.len())?;
        check_non_negative("kd", kd, self.dofs.len())?;
        for (i, dof) in self.dofs.iter_mut().enumerate() {
            dof.kp = kp[i];
            dof.kd = kd[i];
        }
        for i in 0..self.dofs.len() {
            self.apply_motor(i);
        }
        Ok(())
    }

    fn set_joint_damping(&mut self, damping: &[f64]) -> Result<()> {
        self.set_per_dof("joint damping", damping, Multibody::damping_mut)
    }

    fn set_joint_efforts(&mut self, efforts: &[f64]) -> Result<()> {
        check_vector("joint efforts", efforts, self.dofs.len())?;
        for (dof, e) in self.dofs.iter_mut().zip(efforts) {
            dof.feedforward = *e;
        }
        for i in 0..self.dofs.len() {
            self.apply_motor(i);
        }
        Ok(())
    }

    fn set_joint_friction(&mut self, friction: &[f64]) -> Result<()> {
        self.set_per_dof("joint friction", friction, Multibody::frictions_mut)
    }

    fn set_joint_armature(&mut self, armature: &[f64]) -> Result<()> {
        self.set_per_dof("joint armature", armature, Multibody::armature_mut)
    }

    fn step(&mut self) -> Result<()> {
        self.step_physics(self.config.substeps)
    }

    fn joint_state(&self) -> JointState {
        let n = self.dofs.len();
        let mut js = JointState::zeros(n);
        for (i, dof) in self.dofs.iter().enumerate() {
            let (q, mut qd) = self.dof_value(dof);
            if let Some(v) = self.wrist.as_ref().and_then(|d| d.joint_velocity.get(i)) {
                qd = *v;
            }
            js.q[i] = q;
            js.qdot[i] = qd;
            let tau = dof.kp * (self.targets[i] - q) - dof.kd * qd + dof.feedforward;
            js.effort[i] = tau.clamp(-dof.effort, dof.effort);
        }
        js
    }

    fn set_joint_positions(&mut self, q: &[f64]) -> Result<()> {
        check_vector("joint positions", q, self.dofs.len())?;
        self.model.check_configuration(q)?;
        let current = self.joint_state().q;
        for (i, dof) in self.dofs.iter().enumerate() {
            if let Some((mb, id)) = self.world.multibody_joints.get_mut(dof.joint) {
                let Some(link) = mb.link(id) else { continue };
                let start = link.assembly_id();
                let mut disp = vec![0.0f32; mb.ndofs()];
                disp[start] = (q[i] - current[i]) as f32;
                mb.apply_displacements(&disp);
                mb.generalized_velocity_mut().fill(0.0);
            }
        }
        // Forward kinematics once per finger (multibody), not once per joint.
        let mut done = Vec::new();
        for dof in &self.dofs {
            if let Some((mb, _)) = self.world.multibody_joints.get_mut(dof.joint) {
                let root = mb.root().rigid_body_handle();
                if done.contains(&root) {
                    continue;
                }
                done.push(root);
                mb.forward_kinematics(&self.world.bodies, true);
                mb.update_rigid_bodies(&mut self.world.bodies, false);
            }
        }
        self.targets = q.to_vec();
        for i in 0..self.dofs.len() {
            self.apply_motor(i);
        }
        if let Some(d) = self.wrist.as_mut() {
            // Setting positions stops the multibody (its velocities are zeroed above).
            d.joint_velocity.clear();
            d.velocity = [0.0; 6];
        }
        self.refresh_queries();
        Ok(())
    }

    fn link_poses(&self) -> Vec<Isometry3<f64>> {
        self.links
            .iter()
            .map(|l| from_pose(self.world.bodies[l.body].position()) * l.offset)
            .collect()
    }

    fn objects(&self) -> &[ObjectSpec] {
        &self.objects
    }

    fn set_objects(&mut self, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
        validate_objects(objects, poses)?;
        // Build every collider before touching the world so that a bad object loses nothing.
        let colliders = objects
            .iter()
            .enumerate()
            .map(|(i, o)| build::object_collider(o, i))
            .collect::<Result<Vec<_>>>()?;
        for h in self.object_bodies.drain(..) {
            self.world.remove_body(h);
        }
        for (collider, pose) in colliders.into_iter().zip(poses) {
            let body = RigidBodyBuilder::dynamic()
                .pose(to_pose(pose))
                .can_sleep(false)
                .build();
            let h = self.world.insert_body(body);
            self.world.insert_collider(collider, Some(h));
            self.object_bodies.push(h);
        }
        self.objects = objects.to_vec();
        self.refresh_queries();
        Ok(())
    }

    fn object_state(&self, index: usize) -> Result<ObjectState> {
        let b = self.object_body(index)?;
        let pose = from_pose(b.position());
        let origin = b.translation();
        Ok(ObjectState {
            pose,
            linear_velocity: from_vec(b.velocity_at_point(origin)),
            angular_velocity: from_vec(b.angvel()),
        })
    }

    fn set_object_pose(&mut self, index: usize, pose: &Isometry3<f64>) -> Result<()> {
        check_finite("object pose", pose.translation.vector.as_slice())?;
        let h = self.object_handle(index)?;
        let b = &mut self.world.bodies[h];
        b.set_position(to_pose(pose), true);
        b.set_linvel(Vector::ZERO, true);
        b.set_angvel(Vector::ZERO, true);
        self.refresh_queries();
        Ok(())
    }

    fn contacts(&self) -> Vec<Contact> {
        let dt = self.config.dt;
        let mut out = Vec::new();
        for pair in self.world.narrow_phase.contact_pairs() {
            let Some(rigid) = pair.rigid() else {
                continue;
            };
            if !rigid.has_any_active_contact() {
                continue;
            }
            let (Some(c1), Some(_)) = (
                self.world.colliders.get(pair.collider1),
                self.world.colliders.get(pair.collider2),
            ) else {
                continue;
            };
            let body1 = self.body_ref(pair.collider1);
            let body2 = self.body_ref(pair.collider2);
            for m in rigid.solver_manifolds() {
                let normal = from_vec(m.data.normal);
                for p in &m.points {
                    if p.dist > self.world.integration_parameters.prediction_distance() {
                        continue;
                    }
                    out.push(Contact {
                        body1,
                        body2,
                        point: Point3::from(from_vec(c1.position().transform_point(p.local_p1))),
                        normal,
                        distance: f64::from(p.dist),
                        normal_force: f64::from(p.data.impulse) / dt,
                    });
                }
            }
        }
        out.retain(|c| c.normal_force > 0.0 || c.distance <= 0.0);
        out
    }

    fn set_gravity(&mut self, gravity: Vector3<f64>) -> Result<()> {
        check_finite("gravity", gravity.as_slice())?;
        self.world.gravity = vec3(&gravity);
        self.config.gravity = gravity;
        Ok(())
    }

    fn save_state(&self) -> SimState {
        SimState::new(
            BACKEND,
            Snapshot {
                world: self.world_state(),
                targets: self.targets.clone(),
                time: self.time,
                objects: self.objects.clone(),
                object_bodies: self.object_bodies.clone(),
                kp: self.dofs.iter().map(|d| d.kp).collect(),
                kd: self.dofs.iter().map(|d| d.kd).collect(),
                feedforward: self.dofs.iter().map(|d| d.feedforward).collect(),
                wrist: self.wrist.clone(),
            },
        )
    }

    fn restore_state(&mut self, state: &SimState) -> Result<()> {
        let s: &Snapshot = state.downcast(BACKEND)?;
        if s.targets.len() != self.dofs.len() {
            return Err(Error::StateMismatch {
                reason: format!(
                    "the state has {} joints, this hand {}",
                    s.targets.len(),
                    self.dofs.len()
                ),
            });
        }
        let w = s.world.clone();
        self.world.gravity = w.gravity;
        self.world.islands = w.islands;
        self.world.broad_phase = w.broad_phase;
        self.world.narrow_phase = w.narrow_phase;
        self.world.bodies = w.bodies;
        self.world.colliders = w.colliders;
        self.world.impulse_joints = w.impulse_joints;
        self.world.multibody_joints = w.multibody_joints;
        self.world.ccd_solver = w.ccd_solver;
        self.config.gravity = from_vec(w.gravity);
        self.targets = s.targets.clone();
        self.time = s.time;
        self.objects = s.objects.clone();
        self.object_bodies = s.object_bodies.clone();
        self.wrist = s.wrist.clone();
        for (i, d) in self.dofs.iter_mut().enumerate() {
            d.kp = s.kp[i];
            d.kd = s.kd[i];
            d.feedforward = s.feedforward[i];
        }
        Ok(())
    }

    fn wrist_state(&self) -> Option<WristState> {
        let drive = self.wrist.as_ref()?;
        let (_, position) = self.raw_positions(drive);
        Some(WristState {
            position,
            velocity: drive.velocity,
            target: drive.target,
            requested: drive.requested,
        })
    }

    fn set_wrist_target(&mut self, target: &[f64; 6]) -> Result<()> {
        let requested = self.wrist.as_mut().map(|d| &mut d.requested);
        crate::wrist::request_target(BACKEND, self.config.wrist, requested, target)
    }

    fn set_wrist_position(&mut self, position: &[f64; 6]) -> Result<()> {
        self.set_wrist_target(position)?;
        let Some(drive) = self.wrist.clone() else {
            return Ok(());
        };
        let goal = drive.requested;
        let (_, now) = self.raw_positions(&drive);
        let Some(&first) = drive.joints.first() else {
            return Ok(());
        };
        let ids: Vec<Option<usize>> = drive
            .joints
            .iter()
            .map(|h| self.world.multibody_joints.get(*h).map(|(_, id)| id))
            .collect();
        if let Some((mb, _)) = self.world.multibody_joints.get_mut(first) {
            let mut disp = vec![0.0f32; mb.ndofs()];
            for (i, id) in ids.iter().enumerate() {
                if let Some(link) = id.and_then(|id| mb.link(id)) {
                    disp[link.assembly_id()] = (goal[i] - now[i]) as f32;
                }
            }
            mb.apply_displacements(&disp);
            mb.generalized_velocity_mut().fill(0.0);
            mb.forward_kinematics(&self.world.bodies, true);
            mb.update_rigid_bodies(&mut self.world.bodies, false);
        }
        if let Some(d) = self.wrist.as_mut() {
            d.target = goal;
            d.velocity = [0.0; 6];
            d.joint_velocity.clear();
        }
        self.drive_wrist();
        self.refresh_queries();
        Ok(())
    }

    fn render_depth(&self, camera: &Camera) -> Result<DepthFrame> {
        render::render_depth(self, camera)
    }
}
