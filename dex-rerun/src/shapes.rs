//! dex's geometry as the primitives a viewer draws: boxes, spheres, capsules and
//! cylinders placed in their body's frame, and convex hulls as their points.

use dex_core::{Geometry, Shape};
use dex_sim::ObjectShape;
use nalgebra::{Isometry3, Point3, Vector3};

/// One drawable primitive, in its body's frame (single precision, as viewers take it).
#[derive(Debug, Clone, PartialEq)]
pub enum Primitive {
    /// A box: centre, orientation (quaternion x, y, z, w), half sizes (m).
    Box {
        /// Centre (m).
        center: [f32; 3],
        /// Orientation as a unit quaternion `[x, y, z, w]`.
        rotation: [f32; 4],
        /// Half of the size along the box's own axes (m).
        half_size: [f32; 3],
    },
    /// A sphere.
    Sphere {
        /// Centre (m).
        center: [f32; 3],
        /// Radius (m).
        radius: f32,
    },
    /// A capsule between the centres of its two end spheres.
    Capsule {
        /// One end's centre (m).
        start: [f32; 3],
        /// The other end's centre (m).
        end: [f32; 3],
        /// Radius (m).
        radius: f32,
    },
    /// A cylinder along its own z axis, centred on `center`.
    Cylinder {
        /// Centre (m).
        center: [f32; 3],
        /// Orientation as a unit quaternion `[x, y, z, w]`.
        rotation: [f32; 4],
        /// Full length along its axis (m).
        length: f32,
        /// Radius (m).
        radius: f32,
    },
    /// A point set (a convex hull drawn as its points).
    Points {
        /// The points (m).
        points: Vec<[f32; 3]>,
    },
}

impl Primitive {
    /// The primitive's kind, as a short name.
    pub fn kind(&self) -> &'static str {
        match self {
            Primitive::Box { .. } => "box",
            Primitive::Sphere { .. } => "sphere",
            Primitive::Capsule { .. } => "capsule",
            Primitive::Cylinder { .. } => "cylinder",
            Primitive::Points { .. } => "points",
        }
    }
}

fn f3(v: &Vector3<f64>) -> [f32; 3] {
    [v.x as f32, v.y as f32, v.z as f32]
}

fn quat(pose: &Isometry3<f64>) -> [f32; 4] {
    let q = pose.rotation.coords;
    [q.x as f32, q.y as f32, q.z as f32, q.w as f32]
}

/// A shape placed at `origin` (its frame in the body's frame) as a primitive; `None` for
/// a mesh reference, which dex keeps unloaded.
pub fn shape_primitive(shape: &Shape, origin: &Isometry3<f64>) -> Option<Primitive> {
    let center = f3(&origin.translation.vector);
    Some(match shape {
        Shape::Box { half_extents } => Primitive::Box {
            center,
            rotation: quat(origin),
            half_size: f3(half_extents),
        },
        Shape::Sphere { radius } => Primitive::Sphere {
            center,
            radius: *radius as f32,
        },
        Shape::Capsule { radius, length } => capsule(origin, *radius, *length),
        Shape::Cylinder { radius, length } => Primitive::Cylinder {
            center,
            rotation: quat(origin),
            length: *length as f32,
            radius: *radius as f32,
        },
        Shape::Mesh { .. } => return None,
    })
}

/// A capsule along `origin`'s z axis, `length` between its end spheres' centres.
fn capsule(origin: &Isometry3<f64>, radius: f64, length: f64) -> Primitive {
    let half = Point3::new(0.0, 0.0, length / 2.0);
    let start = origin * Point3::from(-half.coords);
    let end = origin * half;
    Primitive::Capsule {
        start: f3(&start.coords),
        end: f3(&end.coords),
        radius: radius as f32,
    }
}

/// The primitives of a link's geometry (collision or visual), skipping mesh references;
/// also returns how many were skipped.
pub fn geometry_primitives(geometry: &[Geometry]) -> (Vec<Primitive>, usize) {
    let mut out = Vec::with_capacity(geometry.len());
    let mut skipped = 0;
    for g in geometry {
        match shape_primitive(&g.shape, &g.origin) {
            Some(p) => out.push(p),
            None => skipped += 1,
        }
    }
    (out, skipped)
}

/// An object's shape as a primitive in the object's frame.
pub fn object_primitive(shape: &ObjectShape) -> Primitive {
    let origin = Isometry3::identity();
    match shape {
        ObjectShape::Box { half_extents } => Primitive::Box {
            center: [0.0; 3],
            rotation: [0.0, 0.0, 0.0, 1.0],
            half_size: half_extents.map(|h| h as f32),
        },
        ObjectShape::Sphere { radius } => Primitive::Sphere {
            center: [0.0; 3],
            radius: *radius as f32,
        },
        ObjectShape::Capsule { radius, length } => capsule(&origin, *radius, *length),
        ObjectShape::Cylinder { radius, height } => Primitive::Cylinder {
            center: [0.0; 3],
            rotation: [0.0, 0.0, 0.0, 1.0],
            length: *height as f32,
            radius: *radius as f32,
        },
        ObjectShape::ConvexHull { points } => Primitive::Points {
            points: points.iter().map(|p| p.map(|c| c as f32)).collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::{Translation3, UnitQuaternion};

    #[test]
    fn a_capsule_runs_along_its_frames_z_axis() {
        // Rotated a quarter turn about x: the capsule's z axis is the world's -y.
        let origin = Isometry3::from_parts(
            Translation3::new(0.1, 0.0, 0.0),
            UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::FRAC_PI_2),
        );
        let Some(Primitive::Capsule { start, end, radius }) = shape_primitive(
            &Shape::Capsule {
                radius: 0.01,
                length: 0.04,
            },
            &origin,
        ) else {
            panic!("not a capsule");
        };
        let close = |a: [f32; 3], b: [f32; 3]| a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-6);
        assert!(close(start, [0.1, 0.02, 0.0]), "{start:?}");
        assert!(close(end, [0.1, -0.02, 0.0]), "{end:?}");
        assert_eq!(radius, 0.01);
    }

    #[test]
    fn meshes_are_skipped_and_counted() {
        let g = |shape| Geometry {
            name: None,
            origin: Isometry3::identity(),
            shape,
        };
        let (p, skipped) = geometry_primitives(&[
            g(Shape::Sphere { radius: 0.5 }),
            g(Shape::Mesh {
                path: "a.stl".into(),
                scale: Vector3::repeat(1.0),
            }),
        ]);
        assert_eq!(skipped, 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].kind(), "sphere");
    }

    #[test]
    fn a_box_keeps_its_half_sizes_and_pose() {
        let origin = Isometry3::from_parts(
            Translation3::new(0.0, 0.0, 0.3),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), 0.5),
        );
        let p = shape_primitive(
            &Shape::Box {
                half_extents: Vector3::new(0.1, 0.2, 0.3),
            },
            &origin,
        );
        let Some(Primitive::Box {
            center,
            rotation,
            half_size,
        }) = p
        else {
            panic!("not a box");
        };
        assert_eq!(center, [0.0, 0.0, 0.3]);
        assert_eq!(half_size, [0.1, 0.2, 0.3]);
        // A rotation of 0.5 rad about z: (0, 0, sin 0.25, cos 0.25).
        assert!((rotation[2] - 0.25f32.sin()).abs() < 1e-6);
        assert!((rotation[3] - 0.25f32.cos()).abs() < 1e-6);
    }
}
