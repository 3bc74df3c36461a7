//! DexGen's inverse dynamics model: a residual MLP from (state, keypoint motion) to a
//! Gaussian over the joint-target change.
//!
//! The paper (§III-C, Fig. 4) gives "a simple residual MLP" with a normal output trained
//! by regression, and no sizes. dex's choices: the input is the diffusion model's whole
//! condition (4-step history and mode) concatenated with the whole motion (both future
//! steps); an input layer to `hidden`, `blocks` residual blocks `h + W₂·ELU(W₁·ELU(h))`,
//! and an output layer giving the mean of the change of the targets (new targets −
//! targets in force), in normalised units; the standard deviation is one learnt value per
//! joint, independent of the input. The loss is the mean squared error of the mean (the
//! paper's) plus the Gaussian negative log-likelihood of the log standard deviations with
//! the mean held fixed, so the spread is learnt without changing what the mean regresses
//! to. (A spread predicted by the trunk from the input was tried first: its likelihood's
//! gradients on the rare large errors of the data swamped the trunk, and the mean learnt
//! nothing: held-out MSE 0.97 of the variance, where a linear fit reaches 0.25.)

use candle_core::Tensor;
use candle_nn::{AdamW, Linear, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use dex_policy::convert::{to_array, to_tensor};
use dex_policy::fused;
use dex_policy::nets::{frozen_builder, init_seeded, new_store};
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, check_finite, check_len};

/// Sizes of an [`InverseDynamics`] model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IdmConfig {
    /// Width of the input: condition plus motion.
    pub input_dim: usize,
    /// Joints.
    pub output_dim: usize,
    /// Width of the residual blocks.
    pub hidden: usize,
    /// Residual blocks.
    pub blocks: usize,
}

impl Default for IdmConfig {
    /// Hidden 256, 3 blocks (the facts' CPU plan), for 242 + 48 inputs and 16 joints.
    fn default() -> Self {
        Self {
            input_dim: 290,
            output_dim: 16,
            hidden: 256,
            blocks: 3,
        }
    }
}

impl IdmConfig {
    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero size.
    pub fn validate(&self) -> Result<()> {
        if self.input_dim == 0 || self.output_dim == 0 || self.hidden == 0 {
            return Err(Error::InvalidSetting {
                what: "inverse dynamics sizes",
                reason: format!("every width must be positive: {self:?}"),
            });
        }
        Ok(())
    }
}

/// The residual MLP (see the module docs).
pub struct InverseDynamics {
    config: IdmConfig,
    input: Linear,
    blocks: Vec<(Linear, Linear)>,
    output: Linear,
    log_std: Tensor,
}

impl std::fmt::Debug for InverseDynamics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InverseDynamics")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl InverseDynamics {
    /// Builds the variables under `vb`.
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(config: &IdmConfig, vb: &VarBuilder<'_>) -> Result<Self> {
        config.validate()?;
        let h = config.hidden;
        Ok(Self {
            config: config.clone(),
            input: candle_nn::linear(config.input_dim, h, vb.pp("input"))?,
            blocks: (0..config.blocks)
                .map(|i| {
                    Ok((
                        candle_nn::linear(h, h, vb.pp(format!("block{i}.a")))?,
                        candle_nn::linear(h, h, vb.pp(format!("block{i}.b")))?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?,
            output: candle_nn::linear(h, config.output_dim, vb.pp("output"))?,
            log_std: vb.get_with_hints(
                config.output_dim,
                "log_std",
                candle_nn::Init::Const(0.0),
            )?,
        })
    }

    /// The sizes.
    pub fn config(&self) -> &IdmConfig {
        &self.config
    }

    /// Mean (`B × output_dim`) for inputs `B × input_dim`, and the log standard
    /// deviations (`output_dim`).
    ///
    /// # Errors
    ///
    /// Tensor errors (shapes).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let mut h = fused::linear(x, &self.input)?;
        for (a, b) in &self.blocks {
            let inner = fused::linear(&fused::elu(&h, 1.0)?, a)?;
            h = (&h + fused::linear(&fused::elu(&inner, 1.0)?, b)?)?;
        }
        let mean = fused::linear(&fused::elu(&h, 1.0)?, &self.output)?;
        Ok((mean, self.log_std.clone()))
    }

    /// The mean for a batch (inference).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] for the wrong width; tensor errors.
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        check_len(
            "inverse dynamics input width",
            self.config.input_dim,
            x.ncols(),
        )?;
        let (mean, _) = self.forward(&to_tensor(x)?)?;
        Ok(to_array(&mean)?)
    }
}

/// Trains an [`InverseDynamics`] model with AdamW.
pub struct IdmTrainer {
    varmap: VarMap,
    net: InverseDynamics,
    optimizer: AdamW,
    steps: usize,
}

impl std::fmt::Debug for IdmTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdmTrainer")
            .field("net", &self.net)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl IdmTrainer {
    /// A fresh, seeded network.
    ///
    /// # Errors
    ///
    /// A bad config or rate; tensor errors.
    pub fn new(config: &IdmConfig, learning_rate: f64, seed: u64) -> Result<Self> {
        if !(learning_rate.is_finite() && learning_rate > 0.0) {
            return Err(Error::InvalidSetting {
                what: "learning_rate",
                reason: format!("must be positive, got {learning_rate}"),
            });
        }
        let (varmap, vb) = new_store();
        let net = InverseDynamics::new(config, &vb)?;
        init_seeded(&varmap, seed, |_| 1.0)?;
        let optimizer = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: learning_rate,
                weight_decay: 1e-4,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            varmap,
            net,
            optimizer,
            steps: 0,
        })
    }

    /// The variables (for checkpoints).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// Steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Mean squared error of the mean on a batch, without a step.
    ///
    /// # Errors
    ///
    /// Shapes; tensor errors.
    pub fn mse(&self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<f64> {
        check_len("targets rows", x.nrows(), y.nrows())?;
        let (mean, _) = self.net.forward(&to_tensor(x)?)?;
        let mse = (mean - to_tensor(y)?)?.sqr()?.mean_all()?;
        Ok(f64::from(mse.to_scalar::<f32>()?))
    }

    /// One step on inputs `x` and target changes `y`; returns the mean squared error of
    /// the mean.
    ///
    /// # Errors
    ///
    /// Shapes, NaN, a diverged loss.
    pub fn step(&mut self, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>) -> Result<f64> {
        check_len("targets rows", x.nrows(), y.nrows())?;
        check_len("targets width", self.net.config.output_dim, y.ncols())?;
        check_finite("inverse dynamics inputs", x.iter())?;
        check_finite("inverse dynamics targets", y.iter())?;
        let (mean, log_std) = self.net.forward(&to_tensor(x)?)?;
        let y = to_tensor(y)?;
        let mse = (&mean - &y)?.sqr()?.mean_all()?;
        // Gaussian NLL of the spread with the mean held: ½(y − μ)²·e^{−2s} + s.
        let err2 = (mean.detach() - &y)?.sqr()?;
        let inv_var = (&log_std * -2.0)?.exp()?.unsqueeze(0)?;
        let nll = ((err2.broadcast_mul(&inv_var)? * 0.5)?.mean_all()? + log_std.mean_all()?)?;
        let loss = (&mse + nll)?;
        let value = f64::from(mse.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::InvalidSetting {
                what: "training",
                reason: format!("the inverse dynamics loss diverged at step {}", self.steps),
            });
        }
        self.optimizer.backward_step(&loss)?;
        self.steps += 1;
        Ok(value)
    }

    /// The trained network, detached.
    ///
    /// # Errors
    ///
    /// Tensor errors.
    pub fn model(&self) -> Result<InverseDynamics> {
        InverseDynamics::new(&self.net.config, &frozen_builder(&self.varmap)?)
    }
}
