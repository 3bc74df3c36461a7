//! Rigid pose from tracked correspondences, robust to a few wrong tracks.

use dex_core::geometry::kabsch_weighted;
use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, invalid};
use crate::tracker::{Observation, TrackFrame, Tracker};

/// Settings of [`fit_rigid_robust`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RobustFitConfig {
    /// A correspondence is an inlier when its residual is at most
    /// `max(residual_factor × median residual, min_threshold)`.
    pub residual_factor: f64,
    /// Residuals below this (m) always count as inliers (so a near-perfect fit is
    /// not trimmed into noise).
    pub min_threshold: f64,
    /// Refits after trimming, at most.
    pub max_rounds: usize,
}

impl Default for RobustFitConfig {
    fn default() -> Self {
        Self {
            residual_factor: 3.0,
            min_threshold: 0.002,
            max_rounds: 5,
        }
    }
}

/// The outcome of [`fit_rigid_robust`].
#[derive(Debug, Clone, PartialEq)]
pub struct RobustFit {
    /// Source → target transform fitted to the inliers.
    pub transform: Isometry3<f64>,
    /// Whether each correspondence was kept.
    pub inliers: Vec<bool>,
    /// Root-mean-square residual of the inliers (m).
    pub rmse: f64,
}

/// Kabsch on correspondences with trimming: fit every pair, drop the pairs whose
/// residual exceeds [`RobustFitConfig`]'s threshold, refit, until the inlier set stops
/// changing. A handful of wrong tracks (a point lifted onto the surface behind an
/// object's silhouette, a track that slid onto a finger) then no longer drags the pose.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] for lists of different lengths, fewer than 3 pairs,
/// non-finite points or bad settings; a degenerate (collinear) inlier set is reported
/// as the underlying Kabsch error.
pub fn fit_rigid_robust(
    source: &[Point3<f64>],
    target: &[Point3<f64>],
    config: &RobustFitConfig,
) -> Result<RobustFit> {
    if source.len() != target.len() {
        return Err(invalid(format!(
            "{} source points for {} target points",
            source.len(),
            target.len()
        )));
    }
    if source.len() < 3 {
        return Err(invalid(format!(
            "a rigid fit needs at least 3 correspondences, got {}",
            source.len()
        )));
    }
    let ok = |v: f64| v.is_finite() && v > 0.0;
    let threshold_ok = config.min_threshold.is_finite() && config.min_threshold >= 0.0;
    if !(ok(config.residual_factor) && threshold_ok) {
        return Err(invalid(
            "robust fit needs a positive residual factor and a non-negative threshold",
        ));
    }
    let mut weights = vec![1.0; source.len()];
    let mut transform = kabsch_weighted(source, target, &weights)?;
    let mut residuals = vec![0.0; source.len()];
    for _ in 0..config.max_rounds {
        for (r, (s, t)) in residuals.iter_mut().zip(source.iter().zip(target)) {
            *r = (transform * s - t).norm();
        }
        let mut sorted = residuals.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted[sorted.len() / 2];
        let threshold = (config.residual_factor * median).max(config.min_threshold);
        let next: Vec<f64> = residuals
            .iter()
            .map(|r| if *r <= threshold { 1.0 } else { 0.0 })
            .collect();
        if next == weights {
            break;
        }
        if next.iter().sum::<f64>() < 3.0 {
            break;
        }
        weights = next;
        transform = kabsch_weighted(source, target, &weights)?;
    }
    let (mut sum, mut n) = (0.0, 0.0);
    for ((s, t), w) in source.iter().zip(target).zip(&weights) {
        if *w > 0.0 {
            sum += (transform * s - t).norm_squared();
            n += 1.0;
        }
    }
    Ok(RobustFit {
        transform,
        inliers: weights.iter().map(|w| *w > 0.0).collect(),
        rmse: (sum / n).sqrt(),
    })
}

/// Tracks a rigid object from the 3D tracks of points on it: wraps a 3D tracker (a
/// [`crate::LiftedTracker`], an oracle), takes the first frame's visible points as the
/// object's model, and in every later frame fits the model to the visible tracks with
/// [`fit_rigid_robust`]. What it reports:
///
/// - the object's pose ([`RigidObjectTracker::pose`]): the fitted motion since the
///   first frame applied to the initial pose given with
///   [`RigidObjectTracker::with_initial_pose`] (identity by default, then the pose is
///   the motion since the first frame);
/// - every point's position from the fitted pose, hidden points included, so a
///   policy always sees the whole object;
/// - visibility: only tracks that agree with the rigid motion. A 2D track that slid
///   onto a finger passing in front of the object moves unlike the object and is
///   reported invisible, which the tracker underneath cannot tell.
///
/// When fewer than 3 tracks remain, or the fit fails, every point is reported
/// invisible at its last position and [`RigidObjectTracker::lost`] is true for the
/// frame; tracking goes on with the next one.
#[derive(Debug)]
pub struct RigidObjectTracker<T: Tracker> {
    inner: T,
    config: RobustFitConfig,
    initial_pose: Isometry3<f64>,
    /// First-frame positions (world); NaN for points not seen then.
    model: Vec<Point3<f64>>,
    /// Motion since the first frame.
    motion: Isometry3<f64>,
    lost: bool,
}

impl<T: Tracker> RigidObjectTracker<T> {
    /// Wraps `inner`, which must report 3D points.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] if `inner` is a 2D tracker.
    pub fn new(inner: T, config: RobustFitConfig) -> Result<Self> {
        if inner.dim() != 3 {
            return Err(invalid(
                "a rigid object tracker needs a 3D tracker underneath (lift image tracks first)",
            ));
        }
        Ok(Self {
            inner,
            config,
            initial_pose: Isometry3::identity(),
            model: Vec::new(),
            motion: Isometry3::identity(),
            lost: false,
        })
    }

    /// The object's pose (object → world) at the first frame, so that
    /// [`RigidObjectTracker::pose`] is absolute.
    pub fn with_initial_pose(mut self, pose: Isometry3<f64>) -> Self {
        self.initial_pose = pose;
        self
    }

    /// The object's pose at the last frame.
    pub fn pose(&self) -> Isometry3<f64> {
        self.motion * self.initial_pose
    }

    /// Whether the last frame had too few consistent tracks for a fit.
    pub fn lost(&self) -> bool {
        self.lost
    }

    /// The wrapped tracker.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    fn report(&self, visible: Vec<bool>) -> TrackFrame {
        let mut positions = Array2::from_elem((self.model.len(), 3), f32::NAN);
        for (i, m) in self.model.iter().enumerate() {
            let p = self.motion * m;
            for c in 0..3 {
                positions[(i, c)] = p[c] as f32;
            }
        }
        TrackFrame { positions, visible }
    }
}

impl<T: Tracker> Tracker for RigidObjectTracker<T> {
    fn dim(&self) -> usize {
        3
    }

    fn init(
        &mut self,
        first: &Observation<'_>,
        queries: ArrayView2<'_, f32>,
    ) -> Result<TrackFrame> {
        let f = self.inner.init(first, queries)?;
        self.model = (0..f.visible.len())
            .map(|i| {
                if f.visible[i] {
                    f.point(i)
                } else {
                    Point3::new(f64::NAN, f64::NAN, f64::NAN)
                }
            })
            .collect();
        self.motion = Isometry3::identity();
        self.lost = false;
        Ok(self.report(f.visible))
    }

    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame> {
        if self.model.is_empty() {
            return Err(Error::NotInitialized);
        }
        let f = self.inner.track(next)?;
        let used: Vec<usize> = (0..self.model.len())
            .filter(|&i| {
                f.visible[i]
                    && self.model[i].x.is_finite()
                    && f.point(i).coords.iter().all(|c| c.is_finite())
            })
            .collect();
        let source: Vec<Point3<f64>> = used.iter().map(|&i| self.model[i]).collect();
        let target: Vec<Point3<f64>> = used.iter().map(|&i| f.point(i)).collect();
        let mut visible = vec![false; self.model.len()];
        match fit_rigid_robust(&source, &target, &self.config) {
            Ok(fit) => {
                self.motion = fit.transform;
                self.lost = false;
                for (k, &i) in used.iter().enumerate() {
                    visible[i] = fit.inliers[k];
                }
            }
            Err(_) => self.lost = true,
        }
        Ok(self.report(visible))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_core::geometry::rotation_distance;
    use nalgebra::Vector3;

    #[test]
    fn outliers_are_trimmed_and_the_pose_recovered() {
        let truth = Isometry3::new(Vector3::new(0.1, -0.05, 0.3), Vector3::new(0.3, -0.2, 0.5));
        let source: Vec<Point3<f64>> = (0..100)
            .map(|i| {
                let t = f64::from(i);
                Point3::new(
                    0.03 * (t * 0.7).sin(),
                    0.03 * (t * 1.3).cos(),
                    0.002 * (t % 17.0),
                )
            })
            .collect();
        let mut target: Vec<Point3<f64>> = source.iter().map(|p| truth * p).collect();
        // Ten tracks jumped 3–5 cm (lifted onto a surface behind the object).
        for (k, p) in target.iter_mut().enumerate().take(10) {
            p.z += 0.03 + 0.002 * k as f64;
        }
        let plain = dex_core::geometry::kabsch(&source, &target).unwrap();
        let robust = fit_rigid_robust(&source, &target, &RobustFitConfig::default()).unwrap();
        let err = |t: &Isometry3<f64>| {
            (
                rotation_distance(&t.rotation, &truth.rotation).to_degrees(),
                (t.translation.vector - truth.translation.vector).norm(),
            )
        };
        let (plain_deg, plain_m) = err(&plain);
        let (deg, m) = err(&robust.transform);
        assert!(
            plain_deg > 1.0 || plain_m > 0.002,
            "plain Kabsch was not hurt"
        );
        assert!(deg < 1e-6 && m < 1e-9, "robust fit off by {deg}° {m} m");
        assert_eq!(robust.inliers.iter().filter(|k| !**k).count(), 10);
        assert!(robust.inliers[10..].iter().all(|k| *k));
        assert!(robust.rmse < 1e-9);
    }

    /// A 3D tracker that reports points on a body turning 2° per frame about z, except
    /// point 0, which slides 3 mm per frame along x (a track caught by a passing finger);
    /// with `nan_after_start`, point 1 is reported visible at NaN after the first frame
    /// (a pixel lifted where the depth has no value).
    struct Scripted {
        points: Vec<Point3<f64>>,
        frame: u32,
        nan_after_start: bool,
    }

    impl Tracker for Scripted {
        fn dim(&self) -> usize {
            3
        }
        fn init(&mut self, _: &Observation<'_>, _: ArrayView2<'_, f32>) -> Result<TrackFrame> {
            self.frame = 0;
            Ok(self.frame())
        }
        fn track(&mut self, _: &Observation<'_>) -> Result<TrackFrame> {
            self.frame += 1;
            Ok(self.frame())
        }
    }

    impl Scripted {
        fn motion(&self) -> Isometry3<f64> {
            Isometry3::new(
                Vector3::new(0.001, 0.0, 0.0) * f64::from(self.frame),
                Vector3::z() * (2f64.to_radians() * f64::from(self.frame)),
            )
        }
        fn frame(&self) -> TrackFrame {
            let m = self.motion();
            let mut positions = Array2::zeros((self.points.len(), 3));
            for (i, p) in self.points.iter().enumerate() {
                let mut q = m * p;
                if i == 0 {
                    q = p + Vector3::x() * 0.003 * f64::from(self.frame);
                }
                if i == 1 && self.nan_after_start && self.frame > 0 {
                    q = Point3::new(f64::NAN, f64::NAN, f64::NAN);
                }
                for c in 0..3 {
                    positions[(i, c)] = q[c] as f32;
                }
            }
            TrackFrame {
                positions,
                visible: vec![true; self.points.len()],
            }
        }
    }

    /// Twelve points on a body 4 cm across, at three heights.
    fn body_points() -> Vec<Point3<f64>> {
        (0..12)
            .map(|i| {
                let a = f64::from(i) * 0.5;
                Point3::new(0.02 * a.cos(), 0.02 * a.sin(), 0.004 * f64::from(i % 3))
            })
            .collect()
    }

    #[test]
    fn the_rigid_tracker_fits_the_motion_and_hides_the_slipping_track() {
        let points = body_points();
        let inner = Scripted {
            points: points.clone(),
            frame: 0,
            nan_after_start: false,
        };
        let start = Isometry3::translation(0.0, 0.0, 0.1);
        let mut tracker = RigidObjectTracker::new(inner, RobustFitConfig::default())
            .unwrap()
            .with_initial_pose(start);
        let obs = Observation::ground_truth(Isometry3::identity());
        assert!(matches!(tracker.track(&obs), Err(Error::NotInitialized)));
        let q = Array2::<f32>::zeros((12, 2));
        let first = tracker.init(&obs, q.view()).unwrap();
        assert!(first.visible.iter().all(|v| *v));
        let mut f = first;
        for _ in 0..10 {
            f = tracker.track(&obs).unwrap();
        }
        assert!(!tracker.lost());
        // Frame 10: the motion is 20° about z and 1 cm along x, applied after `start`.
        let expected = tracker.get_ref().motion() * start;
        let pose = tracker.pose();
        assert!(rotation_distance(&pose.rotation, &expected.rotation) < 1e-6);
        assert!((pose.translation.vector - expected.translation.vector).norm() < 1e-6);
        assert!(!f.visible[0] && f.visible[1..].iter().all(|v| *v));
        // The slipping point is placed where the body carries it, not where it slid.
        let carried = tracker.get_ref().motion() * points[0];
        let p0 = f.point(0);
        assert!((p0 - carried).norm() < 1e-5);
        // A 2D tracker cannot be wrapped.
        let flat = crate::MockTracker::new(vec![0.0, 0.0]);
        assert!(RigidObjectTracker::new(flat, RobustFitConfig::default()).is_err());
    }

    #[test]
    fn a_track_lifted_to_nan_is_left_out_of_the_fit() {
        let points = body_points();
        let inner = Scripted {
            points,
            frame: 0,
            nan_after_start: true,
        };
        let mut tracker = RigidObjectTracker::new(inner, RobustFitConfig::default()).unwrap();
        let obs = Observation::ground_truth(Isometry3::identity());
        tracker
            .init(&obs, Array2::<f32>::zeros((12, 2)).view())
            .unwrap();
        let mut f = tracker.track(&obs).unwrap();
        for _ in 0..9 {
            assert!(!tracker.lost(), "one NaN point must not lose the object");
            f = tracker.track(&obs).unwrap();
        }
        assert!(!tracker.lost());
        assert!(!f.visible[1]);
        let expected = tracker.get_ref().motion();
        assert!(rotation_distance(&tracker.pose().rotation, &expected.rotation) < 1e-6);
        assert!(f.point(1).coords.iter().all(|c| c.is_finite()));
    }

    #[test]
    fn bad_input_is_an_error() {
        let p = [Point3::origin(), Point3::new(1.0, 0.0, 0.0)];
        let c = RobustFitConfig::default();
        assert!(fit_rigid_robust(&p, &p, &c).is_err());
        assert!(fit_rigid_robust(&p, &p[..1], &c).is_err());
        let q = [
            Point3::origin(),
            Point3::new(1.0, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
        ];
        let bad = RobustFitConfig {
            residual_factor: f64::NAN,
            ..c
        };
        assert!(fit_rigid_robust(&q, &q, &bad).is_err());
        let nan = [
            Point3::origin(),
            Point3::new(f64::NAN, 0.0, 0.0),
            Point3::new(0.0, 1.0, 0.0),
        ];
        assert!(fit_rigid_robust(&nan, &q, &c).is_err());
    }
}
