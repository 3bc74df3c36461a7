//! Forward kinematics and Jacobians agree with independent computations:
//! composing joint transforms one by one, finite differences, and the batched
//! and parallel paths agree with the single one bit for bit.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::{HandModel, JointKind};
use nalgebra::{Isometry3, Translation3, UnitQuaternion};
use ndarray::Array2;
use proptest::prelude::*;

/// Pose of `link` by walking from the link up to the root, composing each joint's
/// `origin * motion(q)`: a second, recursive implementation.
fn compose_by_hand(model: &HandModel, q: &[f64], link: usize) -> Isometry3<f64> {
    let mut pose = Isometry3::identity();
    let mut cur = model.links()[link].parent_joint;
    while let Some(jid) = cur {
        let j = model.joint(jid);
        let value = match (j.dof, j.mimic) {
            (Some(d), _) => q[d],
            (None, Some(m)) => m.multiplier * q[model.joint(m.source).dof.unwrap()] + m.offset,
            (None, None) => 0.0,
        };
        let motion = match j.kind {
            JointKind::Revolute | JointKind::Continuous => Isometry3::from_parts(
                Translation3::identity(),
                UnitQuaternion::from_axis_angle(&j.axis, value),
            ),
            JointKind::Prismatic => Isometry3::from_parts(
                Translation3::from(j.axis.into_inner() * value),
                UnitQuaternion::identity(),
            ),
            JointKind::Fixed => Isometry3::identity(),
        };
        pose = j.origin * motion * pose;
        cur = model.link(j.parent).parent_joint;
    }
    pose
}

fn gripper() -> HandModel {
    // Prismatic, continuous and mimic joints, which the built-in hands lack.
    HandModel::from_urdf_str(
        r#"<robot name="g"><link name="base"/><link name="t"/><link name="s"/><link name="a"/><link name="b"/>
        <joint name="spin" type="continuous"><parent link="base"/><child link="t"/><origin xyz="0 0 0.02" rpy="0.1 0.2 0.3"/><axis xyz="0.3 0 1"/></joint>
        <joint name="lift" type="prismatic"><parent link="t"/><child link="s"/><origin xyz="0.01 0 0.04"/><axis xyz="0 1 1"/><limit lower="-0.05" upper="0.05" effort="1" velocity="1"/></joint>
        <joint name="fa" type="revolute"><parent link="s"/><child link="a"/><origin xyz="0.02 0 0" rpy="0 0.1 0"/><axis xyz="0 1 0"/><limit lower="-1" upper="1" effort="1" velocity="1"/></joint>
        <joint name="fb" type="revolute"><parent link="s"/><child link="b"/><origin xyz="-0.02 0 0" rpy="0 0.1 3.14159"/><axis xyz="0 1 0"/><limit lower="-2" upper="2" effort="1" velocity="1"/><mimic joint="fa" multiplier="-1.5" offset="0.2"/></joint>
        </robot>"#,
    )
    .unwrap()
}

fn models() -> Vec<HandModel> {
    vec![
        HandModel::leap_right(),
        HandModel::allegro_right(),
        gripper(),
    ]
}

/// A configuration inside the limits from unit-interval samples (unlimited joints: ±π).
fn within_limits(model: &HandModel, u: &[f64]) -> Vec<f64> {
    model
        .joint_limits()
        .iter()
        .zip(u)
        .map(|(l, u)| {
            let (lo, hi) = if l.lower.is_finite() {
                (l.lower, l.upper)
            } else {
                (-3.2, 3.2)
            };
            lo + u * (hi - lo)
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn fk_equals_composing_joint_transforms(u in prop::collection::vec(0.0f64..1.0, 16)) {
        for model in models() {
            let q = within_limits(&model, &u);
            let poses = model.forward_kinematics(&q).unwrap();
            for (i, pose) in poses.iter().enumerate() {
                let expected = compose_by_hand(&model, &q, i);
                let err = (pose.to_homogeneous() - expected.to_homogeneous()).abs().max();
                prop_assert!(err < 1e-12, "{} link {} error {}", model.name(), model.links()[i].name, err);
            }
        }
    }

    #[test]
    fn jacobian_matches_finite_differences(u in prop::collection::vec(0.02f64..0.98, 16)) {
        for model in models() {
            let q = within_limits(&model, &u);
            for frame in model.fingertips().iter().chain(model.keypoints()) {
                let point = frame.offset.translation.vector.into();
                let jac = model.jacobian(&q, frame.link, &point).unwrap();
                let h = 1e-6;
                for d in 0..model.dof() {
                    let mut plus = q.clone();
                    let mut minus = q.clone();
                    plus[d] += h;
                    minus[d] -= h;
                    let pp = model.forward_kinematics(&plus).unwrap()[frame.link.0];
                    let pm = model.forward_kinematics(&minus).unwrap()[frame.link.0];
                    let linear = ((pp * point) - (pm * point)) / (2.0 * h);
                    let angular = (pp.rotation * pm.rotation.inverse()).scaled_axis() / (2.0 * h);
                    for r in 0..3 {
                        prop_assert!((jac[(r, d)] - linear[r]).abs() < 1e-6,
                            "{} frame {} dof {} linear row {}: {} vs {}", model.name(), frame.name, d, r, jac[(r, d)], linear[r]);
                        prop_assert!((jac[(r + 3, d)] - angular[r]).abs() < 1e-6,
                            "{} frame {} dof {} angular row {}: {} vs {}", model.name(), frame.name, d, r, jac[(r + 3, d)], angular[r]);
                    }
                }
            }
        }
    }
}

#[test]
fn batched_and_parallel_fk_equal_single_fk_bit_for_bit() {
    for model in models() {
        let n = 300;
        let dof = model.dof();
        let qs = Array2::from_shape_fn((n, dof), |(b, d)| {
            let u = ((b * 7919 + d * 104_729) % 1000) as f64 / 1000.0;
            let l = model.joint_limits()[d];
            if l.lower.is_finite() {
                l.lower + u * (l.upper - l.lower)
            } else {
                6.0 * u - 3.0
            }
        });
        let batch = model.forward_kinematics_batch(qs.view()).unwrap();
        let mut par = vec![Isometry3::identity(); batch.len()];
        model
            .forward_kinematics_batch_par_into(qs.view(), &mut par)
            .unwrap();
        // A non-contiguous view takes the other path.
        let transposed = qs.t().to_owned();
        let strided = model.forward_kinematics_batch(transposed.t()).unwrap();
        let nl = model.links().len();
        for b in 0..n {
            let single = model
                .forward_kinematics(qs.row(b).as_slice().unwrap())
                .unwrap();
            assert_eq!(&batch[b * nl..(b + 1) * nl], single.as_slice());
            assert_eq!(&par[b * nl..(b + 1) * nl], single.as_slice());
            assert_eq!(&strided[b * nl..(b + 1) * nl], single.as_slice());
        }
    }
}

#[test]
fn batched_fk_rejects_bad_shapes_and_values() {
    let model = HandModel::leap_right();
    let wrong = Array2::<f64>::zeros((4, 15));
    assert!(matches!(
        model.forward_kinematics_batch(wrong.view()),
        Err(dex_core::Error::ShapeMismatch { .. })
    ));
    let mut nan = Array2::<f64>::zeros((4, 16));
    nan[(2, 5)] = f64::NAN;
    assert!(matches!(
        model.forward_kinematics_batch(nan.view()),
        Err(dex_core::Error::NonFiniteInput { index: 37, .. })
    ));
    let ok = Array2::<f64>::zeros((4, 16));
    let mut short = vec![Isometry3::identity(); 3];
    assert!(
        model
            .forward_kinematics_batch_into(ok.view(), &mut short)
            .is_err()
    );
}
