//! Kabsch and Umeyama recover rigid transforms and similarities from noisy
//! correspondences, and refuse inputs that do not determine one.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::Error;
use dex_core::geometry::{
    alignment_rmse, kabsch, kabsch_weighted, point_set_rotation_error, rotation_distance, umeyama,
};
use nalgebra::{Isometry3, Point3, Similarity3, Translation3, UnitQuaternion, Vector3};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn cloud(rng: &mut ChaCha8Rng, n: usize) -> Vec<Point3<f64>> {
    (0..n)
        .map(|_| {
            Point3::new(
                rng.random_range(-0.1..0.1),
                rng.random_range(-0.05..0.05),
                rng.random_range(-0.08..0.08),
            )
        })
        .collect()
}

fn gaussian(rng: &mut ChaCha8Rng, sigma: f64) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    sigma * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn kabsch_recovers_a_random_rigid_transform_from_noisy_points(
        seed in any::<u64>(),
        axis in prop::array::uniform3(-1.0f64..1.0),
        angle in -3.1f64..3.1,
        t in prop::array::uniform3(-0.5f64..0.5),
    ) {
        prop_assume!(Vector3::from(axis).norm() > 1e-3);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let truth = Isometry3::from_parts(
            Translation3::new(t[0], t[1], t[2]),
            UnitQuaternion::from_scaled_axis(Vector3::from(axis).normalize() * angle),
        );
        let source = cloud(&mut rng, 200);
        let sigma = 0.001;
        let target: Vec<_> = source
            .iter()
            .map(|p| truth * p + Vector3::new(gaussian(&mut rng, sigma), gaussian(&mut rng, sigma), gaussian(&mut rng, sigma)))
            .collect();
        let est = kabsch(&source, &target).unwrap();
        let rot_err = rotation_distance(&est.rotation, &truth.rotation);
        let trans_err = (est.translation.vector - truth.translation.vector).norm();
        prop_assert!(rot_err < 0.01, "rotation error {rot_err} rad");
        prop_assert!(trans_err < 0.001, "translation error {trans_err} m");
        // The residual is the noise level, not more.
        let rmse = alignment_rmse(&est, &source, &target).unwrap();
        prop_assert!(rmse < 2.5 * sigma, "rmse {rmse}");
    }

    #[test]
    fn umeyama_recovers_scale(seed in any::<u64>(), scale in 0.2f64..5.0) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let truth = Similarity3::from_parts(
            Translation3::new(0.1, -0.3, 0.2),
            UnitQuaternion::from_euler_angles(0.3, -1.0, 2.0),
            scale,
        );
        let source = cloud(&mut rng, 50);
        let target: Vec<_> = source.iter().map(|p| truth * p).collect();
        let est = umeyama(&source, &target).unwrap();
        prop_assert!((est.scaling() - scale).abs() < 1e-9 * scale);
        prop_assert!((est.to_homogeneous() - truth.to_homogeneous()).abs().max() < 1e-9);
    }
}

#[test]
fn exact_transform_from_three_points_is_recovered_without_reflection() {
    // Three points: the third singular value is zero; the determinant fix must
    // still return a proper rotation, not a mirror.
    let truth = Isometry3::new(Vector3::new(1.0, 2.0, 3.0), Vector3::new(0.0, 0.0, 2.5));
    let source = [
        Point3::new(0.0, 0.0, 0.0),
        Point3::new(1.0, 0.0, 0.0),
        Point3::new(0.0, 1.0, 0.0),
    ];
    let target: Vec<_> = source.iter().map(|p| truth * p).collect();
    let est = kabsch(&source, &target).unwrap();
    assert!((est.to_homogeneous() - truth.to_homogeneous()).abs().max() < 1e-12);
    assert!(est.rotation.to_rotation_matrix().matrix().determinant() > 0.0);
}

#[test]
fn weights_select_the_inliers() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let truth = Isometry3::new(Vector3::new(0.02, 0.0, -0.01), Vector3::new(0.2, 0.1, 0.0));
    let source = cloud(&mut rng, 40);
    let mut target: Vec<_> = source.iter().map(|p| truth * p).collect();
    let mut weights = vec![1.0; 40];
    for i in 0..10 {
        target[i] += Vector3::new(0.5, -0.3, 0.2); // outliers
        weights[i] = 0.0;
    }
    let unweighted = kabsch(&source, &target).unwrap();
    let weighted = kabsch_weighted(&source, &target, &weights).unwrap();
    assert!(
        (weighted.to_homogeneous() - truth.to_homogeneous())
            .abs()
            .max()
            < 1e-12
    );
    assert!(
        (unweighted.to_homogeneous() - truth.to_homogeneous())
            .abs()
            .max()
            > 1e-2
    );
}

#[test]
fn rotation_error_of_point_sets_is_the_applied_angle() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let source = cloud(&mut rng, 64);
    let turn = Isometry3::new(Vector3::new(0.3, 0.0, 0.0), Vector3::new(0.0, 0.7, 0.0));
    let goal: Vec<_> = source.iter().map(|p| turn * p).collect();
    assert!((point_set_rotation_error(&source, &goal).unwrap() - 0.7).abs() < 1e-12);
}

#[test]
fn bad_inputs_are_errors() {
    let p = |x: f64, y: f64| Point3::new(x, y, 0.0);
    assert!(matches!(
        kabsch(&[p(0.0, 0.0), p(1.0, 0.0)], &[p(0.0, 0.0), p(1.0, 0.0)]),
        Err(Error::TooFewPoints {
            needed: 3,
            got: 2,
            ..
        })
    ));
    assert!(matches!(
        kabsch(&[p(0.0, 0.0); 4], &[p(0.0, 0.0); 3]),
        Err(Error::LengthMismatch { .. })
    ));
    let collinear = [p(0.0, 0.0), p(1.0, 0.0), p(2.0, 0.0), p(3.0, 0.0)];
    assert!(matches!(
        kabsch(&collinear, &collinear),
        Err(Error::Degenerate { .. })
    ));
    assert!(matches!(
        kabsch(&[p(1.0, 1.0); 5], &[p(1.0, 1.0); 5]),
        Err(Error::Degenerate { .. })
    ));
    let mut nan = vec![p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0)];
    nan[1].y = f64::NAN;
    assert!(matches!(
        kabsch(&nan, &nan),
        Err(Error::NonFiniteInput { index: 1, .. })
    ));
    let tri = [p(0.0, 0.0), p(1.0, 0.0), p(0.0, 1.0)];
    assert!(matches!(
        kabsch_weighted(&tri, &tri, &[1.0, -1.0, 1.0]),
        Err(Error::InvalidValue { .. })
    ));
    assert!(matches!(
        kabsch_weighted(&tri, &tri, &[0.0; 3]),
        Err(Error::Degenerate { .. })
    ));
}
