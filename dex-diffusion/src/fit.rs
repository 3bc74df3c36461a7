//! Training DexGen from a dataset on disk: the denoiser and the inverse dynamics model
//! side by side, streaming one chunk at a time so memory does not grow with the data.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use ndarray::{Array2, Axis, concatenate};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::{DataReader, Samples};
use crate::error::{Error, Result};
use crate::idm::IdmTrainer;
use crate::model::{DexGen, DexGenConfig, ModelFile, Normalizer};
use crate::sampler::gaussian_noise;
use crate::schedule::NoiseSchedule;
use crate::train::{DiffusionTrainer, TrainConfig};

/// Settings of [`fit`] (the `[train]` table of a `dex diffusion train` config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FitConfig {
    /// Samples per gradient step (both models).
    pub batch: usize,
    /// The denoiser's AdamW rate.
    pub learning_rate: f64,
    /// The inverse dynamics model's AdamW rate.
    pub idm_learning_rate: f64,
    /// Decay of the denoiser's weight average.
    pub ema_decay: f64,
    /// Steps between log events.
    pub log_every: usize,
    /// Most gradient steps (0: until the time budget).
    pub max_steps: usize,
    /// The model.
    pub model: DexGenConfig,
}

impl Default for FitConfig {
    fn default() -> Self {
        Self {
            batch: 256,
            learning_rate: 1e-3,
            idm_learning_rate: 1e-3,
            ema_decay: 0.995,
            log_every: 100,
            max_steps: 0,
            model: DexGenConfig::default(),
        }
    }
}

/// A log line of [`fit`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FitEvent {
    /// Gradient steps so far.
    pub step: usize,
    /// Wall time so far (s).
    pub seconds: f64,
    /// Mean denoiser loss over the last `log_every` steps (normalised units).
    pub diffusion_loss: f64,
    /// Mean inverse dynamics MSE over them (normalised units).
    pub idm_mse: f64,
}

/// What [`fit`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct FitReport {
    /// Gradient steps.
    pub steps: usize,
    /// Wall time (s).
    pub seconds: f64,
    /// Samples drawn (with repeats over epochs).
    pub samples_seen: usize,
    /// The last log's denoiser loss.
    pub diffusion_loss: f64,
    /// The last log's inverse dynamics MSE.
    pub idm_mse: f64,
    /// Held-out denoiser loss (the last chunk, when there are several).
    pub validation_diffusion_loss: Option<f64>,
    /// Held-out inverse dynamics MSE.
    pub validation_idm_mse: Option<f64>,
}

fn model_inputs(
    normalizer: &Normalizer,
    samples: &Samples,
) -> Result<(Array2<f32>, Array2<f32>, Array2<f32>)> {
    let c = normalizer.condition(samples.condition.view());
    let m = samples.motion.mapv(|v| v / normalizer.motion_scale);
    let d = normalizer.change(samples.target_change.view());
    Ok((c, m, d))
}

fn select(x: &Array2<f32>, rows: &[usize]) -> Array2<f32> {
    x.select(Axis(0), rows)
}

fn join(a: &Array2<f32>, b: &Array2<f32>) -> Result<Array2<f32>> {
    concatenate(Axis(1), &[a.view(), b.view()]).map_err(|e| Error::InvalidSetting {
        what: "inverse dynamics input",
        reason: e.to_string(),
    })
}

/// Trains a DexGen model on the dataset `reader` for `budget` (or `config.max_steps`),
/// seeded, and writes the checkpoint (see [`crate::model`]) and `metrics.csv` (step,
/// seconds, diffusion_loss, idm_mse) to `out`. With more than one chunk the last is held
/// out for validation. `on_log` sees every log event.
///
/// # Errors
///
/// Bad settings, read and write errors, a diverged loss.
pub fn fit(
    reader: &DataReader,
    config: &FitConfig,
    seed: u64,
    budget: Duration,
    out: &Path,
    on_log: &mut dyn FnMut(&FitEvent),
) -> Result<FitReport> {
    if config.batch == 0 || config.log_every == 0 {
        return Err(Error::InvalidSetting {
            what: "training",
            reason: "batch and log_every must be at least 1".into(),
        });
    }
    let layout = reader.manifest().layout.clone();
    let mut model = config.model.clone();
    model.fit_to(&layout)?;
    let normalizer = Normalizer::fit(reader, &model.spec)?;
    let schedule = NoiseSchedule::cosine(model.diffusion_steps)?;
    let mut diffusion = DiffusionTrainer::new(
        &model.denoiser,
        schedule,
        &TrainConfig {
            learning_rate: config.learning_rate,
            seed,
            ema_decay: config.ema_decay,
            ..TrainConfig::default()
        },
    )?;
    let mut idm = IdmTrainer::new(&model.idm, config.idm_learning_rate, seed ^ 0x1D)?;
    let chunks = reader.chunks();
    let train_chunks: Vec<usize> = if chunks > 1 {
        (0..chunks - 1).collect()
    } else {
        (0..chunks).collect()
    };
    std::fs::create_dir_all(out).map_err(|e| Error::Data {
        path: out.display().to_string(),
        reason: e.to_string(),
    })?;
    let metrics_path = out.join("metrics.csv");
    let io = |e: std::io::Error| Error::Data {
        path: metrics_path.display().to_string(),
        reason: e.to_string(),
    };
    let mut metrics = std::fs::File::create(&metrics_path).map_err(io)?;
    writeln!(metrics, "step,seconds,diffusion_loss,idm_mse").map_err(io)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xF17);
    let start = Instant::now();
    let (mut sum_d, mut sum_i, mut count) = (0.0, 0.0, 0usize);
    let mut last = FitEvent {
        step: 0,
        seconds: 0.0,
        diffusion_loss: f64::NAN,
        idm_mse: f64::NAN,
    };
    let mut samples_seen = 0;
    let done = |steps: usize| {
        (config.max_steps > 0 && steps >= config.max_steps)
            || (config.max_steps == 0 && start.elapsed() >= budget)
    };
    'outer: loop {
        let mut order = train_chunks.clone();
        order.shuffle(&mut rng);
        let mut any = false;
        for k in order {
            let samples = Samples::from_chunk(&reader.chunk(k)?, &layout, &model.spec)?;
            if samples.is_empty() {
                continue;
            }
            any = true;
            let (c, m, d) = model_inputs(&normalizer, &samples)?;
            let mut rows: Vec<usize> = (0..samples.len()).collect();
            rows.shuffle(&mut rng);
            for batch in rows.chunks(config.batch) {
                let (cb, mb, db) = (select(&c, batch), select(&m, batch), select(&d, batch));
                sum_d += diffusion.step(mb.view(), cb.view())?;
                sum_i += idm.step(join(&cb, &mb)?.view(), db.view())?;
                count += 1;
                samples_seen += batch.len();
                let step = diffusion.steps();
                if step.is_multiple_of(config.log_every) {
                    last = FitEvent {
                        step,
                        seconds: start.elapsed().as_secs_f64(),
                        diffusion_loss: sum_d / count as f64,
                        idm_mse: sum_i / count as f64,
                    };
                    writeln!(
                        metrics,
                        "{},{:.3},{:.6},{:.6}",
                        last.step, last.seconds, last.diffusion_loss, last.idm_mse
                    )
                    .map_err(io)?;
                    on_log(&last);
                    (sum_d, sum_i, count) = (0.0, 0.0, 0);
                }
                if done(step) {
                    break 'outer;
                }
            }
        }
        if !any {
            return Err(Error::Data {
                path: "dataset".into(),
                reason: "no chunk yields a training sample".into(),
            });
        }
    }
    if count > 0 {
        last = FitEvent {
            step: diffusion.steps(),
            seconds: start.elapsed().as_secs_f64(),
            diffusion_loss: sum_d / count as f64,
            idm_mse: sum_i / count as f64,
        };
        writeln!(
            metrics,
            "{},{:.3},{:.6},{:.6}",
            last.step, last.seconds, last.diffusion_loss, last.idm_mse
        )
        .map_err(io)?;
        on_log(&last);
    }
    let (mut validation_diffusion_loss, mut validation_idm_mse) = (None, None);
    if chunks > 1 {
        let samples = Samples::from_chunk(&reader.chunk(chunks - 1)?, &layout, &model.spec)?;
        if !samples.is_empty() {
            let (c, m, d) = model_inputs(&normalizer, &samples)?;
            let n = samples.len().min(4096);
            let rows: Vec<usize> = (0..n).collect();
            let (cb, mb, db) = (select(&c, &rows), select(&m, &rows), select(&d, &rows));
            validation_idm_mse = Some(idm.mse(join(&cb, &mb)?.view(), db.view())?);
            let mut vrng = ChaCha8Rng::seed_from_u64(0x7A1);
            let t: Vec<usize> = (0..n)
                .map(|_| rand::Rng::random_range(&mut vrng, 0..model.diffusion_steps))
                .collect();
            let noise = gaussian_noise(n, mb.ncols(), &mut vrng);
            let loss = diffusion.loss(mb.view(), cb.view(), &t, noise.view())?;
            validation_diffusion_loss = Some(f64::from(loss.to_scalar::<f32>()?));
        }
    }
    let mut meta = toml::Table::new();
    meta.insert(
        "steps".into(),
        toml::Value::Integer(diffusion.steps() as i64),
    );
    meta.insert("seed".into(), toml::Value::Integer(seed as i64));
    meta.insert(
        "dataset_rows".into(),
        toml::Value::Integer(reader.manifest().rows() as i64),
    );
    if let Some(v) = validation_idm_mse {
        meta.insert("validation_idm_mse".into(), toml::Value::Float(v));
    }
    if let Some(v) = validation_diffusion_loss {
        meta.insert("validation_diffusion_loss".into(), toml::Value::Float(v));
    }
    let file = ModelFile {
        config: model,
        layout,
        normalizer,
        recommended_guidance: None,
        meta,
    };
    DexGen::save_parts(out, &file, &diffusion.sampling_weights()?, idm.varmap())?;
    Ok(FitReport {
        steps: diffusion.steps(),
        seconds: start.elapsed().as_secs_f64(),
        samples_seen,
        diffusion_loss: last.diffusion_loss,
        idm_mse: last.idm_mse,
        validation_diffusion_loss,
        validation_idm_mse,
    })
}
