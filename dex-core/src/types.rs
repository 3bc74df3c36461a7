//! Types every dex crate shares: joint states and targets, keypoints, point tracks.

use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, Array3, ArrayView2};

use crate::error::{Error, Result, check_finite, check_len};
use crate::model::HandModel;

/// A rigid pose (rotation + translation, metres). Which frame it maps from and to
/// is said where it is used ("object pose in the world frame").
pub type Pose = Isometry3<f64>;

/// Measured or simulated state of a hand's joints, in the model's joint order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointState {
    /// Positions (rad or m).
    pub q: Vec<f64>,
    /// Velocities (rad/s or m/s).
    pub qdot: Vec<f64>,
    /// Efforts: torques (N·m) or forces (N).
    pub effort: Vec<f64>,
}

impl JointState {
    /// A state of `dof` joints at rest at zero.
    pub fn zeros(dof: usize) -> Self {
        Self {
            q: vec![0.0; dof],
            qdot: vec![0.0; dof],
            effort: vec![0.0; dof],
        }
    }

    /// A state from its parts.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] if the three vectors differ in length.
    pub fn try_new(q: Vec<f64>, qdot: Vec<f64>, effort: Vec<f64>) -> Result<Self> {
        check_len("joint velocities", q.len(), qdot.len())?;
        check_len("joint efforts", q.len(), effort.len())?;
        Ok(Self { q, qdot, effort })
    }

    /// Number of joints.
    pub fn dof(&self) -> usize {
        self.q.len()
    }
}

/// Position targets for a hand's joints, in the model's joint order (rad or m).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct JointTargets {
    /// Target positions.
    pub q: Vec<f64>,
}

impl JointTargets {
    /// Targets from positions, unchecked (see [`JointTargets::validate`]).
    pub fn new(q: Vec<f64>) -> Self {
        Self { q }
    }

    /// Checks the targets against a model: one finite value per joint, within limits.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`], [`Error::NonFiniteInput`] or [`Error::OutOfLimits`].
    pub fn validate(&self, model: &HandModel) -> Result<()> {
        model.check_configuration(&self.q)
    }

    /// Targets clamped into the model's joint limits.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] or [`Error::NonFiniteInput`] (NaN cannot be clamped).
    pub fn clamped(&self, model: &HandModel) -> Result<Self> {
        check_finite("joint targets", &self.q)?;
        let mut q = self.q.clone();
        model.clamp_configuration(&mut q)?;
        Ok(Self { q })
    }
}

/// Positions of a hand's keypoints (fingertips, finger middle joints) in one frame,
/// usually the palm frame, in the model's keypoint order.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FingertipKeypoints {
    /// One position per keypoint (m).
    pub positions: Vec<Point3<f64>>,
}

impl FingertipKeypoints {
    /// Keypoints from positions.
    pub fn new(positions: Vec<Point3<f64>>) -> Self {
        Self { positions }
    }

    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// The positions as `K × 3` (f32, for networks and datasets).
    pub fn to_array(&self) -> Array2<f32> {
        Array2::from_shape_fn((self.positions.len(), 3), |(k, c)| {
            self.positions[k][c] as f32
        })
    }
}

/// Tracks of `N` points over `T` frames: positions (`T × N × D`, `D` = 2 for
/// pixels or 3 for metres) and a visibility flag per point and frame.
///
/// Positions of invisible points are kept as the tracker left them (its last
/// estimate or NaN); consumers must check `visible`.
#[derive(Debug, Clone, PartialEq)]
pub struct PointTracks {
    positions: Array3<f32>,
    visible: Array2<bool>,
}

impl PointTracks {
    /// Tracks from positions (`T × N × D`, `D` ∈ {2, 3}) and visibility (`T × N`).
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the shapes disagree or `D` is not 2 or 3.
    pub fn try_new(positions: Array3<f32>, visible: Array2<bool>) -> Result<Self> {
        let (t, n, d) = positions.dim();
        if d != 2 && d != 3 {
            return Err(Error::ShapeMismatch {
                what: "point track positions",
                expected: "(T, N, 2) or (T, N, 3)".into(),
                got: positions.shape().to_vec(),
            });
        }
        if visible.dim() != (t, n) {
            return Err(Error::ShapeMismatch {
                what: "point track visibility",
                expected: format!("({t}, {n})"),
                got: visible.shape().to_vec(),
            });
        }
        Ok(Self { positions, visible })
    }

    /// Empty tracks of `n` points in `dim` dimensions, to which frames are pushed.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if `dim` is not 2 or 3.
    pub fn empty(n: usize, dim: usize) -> Result<Self> {
        Self::try_new(Array3::zeros((0, n, dim)), Array2::from_elem((0, n), false))
    }

    /// Appends one frame: positions `N × D` and visibility `N`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] or [`Error::LengthMismatch`] if the frame does not match.
    pub fn push_frame(&mut self, positions: ArrayView2<'_, f32>, visible: &[bool]) -> Result<()> {
        let (_, n, d) = self.positions.dim();
        if positions.dim() != (n, d) {
            return Err(Error::ShapeMismatch {
                what: "point track frame",
                expected: format!("({n}, {d})"),
                got: positions.shape().to_vec(),
            });
        }
        check_len("point track visibility", n, visible.len())?;
        self.positions
            .push(ndarray::Axis(0), positions)
            .map_err(|e| Error::InvalidValue {
                what: "point track frame".into(),
                message: e.to_string(),
            })?;
        self.visible
            .push(ndarray::Axis(0), ndarray::ArrayView1::from(visible))
            .map_err(|e| Error::InvalidValue {
                what: "point track visibility".into(),
                message: e.to_string(),
            })?;
        Ok(())
    }

    /// Number of frames `T`.
    pub fn num_frames(&self) -> usize {
        self.positions.dim().0
    }

    /// Number of points `N`.
    pub fn num_points(&self) -> usize {
        self.positions.dim().1
    }

    /// Dimension `D` of a position (2 or 3).
    pub fn dim(&self) -> usize {
        self.positions.dim().2
    }

    /// Positions, `T × N × D`.
    pub fn positions(&self) -> &Array3<f32> {
        &self.positions
    }

    /// Visibility, `T × N`.
    pub fn visible(&self) -> &Array2<bool> {
        &self.visible
    }

    /// Splits into positions and visibility.
    pub fn into_parts(self) -> (Array3<f32>, Array2<bool>) {
        (self.positions, self.visible)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn point_tracks_check_shapes_and_grow_by_frames() {
        let mut tracks = PointTracks::empty(2, 3).unwrap();
        tracks
            .push_frame(
                array![[0.0f32, 1.0, 2.0], [3.0, 4.0, 5.0]].view(),
                &[true, false],
            )
            .unwrap();
        tracks
            .push_frame(
                array![[0.5f32, 1.0, 2.0], [3.0, 4.0, 5.0]].view(),
                &[true, true],
            )
            .unwrap();
        assert_eq!(
            (tracks.num_frames(), tracks.num_points(), tracks.dim()),
            (2, 2, 3)
        );
        assert_eq!(tracks.positions()[(1, 0, 0)], 0.5);
        assert!(!tracks.visible()[(0, 1)]);
        assert!(
            tracks
                .push_frame(array![[0.0f32, 1.0]].view(), &[true])
                .is_err()
        );
        assert!(
            tracks
                .push_frame(array![[0.0f32, 1.0, 2.0], [0.0, 0.0, 0.0]].view(), &[true])
                .is_err()
        );
        assert!(PointTracks::empty(2, 4).is_err());
        assert!(
            PointTracks::try_new(Array3::zeros((3, 2, 2)), Array2::from_elem((3, 3), true))
                .is_err()
        );
    }

    #[test]
    fn joint_states_and_targets_are_validated() {
        assert!(JointState::try_new(vec![0.0; 3], vec![0.0; 2], vec![0.0; 3]).is_err());
        assert_eq!(JointState::zeros(16).dof(), 16);
        let hand = HandModel::leap_right();
        let mut t = JointTargets::new(hand.mid_configuration());
        assert!(t.validate(&hand).is_ok());
        t.q[0] = 5.0;
        assert!(matches!(t.validate(&hand), Err(Error::OutOfLimits { .. })));
        assert_eq!(t.clamped(&hand).unwrap().q[0], 1.047);
        t.q[0] = f64::NAN;
        assert!(matches!(
            t.clamped(&hand),
            Err(Error::NonFiniteInput { index: 0, .. })
        ));
    }

    #[test]
    fn keypoints_convert_to_an_array() {
        let k =
            FingertipKeypoints::new(vec![Point3::new(1.0, 2.0, 3.0), Point3::new(4.0, 5.0, 6.0)]);
        assert_eq!(k.to_array(), array![[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    }
}
