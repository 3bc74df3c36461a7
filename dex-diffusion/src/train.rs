//! DDPM training of a [`Denoiser`] (ε-prediction, mean squared error) and the trained
//! network as a [`NoisePredictor`] for the sampler.

use candle_core::{DType, Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarBuilder, VarMap};
use dex_policy::convert::{to_array, to_tensor};
use dex_policy::nets::{frozen_builder, init_seeded, new_store};
use ndarray::{Array2, ArrayView2};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::denoiser::{Denoiser, DenoiserConfig, timestep_embedding};
use crate::error::{Error, Result, check_finite, check_len};
use crate::sampler::{NoisePredictor, gaussian_noise};
use crate::schedule::NoiseSchedule;

/// Settings of DDPM training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// AdamW's learning rate (DexGen trains with AdamW; its rate is not given).
    pub learning_rate: f64,
    /// AdamW's weight decay.
    pub weight_decay: f64,
    /// Seed of the initial weights and of the steps and noise drawn.
    pub seed: u64,
    /// Decay of the exponential moving average of the weights kept beside the trained
    /// ones (`ema ← decay·ema + (1 − decay)·w` after every step); the predictor samples
    /// with the average. 0 turns it off (the predictor uses the trained weights).
    pub ema_decay: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            learning_rate: 1e-3,
            weight_decay: 1e-4,
            seed: 0,
            ema_decay: 0.995,
        }
    }
}

/// A detached copy of every variable of `varmap`, by name.
fn snapshot(varmap: &VarMap) -> Result<std::collections::HashMap<String, Tensor>> {
    let data = varmap.data().lock().map_err(|_| Error::InvalidSetting {
        what: "variable store",
        reason: "its lock was poisoned by a panic in another thread".into(),
    })?;
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().detach().copy()?)))
        .collect()
}

fn time_tensor(steps: &[f32], dim: usize) -> Result<Tensor> {
    Ok(Tensor::from_vec(
        timestep_embedding(steps, dim),
        (steps.len(), dim),
        &Device::Cpu,
    )?)
}

/// Trains a [`Denoiser`] by DDPM: for each clean motion of a batch a step `t` is drawn
/// uniformly and the noise ε ~ N(0, I); the network predicts ε from the noised motion,
/// `t` and the condition; the loss is the mean squared error (DexGen's "standard
/// diffusion model loss" with ε-prediction).
pub struct DiffusionTrainer {
    varmap: VarMap,
    /// The moving average: one tensor per variable, by name.
    ema: Option<(f64, std::collections::HashMap<String, Tensor>)>,
    net: Denoiser,
    optimizer: AdamW,
    schedule: NoiseSchedule,
    rng: ChaCha8Rng,
    steps: usize,
}

impl std::fmt::Debug for DiffusionTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiffusionTrainer")
            .field("net", &self.net)
            .field("steps", &self.steps)
            .finish_non_exhaustive()
    }
}

impl DiffusionTrainer {
    /// A fresh network of `config`'s sizes, seeded.
    ///
    /// # Errors
    ///
    /// A bad config or a tensor error.
    pub fn new(
        config: &DenoiserConfig,
        schedule: NoiseSchedule,
        train: &TrainConfig,
    ) -> Result<Self> {
        if !(train.ema_decay.is_finite() && (0.0..1.0).contains(&train.ema_decay)) {
            return Err(Error::InvalidSetting {
                what: "ema_decay",
                reason: format!("must lie in [0, 1), got {}", train.ema_decay),
            });
        }
        if !(train.learning_rate.is_finite() && train.learning_rate > 0.0) {
            return Err(Error::InvalidSetting {
                what: "learning_rate",
                reason: format!("must be positive, got {}", train.learning_rate),
            });
        }
        let (varmap, vb) = new_store();
        let net = Denoiser::new(config, &vb)?;
        init_seeded(&varmap, train.seed, |_| 1.0)?;
        let optimizer = AdamW::new(
            varmap.all_vars(),
            ParamsAdamW {
                lr: train.learning_rate,
                weight_decay: train.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        let ema = if train.ema_decay > 0.0 {
            Some((train.ema_decay, snapshot(&varmap)?))
        } else {
            None
        };
        Ok(Self {
            varmap,
            ema,
            net,
            optimizer,
            schedule,
            rng: ChaCha8Rng::seed_from_u64(train.seed ^ 0xD1FF),
            steps: 0,
        })
    }

    /// Gradient steps taken.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The network's variables (for checkpoints).
    pub fn varmap(&self) -> &VarMap {
        &self.varmap
    }

    /// The DDPM loss of a batch of clean motions `x0` (`B × motion_dim`) with their
    /// conditions (`B × condition_dim`), for steps `t` and noise `noise` given; returns
    /// the loss tensor (for gradients) and its value.
    ///
    /// # Errors
    ///
    /// Shape errors.
    pub fn loss(
        &self,
        x0: ArrayView2<'_, f32>,
        condition: ArrayView2<'_, f32>,
        t: &[usize],
        noise: ArrayView2<'_, f32>,
    ) -> Result<Tensor> {
        let rows = x0.nrows();
        check_len("condition rows", rows, condition.nrows())?;
        check_len("steps", rows, t.len())?;
        check_len("noise rows", rows, noise.nrows())?;
        check_len("noise width", x0.ncols(), noise.ncols())?;
        if let Some(&bad) = t.iter().find(|&&s| s >= self.schedule.steps()) {
            return Err(Error::InvalidSetting {
                what: "diffusion step",
                reason: format!(
                    "{bad} is past the schedule's {} steps",
                    self.schedule.steps()
                ),
            });
        }
        // q(xₜ | x₀) row by row, each row at its own step.
        let xt = Array2::from_shape_fn(x0.dim(), |(i, j)| {
            let a = self.schedule.alpha_bar(t[i]);
            a.sqrt() as f32 * x0[(i, j)] + (1.0 - a).sqrt() as f32 * noise[(i, j)]
        });
        let steps: Vec<f32> = t.iter().map(|&s| s as f32).collect();
        let code = self.net.encode_condition(&to_tensor(condition)?)?;
        let pred = self.net.forward(
            &to_tensor(xt.view())?,
            &time_tensor(&steps, self.net.config().time_dim)?,
            &code,
        )?;
        Ok((pred - to_tensor(noise)?)?.sqr()?.mean_all()?)
    }

    /// One gradient step on a batch of clean motions and their conditions, with steps
    /// and noise drawn from the trainer's generator. Returns the batch's loss.
    ///
    /// # Errors
    ///
    /// Shapes, NaN in the batch, a diverged loss.
    pub fn step(&mut self, x0: ArrayView2<'_, f32>, condition: ArrayView2<'_, f32>) -> Result<f64> {
        check_finite("motions", x0.iter())?;
        check_finite("conditions", condition.iter())?;
        let total = self.schedule.steps();
        let t: Vec<usize> = (0..x0.nrows())
            .map(|_| self.rng.random_range(0..total))
            .collect();
        let noise = gaussian_noise(x0.nrows(), x0.ncols(), &mut self.rng);
        let loss = self.loss(x0, condition, &t, noise.view())?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::InvalidSetting {
                what: "training",
                reason: format!("the loss diverged at step {}", self.steps),
            });
        }
        self.optimizer.backward_step(&loss)?;
        if let Some((decay, ema)) = &mut self.ema {
            let weights = snapshot(&self.varmap)?;
            for (name, w) in weights {
                if let Some(e) = ema.get_mut(&name) {
                    *e = ((&*e * *decay)? + (w * (1.0 - *decay))?)?;
                }
            }
        }
        self.steps += 1;
        Ok(value)
    }

    /// The moving average of the weights, by variable name, if kept.
    pub fn ema_weights(&self) -> Option<&std::collections::HashMap<String, Tensor>> {
        self.ema.as_ref().map(|(_, e)| e)
    }

    /// The weights to sample with: the moving average when kept, else the trained ones.
    ///
    /// # Errors
    ///
    /// A poisoned variable store.
    pub fn sampling_weights(&self) -> Result<std::collections::HashMap<String, Tensor>> {
        match &self.ema {
            Some((_, ema)) => Ok(ema.clone()),
            None => snapshot(&self.varmap),
        }
    }

    /// The current network, detached from training, as a [`NoisePredictor`]: with the
    /// moving average of the weights when [`TrainConfig::ema_decay`] is on.
    ///
    /// # Errors
    ///
    /// Tensor errors.
    pub fn predictor(&self) -> Result<DenoiserPredictor> {
        let vb = match &self.ema {
            Some((_, ema)) => VarBuilder::from_tensors(ema.clone(), DType::F32, &Device::Cpu),
            None => frozen_builder(&self.varmap)?,
        };
        let net = Denoiser::new(self.net.config(), &vb)?;
        Ok(DenoiserPredictor::new(net))
    }
}

/// A trained [`Denoiser`] behind the sampler's [`NoisePredictor`] interface. The
/// condition's code is computed once and reused while the same condition comes back
/// (every DDIM step of one control step), since only the time embedding changes.
#[derive(Debug)]
pub struct DenoiserPredictor {
    net: Denoiser,
    /// A copy of `net` with half-precision step weights that runs each DDIM step;
    /// `None`: `net` itself (f32).
    step_net: Option<Denoiser>,
    /// The last condition, its code's FiLM parts.
    cache: Option<(Array2<f32>, Vec<Tensor>)>,
    /// The timestep FiLM parts, by diffusion step.
    time_parts: std::collections::HashMap<usize, Vec<Tensor>>,
}

impl DenoiserPredictor {
    /// Wraps a network (built from detached weights for inference).
    pub fn new(net: Denoiser) -> Self {
        Self {
            net,
            step_net: None,
            cache: None,
            time_parts: std::collections::HashMap::new(),
        }
    }

    /// Runs the DDIM steps' layers with weights in `precision` (see
    /// [`crate::Precision`]); conditioning and FiLM projections stay in f32.
    ///
    /// # Errors
    ///
    /// Tensor errors (the conversion).
    pub fn set_precision(&mut self, precision: crate::denoiser::Precision) -> Result<()> {
        self.step_net = match precision {
            crate::denoiser::Precision::F32 => None,
            p => Some(self.net.with_step_precision(p)?),
        };
        Ok(())
    }

    /// The precision of the DDIM steps' weights.
    pub fn precision(&self) -> crate::denoiser::Precision {
        match &self.step_net {
            Some(_) => crate::denoiser::Precision::F16,
            None => crate::denoiser::Precision::F32,
        }
    }

    /// The network.
    pub fn net(&self) -> &Denoiser {
        &self.net
    }
}

impl NoisePredictor for DenoiserPredictor {
    /// The network's prediction, through [`Denoiser::forward_parts`]: the condition's
    /// FiLM parts are computed once while the same condition comes back (every DDIM step
    /// of a control step), the timestep's once per step index.
    fn predict_noise(
        &mut self,
        x: ArrayView2<'_, f32>,
        t: usize,
        condition: ArrayView2<'_, f32>,
    ) -> Result<Array2<f32>> {
        let cfg = self.net.config();
        check_len("motion width", cfg.motion_dim, x.ncols())?;
        check_len("condition width", cfg.condition_dim, condition.ncols())?;
        check_len("condition rows", x.nrows(), condition.nrows())?;
        let code_parts = match &self.cache {
            Some((c, parts)) if c.view() == condition => parts.clone(),
            _ => {
                let code = self.net.encode_condition(&to_tensor(condition)?)?;
                let parts = self.net.film_code_parts(&code)?;
                self.cache = Some((condition.to_owned(), parts.clone()));
                parts
            }
        };
        let time_parts = match self.time_parts.get(&t) {
            Some(parts) => parts.clone(),
            None => {
                let parts = self
                    .net
                    .film_time_parts(&time_tensor(&[t as f32], cfg.time_dim)?)?;
                self.time_parts.insert(t, parts.clone());
                parts
            }
        };
        let eps = self.step_net.as_ref().unwrap_or(&self.net).forward_parts(
            &to_tensor(x)?,
            &code_parts,
            &time_parts,
        )?;
        Ok(to_array(&eps)?)
    }
}
