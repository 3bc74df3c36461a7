//! Pinhole cameras, depth images and point clouds.
//!
//! **Camera frame** (as OpenCV): x to the right of the image, y down, z forward
//! along the optical axis. **Pixels**: `(u, v)` = (column, row); the centre of the
//! top-left pixel is `(0, 0)`. **Depth** is the z coordinate of the point in the
//! camera frame (not the length of the ray), in metres; 0 or a non-finite value
//! marks a pixel without a measurement.

use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result};

/// Pinhole intrinsics of a camera (pixels).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CameraIntrinsics {
    /// Image width (pixels).
    pub width: usize,
    /// Image height (pixels).
    pub height: usize,
    /// Focal length along x (pixels).
    pub fx: f64,
    /// Focal length along y (pixels).
    pub fy: f64,
    /// Principal point, x (pixels).
    pub cx: f64,
    /// Principal point, y (pixels).
    pub cy: f64,
}

impl CameraIntrinsics {
    /// Intrinsics from their parts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidValue`] for a zero size or a non-positive or non-finite focal
    /// length, [`Error::NonFinite`] for a non-finite principal point.
    pub fn try_new(
        width: usize,
        height: usize,
        fx: f64,
        fy: f64,
        cx: f64,
        cy: f64,
    ) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(Error::InvalidValue {
                what: "camera image size".into(),
                message: format!("must be non-zero, got {width}×{height}"),
            });
        }
        for (what, f) in [("fx", fx), ("fy", fy)] {
            if !(f.is_finite() && f > 0.0) {
                return Err(Error::InvalidValue {
                    what: format!("camera focal length {what}"),
                    message: format!("must be positive and finite, got {f}"),
                });
            }
        }
        for (what, c) in [("cx", cx), ("cy", cy)] {
            if !c.is_finite() {
                return Err(Error::NonFinite {
                    what: format!("camera principal point {what}"),
                    value: c,
                });
            }
        }
        Ok(Self {
            width,
            height,
            fx,
            fy,
            cx,
            cy,
        })
    }

    /// Square-pixel intrinsics from a vertical field of view (radians), with the
    /// principal point at the image centre.
    ///
    /// # Errors
    ///
    /// As [`CameraIntrinsics::try_new`], and for a field of view outside (0, π).
    pub fn from_fov_y(width: usize, height: usize, fov_y: f64) -> Result<Self> {
        if !(fov_y > 0.0 && fov_y < std::f64::consts::PI) {
            return Err(Error::InvalidValue {
                what: "camera vertical field of view".into(),
                message: format!("must lie in (0, π) rad, got {fov_y}"),
            });
        }
        let f = 0.5 * height as f64 / (0.5 * fov_y).tan();
        Self::try_new(
            width,
            height,
            f,
            f,
            0.5 * (width as f64 - 1.0),
            0.5 * (height as f64 - 1.0),
        )
    }

    /// The camera-frame point seen at pixel `(u, v)` with depth `depth` (m).
    pub fn back_project(&self, u: f64, v: f64, depth: f64) -> Point3<f64> {
        Point3::new(
            (u - self.cx) * depth / self.fx,
            (v - self.cy) * depth / self.fy,
            depth,
        )
    }

    /// The pixel `(u, v)` at which a camera-frame point appears, or `None` for a
    /// point on or behind the camera plane. The pixel may lie outside the image.
    pub fn project(&self, p: &Point3<f64>) -> Option<(f64, f64)> {
        (p.z > 0.0).then(|| (self.fx * p.x / p.z + self.cx, self.fy * p.y / p.z + self.cy))
    }

    /// Whether pixel `(u, v)` lies inside the image (pixel centres at integers).
    pub fn contains(&self, u: f64, v: f64) -> bool {
        u >= -0.5 && v >= -0.5 && u < self.width as f64 - 0.5 && v < self.height as f64 - 0.5
    }
}

/// A depth image: `height × width` depths in metres (see the module docs).
#[derive(Debug, Clone, PartialEq)]
pub struct DepthImage {
    depth: Array2<f32>,
}

impl DepthImage {
    /// A depth image from a `height × width` array of depths (m).
    pub fn new(depth: Array2<f32>) -> Self {
        Self { depth }
    }

    /// Image width (pixels).
    pub fn width(&self) -> usize {
        self.depth.ncols()
    }

    /// Image height (pixels).
    pub fn height(&self) -> usize {
        self.depth.nrows()
    }

    /// The depths, `height × width`.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.depth.view()
    }

    /// Depth at pixel `(u, v)` = (column, row), or `None` if outside the image or
    /// without a measurement.
    pub fn get(&self, u: usize, v: usize) -> Option<f32> {
        self.depth
            .get((v, u))
            .copied()
            .filter(|d| d.is_finite() && *d > 0.0)
    }

    /// Back-projects every valid pixel to a camera-frame point, row by row.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the intrinsics are for another image size.
    pub fn to_point_cloud(&self, intrinsics: &CameraIntrinsics) -> Result<PointCloud> {
        if (intrinsics.height, intrinsics.width) != self.depth.dim() {
            return Err(Error::ShapeMismatch {
                what: "depth image",
                expected: format!(
                    "({}, {}) as the intrinsics",
                    intrinsics.height, intrinsics.width
                ),
                got: self.depth.shape().to_vec(),
            });
        }
        let mut points = Vec::with_capacity(self.depth.len() * 3);
        for ((v, u), &d) in self.depth.indexed_iter() {
            if d.is_finite() && d > 0.0 {
                let p = intrinsics.back_project(u as f64, v as f64, f64::from(d));
                points.extend([p.x as f32, p.y as f32, p.z as f32]);
            }
        }
        let n = points.len() / 3;
        PointCloud::try_new(Array2::from_shape_vec((n, 3), points).map_err(|e| {
            Error::InvalidValue {
                what: "point cloud".into(),
                message: e.to_string(),
            }
        })?)
    }
}

/// A set of 3D points (`N × 3`, metres), in a frame named where it is produced.
#[derive(Debug, Clone, PartialEq)]
pub struct PointCloud {
    points: Array2<f32>,
}

impl PointCloud {
    /// A point cloud from an `N × 3` array.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] if the array is not `N × 3`.
    pub fn try_new(points: Array2<f32>) -> Result<Self> {
        if points.ncols() != 3 {
            return Err(Error::ShapeMismatch {
                what: "point cloud",
                expected: "(N, 3)".into(),
                got: points.shape().to_vec(),
            });
        }
        Ok(Self { points })
    }

    /// A point cloud from points.
    pub fn from_points(points: &[Point3<f64>]) -> Self {
        Self {
            points: Array2::from_shape_fn((points.len(), 3), |(i, c)| points[i][c] as f32),
        }
    }

    /// Number of points.
    pub fn len(&self) -> usize {
        self.points.nrows()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.points.nrows() == 0
    }

    /// The points, `N × 3`.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.points.view()
    }

    /// Point `i` in double precision.
    ///
    /// # Panics
    ///
    /// If `i >= self.len()`.
    pub fn point(&self, i: usize) -> Point3<f64> {
        let r = self.points.row(i);
        Point3::new(f64::from(r[0]), f64::from(r[1]), f64::from(r[2]))
    }

    /// The points in double precision.
    pub fn to_points(&self) -> Vec<Point3<f64>> {
        (0..self.len()).map(|i| self.point(i)).collect()
    }

    /// The cloud moved by `pose` (e.g. the camera pose in the world frame maps a
    /// camera-frame cloud to the world frame).
    pub fn transformed(&self, pose: &Isometry3<f64>) -> Self {
        let mut points = self.points.clone();
        for mut r in points.rows_mut() {
            let p = pose * Point3::new(f64::from(r[0]), f64::from(r[1]), f64::from(r[2]));
            r[0] = p.x as f32;
            r[1] = p.y as f32;
            r[2] = p.z as f32;
        }
        Self { points }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intrinsics() -> CameraIntrinsics {
        CameraIntrinsics::try_new(4, 3, 100.0, 120.0, 1.5, 1.0).unwrap()
    }

    #[test]
    fn back_projection_and_projection_are_inverse() {
        let k = intrinsics();
        let p = k.back_project(3.25, 0.5, 0.8);
        let (u, v) = k.project(&p).unwrap();
        assert!((u - 3.25).abs() < 1e-12 && (v - 0.5).abs() < 1e-12);
        assert_eq!(p.z, 0.8);
        // The principal point looks straight down the optical axis.
        let c = k.back_project(1.5, 1.0, 2.0);
        assert_eq!((c.x, c.y), (0.0, 0.0));
        assert!(k.project(&Point3::new(0.0, 0.0, -1.0)).is_none());
    }

    #[test]
    fn depth_to_point_cloud_skips_invalid_pixels() {
        let k = intrinsics();
        let mut d = Array2::from_elem((3, 4), 0.5f32);
        d[(0, 0)] = 0.0;
        d[(1, 2)] = f32::NAN;
        d[(2, 3)] = f32::INFINITY;
        let img = DepthImage::new(d);
        assert_eq!(img.get(0, 0), None);
        assert_eq!(img.get(1, 0), Some(0.5));
        assert_eq!(img.get(9, 0), None);
        let cloud = img.to_point_cloud(&k).unwrap();
        assert_eq!(cloud.len(), 12 - 3);
        // Second valid point is pixel (u=1, v=0).
        let p = cloud.point(0);
        let expected = k.back_project(1.0, 0.0, 0.5);
        assert!((p - expected).norm() < 1e-6);
        let wrong = CameraIntrinsics::try_new(3, 4, 100.0, 100.0, 1.0, 1.0).unwrap();
        assert!(matches!(
            img.to_point_cloud(&wrong),
            Err(Error::ShapeMismatch { .. })
        ));
    }

    #[test]
    fn clouds_transform_rigidly() {
        let cloud =
            PointCloud::from_points(&[Point3::new(1.0, 0.0, 0.0), Point3::new(0.0, 2.0, 0.0)]);
        let pose = Isometry3::new(
            nalgebra::Vector3::new(0.0, 0.0, 1.0),
            nalgebra::Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2),
        );
        let moved = cloud.transformed(&pose);
        assert!((moved.point(0) - Point3::new(0.0, 1.0, 1.0)).norm() < 1e-6);
        assert!((moved.point(1) - Point3::new(-2.0, 0.0, 1.0)).norm() < 1e-6);
        assert!(PointCloud::try_new(Array2::zeros((5, 2))).is_err());
    }

    #[test]
    fn bad_intrinsics_are_errors() {
        assert!(CameraIntrinsics::try_new(0, 3, 1.0, 1.0, 0.0, 0.0).is_err());
        assert!(CameraIntrinsics::try_new(4, 3, -1.0, 1.0, 0.0, 0.0).is_err());
        assert!(CameraIntrinsics::try_new(4, 3, 1.0, f64::NAN, 0.0, 0.0).is_err());
        assert!(CameraIntrinsics::try_new(4, 3, 1.0, 1.0, f64::INFINITY, 0.0).is_err());
        assert!(CameraIntrinsics::from_fov_y(64, 64, 0.0).is_err());
        let k = CameraIntrinsics::from_fov_y(64, 48, std::f64::consts::FRAC_PI_2).unwrap();
        assert!((k.fy - 24.0).abs() < 1e-12);
        assert!(k.contains(0.0, 0.0) && k.contains(63.4, 47.4) && !k.contains(63.6, 0.0));
    }
}
