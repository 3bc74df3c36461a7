//! [`RerunSink`]: a recording written to an `.rrd` file with the rerun SDK.

use std::path::Path;

use dex_core::CameraIntrinsics;
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};

use crate::error::{Error, Result};
use crate::shapes::Primitive;
use crate::sink::{Rgba, SceneSink};

/// Timelines of every recording: the control tick and the simulated time.
const TICK: &str = "tick";
const SIM_TIME: &str = "sim_time";

/// Writes a recording to an `.rrd` file, which the rerun viewer 0.35 opens
/// (`rerun FILE.rrd`). The world is z-up, right-handed, in metres.
#[derive(Clone)]
pub struct RerunSink {
    rec: rerun::RecordingStream,
    path: String,
}

impl std::fmt::Debug for RerunSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RerunSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RerunSink {
    /// A recording named `application` written to `path` (created or truncated).
    pub fn create(application: &str, path: &Path) -> Result<Self> {
        let name = path.display().to_string();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(Error::Sink {
                path: name,
                message: format!("the directory {} does not exist", dir.display()),
            });
        }
        let rec = rerun::RecordingStreamBuilder::new(application)
            .save(path)
            .map_err(|e| Error::Sink {
                path: name.clone(),
                message: e.to_string(),
            })?;
        let mut sink = Self { rec, path: name };
        sink.wrap(
            sink.rec
                .log_static("world", &rerun::ViewCoordinates::RIGHT_HAND_Z_UP()),
        )?;
        Ok(sink)
    }

    fn wrap<T, E: std::fmt::Display>(&mut self, r: std::result::Result<T, E>) -> Result<T> {
        r.map_err(|e| Error::Sink {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }
}

fn f3(p: &Point3<f64>) -> [f32; 3] {
    [p.x as f32, p.y as f32, p.z as f32]
}

fn color(c: Rgba) -> rerun::Color {
    rerun::Color::from_unmultiplied_rgba(c[0], c[1], c[2], c[3])
}

fn quaternion(q: [f32; 4]) -> rerun::Quaternion {
    rerun::Quaternion::from_xyzw(q)
}

impl SceneSink for RerunSink {
    fn set_time(&mut self, tick: i64, seconds: f64) {
        self.rec.set_time_sequence(TICK, tick);
        self.rec.set_duration_secs(SIM_TIME, seconds);
    }

    fn log_static_shapes(&mut self, path: &str, shapes: &[Primitive], c: Rgba) -> Result<()> {
        // One archetype per kind, each at its own child path.
        let (mut boxes, mut spheres, mut capsules, mut cylinders, mut points) =
            (vec![], vec![], vec![], vec![], vec![]);
        for s in shapes {
            match s {
                Primitive::Box {
                    center,
                    rotation,
                    half_size,
                } => boxes.push((*center, *rotation, *half_size)),
                Primitive::Sphere { center, radius } => spheres.push((*center, *radius)),
                Primitive::Capsule { start, end, radius } => capsules.push((*start, *end, *radius)),
                Primitive::Cylinder {
                    center,
                    rotation,
                    length,
                    radius,
                } => cylinders.push((*center, *rotation, *length, *radius)),
                Primitive::Points { points: p } => points.extend_from_slice(p),
            }
        }
        let c = color(c);
        if !boxes.is_empty() {
            let a = rerun::Boxes3D::from_centers_and_half_sizes(
                boxes.iter().map(|b| b.0),
                boxes.iter().map(|b| b.2),
            )
            .with_quaternions(boxes.iter().map(|b| quaternion(b.1)))
            .with_fill_mode(rerun::FillMode::Solid)
            .with_colors([c]);
            let r = self.rec.log_static(format!("{path}/boxes"), &a);
            self.wrap(r)?;
        }
        if !spheres.is_empty() {
            let a = rerun::Ellipsoids3D::from_centers_and_radii(
                spheres.iter().map(|s| s.0),
                spheres.iter().map(|s| s.1),
            )
            .with_fill_mode(rerun::FillMode::Solid)
            .with_colors([c]);
            let r = self.rec.log_static(format!("{path}/spheres"), &a);
            self.wrap(r)?;
        }
        if !capsules.is_empty() {
            // rerun's capsules run from the origin along +z: a length, a translation to
            // the start and the rotation of +z onto the axis.
            let axes: Vec<Vector3<f32>> = capsules
                .iter()
                .map(|s| Vector3::from(s.1) - Vector3::from(s.0))
                .collect();
            let a = rerun::Capsules3D::from_lengths_and_radii(
                axes.iter().map(|d| d.norm()),
                capsules.iter().map(|s| s.2),
            )
            .with_translations(capsules.iter().map(|s| s.0))
            .with_quaternions(axes.iter().map(|d| {
                let q = UnitQuaternion::rotation_between(&Vector3::z(), d).unwrap_or_else(|| {
                    // Opposite to +z (or a zero axis): half a turn about x.
                    UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f32::consts::PI)
                });
                quaternion([q.i, q.j, q.k, q.w])
            }))
            .with_colors([c]);
            let r = self.rec.log_static(format!("{path}/capsules"), &a);
            self.wrap(r)?;
        }
        if !cylinders.is_empty() {
            let a = rerun::Cylinders3D::from_lengths_and_radii(
                cylinders.iter().map(|s| s.2),
                cylinders.iter().map(|s| s.3),
            )
            .with_centers(cylinders.iter().map(|s| s.0))
            .with_quaternions(cylinders.iter().map(|s| quaternion(s.1)))
            .with_colors([c]);
            let r = self.rec.log_static(format!("{path}/cylinders"), &a);
            self.wrap(r)?;
        }
        if !points.is_empty() {
            let a = rerun::Points3D::new(points)
                .with_radii([0.002f32])
                .with_colors([c]);
            let r = self.rec.log_static(format!("{path}/points"), &a);
            self.wrap(r)?;
        }
        Ok(())
    }

    fn log_pose(&mut self, path: &str, pose: &Isometry3<f64>) -> Result<()> {
        let t = pose.translation.vector;
        let q = pose.rotation.coords;
        let a = rerun::Transform3D::from_translation_rotation(
            [t.x as f32, t.y as f32, t.z as f32],
            quaternion([q.x as f32, q.y as f32, q.z as f32, q.w as f32]),
        );
        let r = self.rec.log(path, &a);
        self.wrap(r)
    }

    fn log_points3d(
        &mut self,
        path: &str,
        points: &[Point3<f64>],
        radius: f32,
        c: Rgba,
    ) -> Result<()> {
        let a = rerun::Points3D::new(points.iter().map(f3))
            .with_radii([radius])
            .with_colors([color(c)]);
        let r = self.rec.log(path, &a);
        self.wrap(r)
    }

    fn log_scalar(&mut self, path: &str, value: f64) -> Result<()> {
        let r = self.rec.log(path, &rerun::Scalars::single(value));
        self.wrap(r)
    }

    fn log_pinhole(&mut self, path: &str, k: &CameraIntrinsics) -> Result<()> {
        // The intrinsic matrix, column-major.
        let (fx, fy, cx, cy) = (k.fx as f32, k.fy as f32, k.cx as f32, k.cy as f32);
        let projection = rerun::components::PinholeProjection(rerun::datatypes::Mat3x3([
            fx, 0.0, 0.0, 0.0, fy, 0.0, cx, cy, 1.0,
        ]));
        let a = rerun::Pinhole::new(projection)
            .with_resolution([k.width as f32, k.height as f32])
            .with_image_plane_distance(0.05);
        let r = self.rec.log(path, &a);
        self.wrap(r)
    }

    fn log_gray_image(
        &mut self,
        path: &str,
        width: usize,
        height: usize,
        pixels: &[u8],
    ) -> Result<()> {
        if pixels.len() != width * height {
            return Err(Error::Mismatch {
                what: "grey image pixels",
                expected: width * height,
                got: pixels.len(),
            });
        }
        let a = rerun::Image::from_l8(pixels.to_vec(), [width as u32, height as u32]);
        let r = self.rec.log(path, &a);
        self.wrap(r)
    }

    fn log_points2d(
        &mut self,
        path: &str,
        points: &[[f32; 2]],
        radius: f32,
        c: Rgba,
    ) -> Result<()> {
        let a = rerun::Points2D::new(points.iter().copied())
            .with_radii([radius])
            .with_colors([color(c)]);
        let r = self.rec.log(path, &a);
        self.wrap(r)
    }

    fn fork(&self) -> Box<dyn SceneSink> {
        Box::new(self.clone())
    }

    fn flush(&mut self) -> Result<()> {
        let r = self.rec.flush_blocking();
        self.wrap(r)
    }
}
