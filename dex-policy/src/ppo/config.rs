//! PPO settings ([`PpoConfig`]) and the learning-rate schedules.

use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid_setting};

use crate::nets::Activation;

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
    /// [`crate::Error::InvalidSetting`] naming the bad field.
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
                return Err(invalid_setting("PPO config", msg));
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
