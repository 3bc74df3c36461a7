//! The oracle tracker: object points from ground truth, degraded on purpose.

use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, invalid};
use crate::tracker::{Observation, TrackFrame, Tracker};

/// How the oracle degrades the truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OracleConfig {
    /// Standard deviation of Gaussian noise added to each coordinate (m).
    pub noise_sigma: f64,
    /// Probability that a point is reported invisible in a frame, independently.
    pub dropout: f64,
    /// With depth in the observation: a point is occluded when the depth image
    /// shows a surface more than this much (m) in front of it.
    pub occlusion_tolerance: f64,
    /// Seed of the noise and dropout.
    pub seed: u64,
}

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            noise_sigma: 0.0,
            dropout: 0.0,
            occlusion_tolerance: 0.005,
            seed: 0,
        }
    }
}

/// A 3D tracker that reads the object's true pose from each observation
/// ([`Observation::object_pose`], which a simulator fills) and reports where
/// the query points, rigidly attached to the object, are: the "perfect tracker"
/// baseline, and a stand-in for a real tracker in policy training when noise,
/// dropout and occlusion are turned on.
///
/// Queries are world points at the first observation. With depth, intrinsics
/// and a camera pose in an observation, points behind a nearer surface or
/// outside the image are reported invisible.
#[derive(Debug, Clone)]
pub struct OracleTracker {
    config: OracleConfig,
    /// Query points in the object frame.
    model: Vec<Point3<f64>>,
    rng: u64,
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn uniform(state: &mut u64) -> f64 {
    (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64
}

fn gaussian(state: &mut u64) -> f64 {
    let u1 = uniform(state).max(f64::MIN_POSITIVE);
    let u2 = uniform(state);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

impl OracleTracker {
    /// An oracle with these degradations.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a negative or non-finite noise, a dropout
    /// outside [0, 1], or a negative occlusion tolerance.
    pub fn new(config: OracleConfig) -> Result<Self> {
        if !(config.noise_sigma.is_finite() && config.noise_sigma >= 0.0) {
            return Err(invalid(format!(
                "oracle noise must be finite and non-negative, got {}",
                config.noise_sigma
            )));
        }
        if !(0.0..=1.0).contains(&config.dropout) {
            return Err(invalid(format!(
                "oracle dropout must lie in [0, 1], got {}",
                config.dropout
            )));
        }
        if !(config.occlusion_tolerance.is_finite() && config.occlusion_tolerance >= 0.0) {
            return Err(invalid(
                "oracle occlusion tolerance must be finite and non-negative",
            ));
        }
        Ok(Self {
            config,
            model: Vec::new(),
            rng: config.seed,
        })
    }

    fn frame(&mut self, obs: &Observation<'_>) -> Result<TrackFrame> {
        let pose = obs
            .object_pose
            .ok_or_else(|| invalid("the oracle needs the object's pose in every observation"))?;
        let n = self.model.len();
        let mut positions = Array2::zeros((n, 3));
        let mut visible = vec![true; n];
        let occlusion = match (obs.depth, obs.intrinsics) {
            (Some(d), Some(k)) => Some((d, k, obs.camera_pose.inverse())),
            _ => None,
        };
        for (i, m) in self.model.iter().enumerate() {
            let p = pose * m;
            if let Some((depth, k, world_to_camera)) = occlusion {
                let c = world_to_camera * p;
                let seen = k.project(&c).and_then(|(u, v)| {
                    let (u, v) = (u.round(), v.round());
                    (u >= 0.0 && v >= 0.0)
                        .then(|| depth.get(u as usize, v as usize))
                        .flatten()
                });
                visible[i] = match seen {
                    Some(d) => f64::from(d) + self.config.occlusion_tolerance >= c.z,
                    None => false, // outside the image, or no depth there
                };
            }
            if self.config.dropout > 0.0 && uniform(&mut self.rng) < self.config.dropout {
                visible[i] = false;
            }
            for c in 0..3 {
                let noise = if self.config.noise_sigma > 0.0 {
                    self.config.noise_sigma * gaussian(&mut self.rng)
                } else {
                    0.0
                };
                positions[(i, c)] = (p[c] + noise) as f32;
            }
        }
        Ok(TrackFrame { positions, visible })
    }
}

impl Tracker for OracleTracker {
    fn dim(&self) -> usize {
        3
    }

    fn init(
        &mut self,
        first: &Observation<'_>,
        queries: ArrayView2<'_, f32>,
    ) -> Result<TrackFrame> {
        if queries.nrows() == 0 || queries.ncols() != 3 {
            return Err(invalid(format!(
                "oracle queries must be N × 3 world points with N > 0, got {:?}",
                queries.shape()
            )));
        }
        if queries.iter().any(|v| !v.is_finite()) {
            return Err(invalid("oracle queries must be finite"));
        }
        let pose: Isometry3<f64> = first
            .object_pose
            .ok_or_else(|| invalid("the oracle needs the object's pose in every observation"))?;
        let inverse = pose.inverse();
        self.model = queries
            .rows()
            .into_iter()
            .map(|q| inverse * Point3::new(f64::from(q[0]), f64::from(q[1]), f64::from(q[2])))
            .collect();
        self.rng = self.config.seed;
        self.frame(first)
    }

    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame> {
        if self.model.is_empty() {
            return Err(Error::NotInitialized);
        }
        self.frame(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dex_core::{CameraIntrinsics, DepthImage};
    use nalgebra::Vector3;
    use ndarray::array;

    #[test]
    fn a_perfect_oracle_reports_the_truth() {
        let mut o = OracleTracker::new(OracleConfig::default()).unwrap();
        let start = Isometry3::translation(0.1, 0.0, 0.0);
        let f0 = o
            .init(
                &Observation::ground_truth(start),
                array![[0.1f32, 0.0, 0.05], [0.12, 0.0, 0.0]].view(),
            )
            .unwrap();
        assert_eq!(f0.visible, [true, true]);
        let moved = Isometry3::new(
            Vector3::new(0.0, 0.2, 0.0),
            Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let f = o.track(&Observation::ground_truth(moved)).unwrap();
        // Point (0.12, 0, 0) is (0.02, 0, 0) in the object frame -> (0, 0.22, 0) after the move.
        assert!((f.positions[(1, 0)]).abs() < 1e-6 && (f.positions[(1, 1)] - 0.22).abs() < 1e-6);
        assert!(
            o.track(&Observation::image(&image::GrayImage::new(1, 1)))
                .is_err()
        );
    }

    #[test]
    fn noise_and_dropout_are_seeded_and_of_the_asked_size() {
        let config = OracleConfig {
            noise_sigma: 0.01,
            dropout: 0.3,
            seed: 5,
            ..OracleConfig::default()
        };
        let queries = Array2::from_shape_fn((2000, 3), |(i, c)| (i * 3 + c) as f32 * 1e-4);
        let run = || {
            let mut o = OracleTracker::new(config).unwrap();
            o.init(
                &Observation::ground_truth(Isometry3::identity()),
                queries.view(),
            )
            .unwrap()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "same seed, same frame");
        let dropped = a.visible.iter().filter(|v| !**v).count() as f64 / 2000.0;
        assert!((dropped - 0.3).abs() < 0.04, "dropout {dropped}");
        let err: f64 = (0..2000)
            .map(|i| f64::from(a.positions[(i, 0)] - queries[(i, 0)]).powi(2))
            .sum::<f64>()
            / 2000.0;
        assert!((err.sqrt() - 0.01).abs() < 0.001, "noise {}", err.sqrt());
        assert!(
            OracleTracker::new(OracleConfig {
                dropout: 1.5,
                ..OracleConfig::default()
            })
            .is_err()
        );
    }

    #[test]
    fn points_behind_a_nearer_surface_are_occluded() {
        // Camera at the origin looking down +z; a wall at 0.5 m covers the left half.
        let k = CameraIntrinsics::try_new(64, 48, 50.0, 50.0, 31.5, 23.5).unwrap();
        let depth = DepthImage::new(Array2::from_shape_fn((48, 64), |(_, u)| {
            if u < 32 { 0.5 } else { 2.0 }
        }));
        let mut o = OracleTracker::new(OracleConfig::default()).unwrap();
        let obs = Observation::ground_truth(Isometry3::identity()).with_depth_only(&depth, &k);
        // One point behind the wall (left, 1 m), one in front of the far background (right, 1 m),
        // one outside the field of view.
        let f = o
            .init(
                &obs,
                array![[-0.2f32, 0.0, 1.0], [0.2, 0.0, 1.0], [5.0, 0.0, 1.0]].view(),
            )
            .unwrap();
        assert_eq!(f.visible, [false, true, false]);
    }
}
