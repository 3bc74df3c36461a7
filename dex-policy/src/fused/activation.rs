//! [`Activation`]: the hidden-layer activations the fused kernels know.

use serde::{Deserialize, Serialize};

/// Hidden-layer activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// ELU (α = 1), as rl_games-style PPO uses.
    #[default]
    Elu,
    /// ReLU.
    Relu,
    /// tanh.
    Tanh,
}
