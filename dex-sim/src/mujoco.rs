//! [`MujocoSim`]: the [`Simulator`] trait on MuJoCo 3.17 through the `mujoco-rs` crate
//! (feature `mujoco`; `scripts/mujoco-setup.sh` provides the library).
//!
//! The scene is dex's own MJCF ([`crate::mjcf`]): the same hand, objects, contact
//! filter and gravity as the rapier backend. Joints are driven by MuJoCo actuators
//! with gain 1 and an affine bias `−kp q − kv q̇`, the control being `kp · target` plus
//! any feed-forward torque, clamped to the joint's effort: the PD law of the trait,
//! integrated by MuJoCo itself (`implicitfast`, so the velocity term is implicit), with
//! gains that can change at run time (MuJoCo's `position` actuators keep `kp` in a
//! parameter that cannot be changed safely from Rust). Changing gains, damping,
//! friction, armature or gravity edits a copy of the compiled model and swaps it in;
//! changing the objects recompiles the scene, keeping the hand's state.
//!
//! Rendering casts one ray per pixel with MuJoCo's `mj_multiRay` from the camera's
//! centre into a copy of the data (depth, segmentation and the grey texture of
//! [`crate::texture`], fixed in each geom's frame). A wrist ([`SimConfig::wrist`]) is
//! the rapier backend's chain (five 50 g bodies, three slides and three hinges) driven
//! by the same PD toward a rate-limited target, advanced every physics step.
//!
//! With [`SimConfig::mjcf`] the hand is the user's own MJCF file instead (see
//! [`crate::MjcfHand`]): dex's scene includes it, places it so that its joints coincide
//! with the hand model's, and drives the mapped joints with its own actuators.

mod file;

use dex_core::{HandModel, JointState};
use mujoco_rs::prelude::*;
use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};

use crate::camera::{Camera, DepthFrame, LABEL_HAND, LABEL_NONE, object_label};
use crate::error::{Error, Result, check_vector};
use crate::mjcf::{Actuation, USER_ACTUATOR_PREFIX, mjcf_text};
use crate::object::ObjectSpec;
use crate::simulator::{
    BodyRef, Contact, ObjectState, SimConfig, SimState, Simulator, clamp_targets, nominal_pd_gains,
    open_configuration, validate_objects,
};
use crate::texture::{self, Surface};
use crate::wrist::WristState;

const BACKEND: &str = "mujoco";

/// Addresses of one free object in MuJoCo's arrays.
#[derive(Debug, Clone, Copy)]
struct FreeBody {
    qpos: usize,
    qvel: usize,
}

/// The wrist's joints and drives in MuJoCo's arrays, and its targets.
#[derive(Debug, Clone, Copy)]
struct WristDrive {
    qpos: [usize; 6],
    qvel: [usize; 6],
    act: [usize; 6],
    /// The rate-limited target the drives follow.
    target: [f64; 6],
    /// The target last requested (clamped to the limits).
    requested: [f64; 6],
}

/// The hand and its objects simulated by MuJoCo.
pub struct MujocoSim {
    model: HandModel,
    config: SimConfig,
    objects: Vec<ObjectSpec>,
    data: MjData<Box<MjModel>>,
    targets: Vec<f64>,
    kp: Vec<f64>,
    feedforward: Vec<f64>,
    /// Per degree of freedom: `qpos` and `qvel` addresses, actuator index.
    dofs: Vec<(usize, usize, usize)>,
    /// MuJoCo body of each link (dex's own MJCF); empty for a user's file, whose link
    /// poses come from the hand model's kinematics.
    link_bodies: Vec<usize>,
    /// Where a user's MJCF hand sits ([`SimConfig::mjcf`]).
    placement: Option<file::Placement>,
    /// The wrist ([`SimConfig::wrist`]).
    wrist: Option<WristDrive>,
    /// Each object's free joint.
    free: Vec<FreeBody>,
    /// What each MuJoCo geom belongs to.
    geom_owner: Vec<BodyRef>,
    /// A copy of the data that rendering updates and casts rays in (MuJoCo's ray casts
    /// need mutable data; `render_depth` takes `&self`). Made on the first render,
    /// dropped when the model changes.
    render: std::sync::Mutex<Option<MjData<Box<MjModel>>>>,
}

impl std::fmt::Debug for MujocoSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MujocoSim")
            .field("hand", &self.model.name())
            .field("objects", &self.objects.len())
            .field("time", &self.data.time())
            .finish_non_exhaustive()
    }
}

/// The saved state: MuJoCo's integration state and the targets.
#[derive(Debug, Clone)]
struct MujocoState {
    integration: Box<[f64]>,
    targets: Vec<f64>,
    feedforward: Vec<f64>,
    wrist: Option<WristDrive>,
}

fn engine(what: &'static str, e: impl std::fmt::Display) -> Error {
    Error::InvalidParameter {
        what,
        reason: format!("MuJoCo: {e}"),
    }
}

fn id(m: &MjModel, kind: MjtObjBase, name: &str, what: &'static str) -> Result<usize> {
    m.name_to_id(kind, name)
        .ok_or_else(|| Error::InvalidParameter {
            what,
            reason: format!("`{name}` is missing from the compiled model"),
        })
}

impl MujocoSim {
    /// Builds the hand of `model` with `objects` at `poses` (world frame), open (as the
    /// rapier backend starts), with the model's PD gains.
    pub fn new(
        model: HandModel,
        objects: &[ObjectSpec],
        poses: &[Isometry3<f64>],
        config: SimConfig,
    ) -> Result<Self> {
        config.validate()?;
        validate_objects(objects, poses)?;
        let (kp, kv) = nominal_pd_gains(&model);
        let q = open_configuration(&model);
        let mut sim = Self::compile(model, config, objects, poses, None)?;
        sim.set_gains(&kp, &kv)?;
        for (i, v) in q.iter().enumerate() {
            let adr = sim.dofs[i].0;
            sim.data.qpos_mut()[adr] = *v;
        }
        sim.targets = q;
        sim.write_ctrl();
        sim.drive_wrist();
        sim.data.forward();
        Ok(sim)
    }

    /// A hand alone.
    pub fn hand_only(model: HandModel, config: SimConfig) -> Result<Self> {
        Self::new(model, &[], &[], config)
    }

    /// Compiles the scene; state at MuJoCo's defaults (`qpos0`, nominal gains). A user's
    /// MJCF hand is placed by `placement`, or by a fit when it is `None`.
    fn compile(
        model: HandModel,
        config: SimConfig,
        objects: &[ObjectSpec],
        poses: &[Isometry3<f64>],
        placement: Option<file::Placement>,
    ) -> Result<Self> {
        let (mj, placement, jids) = match &config.mjcf {
            None => {
                let text = mjcf_text(&model, &config, objects, poses, Actuation::Affine)?;
                let mj = MjModel::from_xml_string(&text).map_err(|e| engine("scene", e))?;
                let jids = model
                    .dof_joints()
                    .map(|j| id(&mj, MjtObjBase::mjOBJ_JOINT, &j.name, "joint"))
                    .collect::<Result<Vec<_>>>()?;
                (mj, None, jids)
            }
            Some(hand) => {
                let (mj, p, jids) =
                    file::compile_scene(&model, &config, hand, objects, poses, placement)?;
                (mj, Some(p), jids)
            }
        };
        let mut dofs = Vec::with_capacity(model.dof());
        let prefix = if config.mjcf.is_some() {
            USER_ACTUATOR_PREFIX
        } else {
            ""
        };
        for (j, &jid) in model.dof_joints().zip(&jids) {
            let act = id(
                &mj,
                MjtObjBase::mjOBJ_ACTUATOR,
                &format!("{prefix}{}", j.name),
                "actuator",
            )?;
            dofs.push((
                mj.jnt_qposadr()[jid] as usize,
                mj.jnt_dofadr()[jid] as usize,
                act,
            ));
        }
        let (link_bodies, body_link) = if config.mjcf.is_some() {
            (Vec::new(), file::body_links(&model, &mj, &jids))
        } else {
            let link_bodies = model
                .links()
                .iter()
                .map(|l| id(&mj, MjtObjBase::mjOBJ_BODY, &l.name, "link"))
                .collect::<Result<Vec<_>>>()?;
            let mut body_link = vec![None; mj.body_parentid().len()];
            for (l, &b) in link_bodies.iter().enumerate() {
                body_link[b] = Some(l);
            }
            (link_bodies, body_link)
        };
        let mut free = Vec::with_capacity(objects.len());
        let mut object_bodies = Vec::with_capacity(objects.len());
        for i in 0..objects.len() {
            let jid = id(
                &mj,
                MjtObjBase::mjOBJ_JOINT,
                &format!("object{i}_free"),
                "object",
            )?;
            object_bodies.push(id(
                &mj,
                MjtObjBase::mjOBJ_BODY,
                &format!("object{i}"),
                "object",
            )?);
            free.push(FreeBody {
                qpos: mj.jnt_qposadr()[jid] as usize,
                qvel: mj.jnt_dofadr()[jid] as usize,
            });
        }
        let geom_owner = mj
            .geom_bodyid()
            .iter()
            .map(|&b| {
                let b = b as usize;
                if let Some(l) = body_link.get(b).copied().flatten() {
                    BodyRef::Link(l)
                } else if let Some(o) = object_bodies.iter().position(|&x| x == b) {
                    BodyRef::Object(o)
                } else {
                    BodyRef::Static
                }
            })
            .collect();
        let wrist = match &config.wrist {
            None => None,
            Some(_) => {
                let mut w = WristDrive {
                    qpos: [0; 6],
                    qvel: [0; 6],
                    act: [0; 6],
                    target: [0.0; 6],
                    requested: [0.0; 6],
                };
                for (i, (name, ..)) in crate::mjcf::WRIST_JOINTS.iter().enumerate() {
                    let jid = id(&mj, MjtObjBase::mjOBJ_JOINT, name, "wrist joint")?;
                    w.qpos[i] = mj.jnt_qposadr()[jid] as usize;
                    w.qvel[i] = mj.jnt_dofadr()[jid] as usize;
                    w.act[i] = id(&mj, MjtObjBase::mjOBJ_ACTUATOR, name, "wrist drive")?;
                }
                Some(w)
            }
        };
        let dof = model.dof();
        let data = MjData::new(Box::new(mj));
        Ok(Self {
            model,
            config,
            objects: objects.to_vec(),
            data,
            targets: vec![0.0; dof],
            kp: vec![0.0; dof],
            feedforward: vec![0.0; dof],
            dofs,
            link_bodies,
            placement,
            wrist,
            free,
            geom_owner,
            render: std::sync::Mutex::new(None),
        })
    }

    /// Edits a copy of the compiled model and swaps it in (only parameters change,
    /// never sizes, so MuJoCo accepts it).
    fn edit_model(&mut self, edit: impl FnOnce(&mut MjModel)) -> Result<()> {
        let mut m: MjModel = self.data.model().clone();
        edit(&mut m);
        *self
            .render
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.data
            .try_swap_model(Box::new(m))
            .map(|_| ())
            .map_err(|e| engine("model edit", e))
    }

    fn set_gains(&mut self, kp: &[f64], kv: &[f64]) -> Result<()> {
        let acts: Vec<usize> = self.dofs.iter().map(|d| d.2).collect();
        let bias = self.data.model().actuator_biasprm();
        let same = acts
            .iter()
            .zip(kp.iter().zip(kv))
            .all(|(a, (p, v))| bias[*a][1] == -p && bias[*a][2] == -v);
        if same && self.kp == kp {
            // Nothing to edit (tasks set the gains at every reset).
            return Ok(());
        }
        self.edit_model(|m| {
            let bias = m.actuator_biasprm_mut();
            for ((a, p), v) in acts.iter().zip(kp).zip(kv) {
                bias[*a][1] = -p;
                bias[*a][2] = -v;
            }
        })?;
        self.kp = kp.to_vec();
        self.write_ctrl();
        Ok(())
    }

    /// `ctrl = kp · target + feed-forward` for every actuator.
    fn write_ctrl(&mut self) {
        let ctrl = self.data.ctrl_mut();
        for (i, d) in self.dofs.iter().enumerate() {
            ctrl[d.2] = self.kp[i] * self.targets[i] + self.feedforward[i];
        }
    }

    /// Moves the wrist's target one physics step toward the requested one (at most its
    /// speed) and sets its drives: `stiffness · target + damping · target rate`.
    fn drive_wrist(&mut self) {
        let (Some(config), Some(drive)) = (self.config.wrist, self.wrist.as_mut()) else {
            return;
        };
        let dt = self.config.dt;
        let next = config.advance(&drive.target, &drive.requested, dt);
        let ctrl = self.data.ctrl_mut();
        for i in 0..6 {
            let k = usize::from(i >= 3);
            let rate = (next[i] - drive.target[i]) / dt;
            ctrl[drive.act[i]] = config.stiffness[k] * next[i] + config.damping[k] * rate;
        }
        drive.target = next;
    }

    /// Sets one per-degree-of-freedom model parameter (negative values read as 0).
    fn set_dof_values(
        &mut self,
        what: &'static str,
        values: &[f64],
        read: fn(&MjModel) -> &[f64],
        field: fn(&mut MjModel) -> &mut [f64],
    ) -> Result<()> {
        check_vector(what, values, self.dofs.len())?;
        let adr: Vec<usize> = self.dofs.iter().map(|d| d.1).collect();
        let now = read(self.data.model());
        if adr.iter().zip(values).all(|(a, v)| now[*a] == v.max(0.0)) {
            return Ok(());
        }
        self.edit_model(|m| {
            let f = field(m);
            for (a, v) in adr.iter().zip(values) {
                f[*a] = v.max(0.0);
            }
        })
    }

    /// Runs `n` physics steps of [`SimConfig::dt`] (not a whole control period).
    pub fn step_physics(&mut self, n: usize) -> Result<()> {
        for _ in 0..n {
            self.drive_wrist();
            self.data.step();
        }
        // mj_step leaves body poses at the start of its last step: bring them up to
        // the new positions.
        self.data.kinematics();
        let t = self.data.time();
        if self.data.qpos().iter().any(|v| !v.is_finite()) {
            return Err(Error::Diverged {
                time: t,
                what: "MuJoCo's positions".into(),
            });
        }
        Ok(())
    }

    /// For a hand from a user's MJCF file, the largest distance (m) between its joints'
    /// anchors and axes and the hand model's once placed (`None` for dex's own MJCF).
    pub fn mjcf_fit_residual(&self) -> Option<f64> {
        self.placement.as_ref().map(file::Placement::residual)
    }

    /// Contacts MuJoCo found at the last step.
    pub fn contact_count(&self) -> usize {
        self.data.contact().len()
    }

    /// Puts a free body at `pose`, at rest (positions only: the caller runs
    /// `mj_forward`).
    fn write_free_pose(
        data: &mut MjData<Box<MjModel>>,
        f: FreeBody,
        pose: &Isometry3<f64>,
    ) -> Result<()> {
        crate::error::check_finite("object pose", pose.translation.vector.as_slice())?;
        let t = pose.translation.vector;
        let q = pose.rotation.coords;
        let values = [t.x, t.y, t.z, q.w, q.x, q.y, q.z];
        data.qpos_mut()[f.qpos..f.qpos + 7].copy_from_slice(&values);
        data.qvel_mut()[f.qvel..f.qvel + 6].fill(0.0);
        Ok(())
    }

    fn free(&self, index: usize) -> Result<FreeBody> {
        self.free.get(index).copied().ok_or(Error::NoSuchObject {
            index,
            count: self.free.len(),
        })
    }
}

impl Simulator for MujocoSim {
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
        self.data.time()
    }

    fn set_joint_targets(&mut self, targets: &[f64]) -> Result<()> {
        check_vector("joint targets", targets, self.dofs.len())?;
        let mut clamped = vec![0.0; targets.len()];
        clamp_targets(&self.model, targets, &mut clamped);
        self.targets = clamped;
        self.write_ctrl();
        Ok(())
    }

    fn joint_targets(&self) -> &[f64] {
        &self.targets
    }

    fn set_pd_gains(&mut self, kp: &[f64], kd: &[f64]) -> Result<()> {
        check_vector("kp", kp, self.dofs.len())?;
        check_vector("kd", kd, self.dofs.len())?;
        if kp.iter().chain(kd).any(|g| *g < 0.0) {
            return Err(Error::InvalidParameter {
                what: "PD gains",
                reason: "must be ≥ 0".into(),
            });
        }
        self.set_gains(kp, kd)
    }

    fn set_joint_damping(&mut self, damping: &[f64]) -> Result<()> {
        self.set_dof_values(
            "joint damping",
            damping,
            MjModel::dof_damping,
            MjModel::dof_damping_mut,
        )
    }

    fn set_joint_efforts(&mut self, efforts: &[f64]) -> Result<()> {
        check_vector("joint efforts", efforts, self.dofs.len())?;
        self.feedforward = efforts.to_vec();
        self.write_ctrl();
        Ok(())
    }

    fn set_joint_friction(&mut self, friction: &[f64]) -> Result<()> {
        self.set_dof_values(
            "joint friction",
            friction,
            MjModel::dof_frictionloss,
            MjModel::dof_frictionloss_mut,
        )
    }

    fn set_joint_armature(&mut self, armature: &[f64]) -> Result<()> {
        self.set_dof_values(
            "joint armature",
            armature,
            MjModel::dof_armature,
            MjModel::dof_armature_mut,
        )
    }

    fn step(&mut self) -> Result<()> {
        self.step_physics(self.config.substeps)
    }

    fn joint_state(&self) -> JointState {
        let (qpos, qvel) = (self.data.qpos(), self.data.qvel());
        let force = self.data.actuator_force();
        JointState {
            q: self.dofs.iter().map(|d| qpos[d.0]).collect(),
            qdot: self.dofs.iter().map(|d| qvel[d.1]).collect(),
            effort: self.dofs.iter().map(|d| force[d.2]).collect(),
        }
    }

    fn set_joint_positions(&mut self, q: &[f64]) -> Result<()> {
        check_vector("joint positions", q, self.dofs.len())?;
        for (j, v) in self.model.dof_joints().zip(q) {
            if let Some(l) = &j.limits
                && !l.contains(*v)
            {
                return Err(Error::InvalidParameter {
                    what: "joint positions",
                    reason: format!("{} = {v} is outside [{}, {}]", j.name, l.lower, l.upper),
                });
            }
        }
        for (d, v) in self.dofs.iter().zip(q) {
            self.data.qpos_mut()[d.0] = *v;
            self.data.qvel_mut()[d.1] = 0.0;
        }
        self.targets = q.to_vec();
        self.write_ctrl();
        self.data.forward();
        Ok(())
    }

    fn link_poses(&self) -> Vec<Isometry3<f64>> {
        if self.placement.is_some() {
            // A user's file: the model's kinematics at the file's joint positions.
            let q = self.joint_state().q;
            let base = self.config.hand_pose;
            return match self.model.forward_kinematics(&q) {
                Ok(poses) => poses.into_iter().map(|p| base * p).collect(),
                Err(_) => vec![base; self.model.links().len()],
            };
        }
        self.link_bodies
            .iter()
            .map(|&b| file::body_pose(&self.data, b))
            .collect()
    }

    fn objects(&self) -> &[ObjectSpec] {
        &self.objects
    }

    fn set_objects(&mut self, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
        validate_objects(objects, poses)?;
        if objects == self.objects.as_slice() {
            // The same objects: moved to their poses, at rest, without recompiling (a
            // user's file with meshes takes tens of milliseconds to compile).
            for (i, pose) in poses.iter().enumerate() {
                let f = self.free(i)?;
                Self::write_free_pose(&mut self.data, f, pose)?;
            }
            self.data.forward();
            return Ok(());
        }
        let js = self.joint_state();
        let (kp, time) = (self.kp.clone(), self.data.time());
        let kv: Vec<f64> = {
            let bias = self.data.model().actuator_biasprm();
            self.dofs.iter().map(|d| -bias[d.2][2]).collect()
        };
        let mut next = Self::compile(
            self.model.clone(),
            self.config.clone(),
            objects,
            poses,
            self.placement.clone(),
        )?;
        next.feedforward = self.feedforward.clone();
        next.targets = self.targets.clone();
        next.set_gains(&kp, &kv)?;
        for (i, d) in next.dofs.clone().iter().enumerate() {
            next.data.qpos_mut()[d.0] = js.q[i];
            next.data.qvel_mut()[d.1] = js.qdot[i];
        }
        if let (Some(old), Some(new)) = (self.wrist, next.wrist.as_mut()) {
            for i in 0..6 {
                next.data.qpos_mut()[new.qpos[i]] = self.data.qpos()[old.qpos[i]];
                next.data.qvel_mut()[new.qvel[i]] = self.data.qvel()[old.qvel[i]];
            }
            new.target = old.target;
            new.requested = old.requested;
            let ctrl = self.data.ctrl();
            for i in 0..6 {
                next.data.ctrl_mut()[new.act[i]] = ctrl[old.act[i]];
            }
        }
        next.data.set_time(time);
        next.data.forward();
        *self = next;
        Ok(())
    }

    fn object_state(&self, index: usize) -> Result<ObjectState> {
        let f = self.free(index)?;
        let (qpos, qvel) = (self.data.qpos(), self.data.qvel());
        let p = &qpos[f.qpos..f.qpos + 7];
        let rotation = UnitQuaternion::from_quaternion(Quaternion::new(p[3], p[4], p[5], p[6]));
        let v = &qvel[f.qvel..f.qvel + 6];
        // A free joint's angular velocity is in the body's frame.
        let w_local = Vector3::new(v[3], v[4], v[5]);
        Ok(ObjectState {
            pose: Isometry3::from_parts(Translation3::new(p[0], p[1], p[2]), rotation),
            linear_velocity: Vector3::new(v[0], v[1], v[2]),
            angular_velocity: rotation * w_local,
        })
    }

    fn set_object_pose(&mut self, index: usize, pose: &Isometry3<f64>) -> Result<()> {
        let f = self.free(index)?;
        Self::write_free_pose(&mut self.data, f, pose)?;
        self.data.forward();
        Ok(())
    }

    fn contacts(&self) -> Vec<Contact> {
        let owner = |g: i32| {
            usize::try_from(g)
                .ok()
                .and_then(|g| self.geom_owner.get(g).copied())
                .unwrap_or(BodyRef::Static)
        };
        self.data
            .contact()
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let f = self.data.contact_force(i);
                Contact {
                    body1: owner(c.geom[0]),
                    body2: owner(c.geom[1]),
                    point: Point3::new(c.pos[0], c.pos[1], c.pos[2]),
                    normal: Vector3::new(c.frame[0], c.frame[1], c.frame[2]),
                    distance: c.dist,
                    normal_force: f[0],
                }
            })
            .collect()
    }

    fn set_gravity(&mut self, gravity: Vector3<f64>) -> Result<()> {
        crate::error::check_finite("gravity", gravity.as_slice())?;
        let g = [gravity.x, gravity.y, gravity.z];
        if self.data.model().opt().gravity != g {
            self.edit_model(|m| m.opt_mut().gravity = g)?;
        }
        self.config.gravity = gravity;
        Ok(())
    }

    fn save_state(&self) -> SimState {
        SimState::new(
            BACKEND,
            MujocoState {
                integration: self.data.state(MjtState::mjSTATE_INTEGRATION as u32),
                targets: self.targets.clone(),
                feedforward: self.feedforward.clone(),
                wrist: self.wrist,
            },
        )
    }

    fn restore_state(&mut self, state: &SimState) -> Result<()> {
        let s: &MujocoState = state.downcast(BACKEND)?;
        if s.targets.len() != self.dofs.len() {
            return Err(Error::StateMismatch {
                reason: format!(
                    "a state of {} joints cannot be restored into a hand of {}",
                    s.targets.len(),
                    self.dofs.len()
                ),
            });
        }
        self.data
            .set_state(&s.integration, MjtState::mjSTATE_INTEGRATION as u32)
            .map_err(|e| Error::StateMismatch {
                reason: format!("MuJoCo: {e}"),
            })?;
        self.targets = s.targets.clone();
        self.feedforward = s.feedforward.clone();
        self.write_ctrl();
        if s.wrist.is_some() {
            // The wrist's controls are part of the integration state; its targets here.
            self.wrist = s.wrist;
        }
        self.data.forward();
        Ok(())
    }

    fn wrist_state(&self) -> Option<WristState> {
        let d = self.wrist.as_ref()?;
        let (qpos, qvel) = (self.data.qpos(), self.data.qvel());
        Some(WristState {
            position: std::array::from_fn(|i| qpos[d.qpos[i]]),
            velocity: std::array::from_fn(|i| qvel[d.qvel[i]]),
            target: d.target,
            requested: d.requested,
        })
    }

    fn set_wrist_target(&mut self, target: &[f64; 6]) -> Result<()> {
        let requested = self.wrist.as_mut().map(|d| &mut d.requested);
        crate::wrist::request_target(BACKEND, self.config.wrist, requested, target)
    }

    fn set_wrist_position(&mut self, position: &[f64; 6]) -> Result<()> {
        self.set_wrist_target(position)?;
        let Some(drive) = self.wrist.as_mut() else {
            return Ok(());
        };
        drive.target = drive.requested;
        let d = *drive;
        for i in 0..6 {
            self.data.qpos_mut()[d.qpos[i]] = d.requested[i];
            self.data.qvel_mut()[d.qvel[i]] = 0.0;
        }
        self.drive_wrist();
        self.data.forward();
        Ok(())
    }

    fn render_depth(&self, camera: &Camera) -> Result<DepthFrame> {
        let (w, h) = camera.render_size()?;
        let mut guard = self
            .render
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let data = match guard.as_mut() {
            Some(d) => {
                self.data
                    .copy_visual_to(d)
                    .map_err(|e| engine("render copy", e))?;
                d
            }
            None => guard.insert(self.data.clone()),
        };
        // The geoms' poses at the present joint positions (a step leaves them at the
        // positions it started from).
        data.kinematics();
        let origin = camera.pose.translation.vector;
        let rot = camera.pose.rotation;
        let mut rays = Vec::with_capacity(w * h);
        let mut z_per_len = Vec::with_capacity(w * h);
        for v in 0..h {
            for u in 0..w {
                let (dir_cam, z) = camera.ray_direction(u, v);
                let dir = rot * dir_cam;
                rays.push([dir.x, dir.y, dir.z]);
                z_per_len.push(z);
            }
        }
        let mut normals = vec![[0.0; 3]; rays.len()];
        // Every geom but the ground (group 3), static ones (the table) included.
        let groups: [u8; 6] = [1, 1, 1, 0, 1, 1];
        let (geoms, distances) = data
            .try_multi_ray(
                &[origin.x, origin.y, origin.z],
                &rays,
                Some(&groups),
                true,
                None,
                camera.max_depth,
                Some(&mut normals),
            )
            .map_err(|e| engine("ray casting", e))?;
        let mut depth = vec![0f32; w * h];
        let mut labels = vec![LABEL_NONE; w * h];
        let mut gray = vec![texture::BACKGROUND_GRAY; w * h];
        let (xpos, xmat) = (data.geom_xpos(), data.geom_xmat());
        for i in 0..w * h {
            let (Some(g), toi) = (geoms[i], distances[i]) else {
                continue;
            };
            if !(toi >= 0.0 && toi <= camera.max_depth) {
                continue;
            }
            depth[i] = (toi * z_per_len[i]) as f32;
            let surface = match self.geom_owner.get(g).copied().unwrap_or(BodyRef::Static) {
                BodyRef::Link(_) => {
                    labels[i] = LABEL_HAND;
                    Surface::Hand
                }
                BodyRef::Object(k) => {
                    labels[i] = object_label(k);
                    Surface::Object
                }
                BodyRef::Static => continue,
            };
            // The texture lives in the geom's frame, so it moves with the body.
            let dir = Vector3::from(rays[i]);
            let offset = origin + dir * toi - Vector3::from(xpos[g]);
            let m = &xmat[g];
            // geom_xmat is row-major world_from_geom: local = Rᵀ · offset.
            let local = Point3::new(
                m[0] * offset.x + m[3] * offset.y + m[6] * offset.z,
                m[1] * offset.x + m[4] * offset.y + m[7] * offset.z,
                m[2] * offset.x + m[5] * offset.y + m[8] * offset.z,
            );
            let normal = Vector3::from(normals[i]);
            gray[i] = texture::shade(texture::albedo(surface, &local), &normal, &dir);
        }
        DepthFrame::from_buffers(camera, depth, labels, gray)
    }
}
