//! A hand from the user's own MJCF file ([`MjcfHand`]): the file is included by a scene
//! that dex writes beside it in MuJoCo's virtual file system (so its includes and meshes
//! resolve as MuJoCo resolves them from the file's directory), with dex's ground, table,
//! objects and PD actuators; the file's hand is placed so that its joints coincide with
//! the [`HandModel`]'s.

use std::path::{Path, PathBuf};

use dex_core::HandModel;
use mujoco_rs::prelude::*;
use mujoco_rs::wrappers::mj_auxiliary::MjVfs;
use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};

use crate::error::{Error, Result};
use crate::mjcf::{USER_ACTUATOR_PREFIX, user_scene_text};
use crate::object::ObjectSpec;
use crate::simulator::{MjcfHand, SimConfig};

/// Points 2 cm along each joint axis join the anchors in the fit (so an axis that
/// points the other way shows as a 4 cm error).
const AXIS_LEVER: f64 = 0.02;

/// Where the file's hand goes: its top body's name and the pose of that body in the
/// hand model's root frame (fitted once, kept when the objects change).
#[derive(Debug, Clone)]
pub(super) struct Placement {
    root_body: String,
    root_from_file: Isometry3<f64>,
    /// The largest anchor/axis distance (m) the fit left, for diagnostics.
    residual: f64,
}

impl Placement {
    /// The distance (m) between the file's joints and the model's after the fit.
    pub(super) fn residual(&self) -> f64 {
        self.residual
    }
}

/// The world pose of MuJoCo body `b` (from `xpos`, `xquat`).
pub(super) fn body_pose<M: mujoco_rs::wrappers::mj_model::traits::ModelType>(
    data: &MjData<M>,
    b: usize,
) -> Isometry3<f64> {
    let (p, q) = (data.xpos()[b], data.xquat()[b]);
    Isometry3::from_parts(
        Translation3::new(p[0], p[1], p[2]),
        UnitQuaternion::from_quaternion(Quaternion::new(q[0], q[1], q[2], q[3])),
    )
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Mjcf {
        path: path.to_path_buf(),
        reason: e.to_string(),
    }
}

fn joint_error(path: &Path, reason: String) -> Error {
    Error::MjcfJoint {
        path: path.to_path_buf(),
        reason,
    }
}

/// Compiles `text` as a scene in the directory of `hand.path`, including the file, after
/// `edit` has changed its spec.
fn compile_text(
    hand: &MjcfHand,
    text: &str,
    edit: impl FnOnce(&mut MjSpec) -> Result<()>,
) -> Result<MjModel> {
    let path = &hand.path;
    if !path.is_file() {
        return Err(file_error(path, "no such file"));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let scene: PathBuf = dir.join("__dex_scene__.xml");
    let mut vfs = MjVfs::new();
    vfs.add_from_buffer(&scene, text.as_bytes())
        .map_err(|e| file_error(path, e))?;
    let mut spec = MjSpec::from_xml_vfs(&scene, &vfs).map_err(|e| file_error(path, e))?;
    edit(&mut spec)?;
    spec.compile_with_vfs(&vfs).map_err(|e| file_error(path, e))
}

/// The file's name for the scene's `<include>`.
fn include_name(hand: &MjcfHand) -> Result<String> {
    hand.path
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .ok_or_else(|| file_error(&hand.path, "the path names no file"))
}

/// The file's joint of every degree of freedom of `model`, in model order, checked:
/// present, a hinge (revolute) or slide (prismatic) as the model's joint is.
fn dof_joint_ids(model: &HandModel, m: &MjModel, hand: &MjcfHand) -> Result<Vec<usize>> {
    for name in hand.joints.keys() {
        if model.joint_id(name).is_err() {
            return Err(joint_error(
                &hand.path,
                format!(
                    "the joint map names `{name}`, which the hand model `{}` does not have",
                    model.name()
                ),
            ));
        }
    }
    model
        .dof_joints()
        .map(|j| {
            let name = hand.file_joint(&j.name);
            let jid = m.name_to_id(MjtObjBase::mjOBJ_JOINT, name).ok_or_else(|| {
                joint_error(
                    &hand.path,
                    format!(
                        "the model's joint `{}` maps to `{name}`, which the file does not have",
                        j.name
                    ),
                )
            })?;
            let want = match j.kind {
                dex_core::JointKind::Prismatic => MjtJoint::mjJNT_SLIDE,
                _ => MjtJoint::mjJNT_HINGE,
            };
            if m.jnt_type()[jid] != want {
                return Err(joint_error(
                    &hand.path,
                    format!(
                        "`{name}` is a {:?} joint; the model's `{}` is {}",
                        m.jnt_type()[jid],
                        j.name,
                        j.kind.as_str()
                    ),
                ));
            }
            Ok(jid)
        })
        .collect()
}

/// The top body (a child of the world) that holds every mapped joint.
fn hand_root(m: &MjModel, jids: &[usize], path: &Path) -> Result<usize> {
    let top = |mut b: usize| {
        while m.body_parentid()[b] > 0 {
            b = m.body_parentid()[b] as usize;
        }
        b
    };
    let bodies: Vec<usize> = jids.iter().map(|&j| m.jnt_bodyid()[j] as usize).collect();
    let root = top(bodies[0]);
    if bodies.iter().any(|&b| top(b) != root) {
        return Err(joint_error(
            path,
            "the mapped joints belong to more than one body tree under the world".into(),
        ));
    }
    if m.body_jntnum()[root] > 0 {
        return Err(joint_error(
            path,
            "the hand's top body has a joint of its own: dex fixes it at `hand_pose`".into(),
        ));
    }
    Ok(root)
}

/// A few configurations inside the model's limits, to fit the placement on.
fn probe_configurations(model: &HandModel) -> Vec<Vec<f64>> {
    let limits = model.joint_limits();
    let fractions: [&dyn Fn(usize) -> f64; 4] = [
        &|_| 0.5,
        &|i| if i % 2 == 0 { 0.2 } else { 0.8 },
        &|i| if i % 2 == 0 { 0.8 } else { 0.2 },
        &|i| [0.35, 0.65, 0.1, 0.9][i % 4],
    ];
    fractions
        .iter()
        .map(|f| {
            limits
                .iter()
                .enumerate()
                .map(|(i, l)| {
                    let (lo, hi) = if l.lower.is_finite() && l.upper.is_finite() {
                        (l.lower, l.upper)
                    } else {
                        (-0.5, 0.5)
                    };
                    lo + (hi - lo) * f(i)
                })
                .collect()
        })
        .collect()
}

/// Fits where the file's hand goes: its joints' anchors and axes in the frame of its top
/// body against the model's in the root link's frame, over a few configurations.
fn fit_placement(model: &HandModel, m: &MjModel, hand: &MjcfHand) -> Result<Placement> {
    let path = &hand.path;
    let jids = dof_joint_ids(model, m, hand)?;
    let root = hand_root(m, &jids, path)?;
    let root_body = m
        .id_to_name(MjtObjBase::mjOBJ_BODY, root)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| joint_error(path, "the hand's top body needs a name".into()))?
        .to_string();
    let mut data = MjData::new(m);
    let (mut src, mut dst, mut owner) = (Vec::new(), Vec::new(), Vec::new());
    let dof_joints: Vec<_> = model.dof_joints().collect();
    for q in probe_configurations(model) {
        for (&jid, v) in jids.iter().zip(&q) {
            data.qpos_mut()[m.jnt_qposadr()[jid] as usize] = *v;
        }
        data.kinematics();
        let root_from_world = body_pose(&data, root).inverse();
        let links = model.forward_kinematics(&q)?;
        for (i, (&jid, j)) in jids.iter().zip(&dof_joints).enumerate() {
            let a = Point3::from(data.xanchor()[jid]);
            let ax = Vector3::from(data.xaxis()[jid]);
            let a_file = root_from_world * a;
            let ax_file = root_from_world.rotation * ax;
            let child = links[j.child.0];
            let a_model = Point3::from(child.translation.vector);
            let ax_model = child.rotation * j.axis.into_inner();
            src.push(a_file);
            dst.push(a_model);
            src.push(a_file + ax_file * AXIS_LEVER);
            dst.push(a_model + ax_model * AXIS_LEVER);
            owner.push(i);
            owner.push(i);
        }
    }
    let t = dex_core::geometry::kabsch(&src, &dst)?;
    let mut worst = (0.0f64, 0usize, false);
    for (k, (s, d)) in src.iter().zip(&dst).enumerate() {
        let e = (t * s - d).norm();
        if e > worst.0 {
            worst = (e, owner[k], k % 2 == 1);
        }
    }
    let (error, joint, on_axis) = worst;
    if error > hand.tolerance {
        let hint = if on_axis {
            // The anchor itself fits: the axis is off (often the other way round).
            let anchors_ok = src
                .iter()
                .zip(&dst)
                .enumerate()
                .filter(|(k, _)| k % 2 == 0 && owner[*k] == joint)
                .all(|(_, (s, d))| (t * s - d).norm() <= hand.tolerance);
            if anchors_ok {
                "; its anchor fits but its axis does not (does it turn the other way?)"
            } else {
                ""
            }
        } else {
            ""
        };
        return Err(Error::MjcfKinematics {
            path: path.clone(),
            joint: dof_joints[joint].name.clone(),
            error_mm: error * 1e3,
            tolerance_mm: hand.tolerance * 1e3,
            hint: hint.into(),
        });
    }
    Ok(Placement {
        root_body,
        root_from_file: t,
        residual: error,
    })
}

/// The compiled scene around the user's hand: the file's hand placed at
/// `config.hand_pose` (fitting the placement first when `placement` is `None`), dex's
/// objects and actuators, the file's own actuators on the mapped joints switched off,
/// timestep and gravity from `config`.
pub(super) fn compile_scene(
    model: &HandModel,
    config: &SimConfig,
    hand: &MjcfHand,
    objects: &[ObjectSpec],
    poses: &[Isometry3<f64>],
    placement: Option<Placement>,
) -> Result<(MjModel, Placement, Vec<usize>)> {
    let include = include_name(hand)?;
    let placement = match placement {
        Some(p) => p,
        None => {
            let text = user_scene_text(model, config, &[], &[], &include, hand, false)?;
            let m = compile_text(hand, &text, |_| Ok(()))?;
            fit_placement(model, &m, hand)?
        }
    };
    let text = user_scene_text(model, config, objects, poses, &include, hand, true)?;
    let world_from_file = config.hand_pose * placement.root_from_file;
    let mut m = compile_text(hand, &text, |spec| {
        let body = spec
            .body_mut(&placement.root_body)
            .ok_or_else(|| file_error(&hand.path, "the hand's top body vanished"))?;
        let t = world_from_file.translation.vector;
        let q = world_from_file.rotation.into_inner();
        *body.pos_mut() = [t.x, t.y, t.z];
        *body.quat_mut() = [q.w, q.i, q.j, q.k];
        body.alt_mut().switch_quat();
        Ok(())
    })?;
    m.opt_mut().timestep = config.dt;
    m.opt_mut().gravity = [config.gravity.x, config.gravity.y, config.gravity.z];
    // Their control stays 0 (dex never writes it) and unclamped, so a zero bias leaves
    // them without force.
    let jids = dof_joint_ids(model, &m, hand)?;
    for a in file_actuators(&m, &jids, hand)? {
        m.actuator_biasprm_mut()[a].fill(0.0);
        m.actuator_ctrllimited_mut()[a] = false;
    }
    Ok((m, placement, jids))
}

/// The file's own actuators on the mapped joints, which dex switches off (a position
/// actuator's control would otherwise pull its joint towards 0 beside dex's PD); an
/// error for one whose force a zero control and bias do not cancel.
fn file_actuators(read: &MjModel, jids: &[usize], hand: &MjcfHand) -> Result<Vec<usize>> {
    let mut off = Vec::new();
    for a in 0..read.actuator_trntype().len() {
        let name = read
            .id_to_name(MjtObjBase::mjOBJ_ACTUATOR, a)
            .unwrap_or_default();
        if name.starts_with(USER_ACTUATOR_PREFIX) {
            continue;
        }
        let on_joint = matches!(
            read.actuator_trntype()[a],
            MjtTrn::mjTRN_JOINT | MjtTrn::mjTRN_JOINTINPARENT
        ) && usize::try_from(read.actuator_trnid()[a][0])
            .is_ok_and(|j| jids.contains(&j));
        if !on_joint {
            continue;
        }
        let simple = read.actuator_gaintype()[a] == MjtGain::mjGAIN_FIXED
            && matches!(
                read.actuator_biastype()[a],
                MjtBias::mjBIAS_NONE | MjtBias::mjBIAS_AFFINE
            );
        if !simple {
            return Err(joint_error(
                &hand.path,
                format!(
                    "actuator `{name}` drives a mapped joint with a gain or bias dex cannot switch off (only fixed gains with no or affine bias: motor, position, velocity)"
                ),
            ));
        }
        off.push(a);
    }
    Ok(off)
}

/// The hand model's link each MuJoCo body belongs to: the top body is the root link, a
/// body whose joint maps to a model joint is that joint's child link, and other bodies
/// (fixed ones inside a finger) belong to their parent's link; bodies outside the hand
/// belong to none.
pub(super) fn body_links(model: &HandModel, m: &MjModel, jids: &[usize]) -> Vec<Option<usize>> {
    let n = m.body_parentid().len();
    let mut links = vec![None; n];
    let dof_joints: Vec<_> = model.dof_joints().collect();
    let Some(&first) = jids.first() else {
        return links;
    };
    let mut root = m.jnt_bodyid()[first] as usize;
    while m.body_parentid()[root] > 0 {
        root = m.body_parentid()[root] as usize;
    }
    // MuJoCo numbers every body after its parent.
    for b in 1..n {
        let own = jids
            .iter()
            .position(|&j| m.jnt_bodyid()[j] as usize == b)
            .map(|i| dof_joints[i].child.0);
        links[b] = if b == root {
            Some(model.root().0)
        } else {
            own.or(links[m.body_parentid()[b] as usize])
        };
    }
    links
}
