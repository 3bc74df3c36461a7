//! Procedural surface texture for grayscale rendering.
//!
//! Point trackers need image structure that moves with the surface. Every collider
//! carries a solid texture: a function of the hit point in the collider's own frame,
//! so the pattern is rigidly attached to the body however it moves. The function is a
//! sum of plane waves with fixed pseudo-random directions, wavelengths and phases,
//! squashed for contrast: smooth (no resampling blur, exact at every pixel) and rich in
//! two-dimensional corners at the scale of a few millimetres.

use std::sync::LazyLock;

use nalgebra::{Point3, Vector3};

/// Number of plane waves summed per texture.
const WAVES: usize = 12;

/// Shortest and longest wavelength of the object texture (m): features of a few
/// millimetres, a few pixels to tens of pixels on a 640 × 480 camera at 30 cm.
const OBJECT_WAVELENGTH: (f64, f64) = (0.004, 0.020);

/// The hand's texture is coarser and lower in contrast, so objects stand out.
const HAND_WAVELENGTH: (f64, f64) = (0.010, 0.040);

struct Waves {
    k: [Vector3<f64>; WAVES],
    phase: [f64; WAVES],
}

fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(state: &mut u64) -> f64 {
    (splitmix(state) >> 11) as f64 / (1u64 << 53) as f64
}

impl Waves {
    fn new(seed: u64, (shortest, longest): (f64, f64)) -> Self {
        let mut s = seed;
        let mut k = [Vector3::zeros(); WAVES];
        let mut phase = [0.0; WAVES];
        for i in 0..WAVES {
            // Direction uniform on the sphere; wavelength log-uniform in the band.
            let z = 2.0 * unit(&mut s) - 1.0;
            let a = std::f64::consts::TAU * unit(&mut s);
            let r = (1.0 - z * z).sqrt();
            let lambda = shortest * (longest / shortest).powf(unit(&mut s));
            k[i] = Vector3::new(r * a.cos(), r * a.sin(), z) * (std::f64::consts::TAU / lambda);
            phase[i] = std::f64::consts::TAU * unit(&mut s);
        }
        Self { k, phase }
    }

    /// In [0, 1].
    fn eval(&self, p: &Point3<f64>, contrast: f64) -> f64 {
        let mut s = 0.0;
        for (k, ph) in self.k.iter().zip(&self.phase) {
            s += (k.dot(&p.coords) + ph).cos();
        }
        // The sum has variance WAVES / 2; normalise, then squash for contrast.
        let x = s / (WAVES as f64 / 2.0).sqrt();
        0.5 + 0.5 * (contrast * x).tanh()
    }
}

static OBJECT: LazyLock<Waves> = LazyLock::new(|| Waves::new(0x000b_1ec7, OBJECT_WAVELENGTH));
static HAND: LazyLock<Waves> = LazyLock::new(|| Waves::new(0x4a4d, HAND_WAVELENGTH));

/// Which texture a surface carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// Objects: fine, high-contrast.
    Object,
    /// Hand links: coarse, low-contrast.
    Hand,
}

/// The albedo in [0, 1] of `surface` at `local`, a point in the body's own frame (m).
pub fn albedo(surface: Surface, local: &Point3<f64>) -> f64 {
    match surface {
        Surface::Object => OBJECT.eval(local, 1.5),
        Surface::Hand => 0.25 + 0.35 * HAND.eval(local, 0.8),
    }
}

/// Grey level (0–255) of a surface point seen along `ray_dir` with unit surface
/// normal `normal` (both in the same frame): albedo under a head light, with an
/// ambient term so grazing surfaces keep their texture.
pub fn shade(albedo: f64, normal: &Vector3<f64>, ray_dir: &Vector3<f64>) -> u8 {
    let cos = normal.dot(ray_dir).abs().min(1.0);
    let v = 255.0 * albedo * (0.55 + 0.45 * cos);
    v.round().clamp(0.0, 255.0) as u8
}

/// Grey level of pixels where nothing is hit.
pub const BACKGROUND_GRAY: u8 = 24;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texture_is_in_range_varied_and_smooth() {
        let mut lo: f64 = 1.0;
        let mut hi: f64 = 0.0;
        for i in 0..2000 {
            let t = f64::from(i) * 1e-4;
            let p = Point3::new(t, 0.3 * t, -0.7 * t);
            let a = albedo(Surface::Object, &p);
            assert!((0.0..=1.0).contains(&a));
            lo = lo.min(a);
            hi = hi.max(a);
            // 0.1 mm apart: nearly the same value (continuous texture).
            let b = albedo(Surface::Object, &(p + Vector3::new(1e-4, 0.0, 0.0)));
            assert!((a - b).abs() < 0.2, "jump {a} -> {b}");
        }
        assert!(hi - lo > 0.6, "contrast {lo}..{hi}");
        let h = albedo(Surface::Hand, &Point3::new(0.01, 0.02, 0.03));
        assert!((0.25..=0.6).contains(&h));
    }

    #[test]
    fn shading_is_brightest_facing_the_camera() {
        let n = Vector3::z();
        assert_eq!(shade(1.0, &n, &-Vector3::z()), 255);
        assert!(shade(1.0, &n, &Vector3::x()) < 150);
    }
}
