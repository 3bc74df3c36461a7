//! DDPM's forward noising and DDIM sampling with DexGen's gradient guidance.
//!
//! The sample is a future keypoint motion Δx of `T` steps of `K × 3` offsets, flattened
//! row-major to `T·K·3` values per batch row. A [`NoisePredictor`] (the network)
//! predicts the noise ε in a noised sample (ε-prediction, as DexGen's appendix F says).
//!
//! **Guidance** (DexGen §III-A, §III-D). The command is one `K × 3` offset Δx_cmd per
//! row; Dist(Δx, Δx_cmd) = Σᵢ ‖Δxᵢ − Δx_cmd‖² over the `T` steps, so ∇Dist = 2(Δxᵢ − Δx_cmd).
//! At every DDIM step the denoised sample x̂₀ is moved by −α·Σₜ·∇Dist before it is
//! re-noised to the next step. The paper leaves open where the gradient is taken and
//! what Σ is under deterministic DDIM; dex's choices, documented here:
//! - the gradient is taken at x̂₀ (the paper: "adjust the denoised sample Δx");
//! - Σₜ is the DDPM posterior variance β̃ₜ of the schedule, with β̃₀ (which is 0) replaced
//!   by β̃₁, as improved DDPM clips its log-variance at t = 0, so the last step is guided
//!   too;
//! - the step never overshoots the command: x̂₀ ← x̂₀ + k·(Δx_cmd − x̂₀) with
//!   k = min(2·α·Σₜ, 1), which is the paper's rule while 2αΣₜ ≤ 1 and stops at the
//!   command beyond (the raw rule would oscillate and diverge there). With α → ∞ the
//!   sample is the command; with α = 0 it is the prior's.

use dex_policy::random::standard_normal;
use ndarray::{Array2, ArrayView2, Zip};
use rand::RngCore;

use crate::error::{Error, Result, check_finite, check_len};
use crate::schedule::NoiseSchedule;

/// Predicts the noise in noised samples: the denoising network, or a stand-in.
pub trait NoisePredictor {
    /// ε̂ for each row of `x` (`B × D` noised samples at diffusion step `t`), given a
    /// condition row per sample (`B × C`). Returns `B × D`.
    ///
    /// # Errors
    ///
    /// As the implementation says (shapes, a network error).
    fn predict_noise(
        &mut self,
        x: ArrayView2<'_, f32>,
        t: usize,
        condition: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>>;
}

impl<P: NoisePredictor + ?Sized> NoisePredictor for Box<P> {
    fn predict_noise(
        &mut self,
        x: ArrayView2<'_, f32>,
        t: usize,
        condition: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        (**self).predict_noise(x, t, condition)
    }
}

/// `rows × cols` standard normal values.
pub fn gaussian_noise(rows: usize, cols: usize, rng: &mut dyn RngCore) -> Array2<f32> {
    Array2::from_shape_simple_fn((rows, cols), || standard_normal(rng) as f32)
}

/// DDPM's forward process q(xₜ | x₀): `√ᾱₜ·x₀ + √(1 − ᾱₜ)·ε`, the noised samples a
/// network is trained to denoise.
///
/// # Errors
///
/// [`Error::LengthMismatch`] when `x0` and `noise` differ in shape; `t` out of range is
/// [`Error::InvalidSetting`].
pub fn add_noise(
    schedule: &NoiseSchedule,
    x0: ArrayView2<'_, f32>,
    noise: ArrayView2<'_, f32>,
    t: usize,
) -> Result<Array2<f32>> {
    check_step(schedule, t)?;
    check_len("noise rows", x0.nrows(), noise.nrows())?;
    check_len("noise width", x0.ncols(), noise.ncols())?;
    let a = schedule.alpha_bar(t);
    let (sa, sn) = (a.sqrt() as f32, (1.0 - a).sqrt() as f32);
    Ok(Zip::from(&x0)
        .and(&noise)
        .map_collect(|x, e| sa * x + sn * e))
}

fn check_step(schedule: &NoiseSchedule, t: usize) -> Result<()> {
    if t < schedule.steps() {
        Ok(())
    } else {
        Err(Error::InvalidSetting {
            what: "diffusion step",
            reason: format!("{t} is past the schedule's {} steps", schedule.steps()),
        })
    }
}

/// The guidance of a batch: one command row per sample and the strength α.
#[derive(Debug, Clone, Copy)]
pub struct Guidance<'a> {
    /// α ≥ 0: 0 samples the prior, larger follows the command more closely.
    pub strength: f64,
    /// `B × (K·3)`: each row's commanded keypoint offset Δx_cmd.
    pub command: ArrayView2<'a, f32>,
}

/// DDIM (η = 0) over a sub-sequence of a [`NoiseSchedule`]'s steps, with guidance.
#[derive(Debug, Clone)]
pub struct DdimSampler {
    schedule: NoiseSchedule,
    steps: Vec<usize>,
    clip: Option<f32>,
}

impl DdimSampler {
    /// A sampler taking `steps` evenly spaced DDIM steps of `schedule` (DexGen tried 8
    /// and 12).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] unless `1 <= steps <= schedule.steps()`.
    pub fn new(schedule: NoiseSchedule, steps: usize) -> Result<Self> {
        let steps = schedule.sampling_steps(steps)?;
        Ok(Self {
            schedule,
            steps,
            clip: None,
        })
    }

    /// Clamps every denoised estimate x̂₀ into `[-bound, bound]` before it is re-noised
    /// (as DDPM and DDIM implementations do for data scaled to a known range). Without
    /// it, when the sampler skips steps, an error of the predicted noise at the
    /// noisiest steps is amplified by 1/√ᾱₜ (about 1,000 at the last step of a cosine
    /// schedule) and not damped back before the next step. Train on data scaled so that
    /// `bound` covers it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] unless `bound` is finite and positive.
    pub fn with_clip(mut self, bound: f32) -> Result<Self> {
        if !(bound.is_finite() && bound > 0.0) {
            return Err(Error::InvalidSetting {
                what: "denoised clip bound",
                reason: format!("must be finite and positive, got {bound}"),
            });
        }
        self.clip = Some(bound);
        Ok(self)
    }

    /// The schedule.
    pub fn schedule(&self) -> &NoiseSchedule {
        &self.schedule
    }

    /// The diffusion steps visited, from noisiest to clean.
    pub fn steps(&self) -> &[usize] {
        &self.steps
    }

    /// Σₜ of the guidance at step `t` (see the module docs).
    pub fn guidance_variance(&self, t: usize) -> f64 {
        if t == 0 {
            self.schedule.posterior_variance(1)
        } else {
            self.schedule.posterior_variance(t)
        }
    }

    /// Samples `B = condition.nrows()` motions of `dim` values each, starting from
    /// `x_T` drawn from `rng`. With `guidance`, each row is pulled towards its command.
    /// Deterministic for the generator's state.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for a command of the wrong shape (one row per sample,
    /// a width dividing `dim`); [`Error::NotFinite`] for a NaN or infinite command or
    /// predicted noise; [`Error::InvalidSetting`] for a negative or NaN strength; the
    /// predictor's errors.
    pub fn sample(
        &self,
        predictor: &mut dyn NoisePredictor,
        condition: ArrayView2<'_, f32>,
        dim: usize,
        guidance: Option<Guidance<'_>>,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let x_t = gaussian_noise(condition.nrows(), dim, rng);
        self.sample_from(predictor, condition, x_t, guidance)
    }

    /// As [`DdimSampler::sample`], from a given `x_T` (`B × dim`).
    ///
    /// # Errors
    ///
    /// As [`DdimSampler::sample`].
    pub fn sample_from(
        &self,
        predictor: &mut dyn NoisePredictor,
        condition: ArrayView2<'_, f32>,
        x_t: Array2<f32>,
        guidance: Option<Guidance<'_>>,
    ) -> Result<Array2<f32>> {
        let (rows, dim) = x_t.dim();
        check_len("condition rows", rows, condition.nrows())?;
        if let Some(g) = &guidance {
            if !(g.strength.is_finite() && g.strength >= 0.0) {
                return Err(Error::InvalidSetting {
                    what: "guidance strength",
                    reason: format!("must be finite and ≥ 0, got {}", g.strength),
                });
            }
            check_len("command rows", rows, g.command.nrows())?;
            let width = g.command.ncols();
            if width == 0 || !dim.is_multiple_of(width) {
                return Err(Error::LengthMismatch {
                    what: "command width (must divide the motion's width)",
                    expected: dim,
                    got: width,
                });
            }
            check_finite("command", g.command.iter())?;
        }
        let mut x = x_t;
        for (i, &t) in self.steps.iter().enumerate() {
            let eps = predictor.predict_noise(x.view(), t, condition)?;
            check_len("predicted noise rows", rows, eps.nrows())?;
            check_len("predicted noise width", dim, eps.ncols())?;
            check_finite("predicted noise", eps.iter())?;
            let a = self.schedule.alpha_bar(t);
            let (sa, sn) = (a.sqrt() as f32, (1.0 - a).sqrt() as f32);
            // The denoised estimate x̂₀ = (xₜ − √(1 − ᾱₜ)·ε̂)/√ᾱₜ.
            let mut x0 = Zip::from(&x)
                .and(&eps)
                .map_collect(|x, e| (x - sn * e) / sa);
            if let Some(b) = self.clip {
                x0.mapv_inplace(|v| v.clamp(-b, b));
            }
            if let Some(g) = &guidance {
                let k = (2.0 * g.strength * self.guidance_variance(t)).min(1.0) as f32;
                pull_towards(&mut x0, g.command, k);
            }
            let a_prev = self
                .steps
                .get(i + 1)
                .map_or(1.0, |&s| self.schedule.alpha_bar(s));
            let (sp, snp) = (a_prev.sqrt() as f32, (1.0 - a_prev).sqrt() as f32);
            x = Zip::from(&x0)
                .and(&eps)
                .map_collect(|x0, e| sp * x0 + snp * e);
        }
        Ok(x)
    }
}

/// Dist(Δx, Δx_cmd) = Σᵢ ‖Δxᵢ − Δx_cmd‖² per row, each row `T` blocks of the command's
/// width.
pub fn command_distance(x: ArrayView2<'_, f32>, command: ArrayView2<'_, f32>) -> Vec<f64> {
    let width = command.ncols().max(1);
    x.rows()
        .into_iter()
        .zip(command.rows())
        .map(|(row, cmd)| {
            row.iter()
                .enumerate()
                .map(|(j, v)| f64::from(v - cmd[j % width]).powi(2))
                .sum()
        })
        .collect()
}

/// ∇Dist with respect to each row of `x`: 2(Δxᵢ − Δx_cmd) block by block.
pub fn command_distance_gradient(
    x: ArrayView2<'_, f32>,
    command: ArrayView2<'_, f32>,
) -> Array2<f32> {
    let width = command.ncols().max(1);
    Array2::from_shape_fn(x.dim(), |(r, j)| {
        2.0 * (x[(r, j)] - command[(r, j % width)])
    })
}

/// x ← x − (k/2)·∇Dist = x + k·(cmd − x), block by block.
fn pull_towards(x: &mut Array2<f32>, command: ArrayView2<'_, f32>, k: f32) {
    let grad = command_distance_gradient(x.view(), command);
    Zip::from(x).and(&grad).for_each(|x, g| *x -= 0.5 * k * g);
}
