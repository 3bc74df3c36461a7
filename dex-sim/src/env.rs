//! The [`Env`] trait (Gymnasium-shaped), the [`TimeLimit`] wrapper and [`VecEnv`], which
//! steps many environments in parallel with next-step auto-reset.

use std::collections::BTreeMap;

use ndarray::Array2;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::simulator::Simulator;

/// A box in R^n: per-dimension bounds (may be infinite).
#[derive(Debug, Clone, PartialEq)]
pub struct BoxSpace {
    /// Lower bounds.
    pub low: Vec<f32>,
    /// Upper bounds.
    pub high: Vec<f32>,
}

impl BoxSpace {
    /// `[low, high]^n`.
    pub fn uniform(n: usize, low: f32, high: f32) -> Self {
        Self {
            low: vec![low; n],
            high: vec![high; n],
        }
    }

    /// The dimension.
    pub fn dim(&self) -> usize {
        self.low.len()
    }

    /// Checks length and finiteness of `x` and that it lies in the box.
    pub fn check(&self, what: &'static str, x: &[f32]) -> Result<()> {
        if x.len() != self.dim() {
            return Err(Error::LengthMismatch {
                what,
                expected: self.dim(),
                got: x.len(),
            });
        }
        for (i, v) in x.iter().enumerate() {
            if !v.is_finite() {
                return Err(Error::NotFinite {
                    what,
                    index: i,
                    value: f64::from(*v),
                });
            }
            if *v < self.low[i] || *v > self.high[i] {
                return Err(Error::InvalidParameter {
                    what,
                    reason: format!(
                        "value {i} = {v} lies outside [{}, {}]",
                        self.low[i], self.high[i]
                    ),
                });
            }
        }
        Ok(())
    }
}

/// What an environment observes.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    /// The flat state vector (its layout is documented by each task).
    pub state: Vec<f32>,
    /// A depth image (m), when the task renders one.
    pub depth: Option<Array2<f32>>,
}

/// The shapes of an environment's observations.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationSpec {
    /// Bounds of [`Observation::state`].
    pub state: BoxSpace,
    /// `(height, width)` of [`Observation::depth`], if rendered.
    pub depth: Option<(usize, usize)>,
}

/// Per-step information: success and named metrics.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Info {
    /// Whether the task counts as solved at this step.
    pub success: bool,
    /// Named figures (task-specific; documented by each task).
    pub values: BTreeMap<String, f64>,
}

impl Info {
    /// Sets a named figure.
    pub fn set(&mut self, key: &str, value: f64) {
        self.values.insert(key.to_string(), value);
    }

    /// A named figure, if present.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.get(key).copied()
    }
}

/// The result of one [`Env::step`].
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// The observation after the step.
    pub obs: Observation,
    /// The reward of the step.
    pub reward: f64,
    /// The episode ended by the task's own rule (success or failure).
    pub terminated: bool,
    /// The episode was cut by a time limit.
    pub truncated: bool,
    /// Success and metrics.
    pub info: Info,
}

/// A task on top of a simulator, shaped like Gymnasium's `Env`.
///
/// Actions lie in [`Env::action_space`] (tasks use `[-1, 1]^n`); stepping outside it, with
/// a wrong length or a NaN is an error that changes nothing.
pub trait Env: Send {
    /// The task's name.
    fn name(&self) -> &str;
    /// Bounds of actions.
    fn action_space(&self) -> &BoxSpace;
    /// Shapes of observations.
    fn observation_spec(&self) -> &ObservationSpec;
    /// Starts an episode; `Some(seed)` reseeds the environment's random stream, `None`
    /// continues it.
    fn reset(&mut self, seed: Option<u64>) -> Result<(Observation, Info)>;
    /// Applies `action` for one control period.
    fn step(&mut self, action: &[f32]) -> Result<Step>;
    /// The simulator underneath (for rendering, digests, ground truth), if the
    /// environment has one. Every dex-sim task has one; an environment without physics
    /// (a toy environment, a replay) keeps the default, `None`.
    fn simulator(&self) -> Option<&dyn Simulator> {
        None
    }
    /// The simulator underneath, mutably (to script perturbations, or to set up states
    /// in tests), if the environment has one; changes take effect from the next step.
    fn simulator_mut(&mut self) -> Option<&mut dyn Simulator> {
        None
    }
}

impl<E: Env + ?Sized> Env for Box<E> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn action_space(&self) -> &BoxSpace {
        (**self).action_space()
    }
    fn observation_spec(&self) -> &ObservationSpec {
        (**self).observation_spec()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Observation, Info)> {
        (**self).reset(seed)
    }
    fn step(&mut self, action: &[f32]) -> Result<Step> {
        (**self).step(action)
    }
    fn simulator(&self) -> Option<&dyn Simulator> {
        (**self).simulator()
    }
    fn simulator_mut(&mut self) -> Option<&mut dyn Simulator> {
        (**self).simulator_mut()
    }
}

/// Truncates episodes after `max_steps` steps (on top of the task's own limit).
#[derive(Debug)]
pub struct TimeLimit<E> {
    inner: E,
    max_steps: usize,
    steps: usize,
}

impl<E: Env> TimeLimit<E> {
    /// Wraps `inner`.
    pub fn new(inner: E, max_steps: usize) -> Self {
        Self {
            inner,
            max_steps,
            steps: 0,
        }
    }

    /// The wrapped environment.
    pub fn get_ref(&self) -> &E {
        &self.inner
    }

    /// The wrapped environment, mutably.
    pub fn get_mut(&mut self) -> &mut E {
        &mut self.inner
    }

    /// Unwraps the environment.
    pub fn into_inner(self) -> E {
        self.inner
    }
}

impl<E: Env> Env for TimeLimit<E> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn action_space(&self) -> &BoxSpace {
        self.inner.action_space()
    }
    fn observation_spec(&self) -> &ObservationSpec {
        self.inner.observation_spec()
    }
    fn reset(&mut self, seed: Option<u64>) -> Result<(Observation, Info)> {
        self.steps = 0;
        self.inner.reset(seed)
    }
    fn step(&mut self, action: &[f32]) -> Result<Step> {
        let mut s = self.inner.step(action)?;
        self.steps += 1;
        if self.steps >= self.max_steps && !s.terminated {
            s.truncated = true;
        }
        Ok(s)
    }
    fn simulator(&self) -> Option<&dyn Simulator> {
        self.inner.simulator()
    }
    fn simulator_mut(&mut self) -> Option<&mut dyn Simulator> {
        self.inner.simulator_mut()
    }
}

/// The seed of environment `index` in a batch seeded with `seed` (SplitMix64 of both, so
/// neighbouring batch seeds give unrelated streams).
pub fn env_seed(seed: u64, index: usize) -> u64 {
    let mut z = seed
        .wrapping_add((index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The results of one [`VecEnv::step`], one entry per environment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VecStep {
    /// Observations (after an auto-reset: the first observation of the new episode).
    pub obs: Vec<Observation>,
    /// Rewards (0 on an auto-reset step).
    pub rewards: Vec<f64>,
    /// Terminated flags.
    pub terminated: Vec<bool>,
    /// Truncated flags.
    pub truncated: Vec<bool>,
    /// Infos (after an auto-reset: the reset's info).
    pub infos: Vec<Info>,
    /// Which environments were reset during this call instead of stepped
    /// ([`AutoReset::NextStep`]; always `false` in [`AutoReset::SameStep`]).
    pub reset: Vec<bool>,
    /// In [`AutoReset::SameStep`], the last observation of each episode that ended in
    /// this call (`obs` then holds the new episode's first one); `None` otherwise.
    pub final_obs: Vec<Option<Observation>>,
    /// In [`AutoReset::SameStep`], the last info of each episode that ended in this
    /// call (`infos` then holds the reset's); `None` otherwise.
    pub final_info: Vec<Option<Info>>,
}

/// When [`VecEnv`] starts a new episode in an environment whose episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AutoReset {
    /// Gymnasium 1.x's default (and EnvPool's): the step *after* an episode ends resets
    /// the environment, ignores its action and returns the new episode's first
    /// observation with reward 0 and neither flag set.
    #[default]
    NextStep,
    /// Stable-Baselines3's and Gymnasium's `SAME_STEP`: the step that ends an episode
    /// resets at once; it returns the new episode's first observation, the ended
    /// episode's reward and flags, and its last observation and info in
    /// [`VecStep::final_obs`] / [`VecStep::final_info`].
    SameStep,
}

/// N environments stepped in parallel on rayon's pool, with next-step auto-reset (as
/// Gymnasium 1.x and EnvPool): the step after an episode ends resets that environment
/// (ignoring its action) and returns the new episode's first observation with reward 0.
/// [`VecEnv::with_autoreset`] selects [`AutoReset::SameStep`] instead.
///
/// Environment `i` is seeded with [`env_seed`]`(seed, i)` at [`VecEnv::reset`]; later
/// episodes continue each environment's own random stream, so results are bit for bit
/// the same whatever the number of threads.
pub struct VecEnv {
    envs: Vec<Box<dyn Env>>,
    done: Vec<bool>,
    action_dim: usize,
    autoreset: AutoReset,
}

impl std::fmt::Debug for VecEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VecEnv")
            .field("num_envs", &self.envs.len())
            .finish_non_exhaustive()
    }
}

impl VecEnv {
    /// Batches `envs`; they must share action and observation shapes.
    pub fn new(envs: Vec<Box<dyn Env>>) -> Result<Self> {
        let first = envs.first().ok_or(Error::InvalidParameter {
            what: "VecEnv",
            reason: "needs at least one environment".into(),
        })?;
        let action_dim = first.action_space().dim();
        let obs_dim = first.observation_spec().state.dim();
        for e in &envs {
            if e.action_space().dim() != action_dim || e.observation_spec().state.dim() != obs_dim {
                return Err(Error::InvalidParameter {
                    what: "VecEnv",
                    reason: "environments have different action or observation shapes".into(),
                });
            }
        }
        Ok(Self {
            done: vec![false; envs.len()],
            envs,
            action_dim,
            autoreset: AutoReset::NextStep,
        })
    }

    /// The same batch with auto-reset `mode` (takes effect from the next step).
    pub fn with_autoreset(mut self, mode: AutoReset) -> Self {
        self.autoreset = mode;
        self.done.fill(false);
        self
    }

    /// The auto-reset mode.
    pub fn autoreset(&self) -> AutoReset {
        self.autoreset
    }

    /// Builds `n` environments with `make(i)`.
    pub fn from_fn(n: usize, make: impl Fn(usize) -> Result<Box<dyn Env>>) -> Result<Self> {
        Self::new((0..n).map(make).collect::<Result<Vec<_>>>()?)
    }

    /// The number of environments.
    pub fn num_envs(&self) -> usize {
        self.envs.len()
    }

    /// The environments.
    pub fn envs(&self) -> &[Box<dyn Env>] {
        &self.envs
    }

    /// The action space of each environment.
    pub fn action_space(&self) -> &BoxSpace {
        self.envs[0].action_space()
    }

    /// The observation spec of each environment.
    pub fn observation_spec(&self) -> &ObservationSpec {
        self.envs[0].observation_spec()
    }

    /// Resets every environment, environment `i` with seed [`env_seed`]`(seed, i)`.
    pub fn reset(&mut self, seed: u64) -> Result<(Vec<Observation>, Vec<Info>)> {
        self.reset_each(|i| Some(env_seed(seed, i)))
    }

    /// Starts a new episode in every environment, each continuing its own random
    /// stream (as `reset(None)` does for one environment).
    pub fn reset_unseeded(&mut self) -> Result<(Vec<Observation>, Vec<Info>)> {
        self.reset_each(|_| None)
    }

    /// Resets environment `i` with `seed(i)`, all in parallel.
    fn reset_each(
        &mut self,
        seed: impl Fn(usize) -> Option<u64> + Sync,
    ) -> Result<(Vec<Observation>, Vec<Info>)> {
        let results: Vec<Result<(Observation, Info)>> = self
            .envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, e)| e.reset(seed(i)))
            .collect();
        self.done.fill(false);
        results
            .into_iter()
            .collect::<Result<Vec<_>>>()
            .map(|v| v.into_iter().unzip())
    }

    /// Steps every environment with its slice of `actions` (`num_envs × action_dim`,
    /// row-major). Actions are checked before any environment moves.
    pub fn step(&mut self, actions: &[f32]) -> Result<VecStep> {
        let n = self.envs.len();
        if actions.len() != n * self.action_dim {
            return Err(Error::LengthMismatch {
                what: "batched actions",
                expected: n * self.action_dim,
                got: actions.len(),
            });
        }
        for (i, e) in self.envs.iter().enumerate() {
            if !self.done[i] {
                let a = &actions[i * self.action_dim..(i + 1) * self.action_dim];
                e.action_space().check("action", a)?;
            }
        }
        let dim = self.action_dim;
        let same_step = self.autoreset == AutoReset::SameStep;
        // Per environment: the step, whether it was a reset in place of a step, and (same
        // step) the ended episode's last observation and info.
        type Outcome = (Step, bool, Option<(Observation, Info)>);
        let results: Vec<Result<Outcome>> = self
            .envs
            .par_iter_mut()
            .zip(self.done.par_iter())
            .enumerate()
            .map(|(i, (e, done))| {
                if *done {
                    let (obs, info) = e.reset(None)?;
                    let s = Step {
                        obs,
                        reward: 0.0,
                        terminated: false,
                        truncated: false,
                        info,
                    };
                    return Ok((s, true, None));
                }
                let mut s = e.step(&actions[i * dim..(i + 1) * dim])?;
                if same_step && (s.terminated || s.truncated) {
                    let (obs, info) = e.reset(None)?;
                    let last_obs = std::mem::replace(&mut s.obs, obs);
                    let last_info = std::mem::replace(&mut s.info, info);
                    return Ok((s, false, Some((last_obs, last_info))));
                }
                Ok((s, false, None))
            })
            .collect();
        let mut out = VecStep::default();
        for (i, r) in results.into_iter().enumerate() {
            let (s, was_reset, last) = r?;
            self.done[i] = !same_step && (s.terminated || s.truncated);
            out.obs.push(s.obs);
            out.rewards.push(s.reward);
            out.terminated.push(s.terminated);
            out.truncated.push(s.truncated);
            out.infos.push(s.info);
            out.reset.push(was_reset);
            let (o, f) = last.unzip();
            out.final_obs.push(o);
            out.final_info.push(f);
        }
        Ok(out)
    }
}
