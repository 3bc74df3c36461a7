//! A pinhole depth camera placed in the world, its rendered frames, segmentation masks,
//! point clouds and "squinting" (area downsampling from a high to a low resolution).
//!
//! Camera frame as in `dex-core` (OpenCV): x right, y down, z forward; depth is the z
//! coordinate in the camera frame, in metres, 0 where the ray hits nothing.

use dex_core::{CameraIntrinsics, DepthImage, PointCloud};
use nalgebra::{Isometry3, Point3, Rotation3, Translation3, UnitQuaternion, Vector3};
use ndarray::Array2;

use crate::error::{Error, Result};

/// Segmentation label of pixels that see nothing.
pub const LABEL_NONE: i16 = -1;
/// Segmentation label of pixels that see the hand.
pub const LABEL_HAND: i16 = 0;
/// Segmentation label of pixels that see a drawn marker ([`DepthFrame::draw_spheres`]).
pub const LABEL_MARKER: i16 = -2;

/// The segmentation label of object `index` (objects are numbered from 0).
pub fn object_label(index: usize) -> i16 {
    i16::try_from(index + 1).unwrap_or(i16::MAX)
}

/// A pinhole camera: intrinsics and its pose in the world (`world_from_camera`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Camera {
    /// Image size and focal lengths.
    pub intrinsics: CameraIntrinsics,
    /// Pose of the camera frame in the world frame.
    pub pose: Isometry3<f64>,
    /// Rays are cast up to this distance (m).
    pub max_depth: f64,
}

impl Camera {
    /// A camera at `eye` looking at `target`, with image "up" as close to `up` as possible.
    pub fn look_at(
        intrinsics: CameraIntrinsics,
        eye: Point3<f64>,
        target: Point3<f64>,
        up: Vector3<f64>,
    ) -> Result<Self> {
        let z = target - eye;
        if z.norm() < 1e-9 || z.cross(&up).norm() < 1e-9 * z.norm() * up.norm().max(1e-300) {
            return Err(Error::InvalidParameter {
                what: "camera placement",
                reason: "eye and target coincide, or the view direction is parallel to up".into(),
            });
        }
        let z = z.normalize();
        // Image x = z × up (to the right), y = z × x (down): a right-handed frame.
        let x = z.cross(&up).normalize();
        let y = z.cross(&x);
        let rot = Rotation3::from_basis_unchecked(&[x, y, z]);
        Ok(Self {
            intrinsics,
            pose: Isometry3::from_parts(
                Translation3::from(eye.coords),
                UnitQuaternion::from_rotation_matrix(&rot),
            ),
            max_depth: 2.0,
        })
    }

    /// The default view of a hand mounted palm up: 0.25 m from `target`, looking down at
    /// it from above and the side, 60° vertical field of view.
    pub fn overview(width: usize, height: usize, target: Point3<f64>) -> Result<Self> {
        let intrinsics = CameraIntrinsics::from_fov_y(width, height, 60f64.to_radians())?;
        let eye = target + Vector3::new(0.1, -0.1, 0.2);
        Self::look_at(intrinsics, eye, target, Vector3::z())
    }

    /// [`Camera::overview`] aimed at the mean of `points` (the origin for none): e.g. a
    /// hand's fingertips, the view dex's recordings and Python's `render` use.
    pub fn overview_of(width: usize, height: usize, points: &[Point3<f64>]) -> Result<Self> {
        let n = points.len().max(1) as f64;
        let centre = points
            .iter()
            .fold(Point3::origin(), |acc, p| acc + p.coords / n);
        Self::overview(width, height, centre)
    }

    /// The same camera with another image size (same field of view).
    pub fn with_resolution(&self, width: usize, height: usize) -> Result<Self> {
        let k = &self.intrinsics;
        let sx = width as f64 / k.width as f64;
        let sy = height as f64 / k.height as f64;
        let intrinsics = CameraIntrinsics::try_new(
            width,
            height,
            k.fx * sx,
            k.fy * sy,
            (k.cx + 0.5) * sx - 0.5,
            (k.cy + 0.5) * sy - 0.5,
        )?;
        Ok(Self {
            intrinsics,
            ..*self
        })
    }

    /// The image size `(width, height)`, after checking what a renderer needs: a
    /// positive, finite `max_depth` and a non-empty image (every backend's renderer
    /// starts here).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a bad `max_depth` or an empty image.
    pub fn render_size(&self) -> Result<(usize, usize)> {
        if !(self.max_depth.is_finite() && self.max_depth > 0.0) {
            return Err(Error::InvalidParameter {
                what: "camera max_depth",
                reason: format!("must be positive and finite, got {}", self.max_depth),
            });
        }
        let (w, h) = (self.intrinsics.width, self.intrinsics.height);
        if w == 0 || h == 0 {
            return Err(Error::InvalidParameter {
                what: "camera image size",
                reason: format!("must be non-zero, got {w}×{h}"),
            });
        }
        Ok((w, h))
    }

    /// The unit direction, in the camera frame, of the ray through the centre of pixel
    /// `(u, v)`, and the depth (z) per unit of ray length.
    pub fn ray_direction(&self, u: usize, v: usize) -> (Vector3<f64>, f64) {
        let k = &self.intrinsics;
        let d = Vector3::new((u as f64 - k.cx) / k.fx, (v as f64 - k.cy) / k.fy, 1.0);
        let n = d.norm();
        (d / n, 1.0 / n)
    }
}

/// One rendered frame: depth, segmentation, and a textured grayscale image.
#[derive(Debug, Clone, PartialEq)]
pub struct DepthFrame {
    /// The camera that rendered it.
    pub camera: Camera,
    /// Depth (m, z in the camera frame), `height × width`, 0 where nothing is hit.
    pub depth: DepthImage,
    /// Per pixel: [`LABEL_NONE`], [`LABEL_HAND`] or [`object_label`] of the object seen.
    pub segmentation: Array2<i16>,
    /// Grey levels, `height × width`: every surface carries a procedural texture fixed in
    /// its body's frame (see [`crate::texture`]), lit by a head light; pixels that see
    /// nothing are [`crate::texture::BACKGROUND_GRAY`]. What point trackers follow.
    pub gray: Array2<u8>,
}

impl DepthFrame {
    /// A frame of `camera` from row-major buffers of its image size (how a renderer
    /// hands its result over).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when a buffer's length is not width × height.
    pub fn from_buffers(
        camera: &Camera,
        depth: Vec<f32>,
        segmentation: Vec<i16>,
        gray: Vec<u8>,
    ) -> Result<Self> {
        let shape = (camera.intrinsics.height, camera.intrinsics.width);
        let err = |e: ndarray::ShapeError| Error::InvalidParameter {
            what: "camera image size",
            reason: e.to_string(),
        };
        Ok(DepthFrame {
            camera: *camera,
            depth: DepthImage::new(Array2::from_shape_vec(shape, depth).map_err(err)?),
            segmentation: Array2::from_shape_vec(shape, segmentation).map_err(err)?,
            gray: Array2::from_shape_vec(shape, gray).map_err(err)?,
        })
    }

    /// The valid pixels as a point cloud in the camera frame.
    pub fn points_camera(&self) -> Result<PointCloud> {
        Ok(self.depth.to_point_cloud(&self.camera.intrinsics)?)
    }

    /// The valid pixels as a point cloud in the world frame.
    pub fn points_world(&self) -> Result<PointCloud> {
        Ok(self.points_camera()?.transformed(&self.camera.pose))
    }

    /// The world-frame points of the pixels labelled `label`.
    pub fn labelled_points_world(&self, label: i16) -> Vec<Point3<f64>> {
        let k = &self.camera.intrinsics;
        let depth = self.depth.view();
        let mut out = Vec::new();
        for ((v, u), l) in self.segmentation.indexed_iter() {
            let d = depth[(v, u)];
            if *l == label && d > 0.0 && d.is_finite() {
                out.push(self.camera.pose * k.back_project(u as f64, v as f64, f64::from(d)));
            }
        }
        out
    }

    /// Up to `n` pixels `[u, v]` labelled `label` whose whole `(2·margin + 1)²`
    /// neighbourhood carries that label too (away from silhouette edges), on a regular
    /// grid spread over the region, row by row: query points for a point tracker.
    pub fn interior_pixels(&self, label: i16, margin: usize, n: usize) -> Vec<[f32; 2]> {
        let seg = &self.segmentation;
        let (h, w) = seg.dim();
        if n == 0 || h == 0 || w == 0 {
            return Vec::new();
        }
        let inside = |u: usize, v: usize| {
            v >= margin
                && u >= margin
                && v + margin < h
                && u + margin < w
                && (v - margin..=v + margin)
                    .all(|y| (u - margin..=u + margin).all(|x| seg[(y, x)] == label))
        };
        let candidates: Vec<(usize, usize)> = seg
            .indexed_iter()
            .filter(|((v, u), l)| **l == label && inside(*u, *v))
            .map(|((v, u), _)| (u, v))
            .collect();
        // A grid step giving about n points over the candidates' area.
        let step = ((candidates.len() as f64 / n as f64).sqrt().floor() as usize).max(1);
        candidates
            .into_iter()
            .filter(|(u, v)| u.is_multiple_of(step) && v.is_multiple_of(step))
            .take(n)
            .map(|(u, v)| [u as f32, v as f32])
            .collect()
    }

    /// The world point seen at pixel `(u, v)` (its depth back-projected), or `None`
    /// outside the image or where nothing is hit.
    pub fn world_point(&self, u: usize, v: usize) -> Option<Point3<f64>> {
        let d = *self.depth.view().get((v, u))?;
        (d > 0.0 && d.is_finite()).then(|| {
            self.camera.pose
                * self
                    .camera
                    .intrinsics
                    .back_project(u as f64, v as f64, f64::from(d))
        })
    }

    /// Where the world point `p` projects (pixel `[u, v]`, `None` behind the camera)
    /// and whether this frame sees it: inside the image, on a pixel labelled `label`,
    /// at a depth within `tolerance` (m) of the rendered one (not hidden behind
    /// something nearer).
    pub fn project_visible(
        &self,
        p: &Point3<f64>,
        label: i16,
        tolerance: f64,
    ) -> Option<([f64; 2], bool)> {
        let cam = self.camera.pose.inverse_transform_point(p);
        let k = &self.camera.intrinsics;
        let (u, v) = k.project(&cam)?;
        let (ui, vi) = (u.round(), v.round());
        let inside = ui >= 0.0 && vi >= 0.0 && (ui as usize) < k.width && (vi as usize) < k.height;
        let visible = inside && {
            let (x, y) = (ui as usize, vi as usize);
            let d = f64::from(self.depth.view()[(y, x)]);
            self.segmentation[(y, x)] == label && (d - cam.z).abs() < tolerance
        };
        Some(([u, v], visible))
    }

    /// Draws spheres of `radius` (m) centred at the world points `centers` into the
    /// frame, as a renderer would draw visual-only markers: a pixel whose ray meets a
    /// sphere nearer than what it saw (or that saw nothing) takes the sphere's depth,
    /// label [`LABEL_MARKER`] and a flat grey. Spheres behind the camera or beyond
    /// `max_depth` are not drawn.
    pub fn draw_spheres(&mut self, centers: &[Point3<f64>], radius: f64) {
        let cam = self.camera;
        let (w, h) = (cam.intrinsics.width, cam.intrinsics.height);
        let inv = cam.pose.inverse();
        let local: Vec<Vector3<f64>> = centers.iter().map(|c| (inv * c).coords).collect();
        let mut depth = self.depth.view().to_owned();
        for v in 0..h {
            for u in 0..w {
                let (dir, z_per_len) = cam.ray_direction(u, v);
                let mut nearest = f64::INFINITY;
                for c in &local {
                    // |t·dir − c|² = r² with |dir| = 1: t = dir·c − sqrt((dir·c)² − |c|² + r²).
                    let b = dir.dot(c);
                    let disc = b * b - c.norm_squared() + radius * radius;
                    if disc >= 0.0 {
                        let t = b - disc.sqrt();
                        if t > 0.0 && t < nearest {
                            nearest = t;
                        }
                    }
                }
                if nearest > cam.max_depth {
                    continue;
                }
                let z = (nearest * z_per_len) as f32;
                let d = depth[(v, u)];
                if d <= 0.0 || z < d {
                    depth[(v, u)] = z;
                    self.segmentation[(v, u)] = LABEL_MARKER;
                    self.gray[(v, u)] = 200;
                }
            }
        }
        self.depth = DepthImage::new(depth);
    }

    /// Area downsampling by an integer `factor` ("squinting"): each output pixel's depth
    /// is the mean of the valid depths in its `factor × factor` block (0 if none), and its
    /// label the most frequent label among the block's pixels (ties: the smallest label),
    /// and its grey level the block's mean.
    pub fn squint(&self, factor: usize) -> Result<DepthFrame> {
        let (h, w) = (self.depth.height(), self.depth.width());
        if factor == 0 || h % factor != 0 || w % factor != 0 {
            return Err(Error::InvalidParameter {
                what: "squint factor",
                reason: format!("{factor} must be positive and divide the image size {w}×{h}"),
            });
        }
        let (oh, ow) = (h / factor, w / factor);
        let src = self.depth.view();
        let mut depth = Array2::<f32>::zeros((oh, ow));
        let mut labels = Array2::<i16>::from_elem((oh, ow), LABEL_NONE);
        let mut gray = Array2::<u8>::zeros((oh, ow));
        let mut counts: Vec<(i16, usize)> = Vec::with_capacity(4);
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut n, mut grey_sum) = (0f64, 0usize, 0u32);
                counts.clear();
                for y in oy * factor..(oy + 1) * factor {
                    for x in ox * factor..(ox + 1) * factor {
                        let d = src[(y, x)];
                        if d > 0.0 && d.is_finite() {
                            sum += f64::from(d);
                            n += 1;
                        }
                        grey_sum += u32::from(self.gray[(y, x)]);
                        let l = self.segmentation[(y, x)];
                        match counts.iter_mut().find(|(k, _)| *k == l) {
                            Some((_, c)) => *c += 1,
                            None => counts.push((l, 1)),
                        }
                    }
                }
                if n > 0 {
                    depth[(oy, ox)] = (sum / n as f64) as f32;
                }
                let area = (factor * factor) as f64;
                gray[(oy, ox)] = (f64::from(grey_sum) / area).round() as u8;
                counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                labels[(oy, ox)] = counts.first().map_or(LABEL_NONE, |c| c.0);
            }
        }
        Ok(DepthFrame {
            camera: self.camera.with_resolution(ow, oh)?,
            depth: DepthImage::new(depth),
            segmentation: labels,
            gray,
        })
    }

    /// The depth as an 8-bit grey image a person can look at: near is bright, far dark,
    /// nothing black; the range is stretched over the valid depths.
    pub fn to_gray8(&self) -> Array2<u8> {
        let d = self.depth.view();
        let valid = d.iter().copied().filter(|v| *v > 0.0 && v.is_finite());
        let (lo, hi) = valid.fold((f32::INFINITY, 0f32), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let span = (hi - lo).max(1e-6);
        d.mapv(|v| {
            if v > 0.0 && v.is_finite() {
                (255.0 - 215.0 * (v - lo) / span).round() as u8
            } else {
                0
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_at_points_the_optical_axis_at_the_target() {
        let k = CameraIntrinsics::from_fov_y(64, 48, 1.0).unwrap();
        let cam = Camera::look_at(
            k,
            Point3::new(1.0, 0.0, 1.0),
            Point3::origin(),
            Vector3::z(),
        )
        .unwrap();
        let target_cam = cam.pose.inverse() * Point3::origin();
        assert!(target_cam.x.abs() < 1e-12 && target_cam.y.abs() < 1e-12 && target_cam.z > 0.0);
        // A point above the target appears above the image centre (smaller v).
        let above = cam.pose.inverse() * Point3::new(0.0, 0.0, 0.1);
        let (_, v) = k.project(&above).unwrap();
        assert!(v < k.cy);
        assert!(
            (cam.pose
                .rotation
                .to_rotation_matrix()
                .matrix()
                .determinant()
                - 1.0)
                .abs()
                < 1e-9
        );
        assert!(
            Camera::look_at(
                k,
                Point3::origin(),
                Point3::new(0.0, 0.0, 1.0),
                Vector3::z()
            )
            .is_err()
        );
    }

    #[test]
    fn squint_averages_valid_depths_and_takes_the_majority_label() {
        let k = CameraIntrinsics::from_fov_y(4, 4, 1.0).unwrap();
        let cam = Camera::look_at(
            k,
            Point3::new(0.0, 0.0, 1.0),
            Point3::origin(),
            Vector3::y(),
        )
        .unwrap();
        let mut depth = Array2::<f32>::zeros((4, 4));
        let mut seg = Array2::<i16>::from_elem((4, 4), LABEL_NONE);
        depth[(0, 0)] = 1.0;
        depth[(0, 1)] = 2.0;
        depth[(1, 0)] = 3.0;
        seg[(0, 0)] = 1;
        seg[(0, 1)] = 1;
        seg[(1, 0)] = 1;
        let frame = DepthFrame {
            camera: cam,
            depth: DepthImage::new(depth),
            segmentation: seg,
            gray: Array2::from_shape_fn((4, 4), |(v, u)| (10 * (4 * v + u)) as u8),
        };
        let small = frame.squint(2).unwrap();
        // Block mean of 0, 10, 40, 50.
        assert_eq!(small.gray[(0, 0)], 25);
        assert_eq!(small.depth.view()[(0, 0)], 2.0);
        assert_eq!(small.segmentation[(0, 0)], 1);
        assert_eq!(small.depth.view()[(1, 1)], 0.0);
        assert_eq!(small.segmentation[(1, 1)], LABEL_NONE);
        assert_eq!(small.camera.intrinsics.width, 2);
        assert!(frame.squint(3).is_err());
    }

    #[test]
    fn drawn_spheres_take_the_nearer_depth_only() {
        let k = CameraIntrinsics::from_fov_y(33, 33, 1.0).unwrap();
        let mut cam = Camera::look_at(
            k,
            Point3::new(0.0, 0.0, 1.0),
            Point3::origin(),
            Vector3::y(),
        )
        .unwrap();
        cam.max_depth = 5.0;
        let mut depth = Array2::<f32>::zeros((33, 33));
        // Left half: a wall at 0.5 m, in front of the sphere; right half: nothing.
        for v in 0..33 {
            for u in 0..16 {
                depth[(v, u)] = 0.5;
            }
        }
        let mut frame = DepthFrame {
            camera: cam,
            depth: DepthImage::new(depth),
            segmentation: Array2::from_elem((33, 33), LABEL_NONE),
            gray: Array2::zeros((33, 33)),
        };
        // A sphere of radius 0.1 at the origin, 1 m in front of the camera, its centre
        // on the optical axis (pixel 16, 16).
        frame.draw_spheres(&[Point3::origin()], 0.1);
        let d = frame.depth.view();
        assert!((d[(16, 16)] - 0.9).abs() < 1e-6, "{}", d[(16, 16)]);
        assert_eq!(frame.segmentation[(16, 16)], LABEL_MARKER);
        // Nearer than the sphere: the wall stays.
        assert_eq!(d[(16, 15)], 0.5);
        assert_eq!(frame.segmentation[(16, 15)], LABEL_NONE);
        // Off the sphere (its image radius is about 1.8 px at f ≈ 30 px): untouched.
        assert_eq!(d[(16, 25)], 0.0);
        // Beyond max_depth: not drawn.
        frame.camera.max_depth = 0.8;
        let before = frame.depth.view().to_owned();
        frame.draw_spheres(&[Point3::new(0.0, 0.0, -0.2)], 0.1);
        assert_eq!(frame.depth.view(), before.view());
    }
}
