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

use crate::dataset::{DataReader, Samples, hand_for};
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
    /// Chunks held in memory and mixed in every batch (the memory bound of training).
    pub buffer_chunks: usize,
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
            buffer_chunks: 6,
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

/// Normalised conditions, motions and target changes of a chunk's samples.
type ModelInputs = (Array2<f32>, Array2<f32>, Array2<f32>);

fn model_inputs(normalizer: &Normalizer, samples: &Samples) -> Result<ModelInputs> {
    let c = normalizer.condition(samples.condition.view());
    let m = samples.motion.mapv(|v| v / normalizer.motion_scale);
    let d = normalizer.change(samples.target_change.view());
    Ok((c, m, d))
}

/// One part (`part`) of the buffered chunks' rows `picks` (chunk, row), stacked.
fn gather(
    buffer: &std::collections::VecDeque<ModelInputs>,
    picks: &[(usize, usize)],
    part: fn(&ModelInputs) -> &Array2<f32>,
) -> Result<Array2<f32>> {
    let width = buffer.front().map_or(0, |b| part(b).ncols());
    let mut out = Vec::with_capacity(picks.len() * width);
    for &(k, r) in picks {
        out.extend(part(&buffer[k]).row(r).iter());
    }
    Array2::from_shape_vec((picks.len(), width), out).map_err(|e| Error::InvalidSetting {
        what: "batch",
        reason: e.to_string(),
    })
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
    if config.batch == 0 || config.log_every == 0 || config.buffer_chunks == 0 {
        return Err(Error::InvalidSetting {
            what: "training",
            reason: "batch, log_every and buffer_chunks must be at least 1".into(),
        });
    }
    let layout = reader.manifest().layout.clone();
    let mut model = config.model.clone();
    model.fit_to(&layout)?;
    let normalizer = Normalizer::fit(reader, &model.spec)?;
    let hand = hand_for(reader.manifest(), &model.spec)?;
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
    // A shuffle buffer of `buffer_chunks` chunks: every batch is drawn from all of them
    // (chunks hold a few objects each; batches from one chunk at a time made the
    // losses swing from chunk to chunk), and the oldest chunk is replaced by the next
    // once about its rows have been drawn. Memory: the buffer, whatever the dataset.
    let mut order: Vec<usize> = Vec::new();
    let mut next_chunk = || -> Result<Option<ModelInputs>> {
        for _ in 0..=train_chunks.len() {
            if order.is_empty() {
                order = train_chunks.clone();
                order.shuffle(&mut rng);
            }
            let Some(k) = order.pop() else { break };
            let samples =
                Samples::from_chunk(&reader.chunk(k)?, &layout, &model.spec, hand.as_ref())?;
            if !samples.is_empty() {
                return Ok(Some(model_inputs(&normalizer, &samples)?));
            }
        }
        Ok(None)
    };
    let mut buffer = std::collections::VecDeque::new();
    for _ in 0..config.buffer_chunks.clamp(1, train_chunks.len().max(1)) {
        match next_chunk()? {
            Some(c) => buffer.push_back(c),
            None => break,
        }
    }
    if buffer.is_empty() {
        return Err(Error::Data {
            path: "dataset".into(),
            reason: "no chunk yields a training sample".into(),
        });
    }
    let mut batch_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xBA7C);
    let mut drawn_since_refresh = 0usize;
    loop {
        let total: usize = buffer.iter().map(|(c, _, _)| c.nrows()).sum();
        let mut picks: Vec<(usize, usize)> = (0..config.batch)
            .map(|_| {
                let mut r = rand::Rng::random_range(&mut batch_rng, 0..total);
                let mut k = 0;
                while r >= buffer[k].0.nrows() {
                    r -= buffer[k].0.nrows();
                    k += 1;
                }
                (k, r)
            })
            .collect();
        picks.sort_unstable();
        let (cb, mb, db) = (
            gather(&buffer, &picks, |x| &x.0)?,
            gather(&buffer, &picks, |x| &x.1)?,
            gather(&buffer, &picks, |x| &x.2)?,
        );
        sum_d += diffusion.step(mb.view(), cb.view())?;
        sum_i += idm.step(join(&cb, &mb)?.view(), db.view())?;
        count += 1;
        samples_seen += picks.len();
        let step = diffusion.steps();
        let finished = done(step);
        // Every `log_every` steps, and the last (partial) window.
        if step.is_multiple_of(config.log_every) || finished {
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
        if finished {
            break;
        }
        drawn_since_refresh += picks.len();
        if train_chunks.len() > buffer.len() && drawn_since_refresh >= total / buffer.len().max(1) {
            if let Some(c) = next_chunk()? {
                buffer.pop_front();
                buffer.push_back(c);
            }
            drawn_since_refresh = 0;
        }
    }
    let (mut validation_diffusion_loss, mut validation_idm_mse) = (None, None);
    if chunks > 1 {
        let samples = Samples::from_chunk(
            &reader.chunk(chunks - 1)?,
            &layout,
            &model.spec,
            hand.as_ref(),
        )?;
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
