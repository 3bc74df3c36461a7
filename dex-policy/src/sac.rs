//! Soft actor–critic on a [`VecEnv`], with the options of Squint's recipe for fast
//! parallel SAC: a C51 distributional critic, LayerNorm in every hidden layer, an
//! update-to-data ratio, and a replay buffer that stores each observation once.
//!
//! Squint (fast visual RL) trains with 1,024 environments, UTD 0.25, batch 512,
//! γ 0.9, τ 0.01, a 1M-transition buffer and C51 with 101 atoms on [−20, 20]; the
//! defaults here keep those settings except the number of environments and the buffer
//! size, scaled to a 2-core machine.
//!
//! **Images.** When the environments observe depth ([`dex_sim::ObservationSpec::depth`]
//! is `H × W`), the last `H·W` values of every state vector are the image, row by row,
//! in `[0, 1]` (dex-sim's squinted depth, see [`dex_sim::DepthView`]). The replay
//! buffer stores them as `u8` (`round(255·v)`), the policy acts on the same quantised
//! values, and a [`CnnEncoder`] ([`SacConfig::cnn`]) turns them into features that are
//! concatenated with the rest of the state. The encoder belongs to the critics (both
//! share it, trained by the critic loss, Polyak-averaged into a target copy); the actor
//! reads its features detached, as in DrQ.

use std::path::Path;

use candle_core::{D, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use dex_sim::VecEnv;
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch::{batch_obs, check_num_envs};
use crate::checkpoint::{checkpoint_error, load_weights, read_checkpoint_meta, write_checkpoint};
use crate::convert::{to_array, to_tensor};
use crate::encoders::{CnnConfig, CnnEncoder};
use crate::error::{Error, Result, invalid};
use crate::gradients::{clip_gradients, vars_with_prefix};
use crate::nets::{Activation, Mlp, MlpConfig, frozen_builder, init_seeded, new_store};
use crate::policy::{ActMode, Policy, check_observations};
use crate::random::{normal_tensor, standard_normal};
use crate::train::{Metrics, Trainer};

/// Bounds of the actor's log standard deviation (before the tanh squashing).
const LOG_STD_MIN: f64 = -5.0;
const LOG_STD_MAX: f64 = 2.0;

/// SAC settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SacConfig {
    /// Parallel environments.
    pub num_envs: usize,
    /// Transitions per gradient step.
    pub batch_size: usize,
    /// Discount.
    pub gamma: f64,
    /// Polyak rate of the target critics.
    pub tau: f64,
    /// Replay capacity in transitions (split evenly over the environments).
    pub buffer_size: usize,
    /// Gradient updates per environment transition (update-to-data ratio).
    pub utd: f64,
    /// Transitions collected with uniform random actions before learning starts.
    pub learning_starts: usize,
    /// Actor learning rate.
    pub actor_lr: f64,
    /// Critic learning rate.
    pub critic_lr: f64,
    /// Temperature learning rate (automatic entropy tuning).
    pub alpha_lr: f64,
    /// Initial temperature α.
    pub init_alpha: f64,
    /// Tune α towards `target_entropy`; otherwise α stays at `init_alpha`.
    pub auto_alpha: bool,
    /// Target entropy per action component (× action width; −1 is the usual choice).
    pub target_entropy_per_dim: f64,
    /// Hidden widths of actor and critics.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// LayerNorm after every hidden linear layer of the critics (and the actor).
    pub layer_norm: bool,
    /// Distributional C51 critics instead of scalar ones.
    pub distributional: bool,
    /// C51 atoms.
    pub atoms: usize,
    /// C51 support, lower end.
    pub v_min: f64,
    /// C51 support, upper end.
    pub v_max: f64,
    /// Update the actor and α every this many critic updates.
    pub actor_every: usize,
    /// Global gradient-norm clip per network; 0 turns it off.
    pub max_grad_norm: f64,
    /// The image encoder, used only when the environments observe images (its
    /// `height` and `width` are taken from the environments).
    pub cnn: CnnConfig,
    /// Seed of initialisation, exploration and sampling.
    pub seed: u64,
}

impl Default for SacConfig {
    fn default() -> Self {
        Self {
            num_envs: 32,
            batch_size: 512,
            gamma: 0.9,
            tau: 0.01,
            buffer_size: 300_000,
            utd: 0.25,
            learning_starts: 5_000,
            actor_lr: 3e-4,
            critic_lr: 3e-4,
            alpha_lr: 3e-4,
            init_alpha: 0.1,
            auto_alpha: true,
            target_entropy_per_dim: -1.0,
            hidden: vec![256, 256],
            activation: Activation::Relu,
            layer_norm: true,
            distributional: true,
            atoms: 101,
            v_min: -20.0,
            v_max: 20.0,
            actor_every: 1,
            max_grad_norm: 0.0,
            cnn: CnnConfig::default(),
            seed: 0,
        }
    }
}

impl SacConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let checks = [
            (self.num_envs > 0, "num_envs must be positive"),
            (self.batch_size > 0, "batch_size must be positive"),
            (
                (0.0..=1.0).contains(&self.gamma),
                "gamma must lie in [0, 1]",
            ),
            (self.tau > 0.0 && self.tau <= 1.0, "tau must lie in (0, 1]"),
            (
                self.buffer_size >= 2 * self.num_envs,
                "buffer_size must hold at least two steps of every environment",
            ),
            (pos(self.utd), "utd must be positive"),
            (pos(self.actor_lr), "actor_lr must be positive"),
            (pos(self.critic_lr), "critic_lr must be positive"),
            (pos(self.alpha_lr), "alpha_lr must be positive"),
            (pos(self.init_alpha), "init_alpha must be positive"),
            (
                self.target_entropy_per_dim.is_finite(),
                "target_entropy_per_dim must be finite",
            ),
            (!self.hidden.contains(&0), "hidden widths must be positive"),
            (self.atoms >= 2, "atoms must be at least 2"),
            (
                self.v_min.is_finite() && self.v_max.is_finite() && self.v_min < self.v_max,
                "the C51 support needs v_min < v_max",
            ),
            (self.actor_every > 0, "actor_every must be positive"),
            (
                self.max_grad_norm.is_finite() && self.max_grad_norm >= 0.0,
                "max_grad_norm must be ≥ 0",
            ),
        ];
        for (ok, msg) in checks {
            if !ok {
                return Err(invalid(msg));
            }
        }
        Ok(())
    }

    fn support(&self) -> Vec<f32> {
        let dz = (self.v_max - self.v_min) / (self.atoms - 1) as f64;
        (0..self.atoms)
            .map(|j| (self.v_min + dz * j as f64) as f32)
            .collect()
    }
}

/// Projects the distribution of `r + γ·(1 − done)·(z − shift)` onto the fixed support
/// `z` (C51's categorical projection, Bellemare et al. 2017, Algorithm 1).
///
/// `next_probs` is `B × atoms` (each row sums to 1), `rewards`, `not_done` and `shift`
/// have `B` entries (`shift` is SAC's `α·log π(a′|s′)`, 0 for plain C51). Returns the
/// target distribution, `B × atoms`.
///
/// # Errors
///
/// [`Error::InvalidInput`] for mismatched lengths or a support that is not increasing.
pub fn c51_project(
    support: &[f32],
    next_probs: ArrayView2<'_, f32>,
    rewards: &[f32],
    not_done: &[f32],
    shift: &[f32],
    gamma: f32,
) -> Result<Array2<f32>> {
    let (b, atoms) = next_probs.dim();
    if atoms != support.len() || atoms < 2 {
        return Err(invalid(format!(
            "{atoms} probabilities per row for a support of {} atoms",
            support.len()
        )));
    }
    if rewards.len() != b || not_done.len() != b || shift.len() != b {
        return Err(invalid(
            "rewards, not_done and shift need one entry per row",
        ));
    }
    let (v_min, v_max) = (support[0], support[atoms - 1]);
    if v_min.partial_cmp(&v_max) != Some(std::cmp::Ordering::Less) {
        return Err(invalid("the support must increase"));
    }
    let dz = (v_max - v_min) / (atoms - 1) as f32;
    let mut out = Array2::<f32>::zeros((b, atoms));
    for i in 0..b {
        for j in 0..atoms {
            let p = next_probs[(i, j)];
            if p == 0.0 {
                continue;
            }
            let tz =
                (rewards[i] + gamma * not_done[i] * (support[j] - shift[i])).clamp(v_min, v_max);
            let pos = (tz - v_min) / dz;
            let l = (pos.floor() as usize).min(atoms - 1);
            let u = (pos.ceil() as usize).min(atoms - 1);
            if l == u {
                out[(i, l)] += p;
            } else {
                out[(i, l)] += p * (u as f32 - pos);
                out[(i, u)] += p * (pos - l as f32);
            }
        }
    }
    Ok(out)
}

/// A replay buffer laid out time-major per environment, storing every observation
/// once: the row written at step `t` holds the observation the action was taken from,
/// the action, reward and flags; the next observation is the next row of the same
/// environment. With dex-sim's next-step auto-reset the final observation of an
/// episode is the row after its last transition, and that row (the reset step) is
/// marked invalid, so no observation is stored twice.
///
/// Observations have a float part (`state_dim` values) and an optional byte part
/// (`image_len` values: depth images quantised to `u8`).
#[derive(Debug, Clone)]
pub struct ReplayBuffer {
    num_envs: usize,
    capacity: usize,
    state_dim: usize,
    image_len: usize,
    action_dim: usize,
    states: Vec<f32>,
    images: Vec<u8>,
    actions: Vec<f32>,
    rewards: Vec<f32>,
    terminated: Vec<bool>,
    valid: Vec<bool>,
    head: usize,
    filled: usize,
}

/// A sampled minibatch.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Observation float parts, `B × state_dim`.
    pub states: Array2<f32>,
    /// Next observation float parts.
    pub next_states: Array2<f32>,
    /// Observation byte parts, `B × image_len` (empty when none).
    pub images: Array2<u8>,
    /// Next observation byte parts.
    pub next_images: Array2<u8>,
    /// Actions, `B × action_dim`.
    pub actions: Array2<f32>,
    /// Rewards.
    pub rewards: Vec<f32>,
    /// 0 where the episode terminated (no bootstrap), 1 otherwise (truncations bootstrap).
    pub not_done: Vec<f32>,
}

impl ReplayBuffer {
    /// A buffer of `capacity` steps per environment.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for zero sizes or a capacity below 2.
    pub fn new(
        num_envs: usize,
        capacity: usize,
        state_dim: usize,
        image_len: usize,
        action_dim: usize,
    ) -> Result<Self> {
        if num_envs == 0 || capacity < 2 || action_dim == 0 || state_dim + image_len == 0 {
            return Err(invalid(
                "a replay buffer needs environments, a capacity ≥ 2, actions and observations",
            ));
        }
        let rows = num_envs * capacity;
        Ok(Self {
            num_envs,
            capacity,
            state_dim,
            image_len,
            action_dim,
            states: vec![0.0; rows * state_dim],
            images: vec![0; rows * image_len],
            actions: vec![0.0; rows * action_dim],
            rewards: vec![0.0; rows],
            terminated: vec![false; rows],
            valid: vec![false; rows],
            head: 0,
            filled: 0,
        })
    }

    /// Steps stored per environment (at most the capacity).
    pub fn len(&self) -> usize {
        self.filled
    }

    /// Nothing stored yet.
    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Bytes held by the stored data.
    pub fn memory_bytes(&self) -> usize {
        self.states.len() * 4
            + self.images.len()
            + self.actions.len() * 4
            + self.rewards.len() * 4
            + self.terminated.len()
            + self.valid.len()
    }

    /// Stores one step of every environment: the observations acted from (`states`
    /// `N × state_dim`, `images` `N × image_len`), the actions and their outcome. A row
    /// with `valid = false` (an auto-reset step) is stored for its observation only.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for mismatched shapes.
    pub fn push(
        &mut self,
        states: ArrayView2<'_, f32>,
        images: ArrayView2<'_, u8>,
        actions: ArrayView2<'_, f32>,
        rewards: &[f32],
        terminated: &[bool],
        valid: &[bool],
    ) -> Result<()> {
        let n = self.num_envs;
        if states.dim() != (n, self.state_dim)
            || images.dim() != (n, self.image_len)
            || actions.dim() != (n, self.action_dim)
            || rewards.len() != n
            || terminated.len() != n
            || valid.len() != n
        {
            return Err(invalid(format!(
                "replay push: expected {n} rows of {} state, {} image and {} action values",
                self.state_dim, self.image_len, self.action_dim
            )));
        }
        for i in 0..n {
            let row = self.head * n + i;
            let copy_f32 = |dst: &mut [f32], src: ndarray::ArrayView1<'_, f32>, w: usize| {
                for (d, s) in dst[row * w..(row + 1) * w].iter_mut().zip(src) {
                    *d = *s;
                }
            };
            copy_f32(&mut self.states, states.row(i), self.state_dim);
            copy_f32(&mut self.actions, actions.row(i), self.action_dim);
            let w = self.image_len;
            for (d, s) in self.images[row * w..(row + 1) * w]
                .iter_mut()
                .zip(images.row(i))
            {
                *d = *s;
            }
            self.rewards[row] = rewards[i];
            self.terminated[row] = terminated[i];
            self.valid[row] = valid[i];
        }
        self.head = (self.head + 1) % self.capacity;
        self.filled = (self.filled + 1).min(self.capacity);
        Ok(())
    }

    /// How many transitions can be sampled: valid rows whose next row is stored.
    pub fn transitions(&self) -> usize {
        if self.filled < 2 {
            return 0;
        }
        let newest = (self.head + self.capacity - 1) % self.capacity;
        (0..self.capacity)
            .filter(|&s| s != newest && self.slot_filled(s))
            .map(|s| {
                (0..self.num_envs)
                    .filter(|&i| self.valid[s * self.num_envs + i])
                    .count()
            })
            .sum()
    }

    fn slot_filled(&self, slot: usize) -> bool {
        self.filled == self.capacity || slot < self.head
    }

    /// Samples `batch` transitions uniformly (with replacement) among the stored ones.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when fewer than 2 steps are stored or no stored
    /// transition is valid.
    pub fn sample(&self, batch: usize, rng: &mut dyn rand::RngCore) -> Result<Batch> {
        if self.filled < 2 {
            return Err(invalid(
                "the replay buffer holds no complete transition yet",
            ));
        }
        let (n, cap) = (self.num_envs, self.capacity);
        let newest = (self.head + cap - 1) % cap;
        // Slots that have a successor: every filled one but the newest.
        let oldest = if self.filled == cap { self.head } else { 0 };
        let usable = self.filled - 1;
        let mut rows = Vec::with_capacity(batch);
        let mut tries = 0usize;
        while rows.len() < batch {
            tries += 1;
            if tries > 1000 * batch.max(1) {
                return Err(invalid("the replay buffer holds no valid transition"));
            }
            let slot = (oldest + rng.random_range(0..usable)) % cap;
            debug_assert_ne!(slot, newest);
            let i = rng.random_range(0..n);
            let row = slot * n + i;
            if self.valid[row] {
                rows.push((row, ((slot + 1) % cap) * n + i));
            }
        }
        let gather_f32 = |src: &[f32], w: usize, pick: &dyn Fn(&(usize, usize)) -> usize| {
            let mut v = Vec::with_capacity(rows.len() * w);
            for r in &rows {
                let k = pick(r);
                v.extend_from_slice(&src[k * w..(k + 1) * w]);
            }
            Array2::from_shape_vec((rows.len(), w), v)
        };
        let gather_u8 = |w: usize, pick: &dyn Fn(&(usize, usize)) -> usize| {
            let mut v = Vec::with_capacity(rows.len() * w);
            for r in &rows {
                let k = pick(r);
                v.extend_from_slice(&self.images[k * w..(k + 1) * w]);
            }
            Array2::from_shape_vec((rows.len(), w), v)
        };
        let shape = |e: ndarray::ShapeError| invalid(e.to_string());
        Ok(Batch {
            states: gather_f32(&self.states, self.state_dim, &|r| r.0).map_err(shape)?,
            next_states: gather_f32(&self.states, self.state_dim, &|r| r.1).map_err(shape)?,
            images: gather_u8(self.image_len, &|r| r.0).map_err(shape)?,
            next_images: gather_u8(self.image_len, &|r| r.1).map_err(shape)?,
            actions: gather_f32(&self.actions, self.action_dim, &|r| r.0).map_err(shape)?,
            rewards: rows.iter().map(|r| self.rewards[r.0]).collect(),
            not_done: rows
                .iter()
                .map(|r| if self.terminated[r.0] { 0.0 } else { 1.0 })
                .collect(),
        })
    }
}

/// The tanh-Gaussian actor: an MLP giving mean and log std of a Gaussian whose
/// sample is squashed by tanh into (−1, 1), then scaled to the action bounds.
struct Actor {
    net: Mlp,
    action_dim: usize,
    low: Vec<f32>,
    high: Vec<f32>,
}

impl Actor {
    fn new(
        config: &SacConfig,
        obs_dim: usize,
        low: &[f32],
        high: &[f32],
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        let ad = low.len();
        let net = Mlp::new(
            &MlpConfig {
                input: obs_dim,
                hidden: config.hidden.clone(),
                output: 2 * ad,
                activation: config.activation,
                layer_norm: config.layer_norm,
            },
            vb,
        )?;
        Ok(Self {
            net,
            action_dim: ad,
            low: low.to_vec(),
            high: high.to_vec(),
        })
    }

    /// Mean and log std (bounded smoothly to [LOG_STD_MIN, LOG_STD_MAX]).
    fn dist(&self, x: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let out = self.net.forward(x)?;
        let mu = out.narrow(1, 0, self.action_dim)?;
        let raw = out.narrow(1, self.action_dim, self.action_dim)?;
        let log_std = ((raw.tanh()? + 1.0)? * (0.5 * (LOG_STD_MAX - LOG_STD_MIN)))? + LOG_STD_MIN;
        Ok((mu, log_std?))
    }

    /// Reparameterised sample in (−1, 1) and its log-density (`B`), given noise `eps`.
    fn sample(&self, x: &Tensor, eps: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (mu, log_std) = self.dist(x)?;
        let u = (&mu + (log_std.exp()? * eps)?)?;
        let a = u.tanh()?;
        // log N(u; mu, std) − Σ log(1 − tanh²u), the latter as 2(log 2 − u − softplus(−2u)).
        let gauss = ((eps.sqr()? * -0.5)? - &log_std)? - 0.5 * (2.0 * std::f64::consts::PI).ln();
        let m2u = (&u * -2.0)?;
        let softplus = (m2u.relu()? + ((m2u.abs()?.neg()?.exp()? + 1.0)?.log()?))?;
        let log_det = (((u.neg()? + std::f64::consts::LN_2)? - softplus)? * 2.0)?;
        let logp = (gauss? - log_det)?.sum(D::Minus1)?;
        Ok((a, logp))
    }

    /// Scales (−1, 1) to the action bounds.
    fn scale(&self, a: &mut Array2<f32>) {
        for mut row in a.rows_mut() {
            for ((v, l), h) in row.iter_mut().zip(&self.low).zip(&self.high) {
                *v = l + 0.5 * (*v + 1.0) * (h - l);
            }
        }
    }

    /// Maps environment actions back to (−1, 1).
    fn unscale(&self, a: &mut Array2<f32>) {
        for mut row in a.rows_mut() {
            for ((v, l), h) in row.iter_mut().zip(&self.low).zip(&self.high) {
                let span = h - l;
                *v = if span > 0.0 {
                    2.0 * (*v - l) / span - 1.0
                } else {
                    0.0
                };
            }
        }
    }
}

/// Where the image sits in a flat observation: the last `H·W` values, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ObsLayout {
    obs_dim: usize,
    image: Option<(usize, usize)>,
}

impl ObsLayout {
    fn new(obs_dim: usize, image: Option<(usize, usize)>) -> Result<Self> {
        if let Some((h, w)) = image
            && (h * w == 0 || h * w >= obs_dim)
        {
            return Err(invalid(format!(
                "a {h}×{w} image needs observations wider than {} values (some state \
                 besides the image); they have {obs_dim}",
                h * w
            )));
        }
        Ok(Self { obs_dim, image })
    }

    fn from_meta(obs_dim: usize, image: &[usize]) -> Result<Self> {
        match image {
            [] => Self::new(obs_dim, None),
            [h, w] => Self::new(obs_dim, Some((*h, *w))),
            other => Err(invalid(format!(
                "image shape {other:?}: expected [] or [height, width]"
            ))),
        }
    }

    fn image_len(&self) -> usize {
        self.image.map_or(0, |(h, w)| h * w)
    }

    fn state_dim(&self) -> usize {
        self.obs_dim - self.image_len()
    }

    /// The encoder's config with the image size filled in, when there is an image.
    fn cnn(&self, config: &SacConfig) -> Option<CnnConfig> {
        self.image.map(|(height, width)| CnnConfig {
            height,
            width,
            in_channels: 1,
            ..config.cnn.clone()
        })
    }

    /// Width of the actor's and critics' input.
    fn feature_dim(&self, config: &SacConfig) -> usize {
        self.state_dim() + self.image.map_or(0, |_| config.cnn.output)
    }

    fn meta(&self) -> Vec<usize> {
        self.image.map_or_else(Vec::new, |(h, w)| vec![h, w])
    }

    /// The state part and the image quantised to bytes (`round(255·v)`, `v` clamped to
    /// `[0, 1]`).
    fn split(&self, obs: ArrayView2<'_, f32>) -> (Array2<f32>, Array2<u8>) {
        let sd = self.state_dim();
        let (states, images) = obs.split_at(ndarray::Axis(1), sd);
        let states = states.to_owned();
        let images = images.mapv(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8);
        (states, images)
    }

    /// `B × H·W` bytes as a `B × H × W` tensor of values in `[0, 1]`.
    fn image_tensor(&self, images: ArrayView2<'_, u8>) -> Result<Option<Tensor>> {
        let Some((h, w)) = self.image else {
            return Ok(None);
        };
        let b = images.nrows();
        let v: Vec<f32> = images.iter().map(|x| f32::from(*x) / 255.0).collect();
        Ok(Some(Tensor::from_vec(
            v,
            (b, h, w),
            &candle_core::Device::Cpu,
        )?))
    }

    /// Network input for raw observations: the state part, then the encoder's
    /// features of the quantised image.
    fn input(&self, enc: Option<&CnnEncoder>, obs: ArrayView2<'_, f32>) -> Result<Tensor> {
        if self.image.is_none() {
            return to_tensor(obs);
        }
        let (states, images) = self.split(obs);
        let img = self.image_tensor(images.view())?;
        Ok(features(enc, &to_tensor(states.view())?, img.as_ref())?)
    }
}

/// The state features, then the encoder's image features when both are given.
fn features(
    enc: Option<&CnnEncoder>,
    states: &Tensor,
    images: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    match (enc, images) {
        (Some(e), Some(i)) => Tensor::cat(&[states, &e.forward(i)?], 1),
        _ => Ok(states.clone()),
    }
}

/// Expected value per row of a critic's output: the scalar itself, or Σ softmax·z for
/// C51 (`support` given).
fn expected_q(out: &Tensor, support: Option<&Tensor>) -> candle_core::Result<Tensor> {
    match support {
        Some(z) => candle_nn::ops::softmax(out, D::Minus1)?
            .broadcast_mul(z)?
            .sum(D::Minus1),
        None => out.squeeze(1),
    }
}

/// Cross-entropy of C51 logits against target distributions, averaged over rows.
fn c51_cross_entropy(logits: &Tensor, target: &Tensor) -> candle_core::Result<Tensor> {
    (candle_nn::ops::log_softmax(logits, D::Minus1)? * target)?
        .sum(D::Minus1)?
        .mean_all()?
        .neg()
}

/// SAC's actor loss `mean(α·log π(a|s) − min(Q1, Q2)(s, a))` with `a` the
/// reparameterised sample for noise `eps`; also returns log π and min Q.
fn actor_loss(
    actor: &Actor,
    critics: &[Mlp; 2],
    support: Option<&Tensor>,
    x: &Tensor,
    eps: &Tensor,
    alpha: f64,
) -> candle_core::Result<(Tensor, Tensor, Tensor)> {
    let (a, logp) = actor.sample(x, eps)?;
    let xa = Tensor::cat(&[x, &a], 1)?;
    let q1 = expected_q(&critics[0].forward(&xa)?, support)?;
    let q2 = expected_q(&critics[1].forward(&xa)?, support)?;
    let q = q1.minimum(&q2)?;
    let loss = ((&logp * alpha)? - &q)?.mean_all()?;
    Ok((loss, logp, q))
}

fn critic_config(config: &SacConfig, obs_dim: usize, action_dim: usize) -> MlpConfig {
    MlpConfig {
        input: obs_dim + action_dim,
        hidden: config.hidden.clone(),
        output: if config.distributional {
            config.atoms
        } else {
            1
        },
        activation: config.activation,
        layer_norm: config.layer_norm,
    }
}

/// What a SAC checkpoint directory holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SacCheckpointMeta {
    /// SAC settings (networks included).
    pub sac: SacConfig,
    /// Observation width (image values included).
    pub observation_dim: usize,
    /// `[height, width]` of the image at the end of each observation; empty for state
    /// observations.
    #[serde(default)]
    pub image: Vec<usize>,
    /// Lower action bounds.
    pub action_low: Vec<f32>,
    /// Upper action bounds.
    pub action_high: Vec<f32>,
    /// Gradient updates done.
    pub updates: usize,
    /// Environment steps done.
    pub env_steps: u64,
    /// Free-form description of the environment, for the caller (task, hand, …).
    pub env: toml::Table,
}

/// Trains a tanh-Gaussian policy with SAC on a [`VecEnv`] of state observations, or of
/// state and image observations (see the [module docs](self)).
pub struct SacTrainer {
    config: SacConfig,
    venv: VecEnv,
    varmap: VarMap,
    actor: Actor,
    q: [Mlp; 2],
    q_target: [Mlp; 2],
    /// The critics' image encoder and its target copy (image observations only).
    qenc: Option<CnnEncoder>,
    qenc_target: Option<CnnEncoder>,
    layout: ObsLayout,
    log_alpha: Var,
    actor_opt: AdamW,
    critic_opt: AdamW,
    alpha_opt: AdamW,
    critic_vars: Vec<Var>,
    actor_vars: Vec<Var>,
    target_pairs: Vec<(Var, Var)>,
    buffer: ReplayBuffer,
    support: Tensor,
    support_vec: Vec<f32>,
    obs: Array2<f32>,
    rng: ChaCha8Rng,
    update_credit: f64,
    updates: usize,
    env_steps: u64,
    collected: usize,
    episode_return: Vec<f64>,
    obs_dim: usize,
    env_meta: toml::Table,
}

impl std::fmt::Debug for SacTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SacTrainer")
            .field("config", &self.config)
            .field("updates", &self.updates)
            .field("env_steps", &self.env_steps)
            .finish_non_exhaustive()
    }
}

/// Figures of one SAC gradient update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SacLosses {
    /// Critic loss (cross-entropy for C51, halved squared error otherwise).
    pub critic: f64,
    /// Actor loss (0 when the actor was not updated this time).
    pub actor: f64,
    /// Temperature loss.
    pub alpha: f64,
    /// Policy entropy estimate `−mean log π`.
    pub entropy: f64,
    /// Mean of `min(Q1, Q2)` at the policy's actions.
    pub q: f64,
}

impl SacTrainer {
    /// A trainer on `venv` (which must hold `config.num_envs` environments), reset with
    /// `config.seed`. `env_meta` is stored in checkpoints to describe the environment.
    ///
    /// # Errors
    ///
    /// A bad config, a mismatched `venv`, or an environment error.
    pub fn new(mut venv: VecEnv, config: SacConfig, env_meta: toml::Table) -> Result<Self> {
        config.validate()?;
        check_num_envs(&venv, config.num_envs)?;
        let obs_dim = venv.observation_spec().state.dim();
        let low = venv.action_space().low.clone();
        let high = venv.action_space().high.clone();
        if low
            .iter()
            .zip(&high)
            .any(|(l, h)| !(l.is_finite() && h.is_finite() && l < h))
        {
            return Err(invalid("SAC needs finite action bounds with low < high"));
        }
        let ad = low.len();
        let layout = ObsLayout::new(obs_dim, venv.observation_spec().depth)?;
        let fd = layout.feature_dim(&config);
        let (varmap, vb) = new_store();
        let actor = Actor::new(&config, fd, &low, &high, &vb.pp("actor"))?;
        let cc = critic_config(&config, fd, ad);
        let q = [Mlp::new(&cc, &vb.pp("q1"))?, Mlp::new(&cc, &vb.pp("q2"))?];
        let q_target = [
            Mlp::new(&cc, &vb.pp("target.q1"))?,
            Mlp::new(&cc, &vb.pp("target.q2"))?,
        ];
        let cnn = layout.cnn(&config);
        let qenc = cnn
            .as_ref()
            .map(|c| CnnEncoder::new(c, &vb.pp("qenc")))
            .transpose()?;
        let qenc_target = cnn
            .as_ref()
            .map(|c| CnnEncoder::new(c, &vb.pp("target.qenc")))
            .transpose()?;
        let log_alpha = vb.get_with_hints(1, "log_alpha", candle_nn::Init::Const(0.0))?;
        init_seeded(&varmap, config.seed, |name| {
            if name.starts_with("actor.out") {
                0.01
            } else {
                1.0
            }
        })?;
        let log_alpha_var = vars_with_prefix(&varmap, "log_alpha")?
            .into_iter()
            .next()
            .map(|(_, v)| v)
            .ok_or_else(|| invalid("log_alpha missing"))?;
        log_alpha_var.set(&Tensor::new(
            &[config.init_alpha.ln() as f32],
            log_alpha.device(),
        )?)?;
        // Targets start equal to the online critics.
        let online: Vec<(String, Var)> = [
            vars_with_prefix(&varmap, "q1.")?,
            vars_with_prefix(&varmap, "q2.")?,
            vars_with_prefix(&varmap, "qenc.")?,
        ]
        .concat();
        let mut target_pairs = Vec::with_capacity(online.len());
        for (name, var) in online {
            let tname = format!("target.{name}");
            let t = vars_with_prefix(&varmap, &tname)?
                .into_iter()
                .find(|(n, _)| *n == tname)
                .map(|(_, v)| v)
                .ok_or_else(|| invalid(format!("{tname} missing")))?;
            t.set(&var.as_tensor().copy()?)?;
            target_pairs.push((t, var));
        }
        let critic_vars: Vec<Var> = target_pairs.iter().map(|(_, v)| v.clone()).collect();
        let actor_vars: Vec<Var> = vars_with_prefix(&varmap, "actor.")?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let adam = |vars: Vec<Var>, lr: f64| {
            AdamW::new(
                vars,
                ParamsAdamW {
                    lr,
                    weight_decay: 0.0,
                    ..ParamsAdamW::default()
                },
            )
        };
        let actor_opt = adam(actor_vars.clone(), config.actor_lr)?;
        let critic_opt = adam(critic_vars.clone(), config.critic_lr)?;
        let alpha_opt = adam(vec![log_alpha_var.clone()], config.alpha_lr)?;
        let (obs, _) = venv.reset(config.seed)?;
        let obs = batch_obs(&obs, obs_dim)?;
        check_observations(obs.view(), obs_dim)?;
        let n = config.num_envs;
        let buffer = ReplayBuffer::new(
            n,
            (config.buffer_size / n).max(2),
            layout.state_dim(),
            layout.image_len(),
            ad,
        )?;
        let support_vec = config.support();
        let support =
            Tensor::from_vec(support_vec.clone(), config.atoms, &candle_core::Device::Cpu)?;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5AC0_0000),
            venv,
            varmap,
            actor,
            q,
            q_target,
            qenc,
            qenc_target,
            layout,
            log_alpha: log_alpha_var,
            actor_opt,
            critic_opt,
            alpha_opt,
            critic_vars,
            actor_vars,
            target_pairs,
            buffer,
            support,
            support_vec,
            obs,
            update_credit: 0.0,
            updates: 0,
            env_steps: 0,
            collected: 0,
            episode_return: vec![0.0; n],
            obs_dim,
            env_meta,
            config,
        })
    }

    /// Gradient updates done.
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// The replay buffer.
    pub fn buffer(&self) -> &ReplayBuffer {
        &self.buffer
    }

    fn alpha(&self) -> Result<f64> {
        Ok(f64::from(
            self.log_alpha
                .as_tensor()
                .exp()?
                .flatten_all()?
                .to_vec1::<f32>()?[0],
        ))
    }

    /// One gradient update from the replay buffer: both critics, then (every
    /// `actor_every` updates) the actor and the temperature, then the targets. The
    /// trainer calls it from [`SacTrainer::step`] as the update-to-data ratio asks; it
    /// is public to train further on stored data or to measure an update alone.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the buffer holds no transition yet;
    /// [`Error::Diverged`] for a non-finite loss.
    pub fn update(&mut self) -> Result<SacLosses> {
        let cfg = &self.config;
        let batch = self.buffer.sample(cfg.batch_size, &mut self.rng)?;
        let b = batch.rewards.len();
        let ad = self.actor.action_dim;
        let x_state = to_tensor(batch.states.view())?;
        let x2_state = to_tensor(batch.next_states.view())?;
        let img = self.layout.image_tensor(batch.images.view())?;
        let img2 = self.layout.image_tensor(batch.next_images.view())?;
        let mut a_arr = batch.actions.clone();
        self.actor.unscale(&mut a_arr);
        let a = to_tensor(a_arr.view())?;
        let alpha = self.alpha()?;
        // Targets (no gradient needed: computed from detached values).
        let eps2 = normal_tensor(&mut self.rng, (b, ad))?;
        // Detached views of every variable: modules built on them record no graph.
        let frozen = frozen_builder(&self.varmap)?;
        let fd = self.actor.net.config().input;
        let target_actor = Actor::new(
            &self.config,
            fd,
            &self.actor.low,
            &self.actor.high,
            &frozen.pp("actor"),
        )?;
        // Image features: the online encoder (its gradient comes from the critic loss),
        // a detached copy of it for the actor, the target encoder for the targets.
        let frozen_enc = match self.qenc.as_ref() {
            Some(e) => Some(CnnEncoder::new(e.config(), &frozen.pp("qenc"))?),
            None => None,
        };
        let x = features(self.qenc.as_ref(), &x_state, img.as_ref())?;
        let x2 = features(frozen_enc.as_ref(), &x2_state, img2.as_ref())?;
        let x2_target = features(self.qenc_target.as_ref(), &x2_state, img2.as_ref())?.detach();
        let (a2, logp2) = target_actor.sample(&x2, &eps2)?;
        let xa2 = Tensor::cat(&[&x2_target, &a2.detach()], 1)?;
        let t1 = self.q_target[0].forward(&xa2)?.detach();
        let t2 = self.q_target[1].forward(&xa2)?.detach();
        let logp2: Vec<f32> = logp2.detach().to_vec1()?;
        let xa = Tensor::cat(&[&x, &a], 1)?;
        let o1 = self.q[0].forward(&xa)?;
        let o2 = self.q[1].forward(&xa)?;
        let critic_loss = if cfg.distributional {
            // Per sample, follow the target critic whose expected value is lower.
            let p1 = to_array(&candle_nn::ops::softmax(&t1, D::Minus1)?)?;
            let p2 = to_array(&candle_nn::ops::softmax(&t2, D::Minus1)?)?;
            let z = &self.support_vec;
            let mut next = p1.clone();
            for i in 0..b {
                let e1: f32 = p1.row(i).iter().zip(z).map(|(p, z)| p * z).sum();
                let e2: f32 = p2.row(i).iter().zip(z).map(|(p, z)| p * z).sum();
                if e2 < e1 {
                    next.row_mut(i).assign(&p2.row(i));
                }
            }
            let shift: Vec<f32> = logp2.iter().map(|l| (alpha as f32) * l).collect();
            let target = c51_project(
                z,
                next.view(),
                &batch.rewards,
                &batch.not_done,
                &shift,
                cfg.gamma as f32,
            )?;
            let target = to_tensor(target.view())?;
            (c51_cross_entropy(&o1, &target)? + c51_cross_entropy(&o2, &target)?)?
        } else {
            let v1: Vec<f32> = t1.squeeze(1)?.to_vec1()?;
            let v2: Vec<f32> = t2.squeeze(1)?.to_vec1()?;
            let y: Vec<f32> = (0..b)
                .map(|i| {
                    batch.rewards[i]
                        + cfg.gamma as f32
                            * batch.not_done[i]
                            * (v1[i].min(v2[i]) - alpha as f32 * logp2[i])
                })
                .collect();
            let y = Tensor::from_vec(y, b, &candle_core::Device::Cpu)?;
            let mse = |o: &Tensor| -> candle_core::Result<Tensor> {
                (o.squeeze(1)? - &y)?.sqr()?.mean_all()
            };
            ((mse(&o1)? + mse(&o2)?)? * 0.5)?
        };
        let critic_value = f64::from(critic_loss.to_scalar::<f32>()?);
        if !critic_value.is_finite() {
            return Err(Error::Diverged(format!(
                "critic loss {critic_value} at update {}",
                self.updates + 1
            )));
        }
        let mut grads = critic_loss.backward()?;
        if cfg.max_grad_norm > 0.0 {
            clip_gradients(&self.critic_vars, &mut grads, cfg.max_grad_norm)?;
        }
        self.critic_opt.step(&grads)?;
        let mut losses = SacLosses {
            critic: critic_value,
            ..SacLosses::default()
        };
        self.updates += 1;
        if self.updates.is_multiple_of(self.config.actor_every) {
            let eps = normal_tensor(&mut self.rng, (b, ad))?;
            let support = self.config.distributional.then_some(&self.support);
            // The critics enter the actor loss as fixed functions: built from detached
            // views of their (just updated) weights, backward computes no gradients for
            // them, only for the actor.
            let cc = self.q[0].config().clone();
            let q_fixed = [
                Mlp::new(&cc, &frozen.pp("q1"))?,
                Mlp::new(&cc, &frozen.pp("q2"))?,
            ];
            let (actor_loss, logp, q) =
                actor_loss(&self.actor, &q_fixed, support, &x.detach(), &eps, alpha)?;
            let av = f64::from(actor_loss.to_scalar::<f32>()?);
            if !av.is_finite() {
                return Err(Error::Diverged(format!(
                    "actor loss {av} at update {}",
                    self.updates
                )));
            }
            let mut grads = actor_loss.backward()?;
            if self.config.max_grad_norm > 0.0 {
                clip_gradients(&self.actor_vars, &mut grads, self.config.max_grad_norm)?;
            }
            self.actor_opt.step(&grads)?;
            let mean_logp = f64::from(logp.mean_all()?.to_scalar::<f32>()?);
            losses.actor = av;
            losses.entropy = -mean_logp;
            losses.q = f64::from(q.mean_all()?.to_scalar::<f32>()?);
            if self.config.auto_alpha {
                let target = self.config.target_entropy_per_dim * ad as f64;
                let alpha_loss = (self.log_alpha.as_tensor().sum_all()? * -(mean_logp + target))?;
                losses.alpha = f64::from(alpha_loss.to_scalar::<f32>()?);
                let grads = alpha_loss.backward()?;
                self.alpha_opt.step(&grads)?;
            }
        }
        // Polyak averaging of the targets.
        let tau = self.config.tau;
        for (t, o) in &self.target_pairs {
            let mixed = ((t.as_tensor() * (1.0 - tau))? + (o.as_tensor() * tau)?)?;
            t.set(&mixed)?;
        }
        Ok(losses)
    }

    /// Samples actions for the current observations: uniform before `learning_starts`,
    /// the stochastic policy after. Returns actions in the environment's bounds.
    fn explore(&mut self) -> Result<Array2<f32>> {
        let (n, ad) = (self.config.num_envs, self.actor.action_dim);
        let mut a = Array2::<f32>::zeros((n, ad));
        if self.collected < self.config.learning_starts {
            for v in &mut a {
                *v = self.rng.random_range(-1.0f32..1.0);
            }
        } else {
            let x = self.layout.input(self.qenc.as_ref(), self.obs.view())?;
            let (mu, log_std) = self.actor.dist(&x)?;
            let (mu, log_std) = (to_array(&mu)?, to_array(&log_std)?);
            for ((v, m), s) in a.iter_mut().zip(&mu).zip(&log_std) {
                *v = (m + s.exp() * standard_normal(&mut self.rng) as f32).tanh();
            }
        }
        self.actor.scale(&mut a);
        Ok(a)
    }

    /// One environment step of every environment, then `utd × num_envs` updates
    /// (carrying the fraction) once `learning_starts` transitions are stored.
    ///
    /// # Errors
    ///
    /// An environment error, NaN observations, or divergence.
    pub fn step(&mut self) -> Result<Metrics> {
        let n = self.config.num_envs;
        let actions = self.explore()?;
        let flat: Vec<f32> = actions.iter().copied().collect();
        let step = self.venv.step(&flat)?;
        let rewards: Vec<f32> = step.rewards.iter().map(|r| *r as f32).collect();
        let valid: Vec<bool> = step.reset.iter().map(|r| !r).collect();
        let (states, images) = self.layout.split(self.obs.view());
        self.buffer.push(
            states.view(),
            images.view(),
            actions.view(),
            &rewards,
            &step.terminated,
            &valid,
        )?;
        let (mut episodes, mut successes, mut ret_sum) = (0usize, 0usize, 0.0);
        for i in 0..n {
            if step.reset[i] {
                continue;
            }
            self.env_steps += 1;
            self.collected += 1;
            self.episode_return[i] += step.rewards[i];
            if step.terminated[i] || step.truncated[i] {
                episodes += 1;
                successes += usize::from(step.infos[i].success);
                ret_sum += self.episode_return[i];
                self.episode_return[i] = 0.0;
            }
        }
        self.obs = batch_obs(&step.obs, self.obs_dim)?;
        check_observations(self.obs.view(), self.obs_dim)?;
        let mut sums = SacLosses::default();
        let mut done_updates = 0usize;
        if self.collected >= self.config.learning_starts && self.buffer.len() >= 2 {
            self.update_credit += self.config.utd * valid.iter().filter(|v| **v).count() as f64;
            while self.update_credit >= 1.0 {
                self.update_credit -= 1.0;
                let l = self.update()?;
                sums.critic += l.critic;
                sums.actor += l.actor;
                sums.alpha += l.alpha;
                sums.entropy += l.entropy;
                sums.q += l.q;
                done_updates += 1;
            }
        }
        let k = done_updates.max(1) as f64;
        Ok(Metrics {
            iteration: self.updates,
            env_steps: self.env_steps,
            episodes,
            success_rate: if episodes > 0 {
                successes as f64 / episodes as f64
            } else {
                f64::NAN
            },
            mean_return: if episodes > 0 {
                ret_sum / episodes as f64
            } else {
                f64::NAN
            },
            extra: vec![
                ("updates", self.updates as f64),
                ("critic_loss", sums.critic / k),
                ("actor_loss", sums.actor / k),
                ("alpha", self.alpha()?),
                ("entropy", sums.entropy / k),
                ("q", sums.q / k),
            ],
        })
    }

    /// Writes `policy.safetensors` (every network, targets and α included, so training
    /// can resume) and `checkpoint.toml` into `dir`.
    ///
    /// # Errors
    ///
    /// File-system or tensor errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let meta = SacCheckpointMeta {
            sac: self.config.clone(),
            observation_dim: self.obs_dim,
            image: self.layout.meta(),
            action_low: self.actor.low.clone(),
            action_high: self.actor.high.clone(),
            updates: self.updates,
            env_steps: self.env_steps,
            env: self.env_meta.clone(),
        };
        write_checkpoint(dir, &self.varmap, &meta)
    }

    /// Continues from a checkpoint written by [`SacTrainer::save`] with the same
    /// networks: weights, targets, α and counters. The replay buffer and Adam's
    /// moments are not saved: the buffer refills (with the policy, not at random) and
    /// the moments restart from zero.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, corrupt or mismatched checkpoint.
    pub fn resume(&mut self, dir: &Path) -> Result<SacCheckpointMeta> {
        let meta = read_sac_meta(dir)?;
        let fail = |reason: String| checkpoint_error(dir, reason);
        if meta.observation_dim != self.obs_dim
            || meta.image != self.layout.meta()
            || meta.action_low != self.actor.low
            || meta.action_high != self.actor.high
        {
            return Err(fail(
                "its observation width, image or action bounds differ from the environment's"
                    .into(),
            ));
        }
        let (ad, layout) = (self.actor.action_dim, self.layout);
        if critic_config(&meta.sac, layout.feature_dim(&meta.sac), ad)
            != critic_config(&self.config, layout.feature_dim(&self.config), ad)
            || layout.cnn(&meta.sac) != layout.cnn(&self.config)
        {
            return Err(fail("its networks differ from this trainer's".into()));
        }
        load_weights(dir, &mut self.varmap)?;
        self.updates = meta.updates;
        self.env_steps = meta.env_steps;
        // Learning already started: refill the buffer with the policy.
        self.collected = self.config.learning_starts;
        Ok(meta)
    }

    /// The current policy, detached from training (for evaluation).
    ///
    /// # Errors
    ///
    /// Tensor errors.
    pub fn policy(&self) -> Result<SacPolicy> {
        let (varmap, vb) = new_store();
        let (actor, enc) = policy_networks(
            &self.config,
            self.layout,
            (&self.actor.low, &self.actor.high),
            &vb,
        )?;
        for prefix in ["actor.", "qenc."] {
            let src = vars_with_prefix(&self.varmap, prefix)?;
            for (name, var) in vars_with_prefix(&varmap, prefix)? {
                if let Some((_, s)) = src.iter().find(|(n, _)| *n == name) {
                    var.set(&s.as_tensor().copy()?)?;
                }
            }
        }
        Ok(SacPolicy {
            actor,
            enc,
            layout: self.layout,
            _varmap: varmap,
        })
    }
}

/// What acting needs: the actor and, for image observations, the critics' encoder.
fn policy_networks(
    config: &SacConfig,
    layout: ObsLayout,
    (low, high): (&[f32], &[f32]),
    vb: &VarBuilder<'_>,
) -> Result<(Actor, Option<CnnEncoder>)> {
    let actor = Actor::new(
        config,
        layout.feature_dim(config),
        low,
        high,
        &vb.pp("actor"),
    )?;
    let enc = layout
        .cnn(config)
        .map(|c| CnnEncoder::new(&c, &vb.pp("qenc")))
        .transpose()?;
    Ok((actor, enc))
}

fn read_sac_meta(dir: &Path) -> Result<SacCheckpointMeta> {
    let fail = |reason: String| checkpoint_error(dir, reason);
    let meta: SacCheckpointMeta = read_checkpoint_meta(dir)?;
    meta.sac.validate().map_err(|e| fail(e.to_string()))?;
    if meta.action_low.len() != meta.action_high.len()
        || meta.action_low.is_empty()
        || meta.observation_dim == 0
    {
        return Err(fail(
            "empty or mismatched action bounds / observation width".into(),
        ));
    }
    Ok(meta)
}

/// A trained SAC policy: deterministic mode acts with tanh of the mean, stochastic
/// mode samples the squashed Gaussian; both scaled to the action bounds.
pub struct SacPolicy {
    actor: Actor,
    enc: Option<CnnEncoder>,
    layout: ObsLayout,
    _varmap: VarMap,
}

impl std::fmt::Debug for SacPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SacPolicy")
            .field("actor", &self.actor.net)
            .finish_non_exhaustive()
    }
}

impl SacPolicy {
    /// Loads a checkpoint directory written by [`SacTrainer::save`] (only the actor's
    /// weights are read).
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, unreadable, corrupt or mismatched file.
    pub fn load(dir: &Path) -> Result<(Self, SacCheckpointMeta)> {
        let meta = read_sac_meta(dir)?;
        let fail = |reason: String| checkpoint_error(dir, reason);
        let (mut varmap, vb) = new_store();
        let layout = ObsLayout::from_meta(meta.observation_dim, &meta.image)
            .map_err(|e| fail(e.to_string()))?;
        let bounds = (meta.action_low.as_slice(), meta.action_high.as_slice());
        let (actor, enc) =
            policy_networks(&meta.sac, layout, bounds, &vb).map_err(|e| fail(e.to_string()))?;
        load_weights(dir, &mut varmap)?;
        Ok((
            Self {
                actor,
                enc,
                layout,
                _varmap: varmap,
            },
            meta,
        ))
    }
}

impl Policy for SacPolicy {
    fn observation_dim(&self) -> usize {
        self.layout.obs_dim
    }
    fn action_dim(&self) -> usize {
        self.actor.action_dim
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn rand::RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let x = self.layout.input(self.enc.as_ref(), observations)?;
        let (mu, log_std) = self.actor.dist(&x)?;
        let mut a = to_array(&mu)?;
        if mode == ActMode::Stochastic {
            let s = to_array(&log_std)?;
            for (v, l) in a.iter_mut().zip(&s) {
                *v += l.exp() * standard_normal(rng) as f32;
            }
        }
        a.mapv_inplace(f32::tanh);
        self.actor.scale(&mut a);
        Ok(a)
    }
}

impl Trainer for SacTrainer {
    fn algorithm(&self) -> &'static str {
        "sac"
    }
    fn iterate(&mut self) -> Result<Metrics> {
        self.step()
    }
    fn env_steps(&self) -> u64 {
        self.env_steps
    }
    fn save(&self, dir: &Path) -> Result<()> {
        SacTrainer::save(self, dir)
    }
    fn resume(&mut self, dir: &Path) -> Result<()> {
        SacTrainer::resume(self, dir).map(|_| ())
    }
    fn current_policy(&self) -> Result<Box<dyn Policy>> {
        Ok(Box::new(self.policy()?))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use candle_core::{DType, Device};

    use super::*;
    use crate::gradients::testing::check_gradients;

    fn tiny(distributional: bool) -> (VarMap, Actor, [Mlp; 2], Tensor, Tensor, Tensor) {
        let config = SacConfig {
            hidden: vec![5],
            atoms: 5,
            v_min: -2.0,
            v_max: 2.0,
            distributional,
            ..SacConfig::default()
        };
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &Device::Cpu);
        let actor = Actor::new(&config, 3, &[-1.0, -1.0], &[1.0, 1.0], &vb.pp("actor")).unwrap();
        let cc = critic_config(&config, 3, 2);
        let q = [
            Mlp::new(&cc, &vb.pp("q1")).unwrap(),
            Mlp::new(&cc, &vb.pp("q2")).unwrap(),
        ];
        init_seeded(&varmap, 3, |_| 1.5).unwrap();
        let x = Tensor::new(
            &[[0.3f64, -0.7, 0.2], [1.1, 0.4, -0.5], [-0.2, 0.0, 0.9]],
            &Device::Cpu,
        )
        .unwrap();
        let eps = Tensor::new(&[[0.5f64, -1.2], [0.1, 0.8], [-0.3, 0.2]], &Device::Cpu).unwrap();
        let support = Tensor::new(&[-2.0f64, -1.0, 0.0, 1.0, 2.0], &Device::Cpu).unwrap();
        (varmap, actor, q, x, eps, support)
    }

    #[test]
    fn actor_loss_gradients_match_finite_differences() {
        for distributional in [true, false] {
            let (varmap, actor, q, x, eps, support) = tiny(distributional);
            let s = distributional.then_some(&support);
            check_gradients(&varmap, &["actor."], &|| {
                actor_loss(&actor, &q, s, &x, &eps, 0.2).unwrap().0
            });
        }
    }

    #[test]
    fn c51_critic_loss_gradients_match_finite_differences() {
        let (varmap, _actor, q, x, _eps, _support) = tiny(true);
        let a = Tensor::new(&[[0.2f64, -0.4], [0.9, 0.1], [-0.6, 0.5]], &Device::Cpu).unwrap();
        let target = Tensor::new(
            &[
                [0.1f64, 0.2, 0.4, 0.2, 0.1],
                [0.0, 0.0, 0.5, 0.5, 0.0],
                [1.0, 0.0, 0.0, 0.0, 0.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let xa = Tensor::cat(&[&x, &a], 1).unwrap();
        check_gradients(&varmap, &["q1.", "q2."], &|| {
            (c51_cross_entropy(&q[0].forward(&xa).unwrap(), &target).unwrap()
                + c51_cross_entropy(&q[1].forward(&xa).unwrap(), &target).unwrap())
            .unwrap()
        });
    }

    #[test]
    fn tanh_gaussian_log_density_matches_the_change_of_variables() {
        let (_varmap, actor, _q, x, eps, _support) = tiny(true);
        let (mu, log_std) = actor.dist(&x).unwrap();
        let (a, logp) = actor.sample(&x, &eps).unwrap();
        let rows = |t: &Tensor| -> Vec<Vec<f64>> { t.to_vec2().unwrap() };
        let (mu, log_std, a, e) = (rows(&mu), rows(&log_std), rows(&a), rows(&eps));
        let logp: Vec<f64> = logp.to_vec1().unwrap();
        for i in 0..3 {
            let mut expected = 0.0;
            for j in 0..2 {
                let s = log_std[i][j].exp();
                let u = mu[i][j] + s * e[i][j];
                assert!((a[i][j] - u.tanh()).abs() < 1e-12);
                let gauss = -0.5 * e[i][j] * e[i][j]
                    - log_std[i][j]
                    - 0.5 * (2.0 * std::f64::consts::PI).ln();
                expected += gauss - (1.0 - u.tanh().powi(2)).ln();
            }
            assert!(
                (logp[i] - expected).abs() < 1e-9,
                "{} vs {expected}",
                logp[i]
            );
        }
    }
}
