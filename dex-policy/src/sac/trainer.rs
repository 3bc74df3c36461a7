//! [`SacTrainer`]: collecting transitions and updating the actor, the critics and the temperature.

use std::path::Path;

use candle_core::{D, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use dex_sim::VecEnv;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::batch::{batch_obs, check_num_envs};
use crate::checkpoint::{checkpoint_error, load_weights, write_checkpoint};
use crate::convert::{to_array, to_tensor};
use crate::encoders::CnnEncoder;
use crate::error::{Error, Result, invalid};
use crate::gradients::{clip_gradients, vars_with_prefix};
use crate::nets::{Mlp, frozen_builder, init_seeded, new_store};
use crate::policy::{Policy, check_observations};
use crate::random::{normal_tensor, standard_normal};
use crate::train::{Metrics, Trainer};

use super::c51::*;
use super::checkpoint_meta::*;
use super::config::*;
use super::networks::*;
use super::policy::*;
use super::replay::*;

/// Trains a tanh-Gaussian policy with SAC on a [`VecEnv`] of state observations, or of
/// state and image observations (see the [module docs](crate::sac)).
pub struct SacTrainer {
    pub(super) config: SacConfig,
    pub(super) venv: VecEnv,
    pub(super) varmap: VarMap,
    pub(super) actor: Actor,
    pub(super) q: [Mlp; 2],
    pub(super) q_target: [Mlp; 2],
    /// The critics' image encoder and its target copy (image observations only).
    pub(super) qenc: Option<CnnEncoder>,
    pub(super) qenc_target: Option<CnnEncoder>,
    pub(super) layout: ObsLayout,
    pub(super) log_alpha: Var,
    pub(super) actor_opt: AdamW,
    pub(super) critic_opt: AdamW,
    pub(super) alpha_opt: AdamW,
    pub(super) critic_vars: Vec<Var>,
    pub(super) actor_vars: Vec<Var>,
    pub(super) target_pairs: Vec<(Var, Var)>,
    pub(super) buffer: ReplayBuffer,
    pub(super) support: Tensor,
    pub(super) support_vec: Vec<f32>,
    pub(super) obs: Array2<f32>,
    pub(super) rng: ChaCha8Rng,
    pub(super) update_credit: f64,
    pub(super) updates: usize,
    pub(super) env_steps: u64,
    pub(super) collected: usize,
    pub(super) episode_return: Vec<f64>,
    pub(super) obs_dim: usize,
    pub(super) env_meta: toml::Table,
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

    pub(super) fn alpha(&self) -> Result<f64> {
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
    pub(super) fn explore(&mut self) -> Result<Array2<f32>> {
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
