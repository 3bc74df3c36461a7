//! The random draws the tasks share: a standard normal and a uniform rotation.

use nalgebra::UnitQuaternion;
use rand::Rng;

/// A standard normal sample (Box–Muller).
pub(crate) fn gaussian<R: Rng>(rng: &mut R) -> f64 {
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A uniformly random rotation.
pub(crate) fn random_rotation<R: Rng>(rng: &mut R) -> UnitQuaternion<f64> {
    let q = nalgebra::Quaternion::new(gaussian(rng), gaussian(rng), gaussian(rng), gaussian(rng));
    UnitQuaternion::new_normalize(q)
}
