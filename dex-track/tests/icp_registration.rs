//! ICP recovers random rigid transforms of a box and a mug-like cylinder within
//! its basin (20° and 2 cm), and does not claim convergence when it fails.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_core::geometry::rotation_distance;
use dex_track::synthetic::{box_surface, mug_surface, random_transform};
use dex_track::{IcpConfig, IcpMethod, IcpTarget};
use nalgebra::{Isometry3, Point3, Vector3};

fn shapes() -> Vec<(&'static str, Vec<Point3<f64>>)> {
    vec![
        ("box", box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, 1)),
        ("mug", mug_surface(0.04, 0.1, 5000, 2)),
    ]
}

fn errors(estimate: &Isometry3<f64>, truth: &Isometry3<f64>) -> (f64, f64) {
    (
        rotation_distance(&estimate.rotation, &truth.rotation).to_degrees(),
        (estimate.translation.vector - truth.translation.vector).norm(),
    )
}

#[test]
fn point_to_plane_recovers_20_degree_2_cm_offsets() {
    for (name, model) in shapes() {
        // The scan: the model seen at a different pose, sampled independently.
        let target_model = match name {
            "box" => box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, 10),
            _ => mug_surface(0.04, 0.1, 5000, 20),
        };
        let target = IcpTarget::new(&target_model, 10).unwrap();
        for trial in 0..5 {
            let truth = random_transform(20f64.to_radians(), 0.02, 100 + trial);
            // Source = the target's surface seen from the truth's inverse pose.
            let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
            let r = target
                .register(&source, &Isometry3::identity(), &IcpConfig::default())
                .unwrap();
            let (deg, m) = errors(&r.transform, &truth);
            assert!(r.converged, "{name} trial {trial}: {r:?}");
            assert!(deg < 1.0 && m < 0.002, "{name} trial {trial}: {deg}° {m} m");
        }
    }
}

#[test]
fn point_to_point_recovers_small_offsets() {
    for (name, model) in shapes() {
        let truth = random_transform(5f64.to_radians(), 0.005, 7);
        let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
        let config = IcpConfig {
            method: IcpMethod::PointToPoint,
            max_iterations: 100,
            ..IcpConfig::default()
        };
        let r = IcpTarget::new(&model, 10)
            .unwrap()
            .register(&source, &Isometry3::identity(), &config)
            .unwrap();
        let (deg, m) = errors(&r.transform, &truth);
        assert!(deg < 0.5 && m < 0.001, "{name}: {deg}° {m} m ({r:?})");
    }
}

#[test]
fn failure_outside_the_basin_is_reported() {
    let model = mug_surface(0.04, 0.1, 3000, 3);
    let target = IcpTarget::new(&model, 10).unwrap();
    // 30 cm away: no correspondences within 5 cm.
    let far: Vec<_> = model
        .iter()
        .map(|p| p + Vector3::new(0.3, 0.0, 0.0))
        .collect();
    let r = target
        .register(&far, &Isometry3::identity(), &IcpConfig::default())
        .unwrap();
    assert!(!r.converged, "{r:?}");
    // Large rotations: whatever ICP does, it never claims convergence on a wrong pose.
    for trial in 0..6 {
        let truth = random_transform(150f64.to_radians(), 0.01, 500 + trial);
        let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
        let r = target
            .register(&source, &Isometry3::identity(), &IcpConfig::default())
            .unwrap();
        let (deg, m) = errors(&r.transform, &truth);
        if r.converged {
            assert!(
                deg < 2.0 && m < 0.003,
                "trial {trial}: claims convergence at {deg}° {m} m ({r:?})"
            );
        }
    }
}

#[test]
fn trimming_tolerates_outliers() {
    let model = box_surface(Vector3::new(0.04, 0.03, 0.02), 4000, 5);
    let truth = random_transform(10f64.to_radians(), 0.01, 9);
    let mut source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
    // 10% of the source replaced by clutter near the object.
    for (k, p) in source.iter_mut().enumerate().filter(|(k, _)| k % 10 == 0) {
        *p = Point3::new(
            0.03 * ((k as f64) * 0.37).sin(),
            0.03 * ((k as f64) * 0.11).cos(),
            0.035,
        );
    }
    let config = IcpConfig {
        trim_fraction: 0.85,
        min_fitness: 0.5,
        ..IcpConfig::default()
    };
    let r = IcpTarget::new(&model, 10)
        .unwrap()
        .register(&source, &Isometry3::identity(), &config)
        .unwrap();
    let (deg, m) = errors(&r.transform, &truth);
    assert!(deg < 1.0 && m < 0.002, "{deg}° {m} m ({r:?})");
}
