//! Networks on candle-nn: an MLP with ELU / ReLU / tanh and optional LayerNorm, with
//! seeded initialisation (candle's own CPU initialisers cannot be seeded).

use candle_core::{Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid_setting};
pub use crate::fused::Activation;
pub use crate::vars::{frozen_builder, init_seeded, new_store};

/// Shape of an [`Mlp`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Input width.
    pub input: usize,
    /// Hidden widths.
    pub hidden: Vec<usize>,
    /// Output width.
    pub output: usize,
    /// Hidden activation.
    #[serde(default)]
    pub activation: Activation,
    /// LayerNorm after every hidden linear layer (before the activation), as Squint's
    /// critics use; [`crate::fused::layer_norm`] (candle's fused LayerNorm has no
    /// backward).
    #[serde(default)]
    pub layer_norm: bool,
}

impl MlpConfig {
    /// Checks the widths.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a zero width.
    pub fn validate(&self) -> Result<()> {
        if self.input == 0 || self.output == 0 || self.hidden.contains(&0) {
            return Err(invalid_setting(
                "MLP config",
                format!("widths must be positive: {self:?}"),
            ));
        }
        Ok(())
    }
}

struct Norm {
    gamma: Tensor,
    beta: Tensor,
}

/// A multi-layer perceptron.
pub struct Mlp {
    config: MlpConfig,
    hidden: Vec<(Linear, Option<Norm>)>,
    out: Linear,
}

impl std::fmt::Debug for Mlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mlp").field("config", &self.config).finish()
    }
}

impl Mlp {
    /// Builds the layers under `vb` (names `l0`, `l1`, …, `out`, and `n0`, … for norms).
    ///
    /// # Errors
    ///
    /// A bad config, or a tensor error (e.g. loading into the wrong shapes).
    pub fn new(config: &MlpConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let mut hidden = Vec::new();
        let mut width = config.input;
        for (i, &h) in config.hidden.iter().enumerate() {
            let lin = candle_nn::linear(width, h, vb.pp(format!("l{i}")))?;
            let norm = if config.layer_norm {
                let nb = vb.pp(format!("n{i}"));
                Some(Norm {
                    gamma: nb.get_with_hints(h, "weight", candle_nn::Init::Const(1.0))?,
                    beta: nb.get_with_hints(h, "bias", candle_nn::Init::Const(0.0))?,
                })
            } else {
                None
            };
            hidden.push((lin, norm));
            width = h;
        }
        let out = candle_nn::linear(width, config.output, vb.pp("out"))?;
        Ok(Self {
            config: config.clone(),
            hidden,
            out,
        })
    }

    /// The config.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut h = x.clone();
        let act = Some(self.config.activation);
        for (lin, norm) in &self.hidden {
            let norm = norm.as_ref().map(|n| (&n.gamma, &n.beta));
            h = crate::fused::hidden_layer(&h, lin, norm, act)?;
        }
        crate::fused::linear(&h, &self.out)
    }
}
