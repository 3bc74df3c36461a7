//! Training settings and the loop the learned models share.

use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW, VarMap};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::dataset::{Batch, Dataset};
use crate::error::{Error, Result};

/// How a learned model is fitted. The paper gives none of these (DexNDM App. C: only
/// batch 64 for its sim-to-sim runs and a 9:1 train/eval split with the best eval
/// checkpoint kept); they are dex's choices.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    /// Samples per gradient step.
    pub batch_size: usize,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Passes over the training samples (the budget unless `max_steps` or `minutes`
    /// ends it first).
    pub epochs: f64,
    /// Most gradient steps (0: no limit but `epochs`).
    pub max_steps: usize,
    /// Wall-clock budget in minutes (0: none).
    pub minutes: f64,
    /// Gradient steps between held-out evaluations (and [`FitEvent`]s).
    pub eval_every: usize,
    /// Most held-out samples scored per evaluation (a fixed random subset).
    pub eval_samples: usize,
    /// Seed of initialisation (first fit) and batch order.
    pub seed: u64,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            batch_size: 256,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            epochs: 10.0,
            max_steps: 0,
            minutes: 0.0,
            eval_every: 250,
            eval_samples: 20_000,
            seed: 0,
        }
    }
}

impl FitConfig {
    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a zero batch or evaluation interval, a rate that is
    /// not positive, or a negative budget.
    pub fn validate(&self) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidSetting {
                what: "fit config",
                reason,
            })
        };
        if self.batch_size == 0 || self.eval_every == 0 || self.eval_samples == 0 {
            return bad("batch_size, eval_every and eval_samples must be at least 1".into());
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return bad(format!(
                "learning_rate must be positive, got {}",
                self.learning_rate
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return bad(format!(
                "weight_decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        if !(self.epochs.is_finite()
            && self.epochs >= 0.0
            && self.minutes.is_finite()
            && self.minutes >= 0.0)
        {
            return bad(format!(
                "epochs and minutes must be ≥ 0, got {} and {}",
                self.epochs, self.minutes
            ));
        }
        Ok(())
    }
}

/// Progress of a fit, at every held-out evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct FitEvent {
    /// Gradient steps so far.
    pub step: usize,
    /// Passes over the training samples so far.
    pub epoch: f64,
    /// Mean training loss since the last event (normalised units).
    pub train_loss: f64,
    /// One-step RMSE on the held-out subset (rad); `None` without held-out data.
    pub valid_rmse_rad: Option<f64>,
}

/// What a fit did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitReport {
    /// Gradient steps taken (0 for the closed-form fits).
    pub steps: usize,
    /// Passes over the training samples.
    pub epochs: f64,
    /// Training samples.
    pub samples: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Training samples processed per second.
    pub samples_per_s: f64,
    /// The last training loss (normalised units; for the closed-form fits the mean
    /// squared error in rad²).
    pub train_loss: f64,
    /// Held-out RMSE of the kept parameters (rad), when held-out data was given.
    pub valid_rmse_rad: Option<f64>,
    /// The step whose parameters were kept (the best held-out score).
    pub best_step: usize,
}

/// What the training loop minimises and scores.
pub(crate) struct Objective<'a> {
    /// The training loss of a batch (a scalar tensor on the variables).
    pub loss: &'a dyn Fn(&Batch) -> Result<Tensor>,
    /// The one-step RMSE (rad) of a batch.
    pub rmse: &'a dyn Fn(&Batch) -> Result<f64>,
}

/// The training loop of the learned models: AdamW on the objective's loss over
/// shuffled samples of history `window`, scoring `valid` every `config.eval_every`
/// steps with its RMSE and keeping the best parameters.
pub(crate) fn train_loop(
    varmap: &VarMap,
    (train, valid): (&Dataset, &Dataset),
    window: usize,
    config: &FitConfig,
    objective: &Objective<'_>,
    on_event: &mut dyn FnMut(&FitEvent),
) -> Result<FitReport> {
    let Objective { loss, rmse } = objective;
    config.validate()?;
    let mut index = train.sample_index(window);
    if index.is_empty() {
        return Err(Error::InvalidSetting {
            what: "training data",
            reason: format!("no segment is longer than the {window}-step history"),
        });
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ 0x006e_646d_5f66_6974);
    let mut held = valid.sample_index(window);
    held.shuffle(&mut rng);
    held.truncate(config.eval_samples);
    let held = if held.is_empty() {
        None
    } else {
        Some(valid.batch(window, &held)?)
    };
    let vars = varmap.all_vars();
    let mut opt = AdamW::new(
        vars.clone(),
        ParamsAdamW {
            lr: config.learning_rate,
            weight_decay: config.weight_decay,
            ..ParamsAdamW::default()
        },
    )?;
    let per_epoch = index.len().div_ceil(config.batch_size);
    let mut steps_budget = (config.epochs * per_epoch as f64).ceil() as usize;
    if config.max_steps > 0 {
        steps_budget = steps_budget.min(config.max_steps);
    }
    let start = Instant::now();
    let deadline =
        (config.minutes > 0.0).then(|| std::time::Duration::from_secs_f64(config.minutes * 60.0));
    let (mut step, mut cursor, mut seen) = (0usize, index.len(), 0usize);
    let (mut window_loss, mut window_n, mut last_loss) = (0.0f64, 0usize, f64::NAN);
    let mut best: Option<(f64, usize, Vec<Tensor>)> = None;
    let n_samples = index.len();
    let mut evaluate = |step: usize,
                        epoch: f64,
                        window_loss: f64,
                        best: &mut Option<(f64, usize, Vec<Tensor>)>|
     -> Result<()> {
        let valid_rmse = match &held {
            Some(b) => {
                let r = rmse(b)?;
                if best.as_ref().is_none_or(|(v, _, _)| r < *v) {
                    *best = Some((r, step, snapshot(&vars)?));
                }
                Some(r)
            }
            None => None,
        };
        on_event(&FitEvent {
            step,
            epoch,
            train_loss: window_loss,
            valid_rmse_rad: valid_rmse,
        });
        Ok(())
    };
    evaluate(0, 0.0, f64::NAN, &mut best)?;
    while step < steps_budget && deadline.is_none_or(|d| start.elapsed() < d) {
        if cursor + config.batch_size > index.len() {
            index.shuffle(&mut rng);
            cursor = 0;
        }
        let end = (cursor + config.batch_size).min(index.len());
        let batch = train.batch(window, &index[cursor..end])?;
        cursor = end;
        seen += batch.len;
        let l = loss(&batch)?;
        let value = f64::from(l.to_scalar::<f32>()?);
        if !value.is_finite() {
            return Err(Error::Policy(dex_policy::Error::Diverged(format!(
                "dynamics loss {value} at step {step}"
            ))));
        }
        opt.backward_step(&l)?;
        step += 1;
        window_loss += value;
        window_n += 1;
        last_loss = value;
        if step % config.eval_every == 0 {
            let epoch = seen as f64 / n_samples as f64;
            evaluate(step, epoch, window_loss / window_n as f64, &mut best)?;
            window_loss = 0.0;
            window_n = 0;
        }
    }
    if window_n > 0 {
        let epoch = seen as f64 / n_samples as f64;
        evaluate(step, epoch, window_loss / window_n as f64, &mut best)?;
    }
    let seconds = start.elapsed().as_secs_f64();
    let (valid_rmse_rad, best_step) = match best {
        Some((r, s, values)) => {
            for (v, t) in vars.iter().zip(values) {
                v.set(&t)?;
            }
            (Some(r), s)
        }
        None => (None, step),
    };
    Ok(FitReport {
        steps: step,
        epochs: seen as f64 / n_samples as f64,
        samples: n_samples,
        seconds,
        samples_per_s: seen as f64 / seconds.max(1e-9),
        train_loss: last_loss,
        valid_rmse_rad,
        best_step,
    })
}

fn snapshot(vars: &[Var]) -> Result<Vec<Tensor>> {
    Ok(vars
        .iter()
        .map(|v| v.as_tensor().copy())
        .collect::<candle_core::Result<_>>()?)
}
