//! URDF → [`HandModel`].
//!
//! `urdf-rs` parses the standard elements. A light `roxmltree` pass over the same
//! text comes first: it names the joint behind an unknown joint type (which
//! `urdf-rs` reports without a name), notes which joints have a `<limit>`, and
//! reads the `dex:` extension elements that `urdf-rs` ignores.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;

use nalgebra::{Isometry3, Matrix3, Point3, Translation3, Unit, UnitQuaternion, Vector3};

use super::{
    Actuator, FkStep, Frame, Geometry, HandModel, Inertial, Joint, JointDynamics, JointId,
    JointKind, JointLimits, Link, LinkId, Mimic, Motion, QSource, Shape,
};
use crate::error::{Error, Result};

impl HandModel {
    /// Loads a model from URDF text.
    ///
    /// # Errors
    ///
    /// A malformed or unsupported URDF gives an [`Error`] naming the link or joint.
    pub fn from_urdf_str(text: &str) -> Result<Self> {
        parse(text)
    }

    /// Loads a model from a URDF file.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the file cannot be read, else as [`HandModel::from_urdf_str`].
    pub fn from_urdf_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_urdf_str(&text)
    }
}

/// Namespace of the `dex:` URDF extension elements.
pub const DEX_URDF_NAMESPACE: &str = "urn:dex:urdf:1";

/// What the XML pass learns before `urdf-rs` runs.
#[derive(Default)]
struct Prescan {
    joints_with_limit: HashSet<String>,
    actuators: Vec<ExtActuator>,
    fingertips: Vec<ExtFrame>,
    keypoints: Vec<ExtFrame>,
    contact_excludes: Vec<(String, String)>,
}

struct ExtActuator {
    joint: String,
    kp: f64,
    kv: f64,
    motor_id: Option<u32>,
}

struct ExtFrame {
    name: String,
    link: String,
    offset: Isometry3<f64>,
}

pub(crate) fn parse(text: &str) -> Result<HandModel> {
    let pre = prescan(text)?;
    let robot = urdf_rs::read_from_string(text).map_err(|e| Error::Urdf {
        message: e.to_string(),
    })?;
    build(robot, pre)
}

fn prescan(text: &str) -> Result<Prescan> {
    let doc = roxmltree::Document::parse(text).map_err(|e| Error::Urdf {
        message: e.to_string(),
    })?;
    let robot = doc.root_element();
    if robot.tag_name().name() != "robot" {
        return Err(Error::Urdf {
            message: format!(
                "the root element is <{}>, expected <robot>",
                robot.tag_name().name()
            ),
        });
    }
    let mut pre = Prescan::default();
    for node in robot.children().filter(|n| n.is_element()) {
        let tag = node.tag_name();
        if tag.namespace() == Some(DEX_URDF_NAMESPACE) {
            read_extension(node, &mut pre)?;
            continue;
        }
        if tag.namespace().is_some() || tag.name() != "joint" {
            continue;
        }
        let name = node.attribute("name").unwrap_or("<unnamed>").to_string();
        match node.attribute("type") {
            Some("revolute" | "continuous" | "prismatic" | "fixed") => {}
            Some(kind @ ("floating" | "planar" | "spherical")) => {
                return Err(Error::UnsupportedJointType {
                    joint: name,
                    kind: kind.to_string(),
                });
            }
            Some(kind) => {
                return Err(Error::UnknownJointType {
                    joint: name,
                    kind: kind.to_string(),
                });
            }
            None => {
                return Err(Error::UnknownJointType {
                    joint: name,
                    kind: "<missing>".to_string(),
                });
            }
        }
        if node
            .children()
            .any(|c| c.is_element() && c.tag_name().name() == "limit")
        {
            pre.joints_with_limit.insert(name);
        }
    }
    Ok(pre)
}

fn read_extension(node: roxmltree::Node<'_, '_>, pre: &mut Prescan) -> Result<()> {
    let element = node.tag_name().name();
    let err = |message: String| Error::InvalidExtension {
        element: element.to_string(),
        message,
    };
    let attr = |key: &str| {
        node.attribute(key)
            .ok_or_else(|| err(format!("missing attribute `{key}`")))
    };
    let number = |key: &str| -> Result<f64> {
        let raw = attr(key)?;
        let v: f64 = raw
            .trim()
            .parse()
            .map_err(|_| err(format!("attribute `{key}` = `{raw}` is not a number")))?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(err(format!("attribute `{key}` is not finite")))
        }
    };
    let offset = || -> Result<Isometry3<f64>> {
        let xyz = parse_triplet(node.attribute("xyz").unwrap_or("0 0 0"))
            .ok_or_else(|| err("attribute `xyz` must be three finite numbers".into()))?;
        let rpy = parse_triplet(node.attribute("rpy").unwrap_or("0 0 0"))
            .ok_or_else(|| err("attribute `rpy` must be three finite numbers".into()))?;
        Ok(pose(xyz, rpy))
    };
    match element {
        "actuator" => {
            let motor_id = match node.attribute("motor_id") {
                None => None,
                Some(raw) => Some(raw.trim().parse::<u32>().map_err(|_| {
                    err(format!(
                        "attribute `motor_id` = `{raw}` is not a non-negative integer"
                    ))
                })?),
            };
            let (kp, kv) = (number("kp")?, number("kv")?);
            if kp < 0.0 || kv < 0.0 {
                return Err(err(format!(
                    "gains must be non-negative (kp {kp}, kv {kv})"
                )));
            }
            pre.actuators.push(ExtActuator {
                joint: attr("joint")?.to_string(),
                kp,
                kv,
                motor_id,
            });
        }
        "fingertip" | "keypoint" => {
            let frame = ExtFrame {
                name: attr("name")?.to_string(),
                link: attr("link")?.to_string(),
                offset: offset()?,
            };
            let list = if element == "fingertip" {
                &mut pre.fingertips
            } else {
                &mut pre.keypoints
            };
            if list.iter().any(|f| f.name == frame.name) {
                return Err(err(format!("duplicate name `{}`", frame.name)));
            }
            list.push(frame);
        }
        "contact_exclude" => pre
            .contact_excludes
            .push((attr("link1")?.to_string(), attr("link2")?.to_string())),
        other => {
            return Err(err(format!(
                "unknown element `{other}` (expected actuator, fingertip, keypoint or contact_exclude)"
            )));
        }
    }
    Ok(())
}

fn parse_triplet(s: &str) -> Option<[f64; 3]> {
    let mut it = s.split_whitespace().map(|t| t.parse::<f64>().ok());
    let v = [it.next()??, it.next()??, it.next()??];
    (it.next().is_none() && v.iter().all(|x| x.is_finite())).then_some(v)
}

/// URDF pose: translation `xyz`, rotation `Rz(yaw) Ry(pitch) Rx(roll)`.
pub(crate) fn pose(xyz: [f64; 3], rpy: [f64; 3]) -> Isometry3<f64> {
    Isometry3::from_parts(
        Translation3::new(xyz[0], xyz[1], xyz[2]),
        UnitQuaternion::from_euler_angles(rpy[0], rpy[1], rpy[2]),
    )
}

fn finite(what: impl FnOnce() -> String, values: &[f64]) -> Result<()> {
    match values.iter().find(|v| !v.is_finite()) {
        None => Ok(()),
        Some(&value) => Err(Error::NonFinite {
            what: what(),
            value,
        }),
    }
}

fn positive(what: impl FnOnce() -> String, value: f64) -> Result<()> {
    if value > 0.0 {
        Ok(())
    } else {
        Err(Error::InvalidValue {
            what: what(),
            message: format!("must be positive, got {value}"),
        })
    }
}

fn urdf_pose(what: impl Fn() -> String, p: &urdf_rs::Pose) -> Result<Isometry3<f64>> {
    finite(|| format!("origin xyz of {}", what()), &p.xyz.0)?;
    finite(|| format!("origin rpy of {}", what()), &p.rpy.0)?;
    Ok(pose(p.xyz.0, p.rpy.0))
}

fn geometry(what: &dyn Fn() -> String, g: &urdf_rs::Geometry) -> Result<Shape> {
    Ok(match g {
        urdf_rs::Geometry::Box { size } => {
            finite(|| format!("box size of {}", what()), &size.0)?;
            for &s in size.0.iter() {
                positive(|| format!("box size of {}", what()), s)?;
            }
            Shape::Box {
                half_extents: Vector3::from(size.0) * 0.5,
            }
        }
        urdf_rs::Geometry::Cylinder { radius, length } => {
            finite(|| format!("cylinder of {}", what()), &[*radius, *length])?;
            positive(|| format!("cylinder radius of {}", what()), *radius)?;
            positive(|| format!("cylinder length of {}", what()), *length)?;
            Shape::Cylinder {
                radius: *radius,
                length: *length,
            }
        }
        urdf_rs::Geometry::Capsule { radius, length } => {
            finite(|| format!("capsule of {}", what()), &[*radius, *length])?;
            positive(|| format!("capsule radius of {}", what()), *radius)?;
            if *length < 0.0 {
                return Err(Error::InvalidValue {
                    what: format!("capsule length of {}", what()),
                    message: format!("must be non-negative, got {length}"),
                });
            }
            Shape::Capsule {
                radius: *radius,
                length: *length,
            }
        }
        urdf_rs::Geometry::Sphere { radius } => {
            finite(|| format!("sphere of {}", what()), &[*radius])?;
            positive(|| format!("sphere radius of {}", what()), *radius)?;
            Shape::Sphere { radius: *radius }
        }
        urdf_rs::Geometry::Mesh { filename, scale } => {
            let scale = scale.as_ref().map(|s| s.0).unwrap_or([1.0; 3]);
            finite(|| format!("mesh scale of {}", what()), &scale)?;
            Shape::Mesh {
                path: filename.into(),
                scale: Vector3::from(scale),
            }
        }
    })
}

fn inertial(link: &str, i: &urdf_rs::Inertial) -> Result<Option<Inertial>> {
    let t = &i.inertia;
    let values = [t.ixx, t.ixy, t.ixz, t.iyy, t.iyz, t.izz];
    finite(|| format!("inertia of link `{link}`"), &values)?;
    finite(|| format!("mass of link `{link}`"), &[i.mass.value])?;
    if i.mass.value < 0.0 {
        return Err(Error::InvalidValue {
            what: format!("mass of link `{link}`"),
            message: format!("must be non-negative, got {}", i.mass.value),
        });
    }
    if i.mass.value == 0.0 && values.iter().all(|&v| v == 0.0) {
        // urdf-rs's default for a link without <inertial>.
        return Ok(None);
    }
    let origin = urdf_pose(|| format!("inertial of link `{link}`"), &i.origin)?;
    let local = Matrix3::new(
        t.ixx, t.ixy, t.ixz, t.ixy, t.iyy, t.iyz, t.ixz, t.iyz, t.izz,
    );
    let r = origin.rotation.to_rotation_matrix();
    let inertia = r.matrix() * local * r.matrix().transpose();
    Ok(Some(Inertial {
        mass: i.mass.value,
        com: Point3::from(origin.translation.vector),
        inertia,
    }))
}

fn geometries<'a>(
    link: &str,
    kind: &str,
    items: impl Iterator<Item = (&'a Option<String>, &'a urdf_rs::Pose, &'a urdf_rs::Geometry)>,
) -> Result<Vec<Geometry>> {
    items
        .enumerate()
        .map(|(k, (name, origin, geom))| {
            let what = || format!("{kind} {k} of link `{link}`");
            Ok(Geometry {
                name: name.clone(),
                origin: urdf_pose(what, origin)?,
                shape: geometry(&what, geom)?,
            })
        })
        .collect()
}

/// Replaces a cylinder capped by two spheres of the same radius (a common way to
/// write a capsule in plain URDF) by one capsule.
fn merge_capsules(geoms: &mut Vec<Geometry>) {
    const TOL: f64 = 1e-6;
    let mut i = 0;
    while i < geoms.len() {
        let (radius, length) = match geoms[i].shape {
            Shape::Cylinder { radius, length } => (radius, length),
            _ => {
                i += 1;
                continue;
            }
        };
        let origin = geoms[i].origin;
        let end = |sign: f64| origin * Point3::new(0.0, 0.0, sign * 0.5 * length);
        let find = |target: Point3<f64>, skip: Option<usize>| {
            geoms.iter().position(|g| match g.shape {
                Shape::Sphere { radius: r } => {
                    Some(
                        geoms
                            .iter()
                            .position(|x| std::ptr::eq(x, g))
                            .unwrap_or(usize::MAX),
                    ) != skip
                        && (r - radius).abs() <= TOL
                        && (Point3::from(g.origin.translation.vector) - target).norm() <= TOL
                }
                _ => false,
            })
        };
        let (Some(a), Some(b)) = (find(end(1.0), None), find(end(-1.0), None)) else {
            i += 1;
            continue;
        };
        if a == b {
            i += 1;
            continue;
        }
        geoms[i].shape = Shape::Capsule { radius, length };
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        geoms.remove(hi);
        geoms.remove(lo);
        i = 0;
    }
}

fn build(robot: urdf_rs::Robot, pre: Prescan) -> Result<HandModel> {
    // Links.
    let mut links = Vec::with_capacity(robot.links.len());
    let mut link_index = HashMap::with_capacity(robot.links.len());
    for l in &robot.links {
        if link_index
            .insert(l.name.clone(), LinkId(links.len()))
            .is_some()
        {
            return Err(Error::DuplicateLink {
                name: l.name.clone(),
            });
        }
        let mut collisions = geometries(
            &l.name,
            "collision",
            l.collision
                .iter()
                .map(|c| (&c.name, &c.origin, &c.geometry)),
        )?;
        merge_capsules(&mut collisions);
        let visuals = geometries(
            &l.name,
            "visual",
            l.visual.iter().map(|v| (&v.name, &v.origin, &v.geometry)),
        )?;
        links.push(Link {
            name: l.name.clone(),
            parent_joint: None,
            child_joints: Vec::new(),
            inertial: inertial(&l.name, &l.inertial)?,
            collisions,
            visuals,
        });
    }

    // Joints.
    let mut joints: Vec<Joint> = Vec::with_capacity(robot.joints.len());
    let mut joint_index = HashMap::with_capacity(robot.joints.len());
    for j in &robot.joints {
        let id = JointId(joints.len());
        if joint_index.insert(j.name.clone(), id).is_some() {
            return Err(Error::DuplicateJoint {
                name: j.name.clone(),
            });
        }
        let lookup = |role: &'static str, link: &str| {
            link_index
                .get(link)
                .copied()
                .ok_or_else(|| Error::MissingLink {
                    joint: j.name.clone(),
                    role,
                    link: link.to_string(),
                })
        };
        let parent = lookup("parent", &j.parent.link)?;
        let child = lookup("child", &j.child.link)?;
        if parent == child {
            return Err(Error::Cycle {
                link: j.parent.link.clone(),
            });
        }
        if let Some(first) = links[child.0].parent_joint {
            return Err(Error::MultipleParents {
                link: j.child.link.clone(),
                first: joints[first.0].name.clone(),
                second: j.name.clone(),
            });
        }
        let kind = match j.joint_type {
            urdf_rs::JointType::Revolute => JointKind::Revolute,
            urdf_rs::JointType::Continuous => JointKind::Continuous,
            urdf_rs::JointType::Prismatic => JointKind::Prismatic,
            urdf_rs::JointType::Fixed => JointKind::Fixed,
            ref other => {
                return Err(Error::UnsupportedJointType {
                    joint: j.name.clone(),
                    kind: format!("{other:?}").to_lowercase(),
                });
            }
        };
        let origin = urdf_pose(|| format!("joint `{}`", j.name), &j.origin)?;
        let axis_raw = Vector3::from(j.axis.xyz.0);
        finite(|| format!("axis of joint `{}`", j.name), &j.axis.xyz.0)?;
        let axis = if kind.is_movable() {
            Unit::try_new(axis_raw, 1e-12).ok_or_else(|| Error::InvalidValue {
                what: format!("axis of joint `{}`", j.name),
                message: "must not be zero".into(),
            })?
        } else {
            Unit::try_new(axis_raw, 1e-12).unwrap_or_else(Vector3::x_axis)
        };
        let limits = match kind {
            JointKind::Fixed => None,
            JointKind::Continuous => Some(JointLimits {
                lower: f64::NEG_INFINITY,
                upper: f64::INFINITY,
                velocity: limit_or_inf(j.limit.velocity),
                effort: limit_or_inf(j.limit.effort),
            }),
            JointKind::Revolute | JointKind::Prismatic => {
                if !pre.joints_with_limit.contains(&j.name) {
                    return Err(Error::InvalidValue {
                        what: format!("joint `{}`", j.name),
                        message: format!("a {} joint needs a <limit> element", kind.as_str()),
                    });
                }
                let l = &j.limit;
                for (what, v) in [("lower", l.lower), ("upper", l.upper)] {
                    if v.is_nan() {
                        return Err(Error::NonFinite {
                            what: format!("{what} limit of joint `{}`", j.name),
                            value: v,
                        });
                    }
                }
                for (what, v) in [("velocity", l.velocity), ("effort", l.effort)] {
                    if v.is_nan() || v < 0.0 {
                        return Err(Error::InvalidValue {
                            what: format!("{what} limit of joint `{}`", j.name),
                            message: format!("must be non-negative, got {v}"),
                        });
                    }
                }
                if l.lower > l.upper {
                    return Err(Error::InvalidLimits {
                        joint: j.name.clone(),
                        lower: l.lower,
                        upper: l.upper,
                    });
                }
                Some(JointLimits {
                    lower: l.lower,
                    upper: l.upper,
                    velocity: limit_or_inf(l.velocity),
                    effort: limit_or_inf(l.effort),
                })
            }
        };
        let dynamics = match &j.dynamics {
            Some(d) => {
                finite(
                    || format!("dynamics of joint `{}`", j.name),
                    &[d.damping, d.friction],
                )?;
                JointDynamics {
                    damping: d.damping,
                    friction: d.friction,
                }
            }
            None => JointDynamics::default(),
        };
        links[child.0].parent_joint = Some(id);
        links[parent.0].child_joints.push(id);
        joints.push(Joint {
            name: j.name.clone(),
            kind,
            parent,
            child,
            origin,
            axis,
            limits,
            dynamics,
            actuator: None,
            mimic: None,
            dof: None,
        });
    }

    // Mimic joints, then degrees of freedom in declaration order.
    for (k, j) in robot.joints.iter().enumerate() {
        let Some(m) = &j.mimic else { continue };
        if !joints[k].kind.is_movable() {
            continue;
        }
        let source = *joint_index
            .get(&m.joint)
            .ok_or_else(|| Error::UnknownName {
                kind: "joint (mimic source)",
                name: m.joint.clone(),
                known: Vec::new(),
            })?;
        let multiplier = m.multiplier.unwrap_or(1.0);
        let offset = m.offset.unwrap_or(0.0);
        finite(
            || format!("mimic of joint `{}`", j.name),
            &[multiplier, offset],
        )?;
        joints[k].mimic = Some(Mimic {
            source,
            multiplier,
            offset,
        });
    }
    for j in joints.iter().filter(|j| j.mimic.is_some()) {
        let Some(m) = j.mimic else { continue };
        let src = &joints[m.source.0];
        if !src.kind.is_movable() || src.mimic.is_some() {
            return Err(Error::InvalidValue {
                what: format!("mimic of joint `{}`", j.name),
                message: format!(
                    "source joint `{}` must be a movable joint that mimics no other",
                    src.name
                ),
            });
        }
    }
    let mut dofs = Vec::new();
    for (k, j) in joints.iter_mut().enumerate() {
        if j.kind.is_movable() && j.mimic.is_none() {
            j.dof = Some(dofs.len());
            dofs.push(JointId(k));
        }
    }

    // Root and tree order.
    let roots: Vec<LinkId> = (0..links.len())
        .filter(|&i| links[i].parent_joint.is_none())
        .map(LinkId)
        .collect();
    let root = match roots.as_slice() {
        [root] => *root,
        [] if !links.is_empty() => {
            return Err(Error::Cycle {
                link: links[0].name.clone(),
            });
        }
        _ => {
            return Err(Error::Root {
                roots: roots.iter().map(|r| links[r.0].name.clone()).collect(),
            });
        }
    };
    let mut order = Vec::with_capacity(joints.len());
    let mut queue = VecDeque::from([root]);
    let mut seen = vec![false; links.len()];
    seen[root.0] = true;
    while let Some(l) = queue.pop_front() {
        for &jid in &links[l.0].child_joints {
            let child = joints[jid.0].child;
            if !seen[child.0] {
                seen[child.0] = true;
                order.push(jid);
                queue.push_back(child);
            }
        }
    }
    if let Some(i) = seen.iter().position(|s| !s) {
        return Err(Error::Cycle {
            link: links[i].name.clone(),
        });
    }

    // Extensions.
    for a in pre.actuators {
        let id = *joint_index
            .get(&a.joint)
            .ok_or_else(|| Error::InvalidExtension {
                element: "actuator".into(),
                message: format!("unknown joint `{}`", a.joint),
            })?;
        let joint = &mut joints[id.0];
        if joint.dof.is_none() {
            return Err(Error::InvalidExtension {
                element: "actuator".into(),
                message: format!(
                    "joint `{}` is not a degree of freedom (fixed or mimic)",
                    a.joint
                ),
            });
        }
        joint.actuator = Some(Actuator {
            kp: a.kp,
            kv: a.kv,
            motor_id: a.motor_id,
        });
    }
    let resolve_frames = |element: &str, frames: Vec<ExtFrame>| -> Result<Vec<Frame>> {
        frames
            .into_iter()
            .map(|f| {
                let link = *link_index
                    .get(&f.link)
                    .ok_or_else(|| Error::InvalidExtension {
                        element: element.to_string(),
                        message: format!("`{}` names unknown link `{}`", f.name, f.link),
                    })?;
                Ok(Frame {
                    name: f.name,
                    link,
                    offset: f.offset,
                })
            })
            .collect()
    };
    let mut fingertips = resolve_frames("fingertip", pre.fingertips)?;
    if fingertips.is_empty() {
        fingertips = default_fingertips(&links, &joints, root);
    }
    let mut keypoints = resolve_frames("keypoint", pre.keypoints)?;
    if keypoints.is_empty() {
        keypoints = fingertips.clone();
    }
    let contact_excludes = pre
        .contact_excludes
        .iter()
        .map(|(a, b)| {
            let get = |name: &String| {
                link_index
                    .get(name)
                    .copied()
                    .ok_or_else(|| Error::InvalidExtension {
                        element: "contact_exclude".into(),
                        message: format!("unknown link `{name}`"),
                    })
            };
            Ok((get(a)?, get(b)?))
        })
        .collect::<Result<Vec<_>>>()?;

    let program = order
        .iter()
        .map(|&jid| {
            let j = &joints[jid.0];
            let source = || match (j.dof, j.mimic) {
                (Some(dof), _) => QSource {
                    dof,
                    multiplier: 1.0,
                    offset: 0.0,
                },
                (None, Some(m)) => QSource {
                    // Validated above: the source is a degree of freedom.
                    dof: joints[m.source.0].dof.unwrap_or(0),
                    multiplier: m.multiplier,
                    offset: m.offset,
                },
                (None, None) => QSource {
                    dof: 0,
                    multiplier: 0.0,
                    offset: 0.0,
                },
            };
            FkStep {
                link: j.child.0,
                parent: j.parent.0,
                origin_rot: j.origin.rotation,
                origin_t: j.origin.translation.vector,
                motion: match j.kind {
                    JointKind::Fixed => Motion::Fixed,
                    JointKind::Revolute | JointKind::Continuous => Motion::Revolute {
                        axis: j.axis.into_inner(),
                        q: source(),
                    },
                    JointKind::Prismatic => Motion::Prismatic {
                        axis: j.axis.into_inner(),
                        q: source(),
                    },
                },
            }
        })
        .collect();

    Ok(HandModel {
        name: robot.name,
        links,
        joints,
        root,
        dofs,
        fingertips,
        keypoints,
        contact_excludes,
        program,
        link_index,
        joint_index,
    })
}

/// URDF writes "unknown" limits as 0 (before 1.2) or infinity (1.2); dex reads both as infinite.
fn limit_or_inf(v: f64) -> f64 {
    if v > 0.0 { v } else { f64::INFINITY }
}

/// Leaf links that sit below at least one movable joint, at their origins.
fn default_fingertips(links: &[Link], joints: &[Joint], root: LinkId) -> Vec<Frame> {
    links
        .iter()
        .enumerate()
        .filter(|(i, l)| *i != root.0 && l.child_joints.is_empty())
        .filter(|(_, l)| {
            let mut cur = l.parent_joint;
            while let Some(j) = cur {
                if joints[j.0].kind.is_movable() {
                    return true;
                }
                cur = links[joints[j.0].parent.0].parent_joint;
            }
            false
        })
        .map(|(i, l)| Frame {
            name: l.name.clone(),
            link: LinkId(i),
            offset: Isometry3::identity(),
        })
        .collect()
}
