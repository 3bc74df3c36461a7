//! SAC settings ([`SacConfig`]) and the bounds of the actor's log standard deviation.

use serde::{Deserialize, Serialize};

use crate::encoders::CnnConfig;
use crate::error::{Result, invalid_setting};
use crate::nets::Activation;

/// Bounds of the actor's log standard deviation (before the tanh squashing).
pub(super) const LOG_STD_MIN: f64 = -5.0;
pub(super) const LOG_STD_MAX: f64 = 2.0;

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
    /// [`crate::Error::InvalidSetting`] naming the bad field.
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
                return Err(invalid_setting("SAC config", msg));
            }
        }
        Ok(())
    }

    pub(super) fn support(&self) -> Vec<f32> {
        let dz = (self.v_max - self.v_min) / (self.atoms - 1) as f64;
        (0..self.atoms)
            .map(|j| (self.v_min + dz * j as f64) as f32)
            .collect()
    }
}
