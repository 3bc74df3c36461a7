//! Proximal Policy Optimization on a [`VecEnv`]: GAE, clipped surrogate, clipped value
//! loss, entropy bonus, running observation normalisation, reward scaling, minibatch
//! epochs with a KL early stop, gradient clipping and a learning-rate schedule.

use std::path::Path;

use candle_core::{D, Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use dex_sim::VecEnv;
use ndarray::{Array2, ArrayView2};
use rand::seq::SliceRandom;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::batch::{batch_obs, check_num_envs};
use crate::checkpoint::{checkpoint_error, load_weights, read_checkpoint_meta, write_checkpoint};
use crate::convert::{to_array, to_tensor};
use crate::error::{Error, Result, invalid};
use crate::gradients::{clip_gradients, vars_with_prefix};
use crate::nets::{Activation, Mlp, MlpConfig, init_seeded, new_store};
use crate::normalize::RunningMeanStd;
use crate::policy::{ActMode, Policy, check_observations};
use crate::random::standard_normal;

/// Learning-rate schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Linear decay to zero over `PpoConfig::max_updates`.
    Linear,
    /// KL-adaptive: after every update the rate is divided by 1.5 when the approximate
    /// KL of its last epoch exceeded `2 · target_kl` and multiplied by 1.5 when it fell
    /// under `target_kl / 2`, within [`ADAPTIVE_LR_BOUNDS`], starting from
    /// `learning_rate`. The epochs then all run: `target_kl` steers the rate instead of
    /// stopping the update. (The rule of rl_games's adaptive schedule, which the Isaac
    /// Gym hand tasks train with; rl_games applies it after every minibatch, which with
    /// many minibatches per update swings the rate over its whole range within one
    /// update, so here it runs once per update.)
    Adaptive,
}

/// Lowest and highest rate of [`LrSchedule::Adaptive`].
pub const ADAPTIVE_LR_BOUNDS: (f64, f64) = (1e-6, 1e-2);

/// PPO settings. Defaults are a small, fast recipe for state-based hand tasks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PpoConfig {
    /// Parallel environments.
    pub num_envs: usize,
    /// Control steps per environment per rollout.
    pub horizon: usize,
    /// Passes over each rollout.
    pub epochs: usize,
    /// Minibatches per pass.
    pub minibatches: usize,
    /// Discount.
    pub gamma: f64,
    /// GAE λ.
    pub lambda: f64,
    /// Surrogate clip ε.
    pub clip: f64,
    /// Value clip (around the rollout's values); 0 turns it off.
    pub value_clip: f64,
    /// Value-loss weight.
    pub value_coef: f64,
    /// Entropy-bonus weight.
    pub entropy_coef: f64,
    /// Adam learning rate.
    pub learning_rate: f64,
    /// Learning-rate schedule.
    pub lr_schedule: LrSchedule,
    /// Updates for the linear schedule (and an upper bound on training).
    pub max_updates: usize,
    /// Stop an update's epochs once the approximate KL exceeds `1.5 · target_kl`
    /// (0 turns it off); with [`LrSchedule::Adaptive`] the KL the rate is steered to.
    pub target_kl: f64,
    /// Global gradient-norm clip; 0 turns it off.
    pub max_grad_norm: f64,
    /// Actor and critic hidden widths.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// Initial log standard deviation of the Gaussian policy.
    pub init_log_std: f64,
    /// Normalise observations with running statistics.
    pub normalize_observations: bool,
    /// Divide rewards by the running standard deviation of the discounted return.
    pub scale_rewards: bool,
    /// Seed of initialisation, sampling and minibatch order.
    pub seed: u64,
}

impl Default for PpoConfig {
    fn default() -> Self {
        Self {
            num_envs: 32,
            horizon: 32,
            epochs: 5,
            minibatches: 4,
            gamma: 0.99,
            lambda: 0.95,
            clip: 0.2,
            value_clip: 0.2,
            value_coef: 1.0,
            entropy_coef: 0.0,
            learning_rate: 3e-4,
            lr_schedule: LrSchedule::Constant,
            max_updates: 100_000,
            target_kl: 0.02,
            max_grad_norm: 1.0,
            hidden: vec![256, 128, 64],
            activation: Activation::Elu,
            init_log_std: -0.5,
            normalize_observations: true,
            scale_rewards: true,
            seed: 0,
        }
    }
}

impl PpoConfig {
    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        let pos = |v: f64| v.is_finite() && v > 0.0;
        let nonneg = |v: f64| v.is_finite() && v >= 0.0;
        let checks = [
            (self.num_envs > 0, "num_envs must be positive"),
            (self.horizon > 0, "horizon must be positive"),
            (self.epochs > 0, "epochs must be positive"),
            (
                self.minibatches > 0 && self.minibatches <= self.num_envs * self.horizon,
                "minibatches must be in 1..=num_envs·horizon",
            ),
            (unit(self.gamma), "gamma must lie in [0, 1]"),
            (unit(self.lambda), "lambda must lie in [0, 1]"),
            (pos(self.clip), "clip must be positive"),
            (nonneg(self.value_clip), "value_clip must be ≥ 0"),
            (nonneg(self.value_coef), "value_coef must be ≥ 0"),
            (nonneg(self.entropy_coef), "entropy_coef must be ≥ 0"),
            (pos(self.learning_rate), "learning_rate must be positive"),
            (self.max_updates > 0, "max_updates must be positive"),
            (nonneg(self.target_kl), "target_kl must be ≥ 0"),
            (
                self.lr_schedule != LrSchedule::Adaptive || self.target_kl > 0.0,
                "the adaptive learning-rate schedule needs target_kl > 0",
            ),
            (nonneg(self.max_grad_norm), "max_grad_norm must be ≥ 0"),
            (self.init_log_std.is_finite(), "init_log_std must be finite"),
            (!self.hidden.contains(&0), "hidden widths must be positive"),
        ];
        for (ok, msg) in checks {
            if !ok {
                return Err(invalid(msg));
            }
        }
        Ok(())
    }
}

/// One step of [`LrSchedule::Adaptive`]: the rate after an update whose approximate KL
/// was `kl`.
pub fn adapt_learning_rate(lr: f64, kl: f64, target_kl: f64) -> f64 {
    let (lo, hi) = ADAPTIVE_LR_BOUNDS;
    if kl > 2.0 * target_kl {
        (lr / 1.5).max(lo)
    } else if kl < 0.5 * target_kl {
        (lr * 1.5).min(hi)
    } else {
        lr
    }
}

/// Generalised advantage estimation over a rollout stored time-major (`T × N`).
///
/// `values` has `T + 1` rows: row `t` is V(observation at t), row `T` the value of the
/// observation after the last step. `done[t][i]` ends episode `i` at step `t`
/// (terminated or truncated); `terminated[t][i]` says whether to bootstrap (truncated
/// episodes bootstrap from the next observation, which with next-step auto-reset is the
/// episode's final observation). `valid[t][i]` is false on auto-reset steps, which are
/// not transitions: their advantage is 0 and they cut the recursion.
///
/// Returns (advantages, returns), both `T × N`.
pub fn gae(
    rewards: &Array2<f32>,
    values: &Array2<f32>,
    done: &Array2<bool>,
    terminated: &Array2<bool>,
    valid: &Array2<bool>,
    gamma: f64,
    lambda: f64,
) -> (Array2<f32>, Array2<f32>) {
    let (t_len, n) = rewards.dim();
    let mut adv = Array2::<f32>::zeros((t_len, n));
    for i in 0..n {
        let mut running = 0.0f64;
        for t in (0..t_len).rev() {
            if !valid[(t, i)] {
                running = 0.0;
                continue;
            }
            let next_value = if terminated[(t, i)] {
                0.0
            } else {
                f64::from(values[(t + 1, i)])
            };
            let delta = f64::from(rewards[(t, i)]) + gamma * next_value - f64::from(values[(t, i)]);
            running = if done[(t, i)] {
                delta
            } else {
                delta + gamma * lambda * running
            };
            adv[(t, i)] = running as f32;
        }
    }
    let returns = &adv + &values.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..t_len));
    (adv, returns)
}

/// Gaussian log-density of `actions` under mean `mu` and log std `log_std`, summed over
/// action components: `B`.
fn log_prob(actions: &Tensor, mu: &Tensor, log_std: &Tensor) -> candle_core::Result<Tensor> {
    let std = log_std.exp()?;
    let z = actions.broadcast_sub(mu)?.broadcast_div(&std)?;
    let per =
        ((z.sqr()? * -0.5)?.broadcast_sub(log_std)? - 0.5 * (2.0 * std::f64::consts::PI).ln())?;
    per.sum(D::Minus1)
}

/// The actor–critic networks of PPO and the policy's log std.
pub struct ActorCritic {
    /// Mean of the action distribution.
    pub actor: Mlp,
    /// State value.
    pub critic: Mlp,
    /// Log standard deviation, one per action component (state independent).
    pub log_std: Tensor,
}

impl ActorCritic {
    /// Builds the networks under `vb` (`actor.*`, `critic.*`, `log_std`).
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(
        obs_dim: usize,
        action_dim: usize,
        config: &PpoConfig,
        vb: &VarBuilder<'_>,
    ) -> Result<Self> {
        let mlp = |output| MlpConfig {
            input: obs_dim,
            hidden: config.hidden.clone(),
            output,
            activation: config.activation,
            layer_norm: false,
        };
        Ok(Self {
            actor: Mlp::new(&mlp(action_dim), &vb.pp("actor"))?,
            critic: Mlp::new(&mlp(1), &vb.pp("critic"))?,
            log_std: vb.get_with_hints(
                action_dim,
                "log_std",
                candle_nn::Init::Const(config.init_log_std),
            )?,
        })
    }
}

/// One PPO minibatch, as tensors: observations `B × obs_dim` (normalised as the
/// networks see them), actions `B × action_dim`, and `B`-vectors of the rollout's
/// log-probabilities, normalised advantages, returns and values.
#[derive(Debug, Clone)]
pub struct PpoMinibatch {
    /// Observations.
    pub observations: Tensor,
    /// Actions taken.
    pub actions: Tensor,
    /// Log-probabilities of the actions under the rollout's policy.
    pub old_log_prob: Tensor,
    /// Advantages (normalised).
    pub advantages: Tensor,
    /// Return targets of the value function.
    pub returns: Tensor,
    /// Values at rollout time (for value clipping).
    pub old_values: Tensor,
}

/// The losses of one PPO minibatch (scalar tensors, still attached to the graph).
#[derive(Debug, Clone)]
pub struct PpoLosses {
    /// `policy + value_coef · value − entropy_coef · entropy`: what is minimised.
    pub total: Tensor,
    /// Clipped surrogate loss.
    pub policy: Tensor,
    /// (Clipped) value loss, halved squared error.
    pub value: Tensor,
    /// k3 estimate of KL(old ‖ new), detached.
    pub approx_kl: Tensor,
}

/// PPO's losses on one minibatch: clipped surrogate, value loss clipped around the
/// rollout's values (when `config.value_clip > 0`), entropy bonus of the Gaussian.
///
/// # Errors
///
/// Shape errors.
pub fn ppo_losses(
    net: &ActorCritic,
    config: &PpoConfig,
    mb: &PpoMinibatch,
) -> candle_core::Result<PpoLosses> {
    let ad = net.log_std.dim(0)?;
    let mu = net.actor.forward(&mb.observations)?;
    let lp = log_prob(&mb.actions, &mu, &net.log_std)?;
    let log_ratio = (&lp - &mb.old_log_prob)?;
    let ratio = log_ratio.exp()?;
    let s1 = (&ratio * &mb.advantages)?;
    let s2 = (ratio.clamp(1.0 - config.clip, 1.0 + config.clip)? * &mb.advantages)?;
    let policy = s1.minimum(&s2)?.mean_all()?.neg()?;
    let v = net.critic.forward(&mb.observations)?.squeeze(1)?;
    let vl_plain = (&v - &mb.returns)?.sqr()?;
    let value = if config.value_clip > 0.0 {
        let c = config.value_clip;
        let v_clip = (&mb.old_values + (&v - &mb.old_values)?.clamp(-c, c)?)?;
        let vl_clip = (v_clip - &mb.returns)?.sqr()?;
        (vl_plain.maximum(&vl_clip)?.mean_all()? * 0.5)?
    } else {
        (vl_plain.mean_all()? * 0.5)?
    };
    let entropy = (net.log_std.sum_all()?
        + 0.5 * (2.0 * std::f64::consts::PI * std::f64::consts::E).ln() * ad as f64)?;
    let total =
        ((&policy + (value.clone() * config.value_coef)?)? - (entropy * config.entropy_coef)?)?;
    let approx_kl = ((ratio.detach() - 1.0)? - log_ratio.detach())?.mean_all()?;
    Ok(PpoLosses {
        total,
        policy,
        value,
        approx_kl,
    })
}

/// One gradient step of PPO on a minibatch: losses, backward, global gradient-norm clip
/// (when `config.max_grad_norm > 0`), optimiser step. This is what [`PpoTrainer`] does
/// for each minibatch; it is public so the update can be measured on its own.
///
/// # Errors
///
/// Tensor errors; [`Error::Diverged`] for a non-finite loss.
pub fn ppo_gradient_step(
    net: &ActorCritic,
    vars: &[Var],
    optimizer: &mut AdamW,
    config: &PpoConfig,
    mb: &PpoMinibatch,
) -> Result<PpoLosses> {
    let losses = ppo_losses(net, config, mb)?;
    let lv: f32 = losses.total.to_scalar()?;
    if !lv.is_finite() {
        return Err(Error::Diverged(format!("PPO loss {lv}")));
    }
    let mut grads = losses.total.backward()?;
    if config.max_grad_norm > 0.0 {
        clip_gradients(vars, &mut grads, config.max_grad_norm)?;
    }
    optimizer.step(&grads)?;
    Ok(losses)
}

/// Statistics of one PPO update.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct UpdateStats {
    /// Update index (from 1).
    pub update: usize,
    /// Environment steps so far.
    pub env_steps: u64,
    /// Mean reward per valid step of this rollout (unscaled).
    pub mean_reward: f64,
    /// Episodes finished in this rollout.
    pub episodes: usize,
    /// Success fraction of those episodes (NaN when none finished).
    pub success_rate: f64,
    /// Mean undiscounted return of those episodes (NaN when none finished).
    pub mean_return: f64,
    /// Surrogate loss of the last minibatch.
    pub policy_loss: f64,
    /// Value loss of the last minibatch.
    pub value_loss: f64,
    /// Approximate KL of the last epoch.
    pub approx_kl: f64,
    /// Mean action standard deviation.
    pub action_std: f64,
    /// Learning rate used.
    pub learning_rate: f64,
}

/// What a checkpoint directory holds besides the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointMeta {
    /// PPO settings (networks included).
    pub ppo: PpoConfig,
    /// Observation width.
    pub observation_dim: usize,
    /// Action width.
    pub action_dim: usize,
    /// Observation statistics (identity when normalisation is off).
    pub observation_stats: RunningMeanStd,
    /// Updates done.
    pub updates: usize,
    /// Environment steps done.
    pub env_steps: u64,
    /// Free-form description of the environment, for the caller (task, hand, …).
    pub env: toml::Table,
    /// Running statistics of the discounted return that scale rewards (for resuming).
    #[serde(default)]
    pub return_stats: Option<RunningMeanStd>,
    /// The rate [`LrSchedule::Adaptive`] had reached (for resuming).
    #[serde(default)]
    pub adaptive_learning_rate: Option<f64>,
}

pub use crate::checkpoint::{META_FILE, WEIGHTS_FILE};

/// Trains a Gaussian MLP policy with PPO on a [`VecEnv`].
pub struct PpoTrainer {
    config: PpoConfig,
    venv: VecEnv,
    varmap: VarMap,
    /// Every variable, in name order (a fixed order keeps gradient clipping's sum
    /// reproducible: `VarMap::all_vars` follows a hash map's order).
    vars: Vec<Var>,
    net: ActorCritic,
    optimizer: AdamW,
    /// The current rate of [`LrSchedule::Adaptive`].
    adaptive_lr: f64,
    obs_stats: RunningMeanStd,
    return_stats: RunningMeanStd,
    running_return: Vec<f64>,
    episode_return: Vec<f64>,
    obs: Array2<f32>,
    rng: ChaCha8Rng,
    updates: usize,
    env_steps: u64,
    obs_dim: usize,
    action_dim: usize,
    env_meta: toml::Table,
}

impl std::fmt::Debug for PpoTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PpoTrainer")
            .field("config", &self.config)
            .field("updates", &self.updates)
            .finish_non_exhaustive()
    }
}

impl PpoTrainer {
    /// A trainer on `venv` (which must hold `config.num_envs` environments), reset with
    /// `config.seed`. `env_meta` is stored in checkpoints to describe the environment.
    ///
    /// # Errors
    ///
    /// A bad config, a mismatched `venv`, or an environment error.
    pub fn new(mut venv: VecEnv, config: PpoConfig, env_meta: toml::Table) -> Result<Self> {
        config.validate()?;
        check_num_envs(&venv, config.num_envs)?;
        let obs_dim = venv.observation_spec().state.dim();
        let action_dim = venv.action_space().dim();
        let (varmap, vb) = new_store();
        let net = ActorCritic::new(obs_dim, action_dim, &config, &vb)?;
        // Small initial actions: the actor's last layer starts 100× smaller.
        init_seeded(&varmap, config.seed, |name| {
            if name.starts_with("actor.out") {
                0.01
            } else {
                1.0
            }
        })?;
        let vars: Vec<Var> = vars_with_prefix(&varmap, "")?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let optimizer = AdamW::new(
            vars.clone(),
            ParamsAdamW {
                lr: config.learning_rate,
                weight_decay: 0.0,
                ..ParamsAdamW::default()
            },
        )?;
        let (obs, _) = venv.reset(config.seed)?;
        let obs = batch_obs(&obs, obs_dim)?;
        check_observations(obs.view(), obs_dim)?;
        let n = config.num_envs;
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0x5050_0000),
            adaptive_lr: config.learning_rate,
            config,
            venv,
            varmap,
            vars,
            net,
            optimizer,
            obs_stats: RunningMeanStd::new(obs_dim),
            return_stats: RunningMeanStd::new(1),
            running_return: vec![0.0; n],
            episode_return: vec![0.0; n],
            obs,
            updates: 0,
            env_steps: 0,
            obs_dim,
            action_dim,
            env_meta,
        })
    }

    /// Updates done.
    pub fn updates(&self) -> usize {
        self.updates
    }

    /// Environment steps done.
    pub fn env_steps(&self) -> u64 {
        self.env_steps
    }

    fn normalized(&self, obs: ArrayView2<'_, f32>) -> Array2<f32> {
        if self.config.normalize_observations {
            self.obs_stats.normalize(obs, 5.0)
        } else {
            obs.to_owned()
        }
    }

    /// One rollout of `horizon` steps in every environment, then the optimisation.
    ///
    /// # Errors
    ///
    /// An environment error, NaN observations, or divergence.
    pub fn update(&mut self) -> Result<UpdateStats> {
        let (t_len, n, od, ad) = (
            self.config.horizon,
            self.config.num_envs,
            self.obs_dim,
            self.action_dim,
        );
        let mut obs_buf = Array2::<f32>::zeros(((t_len + 1) * n, od));
        let mut act_buf = Array2::<f32>::zeros((t_len * n, ad));
        let mut logp_buf = Array2::<f32>::zeros((t_len, n));
        let mut values = Array2::<f32>::zeros((t_len + 1, n));
        let mut rewards = Array2::<f32>::zeros((t_len, n));
        let mut done = Array2::<bool>::from_elem((t_len, n), false);
        let mut terminated = Array2::<bool>::from_elem((t_len, n), false);
        let mut valid = Array2::<bool>::from_elem((t_len, n), true);
        let (mut episodes, mut successes, mut ret_sum, mut reward_sum, mut reward_n) =
            (0usize, 0usize, 0.0f64, 0.0f64, 0usize);
        let std: Vec<f32> = self.net.log_std.exp()?.to_vec1()?;
        for t in 0..=t_len {
            if self.config.normalize_observations && t < t_len {
                self.obs_stats.update(self.obs.view())?;
            }
            let xn = self.normalized(self.obs.view());
            obs_buf
                .slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(t * n..(t + 1) * n))
                .assign(&xn);
            let x = to_tensor(xn.view())?;
            let v: Vec<f32> = self.net.critic.forward(&x)?.flatten_all()?.to_vec1()?;
            values.row_mut(t).assign(&ndarray::ArrayView1::from(&v));
            if t == t_len {
                break;
            }
            let mu_t = self.net.actor.forward(&x)?;
            let mu = to_array(&mu_t)?;
            // Sample a ~ N(mu, std) from our own generator; clip only what the env sees.
            let mut a = Array2::<f32>::zeros((n, ad));
            for i in 0..n {
                for j in 0..ad {
                    let z = standard_normal(&mut self.rng);
                    a[(i, j)] = mu[(i, j)] + std[j] * z as f32;
                }
            }
            let lp: Vec<f32> =
                log_prob(&to_tensor(a.view())?, &mu_t, &self.net.log_std)?.to_vec1()?;
            let clipped: Vec<f32> = a.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            let step = self.venv.step(&clipped)?;
            act_buf
                .slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(t * n..(t + 1) * n))
                .assign(&a);
            for i in 0..n {
                logp_buf[(t, i)] = lp[i];
                let r = step.rewards[i];
                if step.reset[i] {
                    valid[(t, i)] = false;
                    continue;
                }
                self.env_steps += 1;
                reward_sum += r;
                reward_n += 1;
                self.episode_return[i] += r;
                self.running_return[i] = self.running_return[i] * self.config.gamma + r;
                let d = step.terminated[i] || step.truncated[i];
                done[(t, i)] = d;
                terminated[(t, i)] = step.terminated[i];
                rewards[(t, i)] = r as f32;
                if d {
                    episodes += 1;
                    successes += usize::from(step.infos[i].success);
                    ret_sum += self.episode_return[i];
                    self.episode_return[i] = 0.0;
                }
            }
            if self.config.scale_rewards {
                let valid_returns: Vec<f64> = (0..n)
                    .filter(|&i| valid[(t, i)])
                    .map(|i| self.running_return[i])
                    .collect();
                self.return_stats.update_scalar(&valid_returns);
                for i in 0..n {
                    if done[(t, i)] {
                        self.running_return[i] = 0.0;
                    }
                }
            }
            self.obs = batch_obs(&step.obs, od)?;
            check_observations(self.obs.view(), od)?;
        }
        if self.config.scale_rewards && self.return_stats.count > 1.0 {
            let s = (self.return_stats.var[0] + 1e-8).sqrt() as f32;
            rewards.mapv_inplace(|r| r / s);
        }
        let (adv, returns) = gae(
            &rewards,
            &values,
            &done,
            &terminated,
            &valid,
            self.config.gamma,
            self.config.lambda,
        );
        // Flatten the valid transitions.
        let idx: Vec<usize> = (0..t_len * n).filter(|k| valid[(k / n, k % n)]).collect();
        if idx.is_empty() {
            return Err(invalid(
                "a rollout with no transitions (episodes of length 0?)",
            ));
        }
        let advs: Vec<f32> = idx.iter().map(|k| adv[(k / n, k % n)]).collect();
        let mean = advs.iter().map(|v| f64::from(*v)).sum::<f64>() / advs.len() as f64;
        let sd = (advs
            .iter()
            .map(|v| (f64::from(*v) - mean).powi(2))
            .sum::<f64>()
            / advs.len() as f64)
            .sqrt();
        let adaptive = self.config.lr_schedule == LrSchedule::Adaptive;
        let lr = match self.config.lr_schedule {
            LrSchedule::Constant => self.config.learning_rate,
            LrSchedule::Linear => {
                self.config.learning_rate
                    * (1.0 - self.updates as f64 / self.config.max_updates as f64).max(0.0)
            }
            LrSchedule::Adaptive => self.adaptive_lr,
        };
        self.optimizer.set_learning_rate(lr);
        let mb = idx.len().div_ceil(self.config.minibatches);
        let mut order: Vec<usize> = (0..idx.len()).collect();
        let (mut last_pl, mut last_vl, mut kl) = (0.0, 0.0, 0.0);
        'epochs: for _ in 0..self.config.epochs {
            order.shuffle(&mut self.rng);
            let mut kl_sum = 0.0;
            let mut kl_n = 0usize;
            for chunk in order.chunks(mb) {
                let rows: Vec<usize> = chunk.iter().map(|&j| idx[j]).collect();
                let b = rows.len();
                let gather = |src: &Array2<f32>, width: usize| -> Result<Tensor> {
                    let mut v = Vec::with_capacity(b * width);
                    for &k in &rows {
                        v.extend(src.row(k).iter().copied());
                    }
                    Ok(Tensor::from_vec(v, (b, width), &Device::Cpu)?)
                };
                let x = gather(&obs_buf, od)?;
                let a = gather(&act_buf, ad)?;
                let col = |f: &dyn Fn(usize) -> f32| -> Result<Tensor> {
                    Ok(Tensor::from_vec(
                        rows.iter().map(|&k| f(k)).collect::<Vec<f32>>(),
                        b,
                        &Device::Cpu,
                    )?)
                };
                let old_lp = col(&|k| logp_buf[(k / n, k % n)])?;
                let adv_t =
                    col(&|k| ((f64::from(adv[(k / n, k % n)]) - mean) / (sd + 1e-8)) as f32)?;
                let ret_t = col(&|k| returns[(k / n, k % n)])?;
                let old_v = col(&|k| values[(k / n, k % n)])?;
                let mb = PpoMinibatch {
                    observations: x,
                    actions: a,
                    old_log_prob: old_lp,
                    advantages: adv_t,
                    returns: ret_t,
                    old_values: old_v,
                };
                let PpoLosses {
                    policy: policy_loss,
                    value: value_loss,
                    approx_kl: k3,
                    ..
                } = ppo_gradient_step(
                    &self.net,
                    &self.vars,
                    &mut self.optimizer,
                    &self.config,
                    &mb,
                )
                .map_err(|e| match e {
                    Error::Diverged(m) => {
                        Error::Diverged(format!("{m} at update {}", self.updates + 1))
                    }
                    other => other,
                })?;
                last_pl = f64::from(policy_loss.to_scalar::<f32>()?);
                last_vl = f64::from(value_loss.to_scalar::<f32>()?);
                kl_sum += f64::from(k3.to_scalar::<f32>()?);
                kl_n += 1;
            }
            kl = kl_sum / kl_n.max(1) as f64;
            if !adaptive && self.config.target_kl > 0.0 && kl > 1.5 * self.config.target_kl {
                break 'epochs;
            }
        }
        if adaptive {
            self.adaptive_lr = adapt_learning_rate(lr, kl, self.config.target_kl);
        }
        self.updates += 1;
        let action_std = f64::from(self.net.log_std.exp()?.mean_all()?.to_scalar::<f32>()?);
        Ok(UpdateStats {
            update: self.updates,
            env_steps: self.env_steps,
            mean_reward: reward_sum / reward_n.max(1) as f64,
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
            policy_loss: last_pl,
            value_loss: last_vl,
            approx_kl: kl,
            action_std,
            learning_rate: lr,
        })
    }

    /// Writes `policy.safetensors` and `checkpoint.toml` into `dir` (created if needed).
    ///
    /// # Errors
    ///
    /// File-system or tensor errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        let meta = CheckpointMeta {
            ppo: self.config.clone(),
            observation_dim: self.obs_dim,
            action_dim: self.action_dim,
            observation_stats: if self.config.normalize_observations {
                self.obs_stats.clone()
            } else {
                RunningMeanStd::new(self.obs_dim)
            },
            updates: self.updates,
            env_steps: self.env_steps,
            env: self.env_meta.clone(),
            return_stats: self.config.scale_rewards.then(|| self.return_stats.clone()),
            adaptive_learning_rate: (self.config.lr_schedule == LrSchedule::Adaptive)
                .then_some(self.adaptive_lr),
        };
        write_checkpoint(dir, &self.varmap, &meta)
    }

    /// Continues training from a checkpoint written by [`PpoTrainer::save`]: loads the
    /// weights, the observation and reward statistics and the counters. The checkpoint's
    /// networks must match this trainer's (widths, activation). Adam's moment estimates
    /// are not saved: they restart from zero, so the first updates after resuming take
    /// slightly different steps than an uninterrupted run would.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, corrupt or mismatched checkpoint.
    pub fn resume(&mut self, dir: &Path) -> Result<CheckpointMeta> {
        let meta = read_meta(dir)?;
        let fail = |reason: String| checkpoint_error(dir, reason);
        if meta.observation_dim != self.obs_dim || meta.action_dim != self.action_dim {
            return Err(fail(format!(
                "it maps {} → {}, the environment {} → {}",
                meta.observation_dim, meta.action_dim, self.obs_dim, self.action_dim
            )));
        }
        if meta.ppo.hidden != self.config.hidden || meta.ppo.activation != self.config.activation {
            return Err(fail(format!(
                "its networks are {:?} {:?}, this trainer's {:?} {:?}",
                meta.ppo.hidden, meta.ppo.activation, self.config.hidden, self.config.activation
            )));
        }
        load_weights(dir, &mut self.varmap)?;
        self.obs_stats = meta.observation_stats.clone();
        if let Some(r) = &meta.return_stats {
            if r.dim() != 1 {
                return Err(fail("return statistics of the wrong width".into()));
            }
            self.return_stats = r.clone();
        }
        if let Some(lr) = meta.adaptive_learning_rate {
            let (lo, hi) = ADAPTIVE_LR_BOUNDS;
            if !(lo..=hi).contains(&lr) {
                return Err(fail(format!(
                    "adaptive learning rate {lr} outside [{lo}, {hi}]"
                )));
            }
            self.adaptive_lr = lr;
        }
        self.updates = meta.updates;
        self.env_steps = meta.env_steps;
        Ok(meta)
    }

    /// The current policy, detached from training (for evaluation).
    ///
    /// # Errors
    ///
    /// Tensor errors.
    pub fn policy(&self) -> Result<GaussianPolicy> {
        let (varmap, vb) = new_store();
        let net = ActorCritic::new(self.obs_dim, self.action_dim, &self.config, &vb)?;
        {
            let src = self
                .varmap
                .data()
                .lock()
                .map_err(|_| invalid("lock poisoned"))?;
            let dst = varmap.data().lock().map_err(|_| invalid("lock poisoned"))?;
            for (name, var) in dst.iter() {
                if let Some(s) = src.get(name) {
                    var.set(&s.as_tensor().copy()?)?;
                }
            }
        }
        Ok(GaussianPolicy {
            actor: net.actor,
            log_std: net.log_std.detach(),
            stats: self
                .config
                .normalize_observations
                .then(|| self.obs_stats.clone()),
            _varmap: varmap,
        })
    }
}

impl crate::train::Trainer for PpoTrainer {
    fn algorithm(&self) -> &'static str {
        "ppo"
    }
    fn iterate(&mut self) -> Result<crate::train::Metrics> {
        let s = self.update()?;
        Ok(crate::train::Metrics {
            iteration: s.update,
            env_steps: s.env_steps,
            episodes: s.episodes,
            success_rate: s.success_rate,
            mean_return: s.mean_return,
            extra: vec![
                ("mean_reward", s.mean_reward),
                ("policy_loss", s.policy_loss),
                ("value_loss", s.value_loss),
                ("approx_kl", s.approx_kl),
                ("action_std", s.action_std),
                ("learning_rate", s.learning_rate),
            ],
        })
    }
    fn env_steps(&self) -> u64 {
        self.env_steps
    }
    fn save(&self, dir: &Path) -> Result<()> {
        PpoTrainer::save(self, dir)
    }
    fn resume(&mut self, dir: &Path) -> Result<()> {
        PpoTrainer::resume(self, dir).map(|_| ())
    }
    fn current_policy(&self) -> Result<Box<dyn Policy>> {
        Ok(Box::new(self.policy()?))
    }
}

/// Reads and checks `checkpoint.toml` in `dir`.
fn read_meta(dir: &Path) -> Result<CheckpointMeta> {
    let fail = |reason: String| checkpoint_error(dir, reason);
    let meta: CheckpointMeta = read_checkpoint_meta(dir)?;
    meta.ppo.validate().map_err(|e| fail(e.to_string()))?;
    if meta.observation_stats.dim() != meta.observation_dim {
        return Err(fail("observation statistics of the wrong width".into()));
    }
    Ok(meta)
}

/// A trained Gaussian MLP policy (mean = actor output, fixed log std), with its
/// observation normalisation: what PPO produces and checkpoints hold.
pub struct GaussianPolicy {
    actor: Mlp,
    log_std: Tensor,
    stats: Option<RunningMeanStd>,
    _varmap: VarMap,
}

impl std::fmt::Debug for GaussianPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaussianPolicy")
            .field("actor", &self.actor)
            .finish_non_exhaustive()
    }
}

impl GaussianPolicy {
    /// Loads a checkpoint directory written by [`PpoTrainer::save`]; returns the policy
    /// and the metadata.
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, unreadable, corrupt or mismatched file.
    pub fn load(dir: &Path) -> Result<(Self, CheckpointMeta)> {
        let fail = |reason: String| checkpoint_error(dir, reason);
        let meta = read_meta(dir)?;
        let (mut varmap, vb) = new_store();
        let net = ActorCritic::new(meta.observation_dim, meta.action_dim, &meta.ppo, &vb)
            .map_err(|e| fail(e.to_string()))?;
        load_weights(dir, &mut varmap)?;
        let policy = Self {
            actor: net.actor,
            log_std: net.log_std.detach(),
            stats: meta
                .ppo
                .normalize_observations
                .then(|| meta.observation_stats.clone()),
            _varmap: varmap,
        };
        Ok((policy, meta))
    }
}

impl Policy for GaussianPolicy {
    fn observation_dim(&self) -> usize {
        self.actor.config().input
    }
    fn action_dim(&self) -> usize {
        self.actor.config().output
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        mode: ActMode,
        rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let x = match &self.stats {
            Some(s) => s.normalize(observations, 5.0),
            None => observations.to_owned(),
        };
        let mut mu = to_array(&self.actor.forward(&to_tensor(x.view())?)?)?;
        if mode == ActMode::Stochastic {
            let std: Vec<f32> = self.log_std.exp()?.to_vec1()?;
            for mut row in mu.rows_mut() {
                for (v, s) in row.iter_mut().zip(&std) {
                    *v += s * standard_normal(rng) as f32;
                }
            }
        }
        Ok(mu)
    }
}
