//! The trained DexGen model: normalisation, the denoiser, the inverse dynamics, their
//! settings, and the checkpoint directory that holds them.
//!
//! # Checkpoint (a directory)
//!
//! ```text
//! DIR/dexgen-model.toml        DexGenConfig + Normalizer + the recommended guidance
//! DIR/denoiser.safetensors     the denoiser's weights (the moving average when kept)
//! DIR/idm.safetensors          the inverse dynamics model's weights
//! ```

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use ndarray::{Array2, ArrayView2, Axis};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::dataset::{DataReader, SampleSpec, Samples, StepLayout, hand_for};
use crate::denoiser::{Denoiser, DenoiserConfig};
use crate::error::{Error, Result, check_finite, check_len};
use crate::idm::{IdmConfig, InverseDynamics};
use crate::sampler::{DdimSampler, Guidance};
use crate::schedule::NoiseSchedule;
use crate::train::DenoiserPredictor;

/// The checkpoint's settings file.
pub const MODEL_FILE: &str = "dexgen-model.toml";
const DENOISER_FILE: &str = "denoiser.safetensors";
const IDM_FILE: &str = "idm.safetensors";

/// Everything that defines a DexGen model but its weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DexGenConfig {
    /// How samples are cut (history, horizon, keypoints).
    pub spec: SampleSpec,
    /// The denoiser's sizes (`motion_dim` and `condition_dim` follow the data).
    pub denoiser: DenoiserConfig,
    /// The inverse dynamics model's sizes (`input_dim`, `output_dim` follow the data).
    pub idm: IdmConfig,
    /// Diffusion steps of the training schedule (cosine).
    pub diffusion_steps: usize,
    /// DDIM steps when sampling (DexGen tried 8 and 12).
    pub ddim_steps: usize,
    /// Bound of the denoised estimate, in normalised motion units; 0 (the default): the
    /// largest |value| of the training motions ([`Normalizer::motion_bound`]).
    pub clip: f32,
}

impl Default for DexGenConfig {
    fn default() -> Self {
        Self {
            spec: SampleSpec::default(),
            denoiser: DenoiserConfig::default(),
            idm: IdmConfig::default(),
            diffusion_steps: 100,
            ddim_steps: 10,
            clip: 0.0,
        }
    }
}

impl DexGenConfig {
    /// Sets the data-dependent widths for `layout` and checks everything.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for bad sizes.
    pub fn fit_to(&mut self, layout: &StepLayout) -> Result<()> {
        self.spec.validate()?;
        self.denoiser.motion_dim = self.spec.motion_dim(layout);
        self.denoiser.condition_dim = self.spec.condition_dim(layout);
        self.idm.input_dim = self.denoiser.condition_dim + self.denoiser.motion_dim;
        self.idm.output_dim = layout.dof;
        self.denoiser.validate()?;
        self.idm.validate()?;
        if self.ddim_steps == 0 || self.ddim_steps > self.diffusion_steps {
            return Err(Error::InvalidSetting {
                what: "ddim_steps",
                reason: format!(
                    "must lie in 1..={}, got {}",
                    self.diffusion_steps, self.ddim_steps
                ),
            });
        }
        Ok(())
    }
}

/// Per-dimension normalisation of conditions and target changes, and one scale for the
/// motion (a single scale keeps the guidance's distance Euclidean in metres up to a
/// constant, so α has one meaning for every keypoint).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalizer {
    /// Condition means.
    pub condition_mean: Vec<f32>,
    /// Condition standard deviations (floored).
    pub condition_std: Vec<f32>,
    /// Root mean square of the motion values (m).
    pub motion_scale: f32,
    /// The 99.9th percentile of |motion value| in the data, in units of `motion_scale`
    /// (the default clip of the denoised estimate: the rare larger values are fingers
    /// snapping off an object, which the clip keeps the sampler from amplifying).
    pub motion_bound: f32,
    /// Target change means (rad).
    pub change_mean: Vec<f32>,
    /// Target change standard deviations (floored).
    pub change_std: Vec<f32>,
}

const STD_FLOOR: f64 = 1e-4;

impl Normalizer {
    /// Statistics over every sample of `reader` (one pass, a chunk at a time).
    ///
    /// # Errors
    ///
    /// Read errors; [`Error::Data`] for a dataset without samples.
    pub fn fit(reader: &DataReader, spec: &SampleSpec) -> Result<Self> {
        let layout = &reader.manifest().layout;
        let (cd, dof) = (spec.condition_dim(layout), layout.dof);
        let mut c_sum = vec![0.0f64; cd];
        let mut c_sq = vec![0.0f64; cd];
        let mut d_sum = vec![0.0f64; dof];
        let mut d_sq = vec![0.0f64; dof];
        let mut m_sq = 0.0f64;
        // |Δx| in metres, binned at 0.1 mm up to 10 cm, for the percentile.
        let mut m_hist = vec![0u64; 1001];
        let mut m_count = 0usize;
        let mut n = 0usize;
        let hand = hand_for(reader.manifest(), spec)?;
        for k in 0..reader.chunks() {
            let s = Samples::from_chunk(&reader.chunk(k)?, layout, spec, hand.as_ref())?;
            accumulate(s.condition.view(), &mut c_sum, &mut c_sq);
            accumulate(s.target_change.view(), &mut d_sum, &mut d_sq);
            m_sq += s.motion.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>();
            for v in &s.motion {
                m_hist[((v.abs() * 1e4) as usize).min(1000)] += 1;
            }
            m_count += s.motion.len();
            n += s.len();
        }
        if n < 2 {
            return Err(Error::Data {
                path: "dataset".into(),
                reason: format!("has {n} samples; at least 2 are needed"),
            });
        }
        let finish = |sum: &[f64], sq: &[f64]| -> (Vec<f32>, Vec<f32>) {
            sum.iter()
                .zip(sq)
                .map(|(s, q)| {
                    let mean = s / n as f64;
                    let var = (q / n as f64 - mean * mean).max(0.0);
                    (mean as f32, var.sqrt().max(STD_FLOOR) as f32)
                })
                .unzip()
        };
        let (condition_mean, condition_std) = finish(&c_sum, &c_sq);
        let (change_mean, change_std) = finish(&d_sum, &d_sq);
        let motion_scale = (m_sq / m_count.max(1) as f64).sqrt().max(STD_FLOOR) as f32;
        Ok(Self {
            condition_mean,
            condition_std,
            motion_scale,
            motion_bound: (percentile(&m_hist, 0.999) * 1e-4 / motion_scale).max(1.0),
            change_mean,
            change_std,
        })
    }

    /// Normalised conditions.
    pub fn condition(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        standardise(x, &self.condition_mean, &self.condition_std)
    }

    /// Normalised target changes.
    pub fn change(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        standardise(x, &self.change_mean, &self.change_std)
    }

    /// Target changes (rad) from normalised ones.
    pub fn change_from(&self, x: ArrayView2<'_, f32>) -> Array2<f32> {
        let mut out = x.to_owned();
        for mut row in out.rows_mut() {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * self.change_std[j] + self.change_mean[j];
            }
        }
        out
    }
}

/// The upper edge of the bin where the cumulative count passes `q` of the total.
fn percentile(hist: &[u64], q: f64) -> f32 {
    let total: u64 = hist.iter().sum();
    let mut seen = 0u64;
    for (i, n) in hist.iter().enumerate() {
        seen += n;
        if seen as f64 >= q * total as f64 {
            return (i + 1) as f32;
        }
    }
    hist.len() as f32
}

fn accumulate(x: ArrayView2<'_, f32>, sum: &mut [f64], sq: &mut [f64]) {
    for row in x.rows() {
        for (j, v) in row.iter().enumerate() {
            let v = f64::from(*v);
            sum[j] += v;
            sq[j] += v * v;
        }
    }
}

fn standardise(x: ArrayView2<'_, f32>, mean: &[f32], std: &[f32]) -> Array2<f32> {
    let mut out = x.to_owned();
    for mut row in out.rows_mut() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (*v - mean[j]) / std[j];
        }
    }
    out
}

/// What [`MODEL_FILE`] holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// The settings.
    pub config: DexGenConfig,
    /// The row layout of the data it was trained on.
    pub layout: StepLayout,
    /// The statistics.
    pub normalizer: Normalizer,
    /// The guidance strength to use when none is given (chosen from a sweep), if any.
    pub recommended_guidance: Option<f64>,
    /// Free-form description (data, training budget, losses).
    #[serde(default)]
    pub meta: toml::Table,
}

/// A trained DexGen model for inference: conditions and commands in, keypoint motions
/// and target changes out.
pub struct DexGen {
    file: ModelFile,
    predictor: DenoiserPredictor,
    idm: InverseDynamics,
    sampler: DdimSampler,
}

impl std::fmt::Debug for DexGen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DexGen")
            .field("config", &self.file.config)
            .finish_non_exhaustive()
    }
}

fn data_error(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::Data {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

impl DexGen {
    /// From its parts.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for a schedule or step count the config rejects.
    pub fn new(file: ModelFile, denoiser: Denoiser, idm: InverseDynamics) -> Result<Self> {
        let schedule = NoiseSchedule::cosine(file.config.diffusion_steps)?;
        let clip = if file.config.clip > 0.0 {
            file.config.clip
        } else {
            file.normalizer.motion_bound
        };
        let sampler = DdimSampler::new(schedule, file.config.ddim_steps)?.with_clip(clip)?;
        Ok(Self {
            file,
            predictor: DenoiserPredictor::new(denoiser),
            idm,
            sampler,
        })
    }

    /// An untrained model of `config`'s sizes for `layout`, with seeded weights and
    /// identity normalisation (motion scale 1 cm, target-change scale 0.01 rad): for
    /// timing, tests and examples, not for control.
    ///
    /// # Errors
    ///
    /// Bad sizes; tensor errors.
    pub fn untrained(mut config: DexGenConfig, layout: &StepLayout, seed: u64) -> Result<Self> {
        config.fit_to(layout)?;
        let (cd, dof) = (config.denoiser.condition_dim, layout.dof);
        let normalizer = Normalizer {
            condition_mean: vec![0.0; cd],
            condition_std: vec![1.0; cd],
            motion_scale: 0.01,
            motion_bound: 5.0,
            change_mean: vec![0.0; dof],
            change_std: vec![0.01; dof],
        };
        let (varmap, vb) = dex_policy::nets::new_store();
        Denoiser::new(&config.denoiser, &vb.pp("denoiser"))?;
        InverseDynamics::new(&config.idm, &vb.pp("idm"))?;
        dex_policy::nets::init_seeded(&varmap, seed, |_| 1.0)?;
        let frozen = dex_policy::nets::frozen_builder(&varmap)?;
        let denoiser = Denoiser::new(&config.denoiser, &frozen.pp("denoiser"))?;
        let idm = InverseDynamics::new(&config.idm, &frozen.pp("idm"))?;
        Self::new(
            ModelFile {
                config,
                layout: layout.clone(),
                normalizer,
                recommended_guidance: None,
                meta: toml::Table::new(),
            },
            denoiser,
            idm,
        )
    }

    /// Loads a checkpoint directory.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] naming the file that is missing or unreadable.
    pub fn load(dir: &Path) -> Result<Self> {
        let read = |name: &str| -> Result<Vec<u8>> {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| data_error(&path, format!("cannot read: {e}")))
        };
        let model = read(MODEL_FILE)?;
        let model = String::from_utf8(model).map_err(|e| data_error(&dir.join(MODEL_FILE), e))?;
        Self::from_contents(&model, &read(DENOISER_FILE)?, &read(IDM_FILE)?, dir)
    }

    /// Loads a checkpoint from the contents of its three files (the model file's text,
    /// then the denoiser's and the inverse dynamics model's safetensors bytes).
    ///
    /// # Errors
    ///
    /// [`Error::Data`] for contents that do not parse or do not fit the sizes.
    pub fn from_bytes(model: &str, denoiser: &[u8], idm: &[u8]) -> Result<Self> {
        Self::from_contents(model, denoiser, idm, Path::new(""))
    }

    /// [`DexGen::from_bytes`], errors naming the files as in `dir`.
    fn from_contents(model: &str, denoiser: &[u8], idm: &[u8], dir: &Path) -> Result<Self> {
        let file: ModelFile =
            toml::from_str(model).map_err(|e| data_error(&dir.join(MODEL_FILE), e))?;
        let builder = |bytes: &[u8], name: &str| -> Result<VarBuilder<'static>> {
            let tensors = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
                .map_err(|e| data_error(&dir.join(name), e))?;
            Ok(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
        };
        let denoiser = Denoiser::new(&file.config.denoiser, &builder(denoiser, DENOISER_FILE)?)
            .map_err(|e| data_error(&dir.join(DENOISER_FILE), e))?;
        let idm = InverseDynamics::new(&file.config.idm, &builder(idm, IDM_FILE)?)
            .map_err(|e| data_error(&dir.join(IDM_FILE), e))?;
        Self::new(file, denoiser, idm)
    }

    /// Runs the denoiser's DDIM steps with weights in `precision` ([`crate::Precision`];
    /// `f32` by default): `f16` halves the bytes each step streams.
    ///
    /// # Errors
    ///
    /// Tensor errors (the conversion).
    pub fn set_precision(&mut self, precision: crate::Precision) -> Result<()> {
        self.predictor.set_precision(precision)
    }

    /// The precision of the denoiser's DDIM steps.
    pub fn precision(&self) -> crate::Precision {
        self.predictor.precision()
    }

    /// The checkpoint shipped with dex (`builtin:dexgen-leap`, in
    /// `dex-diffusion/assets/dexgen-leap/`, whose README gives the commands that made
    /// it), compiled into the library.
    ///
    /// # Errors
    ///
    /// As [`DexGen::from_bytes`] (not expected: the files are checked by the tests).
    pub fn builtin() -> Result<Self> {
        Self::from_bytes(
            include_str!("../assets/dexgen-leap/dexgen-model.toml"),
            include_bytes!("../assets/dexgen-leap/denoiser.safetensors"),
            include_bytes!("../assets/dexgen-leap/idm.safetensors"),
        )
    }

    /// Writes `file` and the weights to `dir` (created if needed).
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when a file cannot be written.
    pub fn save_parts(
        dir: &Path,
        file: &ModelFile,
        denoiser: &std::collections::HashMap<String, Tensor>,
        idm: &candle_nn::VarMap,
    ) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| data_error(dir, e))?;
        let path = dir.join(MODEL_FILE);
        let text = toml::to_string_pretty(file).map_err(|e| data_error(&path, e))?;
        std::fs::write(&path, text).map_err(|e| data_error(&path, e))?;
        let path = dir.join(DENOISER_FILE);
        candle_core::safetensors::save(denoiser, &path).map_err(|e| data_error(&path, e))?;
        let path = dir.join(IDM_FILE);
        idm.save(&path).map_err(|e| data_error(&path, e))
    }

    /// Stores `guidance` as the recommended strength in the checkpoint at `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Data`] when the model file cannot be read or written.
    pub fn recommend_guidance(dir: &Path, guidance: f64) -> Result<()> {
        let path = dir.join(MODEL_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| data_error(&path, e))?;
        let mut file: ModelFile = toml::from_str(&text).map_err(|e| data_error(&path, e))?;
        file.recommended_guidance = Some(guidance);
        let text = toml::to_string_pretty(&file).map_err(|e| data_error(&path, e))?;
        std::fs::write(&path, text).map_err(|e| data_error(&path, e))
    }

    /// The model file's contents.
    pub fn file(&self) -> &ModelFile {
        &self.file
    }

    /// The row layout.
    pub fn layout(&self) -> &StepLayout {
        &self.file.layout
    }

    /// Keypoint indices of the motion.
    pub fn motion_keypoints(&self) -> Vec<usize> {
        self.file.config.spec.motion_keypoints(&self.file.layout)
    }

    /// Samples motions (m, `B × motion_dim`) for raw conditions (`B × condition_dim`),
    /// pulled towards `command` (`B × K'·3`, m) with strength `alpha` when given, and the
    /// inverse dynamics' target changes for them (rad, `B × dof`).
    ///
    /// # Errors
    ///
    /// Shapes; NaN in the conditions or the command; a negative strength.
    pub fn control(
        &mut self,
        condition: ArrayView2<'_, f32>,
        command: Option<(ArrayView2<'_, f32>, f64)>,
        rng: &mut dyn RngCore,
    ) -> Result<(Array2<f32>, Array2<f32>)> {
        let cfg = &self.file.config;
        check_len(
            "condition width",
            cfg.denoiser.condition_dim,
            condition.ncols(),
        )?;
        check_finite("condition", condition.iter())?;
        let c = self.file.normalizer.condition(condition);
        let scale = self.file.normalizer.motion_scale;
        let scaled_command = command.map(|(x, a)| (x.mapv(|v| v / scale), a));
        let guidance = scaled_command.as_ref().map(|(x, a)| Guidance {
            strength: *a,
            command: x.view(),
        });
        let motion_dim = cfg.denoiser.motion_dim;
        let motion =
            self.sampler
                .sample(&mut self.predictor, c.view(), motion_dim, guidance, rng)?;
        let input = ndarray::concatenate(Axis(1), &[c.view(), motion.view()]).map_err(|e| {
            Error::InvalidSetting {
                what: "inverse dynamics input",
                reason: e.to_string(),
            }
        })?;
        let change = self.idm.predict(input.view())?;
        Ok((
            motion.mapv(|v| v * scale),
            self.file.normalizer.change_from(change.view()),
        ))
    }
}
