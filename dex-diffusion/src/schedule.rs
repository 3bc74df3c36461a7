//! The DDPM noise schedule: βₜ, ᾱₜ and the posterior variance β̃ₜ.
//!
//! DexGen's paper names neither its schedule nor its number of diffusion steps. dex
//! uses the cosine schedule of Nichol & Dhariwal (2021, "Improved denoising diffusion
//! probabilistic models", eq. 17): ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T) + s)/(1 + s) · π/2)
//! with s = 0.008, βₜ = 1 − ᾱₜ/ᾱₜ₋₁ clipped to at most 0.999, and 100 steps by default
//! (the schedule and count of DexGen's public code release for its smaller model).

use crate::error::{Error, Result};

/// The offset `s` of the cosine schedule (Nichol & Dhariwal 2021).
const COSINE_OFFSET: f64 = 0.008;
/// The largest βₜ the cosine schedule allows (Nichol & Dhariwal 2021).
const MAX_BETA: f64 = 0.999;

/// A DDPM noise schedule over `T` diffusion steps, indexed `t = 0 .. T` (step `t`
/// adds noise βₜ to the sample of step `t − 1`; step 0 is the first noising step).
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseSchedule {
    betas: Vec<f64>,
    alpha_bars: Vec<f64>,
}

impl NoiseSchedule {
    /// The cosine schedule over `steps` steps.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for fewer than 2 steps.
    pub fn cosine(steps: usize) -> Result<Self> {
        if steps < 2 {
            return Err(Error::InvalidSetting {
                what: "diffusion steps",
                reason: format!("need at least 2, got {steps}"),
            });
        }
        let f = |t: f64| {
            let x = (t / steps as f64 + COSINE_OFFSET) / (1.0 + COSINE_OFFSET)
                * std::f64::consts::FRAC_PI_2;
            x.cos().powi(2)
        };
        let f0 = f(0.0);
        let betas: Vec<f64> = (0..steps)
            .map(|t| {
                let (prev, next) = (f(t as f64) / f0, f(t as f64 + 1.0) / f0);
                (1.0 - next / prev).min(MAX_BETA)
            })
            .collect();
        Self::from_betas(betas)
    }

    /// A schedule from explicit βₜ, each in `(0, 1)`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for fewer than 2 values or one outside `(0, 1)`.
    pub fn from_betas(betas: Vec<f64>) -> Result<Self> {
        if betas.len() < 2 {
            return Err(Error::InvalidSetting {
                what: "noise schedule",
                reason: format!("needs at least 2 steps, got {}", betas.len()),
            });
        }
        if let Some((t, b)) = betas
            .iter()
            .enumerate()
            .find(|(_, b)| !(b.is_finite() && **b > 0.0 && **b < 1.0))
        {
            return Err(Error::InvalidSetting {
                what: "noise schedule",
                reason: format!("beta {t} = {b} lies outside (0, 1)"),
            });
        }
        let mut alpha_bars = Vec::with_capacity(betas.len());
        let mut acc = 1.0;
        for b in &betas {
            acc *= 1.0 - b;
            alpha_bars.push(acc);
        }
        Ok(Self { betas, alpha_bars })
    }

    /// The number of diffusion steps `T`.
    pub fn steps(&self) -> usize {
        self.betas.len()
    }

    /// βₜ.
    ///
    /// # Panics
    ///
    /// If `t >= steps()`.
    pub fn beta(&self, t: usize) -> f64 {
        self.betas[t]
    }

    /// ᾱₜ = Πₛ≤ₜ (1 − βₛ): the fraction of the clean sample's variance left at step `t`.
    ///
    /// # Panics
    ///
    /// If `t >= steps()`.
    pub fn alpha_bar(&self, t: usize) -> f64 {
        self.alpha_bars[t]
    }

    /// ᾱ before step `t`: `alpha_bar(t − 1)`, and 1 (the clean sample) for `t = 0`.
    ///
    /// # Panics
    ///
    /// If `t >= steps()`.
    pub fn alpha_bar_prev(&self, t: usize) -> f64 {
        if t == 0 { 1.0 } else { self.alpha_bars[t - 1] }
    }

    /// The variance of the DDPM posterior q(xₜ₋₁ | xₜ, x₀):
    /// β̃ₜ = βₜ (1 − ᾱₜ₋₁)/(1 − ᾱₜ) (Ho et al. 2020, eq. 7); 0 at `t = 0`.
    ///
    /// # Panics
    ///
    /// If `t >= steps()`.
    pub fn posterior_variance(&self, t: usize) -> f64 {
        self.betas[t] * (1.0 - self.alpha_bar_prev(t)) / (1.0 - self.alpha_bars[t])
    }

    /// `n` timesteps for a sampler, evenly spaced from `T − 1` down to 0 (DDIM's
    /// sub-sequence), each once.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] unless `1 <= n <= T`.
    pub fn sampling_steps(&self, n: usize) -> Result<Vec<usize>> {
        let total = self.steps();
        if n == 0 || n > total {
            return Err(Error::InvalidSetting {
                what: "sampling steps",
                reason: format!("need 1..={total}, got {n}"),
            });
        }
        if n == 1 {
            return Ok(vec![total - 1]);
        }
        Ok((0..n)
            .map(|i| {
                let x = (total - 1) as f64 * (1.0 - i as f64 / (n - 1) as f64);
                x.round() as usize
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_two_step_schedule_matches_the_hand_computed_values() {
        let s = NoiseSchedule::from_betas(vec![0.1, 0.5]).unwrap();
        assert!((s.alpha_bar(0) - 0.9).abs() < 1e-15);
        assert!((s.alpha_bar(1) - 0.45).abs() < 1e-15);
        assert_eq!(s.alpha_bar_prev(0), 1.0);
        // β̃₁ = 0.5 · (1 − 0.9) / (1 − 0.45) = 0.05 / 0.55.
        assert!((s.posterior_variance(1) - 0.05 / 0.55).abs() < 1e-15);
        assert_eq!(s.posterior_variance(0), 0.0);
    }

    #[test]
    fn the_cosine_schedule_decreases_to_nearly_pure_noise() {
        let s = NoiseSchedule::cosine(100).unwrap();
        assert!(s.alpha_bar(0) > 0.99);
        assert!(s.alpha_bar(99) < 1e-4);
        for t in 1..100 {
            assert!(s.alpha_bar(t) < s.alpha_bar(t - 1));
            assert!(s.beta(t) <= MAX_BETA);
        }
        assert_eq!(
            s.sampling_steps(5).unwrap(),
            vec![99, 74, 50, 25, 0],
            "evenly spaced, T − 1 down to 0"
        );
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(NoiseSchedule::cosine(1).is_err());
        assert!(NoiseSchedule::from_betas(vec![0.1, 1.0]).is_err());
        assert!(NoiseSchedule::from_betas(vec![0.1, f64::NAN]).is_err());
        let s = NoiseSchedule::cosine(10).unwrap();
        assert!(s.sampling_steps(0).is_err());
        assert!(s.sampling_steps(11).is_err());
    }
}
