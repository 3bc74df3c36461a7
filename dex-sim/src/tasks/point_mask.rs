//! Dex4D's masking of object point tracks: what a single depth camera would see of an
//! object's keypoints, with missing points written as zeros.
//!
//! Two stages, as Dex4D trains its student (arXiv 2602.15828, §III-C2 and App. H; the
//! constants are those of its released code):
//!
//! 1. **Plane mask, once per episode** ([`plane_mask`]): a plane through a random
//!    keypoint with a random normal; points on its positive side are dropped, then
//!    points are re-added or removed at random so that exactly `slots` remain. These
//!    slots are the policy's point inputs for the whole episode.
//! 2. **Height mask, every step** ([`PointMask::visible`]): a cut height at the
//!    `(1 − m)` quantile of the current points' heights with `m ~ U(0, max_cut)`;
//!    points above the cut are hidden with probability `above_drop`, points below with
//!    `below_drop`. At least `min_visible` points stay visible.
//!
//! [`PointMask::write`] adds independent Gaussian noise to the current and the goal
//! points and writes a hidden point as `(0, 0, 0)` in both sets, by correspondence.

use nalgebra::{Point3, Vector3};
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::sampling::gaussian;
use crate::error::{Error, Result};

/// Settings of the per-step masking and noise.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PointMask {
    /// Apply the height mask (off: every slot is visible, as a privileged observer).
    pub height_mask: bool,
    /// Largest fraction of the height range cut away, `m ~ U(0, max_cut)` (Dex4D: 0.8).
    pub max_cut: f64,
    /// Probability of hiding a point above the cut (Dex4D: 0.9).
    pub above_drop: f64,
    /// Probability of hiding a point below the cut (Dex4D: 0.05).
    pub below_drop: f64,
    /// Standard deviation (m) of the Gaussian noise on every point, current and goal
    /// independently (Dex4D: 0.005).
    pub noise_std: f64,
    /// Fewest points left visible: hidden points are revealed at random until this many
    /// are visible (ours; Dex4D has no floor).
    pub min_visible: usize,
    /// Instead of the height mask, exactly this many visible points, a random subset
    /// drawn once per episode (for visibility sweeps).
    pub fixed_visible: Option<usize>,
}

impl Default for PointMask {
    fn default() -> Self {
        Self {
            height_mask: true,
            max_cut: 0.8,
            above_drop: 0.9,
            below_drop: 0.05,
            noise_std: 0.005,
            min_visible: 3,
            fixed_visible: None,
        }
    }
}

impl PointMask {
    /// No masking and no noise: every slot visible and exact.
    pub fn none() -> Self {
        Self {
            height_mask: false,
            noise_std: 0.0,
            ..Self::default()
        }
    }

    /// Checks every field against `slots` points.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self, slots: usize) -> Result<()> {
        let bad =
            |what: &'static str, reason: String| Err(Error::InvalidParameter { what, reason });
        for (what, p) in [
            ("point_mask.max_cut", self.max_cut),
            ("point_mask.above_drop", self.above_drop),
            ("point_mask.below_drop", self.below_drop),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return bad(what, format!("must lie in [0, 1], got {p}"));
            }
        }
        if !(self.noise_std.is_finite() && self.noise_std >= 0.0) {
            return bad(
                "point_mask.noise_std",
                format!("must be finite and ≥ 0, got {}", self.noise_std),
            );
        }
        if self.min_visible == 0 || self.min_visible > slots {
            return bad(
                "point_mask.min_visible",
                format!("must lie in 1..={slots}, got {}", self.min_visible),
            );
        }
        if let Some(k) = self.fixed_visible
            && (k == 0 || k > slots)
        {
            return bad(
                "point_mask.fixed_visible",
                format!("must lie in 1..={slots}, got {k}"),
            );
        }
        Ok(())
    }

    /// The per-episode visible subset of a fixed-visibility sweep: `None` unless
    /// [`PointMask::fixed_visible`] is set.
    pub fn episode_subset<R: Rng>(&self, slots: usize, rng: &mut R) -> Option<Vec<bool>> {
        let k = self.fixed_visible?;
        let mut order: Vec<usize> = (0..slots).collect();
        order.shuffle(rng);
        let mut visible = vec![false; slots];
        for &i in order.iter().take(k) {
            visible[i] = true;
        }
        Some(visible)
    }

    /// Which of `current` are visible this step (the height mask, or all of them when
    /// it is off), with at least [`PointMask::min_visible`] visible.
    pub fn visible<R: Rng>(&self, current: &[Point3<f64>], rng: &mut R) -> Vec<bool> {
        let n = current.len();
        let mut visible = vec![true; n];
        if !self.height_mask || n == 0 {
            return visible;
        }
        let mut heights: Vec<f64> = current.iter().map(|p| p.z).collect();
        heights.sort_by(f64::total_cmp);
        let m = rng.random_range(0.0..=self.max_cut);
        // The cut at rank (1 − m)(N − 1) of the sorted heights (Dex4D's quantile).
        let rank = ((1.0 - m) * (n - 1) as f64).round() as usize;
        let cut = heights[rank.min(n - 1)];
        for (v, p) in visible.iter_mut().zip(current) {
            let drop = if p.z > cut {
                self.above_drop
            } else {
                self.below_drop
            };
            *v = rng.random::<f64>() >= drop;
        }
        let shown = visible.iter().filter(|v| **v).count();
        if shown < self.min_visible {
            let mut hidden: Vec<usize> = (0..n).filter(|&i| !visible[i]).collect();
            hidden.shuffle(rng);
            for &i in hidden.iter().take(self.min_visible - shown) {
                visible[i] = true;
            }
        }
        visible
    }

    /// Appends the current points, then the goal points, each `3 × N` values scaled by
    /// `scale`, with independent noise on both and zeros where `visible` is false.
    pub fn write<R: Rng>(
        &self,
        current: &[Point3<f64>],
        goal: &[Point3<f64>],
        visible: &[bool],
        scale: f64,
        rng: &mut R,
        out: &mut Vec<f32>,
    ) {
        for points in [current, goal] {
            for (p, v) in points.iter().zip(visible) {
                if *v {
                    let noisy = p + self.noise(rng);
                    out.extend(noisy.iter().map(|c| (c * scale) as f32));
                } else {
                    out.extend([0.0f32; 3]);
                }
            }
        }
    }

    fn noise<R: Rng>(&self, rng: &mut R) -> Vector3<f64> {
        if self.noise_std == 0.0 {
            return Vector3::zeros();
        }
        Vector3::new(gaussian(rng), gaussian(rng), gaussian(rng)) * self.noise_std
    }
}

/// Dex4D's per-episode plane mask: the indices (ascending) of exactly `slots` of
/// `points`, mostly those on the negative side of a random plane through a random
/// point, as one camera would see one side of the object.
///
/// # Errors
///
/// [`Error::InvalidParameter`] when `slots` is 0 or more than there are points.
pub fn plane_mask<R: Rng>(points: &[Point3<f64>], slots: usize, rng: &mut R) -> Result<Vec<usize>> {
    if slots == 0 || slots > points.len() {
        return Err(Error::InvalidParameter {
            what: "plane mask slots",
            reason: format!("must lie in 1..={}, got {slots}", points.len()),
        });
    }
    let anchor = points[rng.random_range(0..points.len())];
    let normal = loop {
        let v = Vector3::new(gaussian(rng), gaussian(rng), gaussian(rng));
        if v.norm() > 1e-9 {
            break v.normalize();
        }
    };
    let (mut kept, mut dropped): (Vec<usize>, Vec<usize>) =
        (0..points.len()).partition(|&i| (points[i] - anchor).dot(&normal) <= 0.0);
    if kept.len() > slots {
        kept.shuffle(rng);
        kept.truncate(slots);
    } else {
        dropped.shuffle(rng);
        let missing = slots - kept.len();
        kept.extend(dropped.into_iter().take(missing));
    }
    kept.sort_unstable();
    Ok(kept)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    fn sphere(n: usize) -> Vec<Point3<f64>> {
        // A Fibonacci sphere of radius 5 cm lifted 10 cm.
        (0..n)
            .map(|i| {
                let z = 1.0 - 2.0 * (i as f64 + 0.5) / n as f64;
                let r = (1.0 - z * z).sqrt();
                let a = i as f64 * 2.399_963;
                Point3::new(0.05 * r * a.cos(), 0.05 * r * a.sin(), 0.1 + 0.05 * z)
            })
            .collect()
    }

    #[test]
    fn plane_mask_keeps_exactly_the_slots_mostly_on_one_side() {
        let points = sphere(128);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let kept = plane_mask(&points, 64, &mut rng).unwrap();
            assert_eq!(kept.len(), 64);
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "distinct, sorted");
        }
        assert!(plane_mask(&points, 0, &mut rng).is_err());
        assert!(plane_mask(&points, 129, &mut rng).is_err());
    }

    #[test]
    fn height_mask_hides_mostly_the_top_and_keeps_the_minimum() {
        let points = sphere(64);
        let mask = PointMask::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let (mut top, mut bottom) = (0usize, 0usize);
        for _ in 0..200 {
            let v = mask.visible(&points, &mut rng);
            assert!(v.iter().filter(|x| **x).count() >= mask.min_visible);
            for (p, shown) in points.iter().zip(&v) {
                if *shown {
                    if p.z > 0.1 {
                        top += 1;
                    } else {
                        bottom += 1;
                    }
                }
            }
        }
        assert!(bottom > 2 * top, "bottom {bottom} top {top}");
        // A harsh mask still leaves the floor.
        let harsh = PointMask {
            max_cut: 1.0,
            above_drop: 1.0,
            below_drop: 1.0,
            min_visible: 5,
            ..PointMask::default()
        };
        for _ in 0..20 {
            let v = harsh.visible(&points, &mut rng);
            assert_eq!(v.iter().filter(|x| **x).count(), 5);
        }
    }

    #[test]
    fn hidden_points_are_zero_in_both_sets() {
        let current = sphere(4);
        let goal: Vec<_> = current.iter().map(|p| p + Vector3::x()).collect();
        let mut out = Vec::new();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        PointMask::none().write(
            &current,
            &goal,
            &[true, false, true, false],
            10.0,
            &mut rng,
            &mut out,
        );
        assert_eq!(out.len(), 24);
        assert_eq!(&out[3..6], &[0.0; 3]);
        assert_eq!(&out[12 + 3..12 + 6], &[0.0; 3]);
        assert!((out[12] - out[0] - 10.0).abs() < 1e-5);
    }

    #[test]
    fn fixed_visibility_and_validation() {
        let mask = PointMask {
            fixed_visible: Some(8),
            ..PointMask::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let subset = mask.episode_subset(64, &mut rng).unwrap();
        assert_eq!(subset.iter().filter(|x| **x).count(), 8);
        assert!(mask.validate(64).is_ok());
        assert!(mask.validate(4).is_err());
        let bad = PointMask {
            above_drop: 1.5,
            ..PointMask::default()
        };
        assert!(
            bad.validate(64)
                .unwrap_err()
                .to_string()
                .contains("above_drop")
        );
    }
}
