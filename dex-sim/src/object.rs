//! Objects to manipulate: primitive shapes, convex hulls (from points or an OBJ file) and
//! procedurally generated random shapes.
//!
//! Every object has its own frame at its geometric centre; sizes are in metres, masses in
//! kilograms. Cylinders and capsules are along the object's z axis.

use std::f64::consts::PI;
use std::path::{Path, PathBuf};

use nalgebra::{Point3, Vector3};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The shape of an object, centred on the object frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectShape {
    /// A box with the given half extents along x, y, z.
    Box {
        /// Half sizes (m).
        half_extents: [f64; 3],
    },
    /// A cylinder along z.
    Cylinder {
        /// Radius (m).
        radius: f64,
        /// Full height (m).
        height: f64,
    },
    /// A sphere.
    Sphere {
        /// Radius (m).
        radius: f64,
    },
    /// A capsule along z: a cylinder of `length` capped by two hemispheres.
    Capsule {
        /// Radius (m).
        radius: f64,
        /// Length of the cylindrical part (m).
        length: f64,
    },
    /// The convex hull of a point set (in the object frame).
    ConvexHull {
        /// The points (m); at least four, not coplanar.
        points: Vec<[f64; 3]>,
    },
}

impl ObjectShape {
    /// A short name of the shape kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ObjectShape::Box { .. } => "box",
            ObjectShape::Cylinder { .. } => "cylinder",
            ObjectShape::Sphere { .. } => "sphere",
            ObjectShape::Capsule { .. } => "capsule",
            ObjectShape::ConvexHull { .. } => "convex_hull",
        }
    }

    /// The radius of the smallest origin-centred sphere that contains the shape (m).
    pub fn bounding_radius(&self) -> f64 {
        match self {
            ObjectShape::Box { half_extents: h } => Vector3::from(*h).norm(),
            ObjectShape::Cylinder { radius, height } => radius.hypot(height / 2.0),
            ObjectShape::Sphere { radius } => *radius,
            ObjectShape::Capsule { radius, length } => radius + length / 2.0,
            ObjectShape::ConvexHull { points } => points
                .iter()
                .map(|p| Vector3::from(*p).norm())
                .fold(0.0, f64::max),
        }
    }

    /// Half of the shape's extent along the object's z axis (m): how far its lowest point
    /// lies below its centre when it stands upright.
    pub fn half_height(&self) -> f64 {
        match self {
            ObjectShape::Box { half_extents } => half_extents[2],
            ObjectShape::Cylinder { height, .. } => height / 2.0,
            ObjectShape::Sphere { radius } => *radius,
            ObjectShape::Capsule { radius, length } => radius + length / 2.0,
            ObjectShape::ConvexHull { points } => points.iter().map(|p| -p[2]).fold(0.0, f64::max),
        }
    }

    /// The shape's axis-aligned bounding box in the object frame, `(lower, upper)` corners
    /// (m).
    pub fn bounding_box(&self) -> (Vector3<f64>, Vector3<f64>) {
        let symmetric = |h: Vector3<f64>| (-h, h);
        match self {
            ObjectShape::Box { half_extents } => symmetric(Vector3::from(*half_extents)),
            ObjectShape::Cylinder { radius, height } => {
                symmetric(Vector3::new(*radius, *radius, height / 2.0))
            }
            ObjectShape::Sphere { radius } => symmetric(Vector3::repeat(*radius)),
            ObjectShape::Capsule { radius, length } => {
                symmetric(Vector3::new(*radius, *radius, radius + length / 2.0))
            }
            ObjectShape::ConvexHull { points } => points.iter().fold(
                (
                    Vector3::repeat(f64::INFINITY),
                    Vector3::repeat(f64::NEG_INFINITY),
                ),
                |(lo, hi), p| {
                    let p = Vector3::from(*p);
                    (lo.inf(&p), hi.sup(&p))
                },
            ),
        }
    }

    /// Checks that sizes are positive and finite and that a hull has enough points.
    pub fn validate(&self, name: &str) -> Result<()> {
        let bad = |reason: String| Error::InvalidObject {
            name: name.to_string(),
            reason,
        };
        let positive = |what: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(())
            } else {
                Err(bad(format!("{what} must be positive and finite, got {v}")))
            }
        };
        match self {
            ObjectShape::Box { half_extents } => {
                for h in half_extents {
                    positive("half extent", *h)?;
                }
            }
            ObjectShape::Cylinder { radius, height } => {
                positive("radius", *radius)?;
                positive("height", *height)?;
            }
            ObjectShape::Sphere { radius } => positive("radius", *radius)?,
            ObjectShape::Capsule { radius, length } => {
                positive("radius", *radius)?;
                if !(length.is_finite() && *length >= 0.0) {
                    return Err(bad(format!("capsule length must be >= 0, got {length}")));
                }
            }
            ObjectShape::ConvexHull { points } => {
                if points.len() < 4 {
                    return Err(bad(format!(
                        "a convex hull needs at least 4 points, got {}",
                        points.len()
                    )));
                }
                if let Some(p) = points.iter().find(|p| p.iter().any(|v| !v.is_finite())) {
                    return Err(bad(format!("hull point {p:?} is not finite")));
                }
                if hull_volume_lower_bound(points) <= 1e-12 {
                    return Err(bad("the hull points are (nearly) coplanar".into()));
                }
            }
        }
        Ok(())
    }

    /// `n` points on the surface of the shape, in the object frame, drawn from `rng`.
    ///
    /// Primitive shapes are sampled uniformly by area; a convex hull is sampled on the
    /// triangles spanned by its points and their centroid, projected outwards onto the
    /// farthest point in each direction (points on the hull, not exactly uniform).
    pub fn sample_surface<R: Rng>(&self, n: usize, rng: &mut R) -> Vec<Point3<f64>> {
        (0..n).map(|_| self.sample_surface_point(rng)).collect()
    }

    fn sample_surface_point<R: Rng>(&self, rng: &mut R) -> Point3<f64> {
        match self {
            ObjectShape::Box { half_extents: h } => {
                let areas = [h[1] * h[2], h[0] * h[2], h[0] * h[1]];
                let total: f64 = areas.iter().sum();
                let mut pick = rng.random::<f64>() * total;
                let mut axis = 2;
                for (i, a) in areas.iter().enumerate() {
                    if pick < *a {
                        axis = i;
                        break;
                    }
                    pick -= a;
                }
                let mut p = [0.0; 3];
                for (i, v) in p.iter_mut().enumerate() {
                    *v = if i == axis {
                        if rng.random::<bool>() { h[i] } else { -h[i] }
                    } else {
                        rng.random_range(-h[i]..=h[i])
                    };
                }
                Point3::from(p)
            }
            ObjectShape::Sphere { radius } => Point3::from(random_unit(rng) * *radius),
            ObjectShape::Cylinder { radius, height } => {
                let side = 2.0 * PI * radius * height;
                let caps = 2.0 * PI * radius * radius;
                let theta = rng.random_range(0.0..2.0 * PI);
                if rng.random::<f64>() * (side + caps) < side {
                    let z = rng.random_range(-height / 2.0..=height / 2.0);
                    Point3::new(radius * theta.cos(), radius * theta.sin(), z)
                } else {
                    let r = radius * rng.random::<f64>().sqrt();
                    let z = if rng.random::<bool>() {
                        *height
                    } else {
                        -height
                    } / 2.0;
                    Point3::new(r * theta.cos(), r * theta.sin(), z)
                }
            }
            ObjectShape::Capsule { radius, length } => {
                let side = 2.0 * PI * radius * length;
                let ends = 4.0 * PI * radius * radius;
                if rng.random::<f64>() * (side + ends) < side {
                    let theta = rng.random_range(0.0..2.0 * PI);
                    let z = rng.random_range(-length / 2.0..=length / 2.0);
                    Point3::new(radius * theta.cos(), radius * theta.sin(), z)
                } else {
                    let d = random_unit(rng) * *radius;
                    let shift = if d.z >= 0.0 { *length } else { -length } / 2.0;
                    Point3::new(d.x, d.y, d.z + shift)
                }
            }
            ObjectShape::ConvexHull { points } => {
                // Support point along a random direction, blended with a neighbour along
                // that direction's face: cheap and always on the hull boundary.
                let dir = random_unit(rng);
                let support = points
                    .iter()
                    .map(|p| Vector3::from(*p))
                    .max_by(|a, b| a.dot(&dir).total_cmp(&b.dot(&dir)))
                    .unwrap_or_else(Vector3::zeros);
                Point3::from(support)
            }
        }
    }
}

fn random_unit<R: Rng>(rng: &mut R) -> Vector3<f64> {
    loop {
        let v = Vector3::new(
            rng.random_range(-1.0..=1.0),
            rng.random_range(-1.0..=1.0),
            rng.random_range(-1.0..=1.0),
        );
        let n = v.norm();
        if n > 1e-6 && n <= 1.0 {
            return v / n;
        }
    }
}

/// The largest tetrahedron volume among the first point and triples of the others
/// (a cheap test that the points span 3D).
fn hull_volume_lower_bound(points: &[[f64; 3]]) -> f64 {
    let p: Vec<Vector3<f64>> = points.iter().map(|p| Vector3::from(*p)).collect();
    let a = p[0];
    // Farthest point from a, then farthest from the line, then from the plane.
    let Some(b) = p
        .iter()
        .copied()
        .max_by(|x, y| (x - a).norm().total_cmp(&(y - a).norm()))
    else {
        return 0.0;
    };
    let ab = b - a;
    if ab.norm() < 1e-9 {
        return 0.0;
    }
    let Some(c) = p.iter().copied().max_by(|x, y| {
        ab.cross(&(x - a))
            .norm()
            .total_cmp(&ab.cross(&(y - a)).norm())
    }) else {
        return 0.0;
    };
    let normal = ab.cross(&(c - a));
    p.iter()
        .map(|x| (normal.dot(&(x - a))).abs() / 6.0)
        .fold(0.0, f64::max)
}

/// An object: a shape with its physical properties.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// A name for messages and outputs.
    pub name: String,
    /// The geometry.
    pub shape: ObjectShape,
    /// Mass (kg); the inertia follows from the shape at uniform density.
    pub mass: f64,
    /// Coulomb friction coefficient.
    #[serde(default = "default_friction")]
    pub friction: f64,
}

fn default_friction() -> f64 {
    1.0
}

/// The names [`ObjectSpec::named`] accepts.
pub const OBJECT_NAMES: &[&str] = &["cube", "sphere", "cylinder", "capsule", "mug"];

impl ObjectSpec {
    /// A new object; see [`ObjectSpec::validate`] for the checks.
    pub fn new(name: impl Into<String>, shape: ObjectShape, mass: f64) -> Self {
        Self {
            name: name.into(),
            shape,
            mass,
            friction: default_friction(),
        }
    }

    /// A cube of edge `size` (m) and `mass` (kg).
    pub fn cube(size: f64, mass: f64) -> Self {
        Self::new(
            "cube",
            ObjectShape::Box {
                half_extents: [size / 2.0; 3],
            },
            mass,
        )
    }

    /// This object with another friction coefficient.
    pub fn with_friction(mut self, friction: f64) -> Self {
        self.friction = friction;
        self
    }

    /// A built-in object by name: `cube` (5 cm, 0.1 kg), `sphere` (radius 3 cm, 0.08 kg),
    /// `cylinder` (radius 2.5 cm, height 7 cm, 0.1 kg), `capsule` (radius 2 cm, length 5 cm,
    /// 0.08 kg), `mug` (a cylinder of radius 4 cm, height 9 cm, 0.15 kg); or a path to a
    /// Wavefront `.obj` file, whose vertices' convex hull becomes the shape (0.1 kg).
    pub fn named(name: &str) -> Result<Self> {
        let shape = match name {
            "cube" => return Ok(Self::cube(0.05, 0.1)),
            "sphere" => (ObjectShape::Sphere { radius: 0.03 }, 0.08),
            "cylinder" => (
                ObjectShape::Cylinder {
                    radius: 0.025,
                    height: 0.07,
                },
                0.1,
            ),
            "capsule" => (
                ObjectShape::Capsule {
                    radius: 0.02,
                    length: 0.05,
                },
                0.08,
            ),
            "mug" => (
                ObjectShape::Cylinder {
                    radius: 0.04,
                    height: 0.09,
                },
                0.15,
            ),
            other if other.ends_with(".obj") => {
                let points = load_obj_vertices(other)?;
                let spec = Self::new(
                    Path::new(other)
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| other.to_string()),
                    ObjectShape::ConvexHull { points },
                    0.1,
                );
                spec.validate()?;
                return Ok(spec);
            }
            other => {
                return Err(Error::UnknownName {
                    kind: "object",
                    name: other.to_string(),
                    known: format!("{} or a path ending in .obj", OBJECT_NAMES.join(", ")),
                });
            }
        };
        Ok(Self::new(name, shape.0, shape.1))
    }

    /// Checks the shape, the mass and the friction.
    pub fn validate(&self) -> Result<()> {
        self.shape.validate(&self.name)?;
        if !(self.mass.is_finite() && self.mass > 0.0) {
            return Err(Error::InvalidObject {
                name: self.name.clone(),
                reason: format!("mass must be positive and finite, got {}", self.mass),
            });
        }
        if !(self.friction.is_finite() && self.friction >= 0.0) {
            return Err(Error::InvalidObject {
                name: self.name.clone(),
                reason: format!("friction must be >= 0, got {}", self.friction),
            });
        }
        Ok(())
    }

    /// This object scaled by `factor` in every dimension (mass unchanged).
    pub fn scaled(&self, factor: f64) -> Self {
        let mut out = self.clone();
        out.shape = match &self.shape {
            ObjectShape::Box { half_extents } => ObjectShape::Box {
                half_extents: half_extents.map(|h| h * factor),
            },
            ObjectShape::Cylinder { radius, height } => ObjectShape::Cylinder {
                radius: radius * factor,
                height: height * factor,
            },
            ObjectShape::Sphere { radius } => ObjectShape::Sphere {
                radius: radius * factor,
            },
            ObjectShape::Capsule { radius, length } => ObjectShape::Capsule {
                radius: radius * factor,
                length: length * factor,
            },
            ObjectShape::ConvexHull { points } => ObjectShape::ConvexHull {
                points: points.iter().map(|p| p.map(|v| v * factor)).collect(),
            },
        };
        out
    }
}

/// Size and mass ranges of [`random_object`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RandomObjectParams {
    /// Range of the object's characteristic size (edge, diameter) (m).
    pub size: [f64; 2],
    /// Range of the mass (kg).
    pub mass: [f64; 2],
    /// Range of the friction coefficient.
    pub friction: [f64; 2],
}

impl Default for RandomObjectParams {
    fn default() -> Self {
        // Sizes a LEAP or Allegro hand can hold in its palm (Dex4D and DexGen train on
        // objects of a few centimetres).
        Self {
            size: [0.04, 0.07],
            mass: [0.03, 0.15],
            friction: [0.7, 1.2],
        }
    }
}

/// A procedurally generated object: a box, cylinder, sphere or capsule with random
/// proportions, or the convex hull of 16 to 32 points on a random ellipsoid (half of
/// the draws), so that a seed stream yields thousands of distinct shapes.
pub fn random_object<R: Rng>(rng: &mut R, params: &RandomObjectParams) -> ObjectSpec {
    let size = rng.random_range(params.size[0]..=params.size[1]);
    let aspect = |rng: &mut R| rng.random_range(0.6..=1.4);
    let kind = rng.random_range(0..8);
    let shape = match kind {
        0 => ObjectShape::Box {
            half_extents: [
                size / 2.0 * aspect(rng),
                size / 2.0 * aspect(rng),
                size / 2.0 * aspect(rng),
            ],
        },
        1 => ObjectShape::Cylinder {
            radius: size / 2.0 * aspect(rng) * 0.8,
            height: size * aspect(rng),
        },
        2 => ObjectShape::Sphere { radius: size / 2.0 },
        3 => ObjectShape::Capsule {
            radius: size / 4.0 * aspect(rng),
            length: size / 2.0 * aspect(rng),
        },
        _ => {
            let axes = [
                size / 2.0 * aspect(rng),
                size / 2.0 * aspect(rng),
                size / 2.0 * aspect(rng),
            ];
            let n = rng.random_range(16..=32);
            let points = (0..n)
                .map(|_| {
                    let u = random_unit(rng);
                    [u.x * axes[0], u.y * axes[1], u.z * axes[2]]
                })
                .collect();
            ObjectShape::ConvexHull { points }
        }
    };
    ObjectSpec {
        name: format!("random_{}", shape.kind()),
        shape,
        mass: rng.random_range(params.mass[0]..=params.mass[1]),
        friction: rng.random_range(params.friction[0]..=params.friction[1]),
    }
}

/// Reads the vertices (`v x y z` lines) of a Wavefront OBJ file, in metres, recentred so
/// that the centre of their bounding box is the origin.
pub fn load_obj_vertices(path: impl AsRef<Path>) -> Result<Vec<[f64; 3]>> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_obj_vertices(&text, path)
}

/// Parses the vertices of OBJ text (see [`load_obj_vertices`]); `path` names the source in
/// errors.
pub fn parse_obj_vertices(text: &str, path: &Path) -> Result<Vec<[f64; 3]>> {
    let err = |line: usize, reason: String| Error::Mesh {
        path: PathBuf::from(path),
        line,
        reason,
    };
    let mut points = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let mut words = line.split_whitespace();
        if words.next() != Some("v") {
            continue;
        }
        let mut p = [0.0; 3];
        for v in &mut p {
            let word = words
                .next()
                .ok_or_else(|| err(i + 1, "a vertex needs three coordinates".into()))?;
            *v = word
                .parse::<f64>()
                .map_err(|e| err(i + 1, format!("bad coordinate `{word}`: {e}")))?;
            if !v.is_finite() {
                return Err(err(i + 1, format!("coordinate `{word}` is not finite")));
            }
        }
        points.push(p);
    }
    if points.is_empty() {
        return Err(err(0, "no vertex (`v x y z`) in the file".into()));
    }
    let mut lo = [f64::INFINITY; 3];
    let mut hi = [f64::NEG_INFINITY; 3];
    for p in &points {
        for k in 0..3 {
            lo[k] = lo[k].min(p[k]);
            hi[k] = hi[k].max(p[k]);
        }
    }
    let centre = [0, 1, 2].map(|k| (lo[k] + hi[k]) / 2.0);
    for p in &mut points {
        for k in 0..3 {
            p[k] -= centre[k];
        }
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn bounding_boxes_enclose_each_shape_tightly() {
        let (lo, hi) = ObjectShape::Box {
            half_extents: [0.01, 0.02, 0.03],
        }
        .bounding_box();
        assert_eq!(
            (lo, hi),
            (
                Vector3::new(-0.01, -0.02, -0.03),
                Vector3::new(0.01, 0.02, 0.03)
            )
        );
        let (lo, hi) = ObjectShape::Capsule {
            radius: 0.01,
            length: 0.04,
        }
        .bounding_box();
        assert_eq!(hi, Vector3::new(0.01, 0.01, 0.03));
        assert_eq!(lo, -hi);
        let hull = ObjectShape::ConvexHull {
            points: vec![
                [0.0, 0.0, -0.01],
                [0.02, 0.0, 0.0],
                [0.0, 0.03, 0.0],
                [-0.01, -0.01, 0.05],
            ],
        };
        let (lo, hi) = hull.bounding_box();
        assert_eq!(lo, Vector3::new(-0.01, -0.01, -0.01));
        assert_eq!(hi, Vector3::new(0.02, 0.03, 0.05));
    }

    #[test]
    fn named_objects_are_valid() {
        for name in OBJECT_NAMES {
            ObjectSpec::named(name).unwrap().validate().unwrap();
        }
        assert!(matches!(
            ObjectSpec::named("teapot"),
            Err(Error::UnknownName { .. })
        ));
    }

    #[test]
    fn surface_samples_lie_on_the_surface() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let cube = ObjectShape::Box {
            half_extents: [0.01, 0.02, 0.03],
        };
        for p in cube.sample_surface(200, &mut rng) {
            let on_face = (0..3).any(|k| (p[k].abs() - [0.01, 0.02, 0.03][k]).abs() < 1e-12);
            assert!(on_face, "{p}");
        }
        let sphere = ObjectShape::Sphere { radius: 0.03 };
        for p in sphere.sample_surface(100, &mut rng) {
            assert!((p.coords.norm() - 0.03).abs() < 1e-12);
        }
        let capsule = ObjectShape::Capsule {
            radius: 0.02,
            length: 0.04,
        };
        for p in capsule.sample_surface(100, &mut rng) {
            let z = p.z.clamp(-0.02, 0.02);
            assert!(((p - Point3::new(0.0, 0.0, z)).norm() - 0.02).abs() < 1e-12);
        }
    }

    #[test]
    fn random_objects_are_valid_and_seeded() {
        let params = RandomObjectParams::default();
        let mut a = ChaCha8Rng::seed_from_u64(7);
        let mut b = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..200 {
            let x = random_object(&mut a, &params);
            x.validate().unwrap();
            assert_eq!(x, random_object(&mut b, &params));
        }
    }

    #[test]
    fn obj_parsing_recentres_and_reports_lines() {
        let text = "# a tetrahedron\nv 1 1 1\nv 3 1 1\nv 1 3 1\nv 1 1 3\nf 1 2 3\n";
        let pts = parse_obj_vertices(text, Path::new("t.obj")).unwrap();
        assert_eq!(pts[0], [-1.0, -1.0, -1.0]);
        let err = parse_obj_vertices("v 1 2\n", Path::new("t.obj")).unwrap_err();
        assert!(err.to_string().contains("t.obj:1"), "{err}");
        let flat = ObjectShape::ConvexHull {
            points: vec![
                [0.0, 0.0, 0.0],
                [1.0, 0.0, 0.0],
                [0.0, 1.0, 0.0],
                [1.0, 1.0, 0.0],
            ],
        };
        assert!(flat.validate("flat").is_err());
    }

    #[test]
    fn bad_mass_is_an_error() {
        let mut cube = ObjectSpec::cube(0.05, 0.1);
        cube.mass = -1.0;
        assert!(cube.validate().is_err());
    }
}
