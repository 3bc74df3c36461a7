//! The [`DynamicsModel`] trait, the input normalisation the learned models share, the
//! model file and [`load_model`].

use std::path::Path;

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayView3};
use serde::{Deserialize, Serialize};

use dex_policy::chunk_files::{read_toml, write_toml_atomic};

use crate::dataset::{Batch, Dataset};
use crate::error::{Error, Result, check_finite, data_error};
use crate::fit::{FitConfig, FitEvent, FitReport};

/// The model file's name in a model directory.
pub const MODEL_FILE: &str = "model.toml";
/// The weights file of the learned models.
pub const WEIGHTS_FILE: &str = "weights.safetensors";
const FORMAT: &str = "dex-ndm-model";
const VERSION: u32 = 1;

/// Which model a directory holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// [`crate::JointWise`]: joint `i` sees only its own history.
    Joint,
    /// [`crate::WholeHand`]: one network sees every joint's history.
    Whole,
    /// [`crate::FirstOrderPd`]: a first-order lag per joint, fitted by least squares.
    Pd,
    /// [`crate::MockDynamics`].
    Mock,
}

impl ModelKind {
    /// The name on the command line (`joint`, `whole`, `pd`, `mock`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Joint => "joint",
            Self::Whole => "whole",
            Self::Pd => "pd",
            Self::Mock => "mock",
        }
    }
}

impl std::str::FromStr for ModelKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "joint" => Self::Joint,
            "whole" => Self::Whole,
            "pd" => Self::Pd,
            "mock" => Self::Mock,
            other => {
                return Err(Error::InvalidSetting {
                    what: "model kind",
                    reason: format!("unknown `{other}` (known: joint, whole, pd, mock)"),
                });
            }
        })
    }
}

/// A hand's joint dynamics at its control rate: from each joint's last `W` (position,
/// target) pairs, the joint positions one control step later.
///
/// Histories are `batch × W × dof`, oldest step first; step `W − 1` is the present
/// `t`, whose target `a_t` has just been sent. The trait is object safe
/// (`Box<dyn DynamicsModel>` is what [`load_model`] returns) and batched.
pub trait DynamicsModel: Send + std::fmt::Debug {
    /// Which model this is.
    fn kind(&self) -> ModelKind;

    /// Joints.
    fn dof(&self) -> usize;

    /// History steps `W`.
    fn window(&self) -> usize;

    /// The prediction as a tensor op: `q` and `targets` are `batch × W × dof` (f32), the
    /// result `batch × dof`. Differentiable with respect to its inputs; the model's own
    /// parameters are constants here (a residual policy trains through a frozen model).
    ///
    /// # Errors
    ///
    /// [`Error::NotFitted`] before `fit` or `load`; [`Error::LengthMismatch`] for other
    /// shapes; tensor errors.
    fn forward(&self, q: &Tensor, targets: &Tensor) -> Result<Tensor>;

    /// [`DynamicsModel::forward`] on arrays, with the inputs checked.
    ///
    /// # Errors
    ///
    /// As `forward`, and [`Error::NotFinite`] for a NaN input.
    fn predict(&self, q: ArrayView3<'_, f32>, targets: ArrayView3<'_, f32>) -> Result<Array2<f32>> {
        let (b, w, d) = q.dim();
        check_history(self.window(), self.dof(), q.dim(), targets.dim())?;
        check_finite("joint positions", q.iter())?;
        check_finite("joint targets", targets.iter())?;
        let qt = Tensor::from_iter(q.iter().copied(), &Device::Cpu)?.reshape((b, w, d))?;
        let at = Tensor::from_iter(targets.iter().copied(), &Device::Cpu)?.reshape((b, w, d))?;
        let out = self.forward(&qt, &at)?.flatten_all()?.to_vec1::<f32>()?;
        Array2::from_shape_vec((b, d), out).map_err(|e| Error::InvalidSetting {
            what: "prediction shape",
            reason: e.to_string(),
        })
    }

    /// Fits the model to `train`, scoring on `valid` (the learned models keep the
    /// parameters with the lowest held-out error). Calling it again continues from the
    /// current parameters and normalisation: pre-train on simulated data, then fine-tune
    /// on the hand's.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a bad config, a dataset of another joint count or
    /// one with no sample of a full history; tensor errors; [`Error::Policy`] when
    /// training diverges.
    fn fit(
        &mut self,
        train: &Dataset,
        valid: &Dataset,
        config: &FitConfig,
        on_event: &mut dyn FnMut(&FitEvent),
    ) -> Result<FitReport>;

    /// Writes the model to `dir` ([`MODEL_FILE`], and [`WEIGHTS_FILE`] for the learned
    /// models); [`load_model`] reads it back.
    ///
    /// # Errors
    ///
    /// [`Error::NotFitted`] for a learned model never fitted; [`Error::Data`] when a
    /// file cannot be written.
    fn save(&self, dir: &Path) -> Result<()>;
}

impl<M: DynamicsModel + ?Sized> DynamicsModel for Box<M> {
    fn kind(&self) -> ModelKind {
        (**self).kind()
    }
    fn dof(&self) -> usize {
        (**self).dof()
    }
    fn window(&self) -> usize {
        (**self).window()
    }
    fn forward(&self, q: &Tensor, targets: &Tensor) -> Result<Tensor> {
        (**self).forward(q, targets)
    }
    fn predict(&self, q: ArrayView3<'_, f32>, targets: ArrayView3<'_, f32>) -> Result<Array2<f32>> {
        (**self).predict(q, targets)
    }
    fn fit(
        &mut self,
        train: &Dataset,
        valid: &Dataset,
        config: &FitConfig,
        on_event: &mut dyn FnMut(&FitEvent),
    ) -> Result<FitReport> {
        (**self).fit(train, valid, config, on_event)
    }
    fn save(&self, dir: &Path) -> Result<()> {
        (**self).save(dir)
    }
}

/// [`Error::LengthMismatch`] unless both histories are `batch × window × dof`.
pub(crate) fn check_history(
    window: usize,
    dof: usize,
    q: (usize, usize, usize),
    targets: (usize, usize, usize),
) -> Result<()> {
    for (what, (b, w, d)) in [
        ("joint-position history", q),
        ("joint-target history", targets),
    ] {
        if w != window {
            return Err(Error::LengthMismatch {
                what: "history steps",
                expected: window,
                got: w,
            });
        }
        if d != dof {
            return Err(Error::LengthMismatch {
                what,
                expected: dof,
                got: d,
            });
        }
        if b != q.0 {
            return Err(Error::LengthMismatch {
                what: "joint-target history batch",
                expected: q.0,
                got: b,
            });
        }
    }
    Ok(())
}

/// Checks a tensor history's shape against a model.
pub(crate) fn check_tensor_history(
    model: &dyn DynamicsModel,
    q: &Tensor,
    targets: &Tensor,
) -> Result<()> {
    let dims = |t: &Tensor| -> Result<(usize, usize, usize)> {
        t.dims3().map_err(|_| Error::LengthMismatch {
            what: "history tensor rank",
            expected: 3,
            got: t.rank(),
        })
    };
    check_history(model.window(), model.dof(), dims(q)?, dims(targets)?)
}

/// A dataset's histories as tensors: `(q, targets, next)`, `batch × W × dof` twice and
/// `batch × dof`.
pub(crate) fn batch_tensors(batch: &Batch) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, w, d) = (batch.len, batch.window, batch.dof);
    Ok((
        Tensor::from_slice(&batch.q, (b, w, d), &Device::Cpu)?,
        Tensor::from_slice(&batch.targets, (b, w, d), &Device::Cpu)?,
        Tensor::from_slice(&batch.next, (b, d), &Device::Cpu)?,
    ))
}

/// Per-joint input and output scales of the learned models, from their first training
/// set. Joint `i`'s features at time `t` are its position `(q_t − mean)/std`, the
/// earlier positions relative to it `(q_j − q_t)/motion` (`W − 1` values) and every
/// target relative to it `(a_j − q_t)/error` (`W` values): `2W` numbers, so a model sees
/// how far each target leads the joint rather than where the joint is, and the same
/// motion at another posture looks the same but for one input. The output is the next
/// step's change `(q_{t+1} − q_t)/step`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scales {
    /// Mean joint position (rad).
    pub position_mean: Vec<f32>,
    /// Standard deviation of the joint position (rad).
    pub position_std: Vec<f32>,
    /// RMS of `q_j − q_t` over the history (rad).
    pub motion: Vec<f32>,
    /// RMS of `a_j − q_t` over the history (rad).
    pub error: Vec<f32>,
    /// RMS of the next step's change `q_{t+1} − q_t` (rad).
    pub step: Vec<f32>,
}

/// Scales below this (rad) are raised to it, so a joint that never moved does not
/// divide by zero.
const MIN_SCALE: f32 = 1e-4;

impl Scales {
    /// The scales of `data`'s samples of history `window`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] when the dataset has no sample.
    pub fn from_data(data: &Dataset, window: usize) -> Result<Self> {
        let index = data.sample_index(window);
        if index.is_empty() {
            return Err(Error::InvalidSetting {
                what: "training data",
                reason: format!("no segment is longer than the {window}-step history"),
            });
        }
        let d = data.dof();
        let mut sum = vec![0f64; 5 * d];
        let mut sq = vec![0f64; 5 * d];
        let mut counts = [0f64; 3];
        for chunk in index.chunks(4096) {
            let b = data.batch(window, chunk)?;
            for s in 0..b.len {
                let at = |v: &[f32], j: usize, i: usize| f64::from(v[(s * window + j) * d + i]);
                for i in 0..d {
                    let qt = at(&b.q, window - 1, i);
                    sum[i] += qt;
                    sq[i] += qt * qt;
                    for j in 0..window - 1 {
                        let m = at(&b.q, j, i) - qt;
                        sq[d + i] += m * m;
                    }
                    for j in 0..window {
                        let e = at(&b.targets, j, i) - qt;
                        sq[2 * d + i] += e * e;
                    }
                    let step = f64::from(b.next[s * d + i]) - qt;
                    sq[3 * d + i] += step * step;
                }
            }
            counts[0] += b.len as f64;
            counts[1] += (b.len * (window - 1)) as f64;
            counts[2] += (b.len * window) as f64;
        }
        let n = counts[0];
        let floor = |x: f64| (x as f32).max(MIN_SCALE);
        let rms = |k: usize, count: f64| -> Vec<f32> {
            (0..d)
                .map(|i| floor((sq[k * d + i] / count.max(1.0)).sqrt()))
                .collect()
        };
        let mean: Vec<f64> = (0..d).map(|i| sum[i] / n).collect();
        Ok(Self {
            position_mean: mean.iter().map(|&m| m as f32).collect(),
            position_std: (0..d)
                .map(|i| floor((sq[i] / n - mean[i] * mean[i]).max(0.0).sqrt()))
                .collect(),
            motion: if window > 1 {
                rms(1, counts[1])
            } else {
                vec![1.0; d]
            },
            error: rms(2, counts[2]),
            step: rms(3, n),
        })
    }

    /// Joints.
    pub fn dof(&self) -> usize {
        self.position_mean.len()
    }

    /// `batch × dof × 2W` features of the histories (see the type's docs), and the
    /// present positions `q_t` (`batch × dof`).
    pub(crate) fn features(&self, q: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
        let (_, w, d) = q.dims3()?;
        let row = |v: &[f32]| Tensor::from_slice(v, (1, 1, d), &Device::Cpu);
        let qt = q.narrow(1, w - 1, 1)?;
        let pos = qt
            .broadcast_sub(&row(&self.position_mean)?)?
            .broadcast_div(&row(&self.position_std)?)?;
        let err = targets
            .broadcast_sub(&qt)?
            .broadcast_div(&row(&self.error)?)?;
        let parts = if w > 1 {
            let motion = q
                .narrow(1, 0, w - 1)?
                .broadcast_sub(&qt)?
                .broadcast_div(&row(&self.motion)?)?;
            vec![pos, motion, err]
        } else {
            vec![pos, err]
        };
        let x = Tensor::cat(&parts, 1)?.transpose(1, 2)?.contiguous()?;
        Ok((x, qt.squeeze(1)?))
    }

    /// `q_t + y · step`: positions from normalised changes `y` (`batch × dof`).
    pub(crate) fn positions(&self, qt: &Tensor, y: &Tensor) -> Result<Tensor> {
        let step = Tensor::from_slice(&self.step, (1, self.dof()), &Device::Cpu)?;
        Ok(qt.add(&y.broadcast_mul(&step)?)?)
    }

    /// `(next − q_t)/step`: the normalised change a model should predict.
    pub(crate) fn normalised_step(&self, qt: &Tensor, next: &Tensor) -> Result<Tensor> {
        let step = Tensor::from_slice(&self.step, (1, self.dof()), &Device::Cpu)?;
        Ok(next.sub(qt)?.broadcast_div(&step)?)
    }
}

/// The contents of [`MODEL_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelFile {
    pub format: String,
    pub version: u32,
    pub kind: ModelKind,
    pub dof: usize,
    pub window: usize,
    /// The model's own settings and parameters (per kind).
    pub model: toml::Table,
    /// What the last `fit` reported.
    #[serde(default)]
    pub fit: Option<FitReport>,
}

impl ModelFile {
    pub(crate) fn new<T: Serialize>(
        kind: ModelKind,
        dof: usize,
        window: usize,
        model: &T,
        fit: Option<FitReport>,
    ) -> Result<Self> {
        let model = toml::Table::try_from(model).map_err(|e| Error::InvalidSetting {
            what: "model settings",
            reason: e.to_string(),
        })?;
        Ok(Self {
            format: FORMAT.into(),
            version: VERSION,
            kind,
            dof,
            window,
            model,
            fit,
        })
    }

    pub(crate) fn write(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| data_error(dir, e.to_string()))?;
        Ok(write_toml_atomic(&dir.join(MODEL_FILE), self)?)
    }

    pub(crate) fn read(dir: &Path) -> Result<Self> {
        let path = dir.join(MODEL_FILE);
        let file: Self = read_toml(&path)?;
        if file.format != FORMAT || file.version != VERSION {
            return Err(data_error(
                &path,
                format!(
                    "is {} version {}, expected {FORMAT} version {VERSION}",
                    file.format, file.version
                ),
            ));
        }
        Ok(file)
    }

    /// The `[model]` table as the kind's settings.
    pub(crate) fn settings<T: serde::de::DeserializeOwned>(&self, dir: &Path) -> Result<T> {
        self.model
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| data_error(&dir.join(MODEL_FILE), e.to_string()))
    }
}

/// Reads the model in `dir`, whichever kind it is.
///
/// # Errors
///
/// [`Error::Data`] naming the file for a missing, corrupt or mis-shaped model file or
/// weights.
pub fn load_model(dir: &Path) -> Result<Box<dyn DynamicsModel>> {
    let file = ModelFile::read(dir)?;
    Ok(match file.kind {
        ModelKind::Joint => Box::new(crate::JointWise::from_file(dir, &file)?),
        ModelKind::Whole => Box::new(crate::WholeHand::from_file(dir, &file)?),
        ModelKind::Pd => Box::new(crate::FirstOrderPd::from_file(dir, &file)?),
        ModelKind::Mock => Box::new(crate::MockDynamics::from_file(dir, &file)?),
    })
}

/// One-step prediction error over a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    /// Samples scored (every step with a full history and a next step).
    pub samples: usize,
    /// Root mean square error over every joint and sample (rad).
    pub rmse_rad: f64,
    /// 95th percentile of the absolute error over every joint and sample (rad).
    pub p95_rad: f64,
    /// Root mean square error per joint (rad).
    pub joint_rmse_rad: Vec<f64>,
}

impl Accuracy {
    /// `rmse_rad <x> p95_rad <y>`: the line `dex ndm eval` ends with.
    pub fn summary_line(&self) -> String {
        format!("rmse_rad {:.6} p95_rad {:.6}", self.rmse_rad, self.p95_rad)
    }
}

/// Scores `model`'s one-step predictions on every sample of `data`.
///
/// # Errors
///
/// [`Error::LengthMismatch`] for a dataset of another joint count;
/// [`Error::InvalidSetting`] when it has no sample; the model's errors.
pub fn accuracy(model: &dyn DynamicsModel, data: &Dataset) -> Result<Accuracy> {
    let (w, d) = (model.window(), model.dof());
    if data.dof() != d {
        return Err(Error::LengthMismatch {
            what: "dataset joints",
            expected: d,
            got: data.dof(),
        });
    }
    let index = data.sample_index(w);
    if index.is_empty() {
        return Err(Error::InvalidSetting {
            what: "test data",
            reason: format!("no segment is longer than the model's {w}-step history"),
        });
    }
    let mut errors = Vec::with_capacity(index.len() * d);
    let mut joint_sq = vec![0f64; d];
    for chunk in index.chunks(4096) {
        let b = data.batch(w, chunk)?;
        let (q, a, next) = batch_tensors(&b)?;
        let pred = model.forward(&q, &a)?;
        let e = pred.sub(&next)?.flatten_all()?.to_vec1::<f32>()?;
        for (k, v) in e.iter().enumerate() {
            let v = f64::from(*v);
            joint_sq[k % d] += v * v;
            errors.push(v.abs());
        }
    }
    let n = index.len() as f64;
    let total: f64 = joint_sq.iter().sum();
    errors.sort_by(f64::total_cmp);
    let p95 = errors[((errors.len() as f64 * 0.95).ceil() as usize)
        .saturating_sub(1)
        .min(errors.len() - 1)];
    Ok(Accuracy {
        samples: index.len(),
        rmse_rad: (total / (n * d as f64)).sqrt(),
        p95_rad: p95,
        joint_rmse_rad: joint_sq.iter().map(|s| (s / n).sqrt()).collect(),
    })
}
