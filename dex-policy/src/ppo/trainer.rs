//! [`PpoTrainer`]: rollouts on a `VecEnv` and the PPO update.

use std::path::Path;

use candle_core::{Device, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use dex_sim::VecEnv;
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::batch::{batch_obs, check_num_envs};
use crate::checkpoint::{checkpoint_error, load_weights, write_checkpoint};
use crate::convert::{to_array, to_tensor};
use crate::error::{Error, Result, invalid, poisoned};
use crate::gradients::vars_with_prefix;
use crate::nets::{init_seeded, new_store};
use crate::normalize::RunningMeanStd;
use crate::policy::{Policy, check_observations};
use crate::random::standard_normal;

use super::config::*;
use super::losses::*;
use super::policy::*;

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

/// Trains a Gaussian MLP policy with PPO on a [`VecEnv`].
pub struct PpoTrainer {
    pub(super) config: PpoConfig,
    pub(super) venv: VecEnv,
    pub(super) varmap: VarMap,
    /// Every variable, in name order (a fixed order keeps gradient clipping's sum
    /// reproducible: `VarMap::all_vars` follows a hash map's order).
    pub(super) vars: Vec<Var>,
    pub(super) net: ActorCritic,
    pub(super) optimizer: AdamW,
    /// The current rate of [`LrSchedule::Adaptive`].
    pub(super) adaptive_lr: f64,
    pub(super) obs_stats: RunningMeanStd,
    pub(super) return_stats: RunningMeanStd,
    pub(super) running_return: Vec<f64>,
    pub(super) episode_return: Vec<f64>,
    pub(super) obs: Array2<f32>,
    pub(super) rng: ChaCha8Rng,
    pub(super) updates: usize,
    pub(super) env_steps: u64,
    pub(super) obs_dim: usize,
    pub(super) action_dim: usize,
    pub(super) env_meta: toml::Table,
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

    pub(super) fn normalized(&self, obs: ArrayView2<'_, f32>) -> Array2<f32> {
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
            let src = self.varmap.data().lock().map_err(poisoned)?;
            let dst = varmap.data().lock().map_err(poisoned)?;
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
