//! Object-centric goal tracks: where an object's points should be over time.

use dex_core::PointTracks;
use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, Array3};

use crate::error::{Result, invalid};

/// The goal tracks of `model_points` (in the object frame) carried through a
/// sequence of desired object poses (object → world): `T × N × 3`, every point
/// visible. Dex4D conditions its policy on such tracks, extracted from a video
/// of the task.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] for no poses or no points.
pub fn goal_tracks(model_points: &[Point3<f64>], poses: &[Isometry3<f64>]) -> Result<PointTracks> {
    if model_points.is_empty() || poses.is_empty() {
        return Err(invalid(
            "goal tracks need at least one model point and one pose",
        ));
    }
    let (t, n) = (poses.len(), model_points.len());
    let positions = Array3::from_shape_fn((t, n, 3), |(k, i, c)| {
        (poses[k] * model_points[i])[c] as f32
    });
    Ok(PointTracks::try_new(
        positions,
        Array2::from_elem((t, n), true),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn tracks_follow_the_poses() {
        let pts = [Point3::new(0.1, 0.0, 0.0), Point3::new(0.0, 0.2, 0.0)];
        let poses = [
            Isometry3::identity(),
            Isometry3::new(
                Vector3::new(0.0, 0.0, 1.0),
                Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2),
            ),
        ];
        let g = goal_tracks(&pts, &poses).unwrap();
        assert_eq!((g.num_frames(), g.num_points(), g.dim()), (2, 2, 3));
        let p = g.positions();
        assert!((p[(1, 0, 1)] - 0.1).abs() < 1e-6 && (p[(1, 0, 2)] - 1.0).abs() < 1e-6);
        assert!((p[(1, 1, 0)] + 0.2).abs() < 1e-6);
        assert!(goal_tracks(&[], &poses).is_err());
    }
}
