//! Deterministic synthetic data with known ground truth: textured image
//! sequences under known 2D motions, and point clouds of simple objects.
//!
//! The texture is a continuous function of the plane (value noise in three
//! octaves, smoothstep-interpolated), so every frame is rendered exactly at its
//! warped coordinates: no resampling blur, no borders.

use image::{GrayImage, Luma};
use nalgebra::{Isometry3, Point2, Point3, Vector3};

/// splitmix64: a hash of a lattice point, for the noise.
fn hash(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

fn lattice(ix: i64, iy: i64, seed: u64) -> f64 {
    let h = hash(seed ^ hash((ix as u64).wrapping_mul(0x1F1F_1F1F) ^ hash(iy as u64)));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn value_noise(x: f64, y: f64, cell: f64, seed: u64) -> f64 {
    let (fx, fy) = (x / cell, y / cell);
    let (ix, iy) = (fx.floor(), fy.floor());
    let (tx, ty) = (fx - ix, fy - iy);
    let s = |t: f64| t * t * (3.0 - 2.0 * t);
    let (sx, sy) = (s(tx), s(ty));
    let (ix, iy) = (ix as i64, iy as i64);
    let a = lattice(ix, iy, seed);
    let b = lattice(ix + 1, iy, seed);
    let c = lattice(ix, iy + 1, seed);
    let d = lattice(ix + 1, iy + 1, seed);
    let top = a + (b - a) * sx;
    let bottom = c + (d - c) * sx;
    top + (bottom - top) * sy
}

/// The texture's grey level (0–255) at a point of the plane.
pub fn texture(x: f64, y: f64, seed: u64) -> f64 {
    let v = 0.5 * value_noise(x, y, 16.0, seed)
        + 0.3 * value_noise(x, y, 6.0, seed ^ 0xA5A5)
        + 0.2 * value_noise(x, y, 2.5, seed ^ 0x5A5A);
    255.0 * v
}

/// A 2D similarity motion of the image plane: rotation about `center`, then translation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Motion2 {
    /// Rotation (rad, counter-clockwise in x-right/y-down pixels is clockwise on screen).
    pub angle: f64,
    /// Centre of the rotation (pixels).
    pub center: Point2<f64>,
    /// Translation (pixels).
    pub translation: nalgebra::Vector2<f64>,
}

impl Motion2 {
    /// Where a point of the first frame is under this motion.
    pub fn apply(&self, p: Point2<f64>) -> Point2<f64> {
        let (s, c) = self.angle.sin_cos();
        let d = p - self.center;
        Point2::new(
            self.center.x + c * d.x - s * d.y + self.translation.x,
            self.center.y + s * d.x + c * d.y + self.translation.y,
        )
    }

    /// The point of the first frame that lands on `p`.
    pub fn invert(&self, p: Point2<f64>) -> Point2<f64> {
        let (s, c) = self.angle.sin_cos();
        let d = p - self.center - self.translation;
        Point2::new(
            self.center.x + c * d.x + s * d.y,
            self.center.y - s * d.x + c * d.y,
        )
    }
}

/// A rendered sequence and its ground truth.
#[derive(Debug, Clone)]
pub struct Sequence {
    /// The frames.
    pub frames: Vec<GrayImage>,
    /// The motion of each frame relative to the first.
    pub motions: Vec<Motion2>,
}

impl Sequence {
    /// Ground-truth position of first-frame point `q` in frame `t`, and whether
    /// it lies inside the image.
    pub fn truth(&self, t: usize, q: Point2<f64>) -> (Point2<f64>, bool) {
        let p = self.motions[t].apply(q);
        let (w, h) = self.frames[t].dimensions();
        let inside = p.x >= 0.0 && p.y >= 0.0 && p.x <= f64::from(w - 1) && p.y <= f64::from(h - 1);
        (p, inside)
    }
}

/// Noise and lighting applied when rendering.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Photometric {
    /// Standard deviation of additive Gaussian noise (grey levels).
    pub noise_sigma: f64,
    /// Brightness gain reached at the last frame (0.05 = 5% brighter), linear in time.
    pub brightness_change: f64,
}

fn gaussian(state: &mut u64) -> f64 {
    *state = hash(*state);
    let u1 = ((*state >> 11) as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
    *state = hash(*state);
    let u2 = (*state >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Renders the texture under each motion.
pub fn render(
    width: u32,
    height: u32,
    motions: &[Motion2],
    photometric: Photometric,
    seed: u64,
) -> Sequence {
    let n = motions.len().max(1);
    let mut noise_state = seed ^ 0xDEAD_BEEF;
    let frames = motions
        .iter()
        .enumerate()
        .map(|(t, m)| {
            let gain = 1.0 + photometric.brightness_change * t as f64 / (n - 1).max(1) as f64;
            GrayImage::from_fn(width, height, |x, y| {
                let src = m.invert(Point2::new(f64::from(x), f64::from(y)));
                let mut v = texture(src.x, src.y, seed) * gain;
                if photometric.noise_sigma > 0.0 {
                    v += photometric.noise_sigma * gaussian(&mut noise_state);
                }
                Luma([v.round().clamp(0.0, 255.0) as u8])
            })
        })
        .collect();
    Sequence {
        frames,
        motions: motions.to_vec(),
    }
}

/// Motions of the translation case: up to `max_step` pixels per frame in x and
/// y, varying deterministically.
pub fn translation_motions(frames: usize, max_step: f64, seed: u64) -> Vec<Motion2> {
    let mut t = nalgebra::Vector2::zeros();
    let mut state = seed;
    (0..frames)
        .map(|k| {
            if k > 0 {
                state = hash(state);
                let a = (state >> 11) as f64 / (1u64 << 53) as f64;
                state = hash(state);
                let b = (state >> 11) as f64 / (1u64 << 53) as f64;
                t += nalgebra::Vector2::new((2.0 * a - 1.0) * max_step, (2.0 * b - 1.0) * max_step);
            }
            Motion2 {
                angle: 0.0,
                center: Point2::origin(),
                translation: t,
            }
        })
        .collect()
}

/// Motions of the rotation case: `deg_per_frame` about the image centre plus a
/// constant drift of `drift` pixels per frame.
pub fn rotation_motions(
    frames: usize,
    width: u32,
    height: u32,
    deg_per_frame: f64,
    drift: nalgebra::Vector2<f64>,
) -> Vec<Motion2> {
    let center = Point2::new(f64::from(width - 1) / 2.0, f64::from(height - 1) / 2.0);
    (0..frames)
        .map(|k| Motion2 {
            angle: (deg_per_frame * k as f64).to_radians(),
            center,
            translation: drift * k as f64,
        })
        .collect()
}

/// An `nx × ny` grid of query points covering the central `fraction` of the image.
pub fn grid_queries(
    width: u32,
    height: u32,
    nx: usize,
    ny: usize,
    fraction: f64,
) -> Vec<Point2<f64>> {
    let (w, h) = (f64::from(width - 1), f64::from(height - 1));
    let (x0, y0) = (w * (1.0 - fraction) / 2.0, h * (1.0 - fraction) / 2.0);
    let mut out = Vec::with_capacity(nx * ny);
    for j in 0..ny {
        for i in 0..nx {
            out.push(Point2::new(
                x0 + w * fraction * i as f64 / (nx.max(2) - 1) as f64,
                y0 + h * fraction * j as f64 / (ny.max(2) - 1) as f64,
            ));
        }
    }
    out
}

fn uniform(state: &mut u64) -> f64 {
    *state = hash(*state);
    (*state >> 11) as f64 / (1u64 << 53) as f64
}

/// `n` points spread over the surface of a box with the given half extents (m),
/// area-weighted, centred at the origin.
pub fn box_surface(half: Vector3<f64>, n: usize, seed: u64) -> Vec<Point3<f64>> {
    let areas = [half.y * half.z, half.x * half.z, half.x * half.y];
    let total: f64 = areas.iter().sum();
    let mut s = seed;
    (0..n)
        .map(|_| {
            let r = uniform(&mut s) * total;
            let axis = if r < areas[0] {
                0
            } else if r < areas[0] + areas[1] {
                1
            } else {
                2
            };
            let sign = if uniform(&mut s) < 0.5 { -1.0 } else { 1.0 };
            let mut p = Vector3::new(
                (2.0 * uniform(&mut s) - 1.0) * half.x,
                (2.0 * uniform(&mut s) - 1.0) * half.y,
                (2.0 * uniform(&mut s) - 1.0) * half.z,
            );
            p[axis] = sign * half[axis];
            Point3::from(p)
        })
        .collect()
}

/// `n` points on a mug-like shape: an open cylinder (radius, height) with a
/// bottom disc and a handle (a half torus on the +x side), so no rotation about
/// its axis maps it onto itself.
pub fn mug_surface(radius: f64, height: f64, n: usize, seed: u64) -> Vec<Point3<f64>> {
    let mut s = seed;
    let handle_r = 0.35 * height; // radius of the handle's arc
    let tube = 0.08 * radius;
    (0..n)
        .map(|_| {
            let r = uniform(&mut s);
            if r < 0.72 {
                let a = uniform(&mut s) * std::f64::consts::TAU;
                let z = (uniform(&mut s) - 0.5) * height;
                Point3::new(radius * a.cos(), radius * a.sin(), z)
            } else if r < 0.85 {
                let a = uniform(&mut s) * std::f64::consts::TAU;
                let rr = radius * uniform(&mut s).sqrt();
                Point3::new(rr * a.cos(), rr * a.sin(), -height / 2.0)
            } else {
                // Handle: arc in the x–z plane from the top to the bottom of the side.
                let a = (uniform(&mut s) - 0.5) * std::f64::consts::PI;
                let b = uniform(&mut s) * std::f64::consts::TAU;
                let center = Vector3::new(radius + handle_r * a.cos(), 0.0, handle_r * a.sin());
                let radial = Vector3::new(a.cos(), 0.0, a.sin());
                let off = radial * (tube * b.cos()) + Vector3::y() * (tube * b.sin());
                Point3::from(center + off)
            }
        })
        .collect()
}

/// A random rigid transform with the given rotation angle (rad) about a random
/// axis and translation of the given length (m).
pub fn random_transform(angle: f64, distance: f64, seed: u64) -> Isometry3<f64> {
    let mut s = seed;
    let mut unit = || {
        let z = 2.0 * uniform(&mut s) - 1.0;
        let a = uniform(&mut s) * std::f64::consts::TAU;
        let r = (1.0 - z * z).sqrt();
        Vector3::new(r * a.cos(), r * a.sin(), z)
    };
    let axis = unit();
    let dir = unit();
    Isometry3::new(dir * distance, axis * angle)
}
