//! MJCF, MuJoCo's XML model format, from a dex hand model and a scene: the same hand,
//! objects, gravity and time step as the rapier backend builds, for MuJoCo.
//!
//! The kinematic tree becomes nested bodies (each body at its joint's origin in the
//! parent's frame, the joint at the body's origin, so MuJoCo's forward kinematics is
//! dex-core's), URDF inertials become `<inertial>` elements, primitive collision
//! shapes become geoms (meshes, which dex keeps unloaded, are left out), each degree of
//! freedom gets a MuJoCo `position` actuator with the joint's PD gains
//! ([`crate::nominal_pd_gains`]), its control range and effort limit, and a mimic joint
//! an equality constraint. Objects are free bodies (a convex hull as a mesh, of which
//! MuJoCo collides with the hull). Collision filtering follows the rapier backend: the
//! hand meets objects and the table, not the ground; fingers meet each other only with
//! [`SimConfig::hand_self_collision`]; objects meet everything.

use std::fmt::Write as _;

use dex_core::{HandModel, JointKind, LinkId, Shape};
use nalgebra::{Isometry3, UnitQuaternion, Vector3};

use crate::error::{Error, Result};
use crate::object::{ObjectShape, ObjectSpec};
use crate::simulator::{SimConfig, nominal_gains, validate_objects};
use crate::wrist::WristConfig;

/// Collision bits: `contype` / `conaffinity` of each kind of geom.
const HAND: u32 = 1;
const OBJECT: u32 = 2;
const STATIC: u32 = 4;

/// `x y z` of a vector, each number as Rust prints it (the shortest text that parses
/// back to the same `f64`).
fn v3(v: &Vector3<f64>) -> String {
    format!("{} {} {}", v.x, v.y, v.z)
}

/// `w x y z` of a rotation (MJCF's order).
fn quat(q: &UnitQuaternion<f64>) -> String {
    let c = q.coords;
    format!("{} {} {} {}", c.w, c.x, c.y, c.z)
}

fn pose_attrs(p: &Isometry3<f64>) -> String {
    format!(
        r#"pos="{}" quat="{}""#,
        v3(&p.translation.vector),
        quat(&p.rotation)
    )
}

/// Escapes the characters XML forbids in attribute values.
fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The MJCF of `model` in the scene `config` describes, with `objects` at `poses`.
///
/// Errors: objects and poses of different lengths or invalid objects, non-finite
/// settings. An enclosure is six static walls (objects only, geom group 3). A wrist is
/// written as
/// the rapier backend builds it: five bodies of 50 g and six joints (x, y, z slides,
/// then yaw, pitch, roll hinges) with position actuators of its stiffness and damping.
pub fn to_mjcf(
    model: &HandModel,
    config: &SimConfig,
    objects: &[ObjectSpec],
    poses: &[Isometry3<f64>],
) -> Result<String> {
    mjcf_text(model, config, objects, poses, Actuation::Position)
}

/// How the degrees of freedom are driven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Actuation {
    /// MuJoCo `position` actuators: `ctrl` is the joint target.
    Position,
    /// `general` actuators with gain 1 and an affine bias `−kp q − kv q̇`: `ctrl` is
    /// `kp · target + feed-forward torque`, so the gains live in the bias parameters,
    /// which can be changed at run time (the MuJoCo backend's choice).
    #[cfg_attr(not(feature = "mujoco"), allow(dead_code))]
    Affine,
}

/// What every MJCF scene needs: valid settings and objects.
fn check_scene(config: &SimConfig, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) -> Result<()> {
    config.validate()?;
    validate_objects(objects, poses)?;
    Ok(())
}

/// The scene around a hand from the user's MJCF file: the file (`include`, its name
/// relative to the scene's directory), then dex's ground, table and objects, and, with
/// `actuators`, dex's PD actuators ([`Actuation::Affine`]) on the file's joints as
/// `hand` maps them. Timestep and gravity are set on the compiled model.
#[cfg_attr(not(feature = "mujoco"), allow(dead_code))]
pub(crate) fn user_scene_text(
    model: &HandModel,
    config: &SimConfig,
    objects: &[ObjectSpec],
    poses: &[Isometry3<f64>],
    include: &str,
    hand: &crate::simulator::MjcfHand,
    actuators: bool,
) -> Result<String> {
    check_scene(config, objects, poses)?;
    if config.wrist.is_some() {
        return Err(Error::InvalidParameter {
            what: "mjcf",
            reason: "a hand from an MJCF file on the wrist is not supported yet".into(),
        });
    }
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, r#"<mujoco model="dex scene">"#);
    let _ = writeln!(w, r#"  <include file="{}"/>"#, xml(include));
    write_hull_assets(w, objects);
    let _ = writeln!(w, "  <worldbody>");
    write_ground_and_table(w, config);
    write_objects(w, objects, poses);
    let _ = writeln!(w, "  </worldbody>");
    if actuators {
        write_actuators(w, model, Actuation::Affine, USER_ACTUATOR_PREFIX, |name| {
            hand.file_joint(name).to_string()
        });
    }
    let _ = writeln!(w, "</mujoco>");
    Ok(out)
}

pub(crate) fn mjcf_text(
    model: &HandModel,
    config: &SimConfig,
    objects: &[ObjectSpec],
    poses: &[Isometry3<f64>],
    actuation: Actuation,
) -> Result<String> {
    check_scene(config, objects, poses)?;
    let mut out = String::new();
    let w = &mut out;
    let g = config.gravity;
    // `write!` on a String cannot fail.
    let _ = writeln!(w, r#"<mujoco model="{}">"#, xml(model.name()));
    let _ = writeln!(w, r#"  <compiler angle="radian" autolimits="true"/>"#);
    let _ = writeln!(
        w,
        r#"  <option timestep="{}" gravity="{}" integrator="implicitfast" cone="elliptic"/>"#,
        config.dt,
        v3(&g)
    );
    write_hull_assets(w, objects);
    let _ = writeln!(w, "  <worldbody>");
    write_ground_and_table(w, config);
    match &config.wrist {
        None => write_body(w, model, model.root(), &config.hand_pose, config, 2, ""),
        Some(wrist) => {
            let roll = write_wrist_open(w, wrist, &config.hand_pose);
            write_body(
                w,
                model,
                model.root(),
                &Isometry3::identity(),
                config,
                2 + WRIST_JOINTS.len() - 1,
                &roll,
            );
            for depth in (2..2 + WRIST_JOINTS.len() - 1).rev() {
                let _ = writeln!(w, "{}</body>", "  ".repeat(depth));
            }
        }
    }
    write_objects(w, objects, poses);
    let _ = writeln!(w, "  </worldbody>");
    write_excludes(w, model);
    let mimics: Vec<_> = model
        .joints()
        .iter()
        .filter_map(|j| j.mimic.map(|m| (j, m)))
        .collect();
    if !mimics.is_empty() {
        let _ = writeln!(w, "  <equality>");
        for (j, m) in mimics {
            let source = &model.joint(m.source).name;
            let _ = writeln!(
                w,
                r#"    <joint joint1="{}" joint2="{}" polycoef="{} {} 0 0 0"/>"#,
                xml(&j.name),
                xml(source),
                m.offset,
                m.multiplier
            );
        }
        let _ = writeln!(w, "  </equality>");
    }
    write_actuators(w, model, actuation, "", |name| name.to_string());
    if let Some(wrist) = &config.wrist {
        write_wrist_actuators(w, wrist, actuation);
    }
    let _ = writeln!(w, "</mujoco>");
    Ok(out)
}

/// The convex hulls of `objects` as meshes (an `<asset>` block, none without hulls).
pub(crate) fn write_hull_assets(w: &mut String, objects: &[ObjectSpec]) {
    let hulls: Vec<(usize, &Vec<[f64; 3]>)> = objects
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match &o.shape {
            ObjectShape::ConvexHull { points } => Some((i, points)),
            _ => None,
        })
        .collect();
    if !hulls.is_empty() {
        let _ = writeln!(w, "  <asset>");
        for (i, points) in hulls {
            let vertices: Vec<String> = points
                .iter()
                .map(|p| format!("{} {} {}", p[0], p[1], p[2]))
                .collect();
            let _ = writeln!(
                w,
                r#"    <mesh name="object{i}_hull" vertex="{}"/>"#,
                vertices.join(" ")
            );
        }
        let _ = writeln!(w, "  </asset>");
    }
}

/// The ground (group 3, not drawn; objects only) and the table, inside `<worldbody>`.
pub(crate) fn write_ground_and_table(w: &mut String, config: &SimConfig) {
    let _ = writeln!(
        w,
        r#"    <geom name="ground" type="plane" size="0 0 1" group="3" contype="{STATIC}" conaffinity="{OBJECT}"/>"#
    );
    if let Some(t) = &config.table {
        let [x, y, z] = t.top_center;
        let [hx, hy] = t.half_extents;
        let _ = writeln!(
            w,
            r#"    <geom name="table" type="box" pos="{x} {y} {}" size="{hx} {hy} 0.01" friction="{} 0.005 0.0001" contype="{STATIC}" conaffinity="{}"/>"#,
            z - 0.01,
            t.friction,
            HAND | OBJECT
        );
    }
    // The enclosure's walls (objects only, not drawn), 2 cm thick, outside its box, as
    // the rapier backend builds them.
    if let Some(e) = &config.enclosure {
        let t = 0.01;
        let c = (e.min.coords + e.max.coords) / 2.0;
        let h = (e.max.coords - e.min.coords) / 2.0;
        for axis in 0..3 {
            for (k, side) in [-1.0, 1.0].into_iter().enumerate() {
                let mut half = h + Vector3::repeat(2.0 * t);
                half[axis] = t;
                let mut center = c;
                center[axis] += side * (h[axis] + t);
                let _ = writeln!(
                    w,
                    r#"    <geom name="wall{}" type="box" pos="{}" size="{}" friction="0.5 0.005 0.0001" group="3" contype="{STATIC}" conaffinity="{OBJECT}"/>"#,
                    2 * axis + k,
                    v3(&center),
                    v3(&half)
                );
            }
        }
    }
}

/// The objects as free bodies `object{i}` with geoms `object{i}_geom`, inside
/// `<worldbody>`.
pub(crate) fn write_objects(w: &mut String, objects: &[ObjectSpec], poses: &[Isometry3<f64>]) {
    for (i, (o, p)) in objects.iter().zip(poses).enumerate() {
        let _ = writeln!(w, r#"    <body name="object{i}" {}>"#, pose_attrs(p));
        let _ = writeln!(w, r#"      <freejoint name="object{i}_free"/>"#);
        let common = format!(
            r#"mass="{}" friction="{} 0.005 0.0001" contype="{OBJECT}" conaffinity="{}""#,
            o.mass,
            o.friction,
            HAND | OBJECT | STATIC
        );
        let geom = match &o.shape {
            ObjectShape::Box { half_extents: h } => {
                format!(r#"type="box" size="{} {} {}""#, h[0], h[1], h[2])
            }
            ObjectShape::Sphere { radius } => format!(r#"type="sphere" size="{radius}""#),
            ObjectShape::Capsule { radius, length } => {
                format!(r#"type="capsule" size="{radius} {}""#, length / 2.0)
            }
            ObjectShape::Cylinder { radius, height } => {
                format!(r#"type="cylinder" size="{radius} {}""#, height / 2.0)
            }
            ObjectShape::ConvexHull { .. } => format!(r#"type="mesh" mesh="object{i}_hull""#),
        };
        let _ = writeln!(w, r#"      <geom name="object{i}_geom" {geom} {common}/>"#);
        let _ = writeln!(w, "    </body>");
    }
}

/// The prefix of dex's actuators in a scene around a user's MJCF hand (their names are
/// the prefix and the model's joint name, apart from the file's own actuators).
pub(crate) const USER_ACTUATOR_PREFIX: &str = "dex:";

/// One actuator per degree of freedom, named `prefix` + the model's joint name and
/// driving the file's joint `file_joint(model name)`, with the model's gains and effort
/// limits.
pub(crate) fn write_actuators<'a>(
    w: &mut String,
    model: &'a HandModel,
    actuation: Actuation,
    prefix: &str,
    file_joint: impl Fn(&'a str) -> String,
) {
    let _ = writeln!(w, "  <actuator>");
    for j in model.dof_joints() {
        let (kp, kv) = nominal_gains(j);
        let (tag, mut attrs) = match actuation {
            Actuation::Position => ("position", format!(r#"kp="{kp}" kv="{kv}""#)),
            Actuation::Affine => (
                "general",
                format!(
                    r#"gaintype="fixed" gainprm="1" biastype="affine" biasprm="0 {} {}" ctrllimited="false" dyntype="none" gear="1""#,
                    -kp, -kv
                ),
            ),
        };
        if let Some(l) = &j.limits {
            if actuation == Actuation::Position && l.lower.is_finite() && l.upper.is_finite() {
                let _ = write!(attrs, r#" ctrlrange="{} {}""#, l.lower, l.upper);
            }
            if l.effort.is_finite() && l.effort > 0.0 {
                let _ = write!(
                    attrs,
                    r#" forcelimited="true" forcerange="{} {}""#,
                    -l.effort, l.effort
                );
            }
        }
        let _ = writeln!(
            w,
            r#"    <{tag} name="{}{}" joint="{}" {attrs}/>"#,
            xml(prefix),
            xml(&j.name),
            xml(&file_joint(&j.name))
        );
    }
    let _ = writeln!(w, "  </actuator>");
}

/// The wrist's joints in chain order (see [`crate::wrist`]): the names of their bodies,
/// joints and actuators, their type and axis.
pub(crate) const WRIST_JOINTS: [(&str, &str, &str); 6] = [
    ("wrist_x", "slide", "1 0 0"),
    ("wrist_y", "slide", "0 1 0"),
    ("wrist_z", "slide", "0 0 1"),
    ("wrist_yaw", "hinge", "0 0 1"),
    ("wrist_pitch", "hinge", "0 1 0"),
    ("wrist_roll", "hinge", "1 0 0"),
];

/// One wrist joint's element; its limits stiffer than MuJoCo's default (a 4 ms time
/// constant, MuJoCo raises it to two time steps on coarser steps), as an arm's are.
fn wrist_joint(i: usize, wrist: &WristConfig) -> String {
    let (name, kind, axis) = WRIST_JOINTS[i];
    format!(
        r#"<joint name="{name}" type="{kind}" axis="{axis}" range="{} {}" damping="0" solreflimit="0.004 1"/>"#,
        wrist.lower[i], wrist.upper[i]
    )
}

/// Opens the wrist's chain at `base` (as the rapier backend builds it: five collider-less
/// bodies of 50 g carrying the first five joints) and returns the sixth joint (roll),
/// which goes into the palm's body.
fn write_wrist_open(w: &mut String, wrist: &WristConfig, base: &Isometry3<f64>) -> String {
    for (i, (name, ..)) in WRIST_JOINTS.iter().take(5).enumerate() {
        let pad = "  ".repeat(2 + i);
        let pose = if i == 0 {
            pose_attrs(base)
        } else {
            String::new()
        };
        let _ = writeln!(w, r#"{pad}<body name="{name}" {pose}>"#);
        let _ = writeln!(
            w,
            r#"{pad}  <inertial pos="0 0 0" mass="0.05" diaginertia="1e-5 1e-5 1e-5"/>"#
        );
        let _ = writeln!(w, "{pad}  {}", wrist_joint(i, wrist));
    }
    wrist_joint(5, wrist)
}

/// The wrist's drives: PD on each coordinate with the wrist's stiffness, damping and
/// effort (with [`Actuation::Affine`] the control is `stiffness · target + damping ·
/// target rate`).
fn write_wrist_actuators(w: &mut String, wrist: &WristConfig, actuation: Actuation) {
    let _ = writeln!(w, "  <actuator>");
    for (i, (name, ..)) in WRIST_JOINTS.iter().enumerate() {
        let k = usize::from(i >= 3);
        let (kp, kv, effort) = (wrist.stiffness[k], wrist.damping[k], wrist.max_effort[k]);
        let attrs = match actuation {
            Actuation::Position => format!(
                r#"kp="{kp}" kv="{kv}" ctrlrange="{} {}""#,
                wrist.lower[i], wrist.upper[i]
            ),
            Actuation::Affine => format!(
                r#"gaintype="fixed" gainprm="1" biastype="affine" biasprm="0 {} {}" ctrllimited="false" dyntype="none" gear="1""#,
                -kp, -kv
            ),
        };
        let tag = match actuation {
            Actuation::Position => "position",
            Actuation::Affine => "general",
        };
        let _ = writeln!(
            w,
            r#"    <{tag} name="{name}" joint="{name}" {attrs} forcelimited="true" forcerange="{} {}"/>"#,
            -effort, effort
        );
    }
    let _ = writeln!(w, "  </actuator>");
}

/// Contact exclusions as the rapier backend filters: a link and its parent, links of
/// one finger (the subtree below one child of the root), and the model's own excluded
/// pairs. (MuJoCo's own parent filter does not act here: the root is welded to the
/// world, and MuJoCo does not filter contacts with the world.)
fn write_excludes(w: &mut String, model: &HandModel) {
    let root = model.root();
    let parent = |l: LinkId| model.link(l).parent_joint.map(|j| model.joint(j).parent);
    let finger = |mut l: LinkId| {
        while let Some(p) = parent(l) {
            if p == root {
                return Some(l);
            }
            l = p;
        }
        None
    };
    let mut pairs: Vec<(LinkId, LinkId)> = Vec::new();
    let n = model.links().len();
    for a in 0..n {
        for b in a + 1..n {
            let (la, lb) = (LinkId(a), LinkId(b));
            let related = parent(la) == Some(lb)
                || parent(lb) == Some(la)
                || (finger(la).is_some() && finger(la) == finger(lb));
            if related {
                pairs.push((la, lb));
            }
        }
    }
    for (a, b) in model.contact_excludes() {
        if !pairs.contains(&(*a, *b)) && !pairs.contains(&(*b, *a)) {
            pairs.push((*a, *b));
        }
    }
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(w, "  <contact>");
    for (a, b) in pairs {
        let _ = writeln!(
            w,
            r#"    <exclude body1="{}" body2="{}"/>"#,
            xml(&model.link(a).name),
            xml(&model.link(b).name)
        );
    }
    let _ = writeln!(w, "  </contact>");
}

/// Writes `link`'s body at `pose` (in its parent's frame), its joint, inertial and
/// geoms, then its children's bodies inside it.
fn write_body(
    w: &mut String,
    model: &HandModel,
    link: LinkId,
    pose: &Isometry3<f64>,
    config: &SimConfig,
    depth: usize,
    extra: &str,
) {
    let pad = "  ".repeat(depth);
    let affinity = if config.hand_self_collision {
        HAND | OBJECT
    } else {
        OBJECT
    };
    let l = model.link(link);
    let _ = writeln!(
        w,
        r#"{pad}<body name="{}" {}>"#,
        xml(&l.name),
        pose_attrs(pose)
    );
    if !extra.is_empty() {
        let _ = writeln!(w, "{pad}  {extra}");
    }
    if let Some(jid) = l.parent_joint {
        let j = model.joint(jid);
        let kind = match j.kind {
            JointKind::Revolute | JointKind::Continuous => Some("hinge"),
            JointKind::Prismatic => Some("slide"),
            JointKind::Fixed => None,
        };
        if let Some(kind) = kind {
            let mut attrs = format!(
                r#"name="{}" type="{kind}" axis="{}" damping="{}" frictionloss="{}" solimpfriction="0.99 0.999 0.001""#,
                xml(&j.name),
                v3(&j.axis),
                j.dynamics.damping,
                j.dynamics.friction
            );
            match (&j.limits, j.kind) {
                (Some(lim), JointKind::Revolute | JointKind::Prismatic)
                    if lim.lower.is_finite() && lim.upper.is_finite() =>
                {
                    let _ = write!(attrs, r#" range="{} {}""#, lim.lower, lim.upper);
                }
                _ => attrs.push_str(r#" limited="false""#),
            }
            // Dry friction that holds: MuJoCo's default impedance (0.9–0.95) lets a joint
            // creep under a torque below its friction (a tenth of the free motion in
            // `tests/physics.rs`), rapier's does not.
            let _ = writeln!(w, r#"{pad}  <joint {attrs}/>"#);
        }
    }
    if let Some(i) = &l.inertial {
        let m = &i.inertia;
        let _ = writeln!(
            w,
            r#"{pad}  <inertial pos="{} {} {}" mass="{}" fullinertia="{} {} {} {} {} {}"/>"#,
            i.com.x,
            i.com.y,
            i.com.z,
            i.mass,
            m[(0, 0)],
            m[(1, 1)],
            m[(2, 2)],
            m[(0, 1)],
            m[(0, 2)],
            m[(1, 2)]
        );
    }
    for (k, g) in l.collisions.iter().enumerate() {
        let shape = match &g.shape {
            Shape::Box { half_extents: h } => format!(r#"type="box" size="{}""#, v3(h)),
            Shape::Sphere { radius } => format!(r#"type="sphere" size="{radius}""#),
            Shape::Capsule { radius, length } => {
                format!(r#"type="capsule" size="{radius} {}""#, length / 2.0)
            }
            Shape::Cylinder { radius, length } => {
                format!(r#"type="cylinder" size="{radius} {}""#, length / 2.0)
            }
            Shape::Mesh { .. } => continue,
        };
        let _ = writeln!(
            w,
            r#"{pad}  <geom name="{}_c{k}" {shape} {} friction="{} 0.005 0.0001" contype="{HAND}" conaffinity="{affinity}"/>"#,
            xml(&l.name),
            pose_attrs(&g.origin),
            config.hand_friction
        );
    }
    for &jid in &l.child_joints {
        let j = model.joint(jid);
        write_body(w, model, j.child, &j.origin, config, depth + 1, "");
    }
    let _ = writeln!(w, "{pad}</body>");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(text).unwrap_or_else(|e| panic!("not XML: {e}"))
    }

    #[test]
    fn every_link_joint_and_actuator_is_there() {
        for model in [HandModel::leap_right(), HandModel::allegro_right()] {
            let text = to_mjcf(&model, &SimConfig::default(), &[], &[]).unwrap_or_default();
            let d = doc(&text);
            let count = |tag: &str| d.descendants().filter(|n| n.has_tag_name(tag)).count();
            assert_eq!(count("body"), model.links().len());
            assert_eq!(count("joint"), model.dof());
            assert_eq!(count("position"), model.dof());
            for j in model.dof_joints() {
                let node = d
                    .descendants()
                    .find(|n| n.has_tag_name("joint") && n.attribute("name") == Some(&j.name))
                    .unwrap_or_else(|| panic!("joint {} missing", j.name));
                let lim = j
                    .limits
                    .unwrap_or_else(|| panic!("{} has no limits", j.name));
                let range: Vec<f64> = node
                    .attribute("range")
                    .unwrap_or_default()
                    .split(' ')
                    .filter_map(|s| s.parse().ok())
                    .collect();
                // Exact: the numbers are written in their shortest round-trip form.
                assert_eq!(range, vec![lim.lower, lim.upper], "{}", j.name);
                let axis: Vec<f64> = node
                    .attribute("axis")
                    .unwrap_or_default()
                    .split(' ')
                    .filter_map(|s| s.parse().ok())
                    .collect();
                assert_eq!(axis, j.axis.as_slice().to_vec(), "{}", j.name);
            }
        }
    }

    #[test]
    fn objects_are_free_bodies_the_wrist_a_chain_the_enclosure_walls_and_bad_input_an_error() {
        let model = HandModel::leap_right();
        let cube = ObjectSpec::cube(0.05, 0.1);
        let hull = ObjectSpec::new(
            "tet",
            ObjectShape::ConvexHull {
                points: vec![
                    [0.0, 0.0, 0.0],
                    [0.02, 0.0, 0.0],
                    [0.0, 0.02, 0.0],
                    [0.0, 0.0, 0.02],
                ],
            },
            0.05,
        );
        let poses = [Isometry3::translation(0.0, 0.0, 0.1); 2];
        let text =
            to_mjcf(&model, &SimConfig::default(), &[cube, hull], &poses).unwrap_or_default();
        let d = doc(&text);
        assert_eq!(
            d.descendants()
                .filter(|n| n.has_tag_name("freejoint"))
                .count(),
            2
        );
        assert!(d.descendants().any(|n| n.has_tag_name("mesh")));
        // A wrist: six joints in a chain above the palm, each with a position drive.
        let cfg = SimConfig {
            wrist: Some(crate::WristConfig::default()),
            ..SimConfig::default()
        };
        let text = to_mjcf(&model, &cfg, &[], &[]).unwrap_or_default();
        let d = doc(&text);
        for (name, ..) in WRIST_JOINTS {
            assert!(
                d.descendants()
                    .any(|n| n.has_tag_name("joint") && n.attribute("name") == Some(name))
            );
            assert!(
                d.descendants()
                    .any(|n| n.has_tag_name("position") && n.attribute("joint") == Some(name))
            );
        }
        let palm = d
            .descendants()
            .find(|n| {
                n.has_tag_name("body")
                    && n.attribute("name") == Some(model.link(model.root()).name.as_str())
            })
            .unwrap();
        assert_eq!(
            palm.ancestors().filter(|n| n.has_tag_name("body")).count(),
            6
        );
        // An enclosure: six walls that objects meet and the hand does not.
        let cfg = SimConfig {
            enclosure: Some(crate::Enclosure {
                min: nalgebra::Point3::new(-0.1, -0.1, 0.0),
                max: nalgebra::Point3::new(0.1, 0.1, 0.2),
            }),
            ..SimConfig::default()
        };
        let text = to_mjcf(&model, &cfg, &[], &[]).unwrap_or_default();
        let d = doc(&text);
        let walls: Vec<_> = d
            .descendants()
            .filter(|n| n.attribute("name").is_some_and(|a| a.starts_with("wall")))
            .map(|n| (n.attribute("contype"), n.attribute("conaffinity")))
            .collect();
        assert_eq!(walls.len(), 6);
        let (ct, ca) = (STATIC.to_string(), OBJECT.to_string());
        assert!(
            walls
                .iter()
                .all(|w| *w == (Some(ct.as_str()), Some(ca.as_str())))
        );
        assert!(
            to_mjcf(
                &model,
                &SimConfig::default(),
                &[ObjectSpec::cube(0.05, 0.1)],
                &[]
            )
            .is_err()
        );
    }
}
