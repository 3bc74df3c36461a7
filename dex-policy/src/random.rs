//! Seeded normal noise: candle's CPU random tensors cannot be seeded, so every trainer
//! draws its noise here from its own generator.

use rand::RngCore;

/// One standard normal draw (Box–Muller) from the caller's generator: candle's CPU
/// random tensors cannot be seeded, so every trainer draws its noise here.
pub fn standard_normal(rng: &mut dyn RngCore) -> f64 {
    use rand::Rng;
    let u1: f64 = rng.random_range(f64::MIN_POSITIVE..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// A tensor of standard normal draws.
#[cfg(feature = "candle")]
pub fn normal_tensor(
    rng: &mut dyn RngCore,
    shape: (usize, usize),
) -> crate::error::Result<candle_core::Tensor> {
    use candle_core::{Device, Tensor};
    let v: Vec<f32> = (0..shape.0 * shape.1)
        .map(|_| standard_normal(rng) as f32)
        .collect();
    Ok(Tensor::from_vec(v, shape, &Device::Cpu)?)
}
