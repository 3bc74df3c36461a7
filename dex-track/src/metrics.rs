//! Point-tracking metrics as TAP-Vid defines them (Doersch et al., "TAP-Vid: A
//! Benchmark for Tracking Any Point in a Video", NeurIPS 2022 Datasets and
//! Benchmarks).
//!
//! For one video with ground truth and predicted 2D tracks and occlusion flags:
//!
//! - **position accuracy** `δ^x` at threshold `x` ∈ {1, 2, 4, 8, 16} px: among
//!   evaluated points visible in the ground truth, the fraction whose predicted
//!   position lies within `x` of the truth (predicted occlusion is ignored);
//!   `δ_avg` is the mean over the thresholds;
//! - **occlusion accuracy** `OA`: the fraction of evaluated points whose
//!   predicted occlusion flag equals the truth;
//! - **Jaccard** at `x`: true positives (visible in both, within `x`) over true
//!   positives + false negatives (visible in truth, predicted occluded or
//!   farther than `x`) + false positives (predicted visible but occluded in
//!   truth or farther than `x`); `AJ` is the mean over the thresholds.
//!
//! A point is evaluated on every frame but its query frame ("query first"
//! protocol: only frames after the query frame). Figures are computed per video;
//! [`mean_metrics`] averages videos. The benchmark reports them after scaling
//! coordinates to 256 × 256 ([`TapVidInput::scale_to`]); raw pixels are the
//! other view, where easy sequences stop saturating at 1.0.

use ndarray::{Array2, Array3};

use crate::error::{Result, invalid};

/// The thresholds of TAP-Vid, in pixels.
pub const THRESHOLDS: [f32; 5] = [1.0, 2.0, 4.0, 8.0, 16.0];

/// Which frames of a track are evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryMode {
    /// Only frames after the query frame (online trackers, the dex default).
    #[default]
    First,
    /// Every frame but the query frame.
    Strided,
}

/// Ground truth and predictions of one video.
#[derive(Debug, Clone, PartialEq)]
pub struct TapVidInput {
    /// Query frame of each point, `N`.
    pub query_frames: Vec<usize>,
    /// Ground-truth positions, `N × T × 2` (x, y pixels).
    pub gt_tracks: Array3<f32>,
    /// Ground-truth occlusion, `N × T` (true = occluded).
    pub gt_occluded: Array2<bool>,
    /// Predicted positions, `N × T × 2`.
    pub pred_tracks: Array3<f32>,
    /// Predicted occlusion, `N × T`.
    pub pred_occluded: Array2<bool>,
}

/// The metrics of one video (or their mean over videos).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TapVidMetrics {
    /// Position accuracy at each of [`THRESHOLDS`].
    pub position_accuracy: [f64; 5],
    /// Mean of `position_accuracy` (`δ_avg`).
    pub delta_avg: f64,
    /// Occlusion accuracy.
    pub occlusion_accuracy: f64,
    /// Jaccard at each of [`THRESHOLDS`].
    pub jaccard: [f64; 5],
    /// Mean of `jaccard` (`AJ`).
    pub average_jaccard: f64,
}

impl TapVidInput {
    fn check(&self) -> Result<(usize, usize)> {
        let (n, t, d) = self.gt_tracks.dim();
        if d != 2 || self.pred_tracks.dim() != (n, t, 2) {
            return Err(invalid(format!(
                "tracks must both be N × T × 2; ground truth {:?}, prediction {:?}",
                self.gt_tracks.shape(),
                self.pred_tracks.shape()
            )));
        }
        if self.gt_occluded.dim() != (n, t) || self.pred_occluded.dim() != (n, t) {
            return Err(invalid(format!("occlusion flags must be {n} × {t}")));
        }
        if self.query_frames.len() != n {
            return Err(invalid(format!(
                "{} query frames for {n} points",
                self.query_frames.len()
            )));
        }
        if let Some(q) = self.query_frames.iter().find(|&&q| q >= t) {
            return Err(invalid(format!("query frame {q} is beyond the {t} frames")));
        }
        Ok((n, t))
    }

    /// The same input with coordinates scaled from a `width × height` image to
    /// `target × target` (TAP-Vid reports at 256 × 256).
    pub fn scale_to(&self, width: u32, height: u32, target: f32) -> Self {
        let (sx, sy) = (target / width as f32, target / height as f32);
        let scale = |a: &Array3<f32>| {
            let mut a = a.clone();
            a.outer_iter_mut().for_each(|mut track| {
                track.rows_mut().into_iter().for_each(|mut p| {
                    p[0] *= sx;
                    p[1] *= sy;
                })
            });
            a
        };
        Self {
            query_frames: self.query_frames.clone(),
            gt_tracks: scale(&self.gt_tracks),
            gt_occluded: self.gt_occluded.clone(),
            pred_tracks: scale(&self.pred_tracks),
            pred_occluded: self.pred_occluded.clone(),
        }
    }
}

/// The TAP-Vid metrics of one video.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] if the shapes disagree or a query frame is out of range.
///
/// # Examples
///
/// ```
/// use dex_track::metrics::{tapvid_metrics, QueryMode, TapVidInput};
/// use ndarray::{Array2, Array3};
///
/// // One point over three frames, perfectly tracked.
/// let tracks = Array3::from_shape_vec((1, 3, 2), vec![5.0, 5.0, 6.0, 5.0, 7.0, 5.0])?;
/// let visible = Array2::from_elem((1, 3), false);
/// let input = TapVidInput {
///     query_frames: vec![0],
///     gt_tracks: tracks.clone(),
///     gt_occluded: visible.clone(),
///     pred_tracks: tracks,
///     pred_occluded: visible,
/// };
/// let m = tapvid_metrics(&input, QueryMode::First)?;
/// assert_eq!((m.delta_avg, m.occlusion_accuracy, m.average_jaccard), (1.0, 1.0, 1.0));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn tapvid_metrics(input: &TapVidInput, mode: QueryMode) -> Result<TapVidMetrics> {
    let (n, t) = input.check()?;
    let mut evaluated = 0usize;
    let mut occlusion_correct = 0usize;
    let mut gt_visible = 0usize;
    let mut within = [0usize; 5];
    let mut true_pos = [0usize; 5];
    let mut false_pos = [0usize; 5];
    for i in 0..n {
        let q = input.query_frames[i];
        for f in 0..t {
            let evaluate = match mode {
                QueryMode::First => f > q,
                QueryMode::Strided => f != q,
            };
            if !evaluate {
                continue;
            }
            evaluated += 1;
            let gt_occ = input.gt_occluded[(i, f)];
            let pred_occ = input.pred_occluded[(i, f)];
            if gt_occ == pred_occ {
                occlusion_correct += 1;
            }
            let dx = input.pred_tracks[(i, f, 0)] - input.gt_tracks[(i, f, 0)];
            let dy = input.pred_tracks[(i, f, 1)] - input.gt_tracks[(i, f, 1)];
            let dist2 = dx * dx + dy * dy;
            if !gt_occ {
                gt_visible += 1;
            }
            for (k, thr) in THRESHOLDS.iter().enumerate() {
                // A NaN prediction is never within any threshold.
                let close = dist2 < thr * thr;
                if close && !gt_occ {
                    within[k] += 1;
                    if !pred_occ {
                        true_pos[k] += 1;
                    }
                }
                let correct = close && !gt_occ;
                if !pred_occ && !correct {
                    false_pos[k] += 1;
                }
            }
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let mut m = TapVidMetrics {
        occlusion_accuracy: ratio(occlusion_correct, evaluated),
        ..TapVidMetrics::default()
    };
    for k in 0..5 {
        m.position_accuracy[k] = ratio(within[k], gt_visible);
        // False negatives + true positives = every ground-truth visible point.
        m.jaccard[k] = ratio(true_pos[k], gt_visible + false_pos[k]);
    }
    m.delta_avg = m.position_accuracy.iter().sum::<f64>() / 5.0;
    m.average_jaccard = m.jaccard.iter().sum::<f64>() / 5.0;
    Ok(m)
}

/// The mean of per-video metrics (TAP-Vid averages videos, not points).
pub fn mean_metrics(videos: &[TapVidMetrics]) -> TapVidMetrics {
    let n = videos.len().max(1) as f64;
    let mut m = TapVidMetrics::default();
    for v in videos {
        for k in 0..5 {
            m.position_accuracy[k] += v.position_accuracy[k] / n;
            m.jaccard[k] += v.jaccard[k] / n;
        }
        m.delta_avg += v.delta_avg / n;
        m.occlusion_accuracy += v.occlusion_accuracy / n;
        m.average_jaccard += v.average_jaccard / n;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, Array3};

    /// Two points, four frames, hand-checked counts.
    fn example() -> TapVidInput {
        // Point 0: queried at frame 0; frames 1–3 evaluated.
        //   frame 1: visible in both, error 0.5 px  -> within every threshold
        //   frame 2: visible in both, error 3 px    -> within 4, 8, 16
        //   frame 3: occluded in truth, predicted visible -> false positive everywhere
        // Point 1: queried at frame 1; frames 2–3 evaluated.
        //   frame 2: visible in truth, predicted occluded, error 0 -> within all, not a TP
        //   frame 3: visible in both, error 20 px -> within none
        let mut gt = Array3::<f32>::zeros((2, 4, 2));
        let mut pred = Array3::<f32>::zeros((2, 4, 2));
        pred[(0, 1, 0)] = 0.5;
        pred[(0, 2, 1)] = 3.0;
        pred[(1, 3, 0)] = 20.0;
        gt[(0, 3, 0)] = 100.0; // ignored position of an occluded truth
        let mut gt_occ = Array2::from_elem((2, 4), false);
        gt_occ[(0, 3)] = true;
        let mut pred_occ = Array2::from_elem((2, 4), false);
        pred_occ[(1, 2)] = true;
        TapVidInput {
            query_frames: vec![0, 1],
            gt_tracks: gt,
            gt_occluded: gt_occ,
            pred_tracks: pred,
            pred_occluded: pred_occ,
        }
    }

    #[test]
    fn metrics_match_hand_counts() {
        let m = tapvid_metrics(&example(), QueryMode::First).unwrap();
        // Evaluated: 5 points-frames. Occlusion agrees on (0,1), (0,2), (1,3): 3/5.
        assert!((m.occlusion_accuracy - 0.6).abs() < 1e-12);
        // Visible in truth: (0,1), (0,2), (1,2), (1,3) = 4.
        // Within 1 and 2 px: (0,1), (1,2) = 2/4; within 4, 8, 16: + (0,2) = 3/4.
        assert_eq!(m.position_accuracy, [0.5, 0.5, 0.75, 0.75, 0.75]);
        assert!((m.delta_avg - 0.65).abs() < 1e-12);
        // Jaccard at 1 and 2: TP (0,1) = 1; FP: (0,2) far, (0,3) occluded truth,
        // (1,3) far = 3; J = 1 / (4 + 3).
        // At 4, 8, 16: TP (0,1), (0,2) = 2; FP (0,3), (1,3) = 2; J = 2 / 6.
        let j = [1.0 / 7.0, 1.0 / 7.0, 1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0];
        for (k, (got, want)) in m.jaccard.iter().zip(j).enumerate() {
            assert!((got - want).abs() < 1e-12, "{k}: {got}");
        }
    }

    #[test]
    fn query_frames_are_excluded_and_strided_mode_looks_back() {
        let mut input = example();
        // Corrupt the query frames themselves: no metric may change.
        input.pred_tracks[(0, 0, 0)] = 999.0;
        input.pred_occluded[(1, 1)] = true;
        assert_eq!(
            tapvid_metrics(&input, QueryMode::First).unwrap(),
            tapvid_metrics(&example(), QueryMode::First).unwrap()
        );
        // Strided also evaluates point 1's frame 0 (visible, exact): one more hit.
        let s = tapvid_metrics(&example(), QueryMode::Strided).unwrap();
        assert!((s.position_accuracy[0] - 3.0 / 5.0).abs() < 1e-12);
    }

    #[test]
    fn scaling_to_256_changes_pixel_thresholds() {
        // A 2 px error in a 1024-wide image is 0.5 px at 256.
        let mut input = example();
        input.pred_tracks[(0, 2, 1)] = 0.0;
        input.pred_tracks[(0, 2, 0)] = 2.0;
        let raw = tapvid_metrics(&input, QueryMode::First).unwrap();
        let scaled = tapvid_metrics(&input.scale_to(1024, 1024, 256.0), QueryMode::First).unwrap();
        assert!(scaled.position_accuracy[0] > raw.position_accuracy[0]);
    }

    #[test]
    fn bad_shapes_are_errors() {
        let mut input = example();
        input.query_frames = vec![0];
        assert!(tapvid_metrics(&input, QueryMode::First).is_err());
        let mut input = example();
        input.query_frames = vec![0, 9];
        assert!(tapvid_metrics(&input, QueryMode::First).is_err());
        let mut input = example();
        input.pred_occluded = Array2::from_elem((2, 3), false);
        assert!(tapvid_metrics(&input, QueryMode::First).is_err());
    }

    #[test]
    fn mean_averages_videos() {
        let a = tapvid_metrics(&example(), QueryMode::First).unwrap();
        let perfect = TapVidMetrics {
            position_accuracy: [1.0; 5],
            delta_avg: 1.0,
            occlusion_accuracy: 1.0,
            jaccard: [1.0; 5],
            average_jaccard: 1.0,
        };
        let m = mean_metrics(&[a, perfect]);
        assert!((m.delta_avg - (a.delta_avg + 1.0) / 2.0).abs() < 1e-12);
    }
}
