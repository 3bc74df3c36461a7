//! Networks on candle-nn: an MLP with ELU / ReLU / tanh and optional LayerNorm, with
//! seeded initialisation (candle's own CPU initialisers cannot be seeded).

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Linear, VarBuilder, VarMap};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::error::{Result, invalid};

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

impl Activation {
    pub(crate) fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Self::Elu => crate::fused::elu(x, 1.0),
            Self::Relu => crate::fused::relu(x),
            Self::Tanh => x.tanh(),
        }
    }
}

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
            return Err(invalid(format!("MLP widths must be positive: {self:?}")));
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

/// Overwrites every variable of `varmap` from a seeded generator, in name order:
/// linear and convolution weights `U(±1/sqrt(fan_in))` (PyTorch's default bound) times
/// `gain(name)`, biases 0, norm scales (1-D weights) 1. Variables whose name ends in `log_std` are left alone.
///
/// # Errors
///
/// A tensor error.
pub fn init_seeded(varmap: &VarMap, seed: u64, gain: impl Fn(&str) -> f64) -> Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let data = varmap
        .data()
        .lock()
        .map_err(|_| invalid("variable store lock poisoned"))?;
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let dims = var.dims().to_vec();
        let n: usize = dims.iter().product();
        let values: Vec<f32> = if name.ends_with("log_std") {
            continue;
        } else if name.ends_with("weight") && dims.len() == 1 {
            // A norm's scale.
            vec![1.0; n]
        } else if name.ends_with("weight") && dims.len() >= 2 {
            // Linear `out × in`, convolution `out × in × k × k`: fan-in is the rest.
            let fan_in: usize = dims[1..].iter().product();
            let bound = gain(name) / (fan_in as f64).sqrt();
            (0..n)
                .map(|_| rng.random_range(-bound..=bound) as f32)
                .collect()
        } else {
            vec![0.0; n]
        };
        var.set(&Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?.to_dtype(var.dtype())?)?;
    }
    Ok(())
}

/// A fresh variable store and builder on the CPU, f32.
pub fn new_store() -> (VarMap, VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    (varmap, vb)
}

/// A builder over detached views of `varmap`'s variables: modules built from it compute
/// without recording a graph and get no gradients (candle has no `no_grad`), which is
/// faster for inference and keeps a network fixed inside another's loss. The views
/// share the variables' storage, so they see later in-place updates (optimiser steps,
/// `Var::set`); copy the tensors for a snapshot.
///
/// # Errors
///
/// A poisoned variable store.
pub fn frozen_builder(varmap: &VarMap) -> Result<VarBuilder<'static>> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| invalid("variable store lock poisoned"))?;
    let tensors: std::collections::HashMap<String, Tensor> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
}
