//! The `Policy` trait, its wrappers, a mock and a closure adapter.

use ndarray::{Array2, ArrayView2, Axis};
use rand::{Rng, RngCore};

use crate::error::{Error, Result, check_len, invalid, invalid_setting};
use crate::normalize::RunningMeanStd;

/// How a policy acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActMode {
    /// The mode of the action distribution (evaluation).
    #[default]
    Deterministic,
    /// A sample (exploration).
    Stochastic,
}

/// A policy acting on a batch of observations: `B × obs_dim` in, `B × action_dim` out,
/// row `i` for environment `i`. Object safe; randomness comes from the caller's generator
/// so runs are reproducible.
pub trait Policy: Send {
    /// Length of one observation.
    fn observation_dim(&self) -> usize;

    /// Length of one action.
    fn action_dim(&self) -> usize;

    /// Actions for a batch of observations.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a batch of the wrong width,
    /// [`Error::NonFiniteObservation`] for NaN or infinity in it.
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>>;

    /// Forgets per-environment state (history, recurrence) of environment `env`, e.g.
    /// when its episode ends. Stateless policies ignore it.
    fn reset(&mut self, env: usize) {
        let _ = env;
    }
}

impl<P: Policy + ?Sized> Policy for Box<P> {
    fn observation_dim(&self) -> usize {
        (**self).observation_dim()
    }
    fn action_dim(&self) -> usize {
        (**self).action_dim()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        (**self).act(observations, mode, rng)
    }
    fn reset(&mut self, env: usize) {
        (**self).reset(env);
    }
}

/// Checks a batch: width `dim`, every value finite.
///
/// # Errors
///
/// As [`Policy::act`].
pub fn check_observations(observations: ArrayView2<'_, f32>, dim: usize) -> Result<()> {
    if observations.ncols() != dim {
        return Err(Error::LengthMismatch {
            what: "observation width",
            expected: dim,
            got: observations.ncols(),
        });
    }
    for (row, r) in observations.axis_iter(Axis(0)).enumerate() {
        if let Some(index) = r.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFiniteObservation { row, index });
        }
    }
    Ok(())
}

/// Action noise, as used to make evaluation harder or exploration wider.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseKind {
    /// `a + U(−s, s)` per action value.
    Uniform(f32),
    /// DexGen's "slow" policy: the whole action scaled by one `U(0, s)` per row.
    Slow(f32),
}

/// `get_ref`, `get_mut` and `into_inner` of a wrapper whose wrapped policy is `inner`.
macro_rules! inner_accessors {
    ($wrapper:ident) => {
        impl<P> $wrapper<P> {
            /// The wrapped policy.
            pub fn get_ref(&self) -> &P {
                &self.inner
            }

            /// The wrapped policy, mutably.
            pub fn get_mut(&mut self) -> &mut P {
                &mut self.inner
            }

            /// Unwraps the policy.
            pub fn into_inner(self) -> P {
                self.inner
            }
        }
    };
}

inner_accessors!(ActionNoise);
inner_accessors!(Clip);
inner_accessors!(NormalizeObservations);

/// Adds [`NoiseKind`] noise to an inner policy's actions (in both modes).
#[derive(Debug)]
pub struct ActionNoise<P> {
    inner: P,
    kind: NoiseKind,
}

impl<P: Policy> ActionNoise<P> {
    /// Wraps `inner`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for a negative or non-finite scale.
    pub fn new(inner: P, kind: NoiseKind) -> Result<Self> {
        let (NoiseKind::Uniform(s) | NoiseKind::Slow(s)) = kind;
        if !(s.is_finite() && s >= 0.0) {
            return Err(invalid_setting(
                "noise scale",
                format!("must be finite and ≥ 0, got {s}"),
            ));
        }
        Ok(Self { inner, kind })
    }
}

impl<P: Policy> Policy for ActionNoise<P> {
    fn observation_dim(&self) -> usize {
        self.inner.observation_dim()
    }
    fn action_dim(&self) -> usize {
        self.inner.action_dim()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let mut a = self.inner.act(observations, mode, rng)?;
        match self.kind {
            NoiseKind::Uniform(s) => {
                if s > 0.0 {
                    a.mapv_inplace(|v| v + rng.random_range(-s..=s));
                }
            }
            NoiseKind::Slow(s) => {
                for mut row in a.axis_iter_mut(Axis(0)) {
                    let k = if s > 0.0 {
                        rng.random_range(0.0..=s)
                    } else {
                        0.0
                    };
                    row.mapv_inplace(|v| v * k);
                }
            }
        }
        Ok(a)
    }
    fn reset(&mut self, env: usize) {
        self.inner.reset(env);
    }
}

/// Clips an inner policy's actions into `[low, high]` per component.
#[derive(Debug)]
pub struct Clip<P> {
    inner: P,
    low: Vec<f32>,
    high: Vec<f32>,
}

impl<P: Policy> Clip<P> {
    /// Wraps `inner`.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for bounds of the wrong length, [`Error::InvalidSetting`]
    /// for NaN or low > high.
    pub fn new(inner: P, low: Vec<f32>, high: Vec<f32>) -> Result<Self> {
        let n = inner.action_dim();
        check_len("clip lower bounds", n, low.len())?;
        check_len("clip upper bounds", n, high.len())?;
        if low
            .iter()
            .zip(&high)
            .any(|(l, h)| l.is_nan() || h.is_nan() || l > h)
        {
            return Err(invalid_setting("clip bounds", "must satisfy low ≤ high"));
        }
        Ok(Self { inner, low, high })
    }
}

impl<P: Policy> Policy for Clip<P> {
    fn observation_dim(&self) -> usize {
        self.inner.observation_dim()
    }
    fn action_dim(&self) -> usize {
        self.inner.action_dim()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let mut a = self.inner.act(observations, mode, rng)?;
        for mut row in a.axis_iter_mut(Axis(0)) {
            for ((v, l), h) in row.iter_mut().zip(&self.low).zip(&self.high) {
                *v = v.clamp(*l, *h);
            }
        }
        Ok(a)
    }
    fn reset(&mut self, env: usize) {
        self.inner.reset(env);
    }
}

/// Normalises observations with running statistics before the inner policy sees them:
/// `clip((x − mean) / sqrt(var + 1e-8), ±clip)`. Statistics update on every call while
/// [`NormalizeObservations::set_updating`] is on (training), and are frozen otherwise.
#[derive(Debug)]
pub struct NormalizeObservations<P> {
    inner: P,
    stats: RunningMeanStd,
    clip: f32,
    updating: bool,
}

impl<P: Policy> NormalizeObservations<P> {
    /// Wraps `inner` with fresh statistics; clip at ±`clip` (e.g. 5).
    pub fn new(inner: P, clip: f32) -> Self {
        let stats = RunningMeanStd::new(inner.observation_dim());
        Self {
            inner,
            stats,
            clip,
            updating: true,
        }
    }

    /// Wraps `inner` with given statistics, frozen.
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] when the statistics' width is not the policy's.
    pub fn with_stats(inner: P, stats: RunningMeanStd, clip: f32) -> Result<Self> {
        check_len(
            "normalisation statistics width",
            inner.observation_dim(),
            stats.dim(),
        )?;
        Ok(Self {
            inner,
            stats,
            clip,
            updating: false,
        })
    }

    /// Turns statistic updates on or off.
    pub fn set_updating(&mut self, on: bool) {
        self.updating = on;
    }

    /// The statistics.
    pub fn stats(&self) -> &RunningMeanStd {
        &self.stats
    }
}

impl<P: Policy> Policy for NormalizeObservations<P> {
    fn observation_dim(&self) -> usize {
        self.inner.observation_dim()
    }
    fn action_dim(&self) -> usize {
        self.inner.action_dim()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        if self.updating {
            self.stats.update(observations)?;
        }
        let normalised = self.stats.normalize(observations, self.clip);
        self.inner.act(normalised.view(), mode, rng)
    }
    fn reset(&mut self, env: usize) {
        self.inner.reset(env);
    }
}

/// `base + scale · residual`: a residual policy on top of a base controller (DexNDM
/// trains such residuals). Both see the same observations.
#[derive(Debug)]
pub struct Residual<B, R> {
    base: B,
    residual: R,
    scale: f32,
}

impl<B: Policy, R: Policy> Residual<B, R> {
    /// Combines `base` and `residual`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when their observation or action widths differ.
    pub fn new(base: B, residual: R, scale: f32) -> Result<Self> {
        if base.observation_dim() != residual.observation_dim()
            || base.action_dim() != residual.action_dim()
        {
            return Err(invalid(
                "base and residual policies must share observation and action widths",
            ));
        }
        Ok(Self {
            base,
            residual,
            scale,
        })
    }
}

impl<B, R> Residual<B, R> {
    /// The base policy.
    pub fn base(&self) -> &B {
        &self.base
    }

    /// The base policy, mutably.
    pub fn base_mut(&mut self) -> &mut B {
        &mut self.base
    }

    /// The residual policy.
    pub fn residual(&self) -> &R {
        &self.residual
    }

    /// The residual policy, mutably (to train it).
    pub fn residual_mut(&mut self) -> &mut R {
        &mut self.residual
    }

    /// The scale of the residual.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Unwraps both policies: `(base, residual)`.
    pub fn into_parts(self) -> (B, R) {
        (self.base, self.residual)
    }
}

impl<B: Policy, R: Policy> Policy for Residual<B, R> {
    fn observation_dim(&self) -> usize {
        self.base.observation_dim()
    }
    fn action_dim(&self) -> usize {
        self.base.action_dim()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        let a = self.base.act(observations, mode, rng)?;
        let r = self.residual.act(observations, mode, rng)?;
        Ok(a + r * self.scale)
    }
    fn reset(&mut self, env: usize) {
        self.base.reset(env);
        self.residual.reset(env);
    }
}

/// A policy that always returns the same action and counts its calls and resets.
#[derive(Debug, Clone)]
pub struct MockPolicy {
    observation_dim: usize,
    action: Vec<f32>,
    /// Number of `act` calls.
    pub calls: usize,
    /// Environments reset, in order.
    pub resets: Vec<usize>,
}

impl MockPolicy {
    /// Always `action`, for observations of width `observation_dim`.
    pub fn new(observation_dim: usize, action: Vec<f32>) -> Self {
        Self {
            observation_dim,
            action,
            calls: 0,
            resets: Vec::new(),
        }
    }
}

impl Policy for MockPolicy {
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }
    fn action_dim(&self) -> usize {
        self.action.len()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        self.calls += 1;
        let b = observations.nrows();
        Ok(Array2::from_shape_fn((b, self.action.len()), |(_, j)| {
            self.action[j]
        }))
    }
    fn reset(&mut self, env: usize) {
        self.resets.push(env);
    }
}

/// A policy from a closure mapping one observation to one action (scripted
/// controllers, teachers written by hand).
pub struct ScriptedPolicy<F> {
    observation_dim: usize,
    action_dim: usize,
    f: F,
}

impl<F> std::fmt::Debug for ScriptedPolicy<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedPolicy")
            .field("observation_dim", &self.observation_dim)
            .field("action_dim", &self.action_dim)
            .finish_non_exhaustive()
    }
}

impl<F: FnMut(&[f32]) -> Vec<f32> + Send> ScriptedPolicy<F> {
    /// Wraps `f`.
    pub fn new(observation_dim: usize, action_dim: usize, f: F) -> Self {
        Self {
            observation_dim,
            action_dim,
            f,
        }
    }
}

impl<F: FnMut(&[f32]) -> Vec<f32> + Send> Policy for ScriptedPolicy<F> {
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }
    fn action_dim(&self) -> usize {
        self.action_dim
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        let mut out = Array2::zeros((observations.nrows(), self.action_dim));
        for (i, row) in observations.axis_iter(Axis(0)).enumerate() {
            let obs: Vec<f32> = row.to_vec();
            let a = (self.f)(&obs);
            if a.len() != self.action_dim {
                check_len("scripted policy action", self.action_dim, a.len())?;
            }
            out.row_mut(i).assign(&ndarray::ArrayView1::from(&a));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    fn rng() -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(0)
    }

    #[test]
    fn wrappers_compose() {
        let obs = array![[1.0f32, 2.0], [3.0, 4.0]];
        let base = ScriptedPolicy::new(2, 2, |o: &[f32]| vec![o[0], -o[1]]);
        let residual = MockPolicy::new(2, vec![1.0, 1.0]);
        let mut p = Clip::new(
            Residual::new(base, residual, 0.5).unwrap(),
            vec![-2.0, -2.0],
            vec![2.0, 2.0],
        )
        .unwrap();
        let a = p
            .act(obs.view(), ActMode::Deterministic, &mut rng())
            .unwrap();
        assert_eq!(a, array![[1.5, -1.5], [2.0, -2.0]]);
    }

    #[test]
    fn noise_stays_within_its_bounds() {
        let obs = Array2::<f32>::zeros((50, 3));
        let mut p =
            ActionNoise::new(MockPolicy::new(3, vec![1.0; 4]), NoiseKind::Uniform(0.1)).unwrap();
        let a = p
            .act(obs.view(), ActMode::Deterministic, &mut rng())
            .unwrap();
        assert!(a.iter().all(|v| (0.9..=1.1).contains(v)));
        assert!(a.iter().any(|v| (*v - 1.0).abs() > 0.01));
        let mut slow =
            ActionNoise::new(MockPolicy::new(3, vec![1.0; 4]), NoiseKind::Slow(0.5)).unwrap();
        let a = slow
            .act(obs.view(), ActMode::Deterministic, &mut rng())
            .unwrap();
        for row in a.axis_iter(Axis(0)) {
            assert!(row.iter().all(|v| *v == row[0] && (0.0..=0.5).contains(v)));
        }
        assert!(ActionNoise::new(MockPolicy::new(3, vec![0.0]), NoiseKind::Uniform(-1.0)).is_err());
    }

    #[test]
    fn nan_and_wrong_widths_are_reported() {
        let mut p = MockPolicy::new(2, vec![0.0]);
        let bad = array![[0.0f32, 1.0], [f32::NAN, 0.0]];
        assert!(matches!(
            p.act(bad.view(), ActMode::Stochastic, &mut rng()),
            Err(Error::NonFiniteObservation { row: 1, index: 0 })
        ));
        let wide = Array2::<f32>::zeros((1, 3));
        assert!(matches!(
            p.act(wide.view(), ActMode::Stochastic, &mut rng()),
            Err(Error::LengthMismatch {
                what: "observation width",
                expected: 2,
                got: 3
            })
        ));
        let mut wrong = ScriptedPolicy::new(2, 2, |_: &[f32]| vec![0.0]);
        assert!(matches!(
            wrong.act(
                Array2::zeros((1, 2)).view(),
                ActMode::Deterministic,
                &mut rng()
            ),
            Err(Error::LengthMismatch {
                expected: 2,
                got: 1,
                ..
            })
        ));
        assert!(
            Residual::new(
                MockPolicy::new(2, vec![0.0]),
                MockPolicy::new(3, vec![0.0]),
                1.0
            )
            .is_err()
        );
    }

    #[test]
    fn normalisation_learns_and_freezes() {
        let mut p =
            NormalizeObservations::new(ScriptedPolicy::new(1, 1, |o: &[f32]| vec![o[0]]), 5.0);
        let obs = array![[10.0f32], [12.0], [14.0]];
        let a = p
            .act(obs.view(), ActMode::Deterministic, &mut rng())
            .unwrap();
        // Mean 12, std √(8/3).
        let s = (8.0f32 / 3.0).sqrt();
        assert!((a[(0, 0)] + 2.0 / s).abs() < 1e-3 && a[(1, 0)].abs() < 1e-4);
        p.set_updating(false);
        let before = p.stats().clone();
        p.act(
            array![[100.0f32]].view(),
            ActMode::Deterministic,
            &mut rng(),
        )
        .unwrap();
        assert_eq!(p.stats(), &before);
        let big = p
            .act(
                array![[1000.0f32]].view(),
                ActMode::Deterministic,
                &mut rng(),
            )
            .unwrap();
        assert_eq!(big[(0, 0)], 5.0);
    }

    #[test]
    fn wrappers_give_back_what_they_wrap() {
        let clip = Clip::new(MockPolicy::new(2, vec![0.5]), vec![-1.0], vec![1.0]).unwrap();
        let mut noisy = ActionNoise::new(clip, NoiseKind::Uniform(0.1)).unwrap();
        noisy.get_mut().get_mut().action = vec![0.25];
        assert_eq!(noisy.get_ref().get_ref().action, vec![0.25]);
        let inner: MockPolicy = noisy.into_inner().into_inner();
        assert_eq!(inner.action, vec![0.25]);
        let mut r = Residual::new(
            MockPolicy::new(2, vec![1.0]),
            MockPolicy::new(2, vec![2.0]),
            0.5,
        )
        .unwrap();
        r.residual_mut().action = vec![3.0];
        assert_eq!(r.scale(), 0.5);
        let (base, residual) = r.into_parts();
        assert_eq!((base.action, residual.action), (vec![1.0], vec![3.0]));
    }
}
