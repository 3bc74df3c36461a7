//! The built-in hands reproduce the reference (MuJoCo Menagerie) models: every
//! body origin within 1 mm at q = 0 and at mid-range, same total mass, and the
//! LEAP joint order is the real hand's motor-ID order.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::{BuiltinHand, HandModel};
use serde_json::Value;

const REFERENCE: &str = include_str!("data/reference_fk.json");

fn reference(hand: &str) -> Value {
    let all: Value = serde_json::from_str(REFERENCE).expect("reference file parses");
    all[hand].clone()
}

fn max_body_error(model: &HandModel, q: &[f64], bodies: &Value) -> (f64, String) {
    let poses = model.forward_kinematics(q).expect("fk");
    let mut worst = (0.0, String::new());
    let bodies = bodies.as_object().expect("bodies object");
    assert!(!bodies.is_empty());
    for (name, pos) in bodies {
        let id = model
            .link_id(name)
            .unwrap_or_else(|_| panic!("the model has reference body `{name}`"));
        let p = poses[id.0].translation.vector;
        let r: Vec<f64> = pos
            .as_array()
            .expect("xyz")
            .iter()
            .map(|v| v.as_f64().expect("number"))
            .collect();
        let err = ((p.x - r[0]).powi(2) + (p.y - r[1]).powi(2) + (p.z - r[2]).powi(2)).sqrt();
        if err > worst.0 {
            worst = (err, name.clone());
        }
    }
    worst
}

fn check_hand(model: &HandModel, key: &str) {
    let reference = reference(key);
    let zero = vec![0.0; model.dof()];
    let (err, body) = max_body_error(model, &zero, &reference["zero"]);
    assert!(err < 1e-3, "{key} at q = 0: body `{body}` off by {err} m");

    let mid = &reference["mid_range"];
    let named = mid["q"]
        .as_object()
        .expect("q object")
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_f64().expect("number")));
    let q = model
        .configuration_from_named(named)
        .expect("joint names match");
    let (err, body) = max_body_error(model, &q, &mid["bodies"]);
    assert!(
        err < 1e-3,
        "{key} at mid-range: body `{body}` off by {err} m"
    );
    // The reference mid-range is the middle of every joint range.
    for (a, b) in q.iter().zip(model.mid_configuration()) {
        assert!((a - b).abs() < 1e-6);
    }

    let mass = reference["total_mass"].as_f64().expect("mass");
    assert!(
        (model.total_mass() - mass).abs() < 1e-4,
        "{key} mass {} vs {mass}",
        model.total_mass()
    );
}

#[test]
fn leap_matches_reference_kinematics_and_mass() {
    check_hand(&HandModel::leap_right(), "leap");
}

#[test]
fn allegro_matches_reference_kinematics_and_mass() {
    check_hand(&HandModel::allegro_right(), "allegro");
}

#[test]
fn leap_joint_order_is_motor_id_order() {
    let hand = HandModel::leap_right();
    let expected = [
        "if_rot", "if_mcp", "if_pip", "if_dip", "mf_rot", "mf_mcp", "mf_pip", "mf_dip", "rf_rot",
        "rf_mcp", "rf_pip", "rf_dip", "th_cmc", "th_axl", "th_mcp", "th_ipl",
    ];
    assert_eq!(hand.joint_names(), expected);
    for (i, joint) in hand.dof_joints().enumerate() {
        let actuator = joint.actuator.expect("every LEAP joint is actuated");
        assert_eq!(actuator.motor_id, Some(i as u32), "joint {}", joint.name);
        assert_eq!((actuator.kp, actuator.kv), (3.0, 0.01));
    }
    // The side-to-side joints (IDs 0, 4, 8) have the symmetric ±1.047 range.
    for i in [0, 4, 8] {
        let l = hand.joint_limits()[i];
        assert_eq!((l.lower, l.upper), (-1.047, 1.047));
    }
}

#[test]
fn both_hands_have_four_fingertips_and_eight_keypoints() {
    for hand in BuiltinHand::ALL {
        let model = hand.model();
        assert_eq!(model.dof(), 16);
        let tips: Vec<_> = model.fingertips().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(tips, ["index", "middle", "ring", "thumb"], "{hand}");
        assert_eq!(model.keypoints().len(), 8, "{hand}");
        // Fingertips are the distal ends: farther from the palm origin than the
        // middle-joint keypoints of the same finger, at the open pose.
        let kp = model
            .keypoint_positions(&model.mid_configuration())
            .expect("fk");
        for f in 0..4 {
            let mid = kp.positions[2 * f].coords.norm();
            let tip = kp.positions[2 * f + 1].coords.norm();
            assert!(tip > mid, "{hand} finger {f}: tip {tip} mid {mid}");
        }
        assert!(!model.contact_excludes().is_empty());
        for link in model.links() {
            assert!(
                link.collisions.iter().all(|g| g.shape.kind() != "mesh"),
                "{}",
                link.name
            );
        }
    }
}

#[test]
fn builtin_names_parse_and_unknown_names_are_errors() {
    assert_eq!(
        "leap".parse::<BuiltinHand>().expect("leap"),
        BuiltinHand::LeapRight
    );
    assert_eq!(
        "Allegro_Right".parse::<BuiltinHand>().expect("allegro"),
        BuiltinHand::AllegroRight
    );
    let err = HandModel::load("shadow").expect_err("not a hand");
    let msg = err.to_string();
    assert!(msg.contains("shadow") && msg.contains("leap"), "{msg}");
}
