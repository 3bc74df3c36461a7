//! Loading URDFs: every joint type and shape loads with the right numbers, and
//! every malformed model is a clear error naming the joint or link at fault.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::{Error, HandModel, JointKind, Shape};
use nalgebra::{Point3, Vector3};

/// A small gripper written for these tests: every joint type, every shape, a mimic
/// joint, a capsule written as cylinder + two spheres, and the dex extensions.
const GRIPPER: &str = r#"<?xml version="1.0"?>
<robot name="test_gripper" xmlns:dex="urn:dex:urdf:1">
  <link name="base">
    <inertial><origin xyz="0 0 0.01" rpy="0 0 0"/><mass value="0.5"/>
      <inertia ixx="1e-3" ixy="0" ixz="0" iyy="2e-3" iyz="0" izz="3e-3"/></inertial>
    <collision name="base_box"><origin xyz="0 0 0.01"/><geometry><box size="0.1 0.06 0.02"/></geometry></collision>
    <visual><geometry><mesh filename="package://gripper/meshes/base.stl" scale="0.001 0.001 0.001"/></geometry></visual>
  </link>
  <link name="turret">
    <collision><geometry><cylinder radius="0.02" length="0.04"/></geometry></collision>
  </link>
  <link name="slide">
    <collision><geometry><sphere radius="0.01"/></geometry></collision>
  </link>
  <link name="finger_a">
    <collision><origin xyz="0 0 0.03"/><geometry><capsule radius="0.008" length="0.04"/></geometry></collision>
  </link>
  <link name="finger_b">
    <collision><origin xyz="0 0 0.03"/><geometry><cylinder radius="0.008" length="0.04"/></geometry></collision>
    <collision><origin xyz="0 0 0.05"/><geometry><sphere radius="0.008"/></geometry></collision>
    <collision><origin xyz="0 0 0.01"/><geometry><sphere radius="0.008"/></geometry></collision>
  </link>
  <link name="tip_a"/>
  <joint name="spin" type="continuous">
    <parent link="base"/><child link="turret"/><origin xyz="0 0 0.02" rpy="0 0 0"/><axis xyz="0 0 1"/>
  </joint>
  <joint name="lift" type="prismatic">
    <parent link="turret"/><child link="slide"/><origin xyz="0 0 0.04"/><axis xyz="0 0 1"/>
    <limit lower="0" upper="0.05" effort="20" velocity="0.1"/>
  </joint>
  <joint name="open_a" type="revolute">
    <parent link="slide"/><child link="finger_a"/><origin xyz="0.02 0 0" rpy="0 0.1 0"/><axis xyz="0 1 0"/>
    <limit lower="-0.5" upper="0.8" effort="1" velocity="2"/><dynamics damping="0.05" friction="0.01"/>
  </joint>
  <joint name="open_b" type="revolute">
    <parent link="slide"/><child link="finger_b"/><origin xyz="-0.02 0 0" rpy="0 0.1 3.14159265"/><axis xyz="0 1 0"/>
    <limit lower="-0.5" upper="0.8" effort="1" velocity="2"/>
    <mimic joint="open_a" multiplier="1.0" offset="0.0"/>
  </joint>
  <joint name="tip_a_joint" type="fixed">
    <parent link="finger_a"/><child link="tip_a"/><origin xyz="0 0 0.06"/>
  </joint>
  <dex:actuator joint="open_a" kp="5" kv="0.1" motor_id="7"/>
  <dex:fingertip name="a" link="tip_a"/>
  <dex:fingertip name="b" link="finger_b" xyz="0 0 0.06"/>
</robot>
"#;

#[test]
fn every_joint_type_and_shape_loads() {
    let m = HandModel::from_urdf_str(GRIPPER).expect("gripper loads");
    assert_eq!(m.name(), "test_gripper");
    // Degrees of freedom: movable, non-mimic joints in declaration order.
    assert_eq!(m.joint_names(), ["spin", "lift", "open_a"]);
    let kinds: Vec<_> = m.joints().iter().map(|j| j.kind).collect();
    assert_eq!(
        kinds,
        [
            JointKind::Continuous,
            JointKind::Prismatic,
            JointKind::Revolute,
            JointKind::Revolute,
            JointKind::Fixed
        ]
    );
    let limits = m.joint_limits();
    assert!(limits[0].lower.is_infinite() && limits[0].upper.is_infinite());
    assert_eq!(
        (
            limits[1].lower,
            limits[1].upper,
            limits[1].effort,
            limits[1].velocity
        ),
        (0.0, 0.05, 20.0, 0.1)
    );
    let open_a = m.joint(m.joint_id("open_a").unwrap());
    assert_eq!(open_a.dynamics.damping, 0.05);
    assert_eq!(open_a.actuator.unwrap().motor_id, Some(7));
    let open_b = m.joint(m.joint_id("open_b").unwrap());
    assert_eq!(open_b.dof, None);
    assert_eq!(open_b.mimic.unwrap().source, m.joint_id("open_a").unwrap());

    let base = m.link(m.link_id("base").unwrap());
    let inertial = base.inertial.unwrap();
    assert_eq!(inertial.mass, 0.5);
    assert_eq!(inertial.com, Point3::new(0.0, 0.0, 0.01));
    assert_eq!(inertial.inertia[(2, 2)], 3e-3);
    assert_eq!(base.collisions[0].name.as_deref(), Some("base_box"));
    assert_eq!(
        base.collisions[0].shape,
        Shape::Box {
            half_extents: Vector3::new(0.05, 0.03, 0.01)
        }
    );
    match &base.visuals[0].shape {
        Shape::Mesh { path, scale } => {
            assert_eq!(path.to_str(), Some("package://gripper/meshes/base.stl"));
            assert_eq!(*scale, Vector3::new(0.001, 0.001, 0.001));
        }
        other => panic!("expected a mesh, got {other:?}"),
    }
    let shape = |link: &str| m.link(m.link_id(link).unwrap()).collisions.clone();
    assert_eq!(
        shape("turret")[0].shape,
        Shape::Cylinder {
            radius: 0.02,
            length: 0.04
        }
    );
    assert_eq!(shape("slide")[0].shape, Shape::Sphere { radius: 0.01 });
    assert_eq!(
        shape("finger_a")[0].shape,
        Shape::Capsule {
            radius: 0.008,
            length: 0.04
        }
    );
    // Cylinder + two end spheres of the same radius become one capsule.
    let b = shape("finger_b");
    assert_eq!(b.len(), 1);
    assert_eq!(
        b[0].shape,
        Shape::Capsule {
            radius: 0.008,
            length: 0.04
        }
    );
    assert!(shape("tip_a").is_empty());

    let tips: Vec<_> = m.fingertips().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(tips, ["a", "b"]);
    // No dex:keypoint elements: the keypoints are the fingertips.
    assert_eq!(m.keypoints().len(), 2);
}

#[test]
fn mimic_joint_follows_its_source_and_the_fingers_stay_symmetric() {
    let m = HandModel::from_urdf_str(GRIPPER).unwrap();
    let tips = m.fingertip_positions(&[0.0, 0.02, 0.4]).unwrap();
    // Finger b is finger a turned by π about z: tips mirror through the z axis.
    assert!((tips[0].x + tips[1].x).abs() < 1e-6, "{tips:?}");
    assert!((tips[0].y + tips[1].y).abs() < 1e-6);
    assert!((tips[0].z - tips[1].z).abs() < 1e-6);
    // The prismatic joint lifts both tips by exactly its value.
    let lifted = m.fingertip_positions(&[0.0, 0.05, 0.4]).unwrap();
    assert!((lifted[0].z - tips[0].z - 0.03).abs() < 1e-12);
}

#[test]
fn a_urdf_without_dex_extensions_gets_leaf_fingertips() {
    let plain = GRIPPER
        .lines()
        .filter(|l| !l.contains("<dex:"))
        .collect::<Vec<_>>()
        .join("\n");
    let m = HandModel::from_urdf_str(&plain).unwrap();
    let tips: Vec<_> = m.fingertips().iter().map(|f| f.name.as_str()).collect();
    assert_eq!(tips, ["finger_b", "tip_a"]);
    assert!(m.joints().iter().all(|j| j.actuator.is_none()));
}

#[test]
fn loads_from_a_file_and_reports_a_missing_one() {
    let dir = std::env::temp_dir().join(format!("dex-core-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("gripper.urdf");
    std::fs::write(&path, GRIPPER).unwrap();
    assert_eq!(HandModel::from_urdf_file(&path).unwrap().dof(), 3);
    assert_eq!(HandModel::load(path.to_str().unwrap()).unwrap().dof(), 3);
    let missing = dir.join("nope.urdf");
    assert!(matches!(
        HandModel::from_urdf_file(&missing),
        Err(Error::Io { .. })
    ));
    std::fs::remove_dir_all(&dir).ok();
}

fn load_err(text: &str) -> Error {
    HandModel::from_urdf_str(text).expect_err("the model is malformed")
}

fn two_links(joint: &str) -> String {
    format!(r#"<robot name="r"><link name="a"/><link name="b"/>{joint}</robot>"#)
}

#[test]
fn malformed_models_are_errors_naming_the_culprit() {
    // Missing parent link.
    let e = load_err(&two_links(
        r#"<joint name="j" type="fixed"><parent link="ghost"/><child link="b"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::MissingLink { joint, role: "parent", link } if joint == "j" && link == "ghost"),
        "{e}"
    );

    // Unknown joint type, named.
    let e = load_err(&two_links(
        r#"<joint name="hinge1" type="hinge"><parent link="a"/><child link="b"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::UnknownJointType { joint, kind } if joint == "hinge1" && kind == "hinge"),
        "{e}"
    );
    assert!(e.to_string().contains("hinge1"));

    // Supported by URDF, not by hand models.
    let e = load_err(&two_links(
        r#"<joint name="free" type="floating"><parent link="a"/><child link="b"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::UnsupportedJointType { joint, .. } if joint == "free"),
        "{e}"
    );

    // NaN origin.
    let e = load_err(&two_links(
        r#"<joint name="j" type="fixed"><origin xyz="0 nan 0"/><parent link="a"/><child link="b"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::NonFinite { what, .. } if what.contains("`j`")),
        "{e}"
    );

    // Limits lower > upper.
    let e = load_err(&two_links(
        r#"<joint name="j" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/>
           <limit lower="1" upper="-1" effort="1" velocity="1"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::InvalidLimits { joint, lower, upper } if joint == "j" && *lower == 1.0 && *upper == -1.0),
        "{e}"
    );

    // Revolute joint without a <limit>.
    let e = load_err(&two_links(
        r#"<joint name="j" type="revolute"><parent link="a"/><child link="b"/><axis xyz="0 0 1"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::InvalidValue { what, .. } if what.contains("`j`")),
        "{e}"
    );

    // Zero axis.
    let e = load_err(&two_links(
        r#"<joint name="j" type="continuous"><parent link="a"/><child link="b"/><axis xyz="0 0 0"/></joint>"#,
    ));
    assert!(
        matches!(&e, Error::InvalidValue { what, .. } if what.contains("axis of joint `j`")),
        "{e}"
    );

    // Duplicate link and joint names.
    let e = load_err(r#"<robot name="r"><link name="a"/><link name="a"/></robot>"#);
    assert!(
        matches!(&e, Error::DuplicateLink { name } if name == "a"),
        "{e}"
    );
    let e = load_err(
        r#"<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
           <joint name="j" type="fixed"><parent link="a"/><child link="b"/></joint>
           <joint name="j" type="fixed"><parent link="b"/><child link="c"/></joint></robot>"#,
    );
    assert!(
        matches!(&e, Error::DuplicateJoint { name } if name == "j"),
        "{e}"
    );

    // Two joints for one child.
    let e = load_err(
        r#"<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
           <joint name="j1" type="fixed"><parent link="a"/><child link="c"/></joint>
           <joint name="j2" type="fixed"><parent link="b"/><child link="c"/></joint></robot>"#,
    );
    assert!(
        matches!(&e, Error::MultipleParents { link, first, second } if link == "c" && first == "j1" && second == "j2"),
        "{e}"
    );

    // A cycle: b → c → b, with a as the only root but b and c unreachable.
    let e = load_err(
        r#"<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
           <joint name="j1" type="fixed"><parent link="b"/><child link="c"/></joint>
           <joint name="j2" type="fixed"><parent link="c"/><child link="b"/></joint></robot>"#,
    );
    assert!(
        matches!(&e, Error::Cycle { link } if link == "b" || link == "c"),
        "{e}"
    );

    // A pure cycle with no root at all.
    let e = load_err(
        r#"<robot name="r"><link name="b"/><link name="c"/>
           <joint name="j1" type="fixed"><parent link="b"/><child link="c"/></joint>
           <joint name="j2" type="fixed"><parent link="c"/><child link="b"/></joint></robot>"#,
    );
    assert!(matches!(&e, Error::Cycle { .. }), "{e}");

    // Two roots.
    let e = load_err(r#"<robot name="r"><link name="a"/><link name="b"/></robot>"#);
    assert!(
        matches!(&e, Error::Root { roots } if roots == &["a", "b"]),
        "{e}"
    );

    // Negative mass, non-positive box size.
    let e = load_err(
        r#"<robot name="r"><link name="a"><inertial><mass value="-1"/>
           <inertia ixx="1" ixy="0" ixz="0" iyy="1" iyz="0" izz="1"/></inertial></link></robot>"#,
    );
    assert!(
        matches!(&e, Error::InvalidValue { what, .. } if what.contains("`a`")),
        "{e}"
    );
    let e = load_err(
        r#"<robot name="r"><link name="a"><collision><geometry><box size="0.1 0 0.1"/></geometry></collision></link></robot>"#,
    );
    assert!(
        matches!(&e, Error::InvalidValue { what, .. } if what.contains("`a`")),
        "{e}"
    );

    // Not XML, not a robot.
    assert!(matches!(load_err("<robot"), Error::Urdf { .. }));
    assert!(matches!(load_err("<model name='x'/>"), Error::Urdf { .. }));
}

#[test]
fn malformed_extensions_are_errors() {
    let with = |ext: &str| GRIPPER.replace("</robot>", &format!("{ext}\n</robot>"));
    let e = load_err(&with(r#"<dex:fingertip name="c" link="nowhere"/>"#));
    assert!(
        matches!(&e, Error::InvalidExtension { element, message } if element == "fingertip" && message.contains("nowhere")),
        "{e}"
    );
    let e = load_err(&with(
        r#"<dex:actuator joint="tip_a_joint" kp="1" kv="0"/>"#,
    ));
    assert!(
        matches!(&e, Error::InvalidExtension { element, .. } if element == "actuator"),
        "{e}"
    );
    let e = load_err(&with(r#"<dex:actuator joint="spin" kp="fast" kv="0"/>"#));
    assert!(
        matches!(&e, Error::InvalidExtension { message, .. } if message.contains("kp")),
        "{e}"
    );
    let e = load_err(&with(r#"<dex:keypoint name="k" link="base" xyz="0 0"/>"#));
    assert!(
        matches!(&e, Error::InvalidExtension { message, .. } if message.contains("xyz")),
        "{e}"
    );
    let e = load_err(&with(r#"<dex:gripper/>"#));
    assert!(
        matches!(&e, Error::InvalidExtension { element, .. } if element == "gripper"),
        "{e}"
    );
}

#[test]
fn configuration_checks_name_the_joint() {
    let m = HandModel::leap_right();
    let mut q = m.mid_configuration();
    assert!(m.check_configuration(&q).is_ok());
    q[1] = 3.0;
    let e = m.check_configuration(&q).unwrap_err();
    assert!(
        matches!(&e, Error::OutOfLimits { joint, .. } if joint == "if_mcp"),
        "{e}"
    );
    m.clamp_configuration(&mut q).unwrap();
    assert_eq!(q[1], 2.23);
    q[3] = f64::NAN;
    assert!(matches!(
        m.check_configuration(&q),
        Err(Error::NonFiniteInput { index: 3, .. })
    ));
    assert!(matches!(
        m.check_configuration(&q[..15]),
        Err(Error::LengthMismatch {
            expected: 16,
            got: 15,
            ..
        })
    ));
    assert!(matches!(
        m.forward_kinematics(&[0.0; 3]),
        Err(Error::LengthMismatch { .. })
    ));
    assert!(matches!(
        m.forward_kinematics(&[f64::INFINITY; 16]),
        Err(Error::NonFiniteInput { .. })
    ));
    let e = m
        .configuration_from_named([("if_knuckle", 0.1)])
        .unwrap_err();
    assert!(
        e.to_string().contains("if_knuckle") && e.to_string().contains("if_rot"),
        "{e}"
    );
}
