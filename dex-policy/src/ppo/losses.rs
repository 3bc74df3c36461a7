//! Generalised advantage estimation, the actor–critic network and PPO's clipped losses and gradient step.

use candle_core::{D, Module, Tensor, Var};
use candle_nn::{AdamW, Optimizer, VarBuilder};

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::gradients::clip_gradients;
use crate::nets::{Mlp, MlpConfig};

use super::config::*;

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
pub(super) fn log_prob(
    actions: &Tensor,
    mu: &Tensor,
    log_std: &Tensor,
) -> candle_core::Result<Tensor> {
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
/// (when `config.max_grad_norm > 0`), optimiser step. This is what [`crate::PpoTrainer`] does
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
