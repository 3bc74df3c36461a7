//! The learned models: [`JointWise`] (DexNDM's) and [`WholeHand`] (its baseline).

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, Module, VarBuilder, VarMap};
use dex_policy::fused::grouped_linear;
use dex_policy::nets::{Activation, Mlp, MlpConfig, frozen_builder, init_seeded, new_store};
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::dataset::{Batch, Dataset};
use crate::error::{Error, Result, data_error};
use crate::fit::{FitConfig, FitEvent, FitReport, Objective, train_loop};
use crate::model::{
    DynamicsModel, ModelFile, ModelKind, Scales, WEIGHTS_FILE, batch_tensors, check_tensor_history,
};

/// Settings of [`JointWise`]. DexNDM gives no sizes (facts §5.2: W, layers, width,
/// activation, output and loss are NOT FOUND); dex's: `W = 10` (the paper's 10-frame,
/// 0.5 s analysis window at 20 Hz), three hidden layers of 64, ReLU, predicting the
/// normalised next change (see [`Scales`]) under a squared-error loss.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JointWiseConfig {
    /// History steps `W`.
    pub window: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// One network for every joint, told which joint it serves by a one-hot input,
    /// instead of one network per joint (the paper's).
    pub shared: bool,
}

impl Default for JointWiseConfig {
    fn default() -> Self {
        Self {
            window: 10,
            hidden: vec![64, 64, 64],
            shared: false,
        }
    }
}

/// Settings of [`WholeHand`]: the same history and output as [`JointWise`], every
/// joint's features into one network (three hidden layers of 256, ReLU).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WholeHandConfig {
    /// History steps `W`.
    pub window: usize,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
}

impl Default for WholeHandConfig {
    fn default() -> Self {
        Self {
            window: 10,
            hidden: vec![256, 256, 256],
        }
    }
}

fn check_sizes(window: usize, hidden: &[usize], dof: usize) -> Result<()> {
    if window == 0 || dof == 0 || hidden.contains(&0) {
        return Err(Error::InvalidSetting {
            what: "model size",
            reason: format!(
                "window, joints and every hidden width must be at least 1, got {window}, {dof}, {hidden:?}"
            ),
        });
    }
    Ok(())
}

/// A network from per-joint features (`batch × dof × 2W`) to normalised changes
/// (`batch × dof`).
trait Body: Sized + Send {
    type Config: Clone + std::fmt::Debug + Serialize + DeserializeOwned + Send;
    const KIND: ModelKind;
    fn window(config: &Self::Config) -> usize;
    fn validate(config: &Self::Config, dof: usize) -> Result<()>;
    fn build(config: &Self::Config, dof: usize, vb: &VarBuilder<'_>) -> Result<Self>;
    fn init(varmap: &VarMap, seed: u64) -> Result<()>;
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
}

/// Per-joint (or shared) layers as batched matrix products: layer `k` holds weights
/// `groups × in × out` and biases `groups × 1 × out`, `groups` being the joint count
/// (or 1 when shared). Joint `i`'s row only ever meets joint `i`'s weights and its own
/// features, so no joint sees another's history.
struct GroupedMlp {
    layers: Vec<(Tensor, Tensor)>,
    one_hot: Option<Tensor>,
}

impl Body for GroupedMlp {
    type Config = JointWiseConfig;
    const KIND: ModelKind = ModelKind::Joint;

    fn window(config: &JointWiseConfig) -> usize {
        config.window
    }

    fn validate(config: &JointWiseConfig, dof: usize) -> Result<()> {
        check_sizes(config.window, &config.hidden, dof)
    }

    fn build(config: &JointWiseConfig, dof: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        let groups = if config.shared { 1 } else { dof };
        let mut width = 2 * config.window + if config.shared { dof } else { 0 };
        let mut layers = Vec::new();
        for (k, &h) in config.hidden.iter().chain(std::iter::once(&1)).enumerate() {
            let w = vb.get_with_hints((groups, width, h), &format!("w{k}"), Init::Const(0.0))?;
            let b = vb.get_with_hints((groups, 1, h), &format!("b{k}"), Init::Const(0.0))?;
            layers.push((w, b));
            width = h;
        }
        let one_hot = if config.shared {
            Some(Tensor::eye(dof, DType::F32, &Device::Cpu)?.reshape((dof, 1, dof))?)
        } else {
            None
        };
        Ok(Self { layers, one_hot })
    }

    fn init(varmap: &VarMap, seed: u64) -> Result<()> {
        // U(±1/√fan_in) weights (the usual linear-layer initialisation), zero biases.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let data = varmap.data().lock().map_err(|_| {
            Error::Policy(dex_policy::Error::LockPoisoned {
                what: "the variable store",
            })
        })?;
        let mut names: Vec<&String> = data.keys().collect();
        names.sort();
        for name in names {
            let var = &data[name];
            let dims = var.dims().to_vec();
            let n: usize = dims.iter().product();
            let values: Vec<f32> = if name.contains(".w") || name.starts_with('w') {
                let bound = 1.0 / (dims[1] as f64).sqrt();
                (0..n)
                    .map(|_| rng.random_range(-bound..=bound) as f32)
                    .collect()
            } else {
                vec![0.0; n]
            };
            var.set(&Tensor::from_vec(values, dims.as_slice(), &Device::Cpu)?)?;
        }
        Ok(())
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, d, _) = x.dims3()?;
        let mut h = x.transpose(0, 1)?.contiguous()?;
        if let Some(one_hot) = &self.one_hot {
            let ids = one_hot.broadcast_as((d, b, d))?.contiguous()?;
            h = Tensor::cat(&[&h, &ids], 2)?;
        }
        // Shared weights: every joint's rows in one group.
        let groups = self.layers.first().map_or(d, |(w, _)| w.dims()[0]);
        if groups == 1 {
            let f = h.dim(2)?;
            h = h.reshape((1, d * b, f))?;
        }
        let last = self.layers.len() - 1;
        for (k, (w, bias)) in self.layers.iter().enumerate() {
            let act = (k < last).then_some(Activation::Relu);
            h = grouped_linear(&h, w, bias, act)?;
        }
        Ok(h.reshape((d, b))?.transpose(0, 1)?.contiguous()?)
    }
}

/// dex-policy's [`Mlp`] on the concatenated features of every joint.
struct WholeMlp {
    mlp: Mlp,
}

impl Body for WholeMlp {
    type Config = WholeHandConfig;
    const KIND: ModelKind = ModelKind::Whole;

    fn window(config: &WholeHandConfig) -> usize {
        config.window
    }

    fn validate(config: &WholeHandConfig, dof: usize) -> Result<()> {
        check_sizes(config.window, &config.hidden, dof)
    }

    fn build(config: &WholeHandConfig, dof: usize, vb: &VarBuilder<'_>) -> Result<Self> {
        let mlp = Mlp::new(
            &MlpConfig {
                input: dof * 2 * config.window,
                hidden: config.hidden.clone(),
                output: dof,
                activation: Activation::Relu,
                layer_norm: false,
            },
            vb,
        )?;
        Ok(Self { mlp })
    }

    fn init(varmap: &VarMap, seed: u64) -> Result<()> {
        Ok(init_seeded(varmap, seed, |_| 1.0)?)
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, d, f) = x.dims3()?;
        Ok(self.mlp.forward(&x.reshape((b, d * f))?)?)
    }
}

/// What a learned model's `[model]` table holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Saved<C> {
    config: C,
    scales: Scales,
}

/// The state both learned models share: settings, scales, the trained variables and a
/// frozen copy of the network for prediction.
struct Learned<N: Body> {
    config: N::Config,
    dof: usize,
    scales: Option<Scales>,
    varmap: VarMap,
    train_net: N,
    frozen: Option<N>,
    last_fit: Option<FitReport>,
}

impl<N: Body> Learned<N> {
    fn new(dof: usize, config: N::Config) -> Result<Self> {
        N::validate(&config, dof)?;
        let (varmap, vb) = new_store();
        let train_net = N::build(&config, dof, &vb)?;
        N::init(&varmap, 0)?;
        Ok(Self {
            config,
            dof,
            scales: None,
            varmap,
            train_net,
            frozen: None,
            last_fit: None,
        })
    }

    fn refreeze(&mut self) -> Result<()> {
        self.frozen = Some(N::build(
            &self.config,
            self.dof,
            &frozen_builder(&self.varmap)?,
        )?);
        Ok(())
    }

    fn forward_with(net: &N, scales: &Scales, q: &Tensor, a: &Tensor) -> Result<(Tensor, Tensor)> {
        let (x, qt) = scales.features(q, a)?;
        Ok((net.forward(&x)?, qt))
    }

    fn fit(
        &mut self,
        train: &Dataset,
        valid: &Dataset,
        config: &FitConfig,
        on_event: &mut dyn FnMut(&FitEvent),
    ) -> Result<FitReport> {
        config.validate()?;
        for data in [train, valid] {
            if data.dof() != self.dof {
                return Err(Error::InvalidSetting {
                    what: "dataset",
                    reason: format!("has {} joints, the model {}", data.dof(), self.dof),
                });
            }
        }
        let window = N::window(&self.config);
        if self.scales.is_none() {
            self.scales = Some(Scales::from_data(train, window)?);
            N::init(&self.varmap, config.seed)?;
        }
        let scales = self
            .scales
            .clone()
            .ok_or_else(|| Error::NotFitted("no scales".into()))?;
        let net = &self.train_net;
        let loss = |b: &Batch| -> Result<Tensor> {
            let (q, a, next) = batch_tensors(b)?;
            let (y, qt) = Self::forward_with(net, &scales, &q, &a)?;
            let target = scales.normalised_step(&qt, &next)?;
            Ok(y.sub(&target)?.sqr()?.mean_all()?)
        };
        let rmse = |b: &Batch| -> Result<f64> {
            let (q, a, next) = batch_tensors(b)?;
            let (y, qt) = Self::forward_with(net, &scales, &q, &a)?;
            let pred = scales.positions(&qt, &y)?;
            let mse = pred.sub(&next)?.sqr()?.mean_all()?.to_scalar::<f32>()?;
            Ok(f64::from(mse).sqrt())
        };
        let objective = Objective {
            loss: &loss,
            rmse: &rmse,
        };
        let report = train_loop(
            &self.varmap,
            (train, valid),
            window,
            config,
            &objective,
            on_event,
        )?;
        self.refreeze()?;
        self.last_fit = Some(report.clone());
        Ok(report)
    }

    fn forward(&self, model: &dyn DynamicsModel, q: &Tensor, a: &Tensor) -> Result<Tensor> {
        check_tensor_history(model, q, a)?;
        let (Some(net), Some(scales)) = (&self.frozen, &self.scales) else {
            return Err(Error::NotFitted(format!(
                "the {} model has not been fitted or loaded",
                N::KIND.as_str()
            )));
        };
        let (y, qt) = Self::forward_with(net, scales, q, a)?;
        scales.positions(&qt, &y)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let scales = self.scales.clone().ok_or_else(|| {
            Error::NotFitted(format!(
                "the {} model has not been fitted",
                N::KIND.as_str()
            ))
        })?;
        let saved = Saved {
            config: self.config.clone(),
            scales,
        };
        ModelFile::new(
            N::KIND,
            self.dof,
            N::window(&self.config),
            &saved,
            self.last_fit.clone(),
        )?
        .write(dir)?;
        let path = dir.join(WEIGHTS_FILE);
        self.varmap
            .save(&path)
            .map_err(|e| data_error(&path, e.to_string()))
    }

    fn from_file(dir: &Path, file: &ModelFile) -> Result<Self> {
        let saved: Saved<N::Config> = file.settings(dir)?;
        let model_path = dir.join(crate::model::MODEL_FILE);
        if saved.scales.dof() != file.dof
            || [
                &saved.scales.position_std,
                &saved.scales.motion,
                &saved.scales.error,
                &saved.scales.step,
            ]
            .iter()
            .any(|v| v.len() != file.dof)
            || N::window(&saved.config) != file.window
        {
            return Err(data_error(
                &model_path,
                "scales, joints and window disagree",
            ));
        }
        let mut model = Self::new(file.dof, saved.config)
            .map_err(|e| data_error(&model_path, e.to_string()))?;
        let path = dir.join(WEIGHTS_FILE);
        model
            .varmap
            .load(&path)
            .map_err(|e| data_error(&path, e.to_string()))?;
        model.scales = Some(saved.scales);
        model.last_fit = file.fit.clone();
        model.refreeze()?;
        Ok(model)
    }
}

macro_rules! learned_model {
    ($(#[$doc:meta])* $name:ident, $body:ty, $config:ty) => {
        $(#[$doc])*
        pub struct $name(Learned<$body>);

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("dof", &self.0.dof)
                    .field("config", &self.0.config)
                    .field("fitted", &self.0.frozen.is_some())
                    .finish()
            }
        }

        impl $name {
            /// An unfitted model for `dof` joints.
            ///
            /// # Errors
            ///
            /// [`Error::InvalidSetting`] for a zero window, joint count or width.
            pub fn new(dof: usize, config: $config) -> Result<Self> {
                Ok(Self(Learned::new(dof, config)?))
            }

            /// The settings.
            pub fn config(&self) -> &$config {
                &self.0.config
            }

            /// The input and output scales (from the first fit).
            pub fn scales(&self) -> Option<&Scales> {
                self.0.scales.as_ref()
            }

            /// What the last fit reported.
            pub fn last_fit(&self) -> Option<&FitReport> {
                self.0.last_fit.as_ref()
            }

            pub(crate) fn from_file(dir: &Path, file: &ModelFile) -> Result<Self> {
                Ok(Self(Learned::from_file(dir, file)?))
            }
        }

        impl DynamicsModel for $name {
            fn kind(&self) -> ModelKind {
                <$body as Body>::KIND
            }
            fn dof(&self) -> usize {
                self.0.dof
            }
            fn window(&self) -> usize {
                <$body as Body>::window(&self.0.config)
            }
            fn forward(&self, q: &Tensor, targets: &Tensor) -> Result<Tensor> {
                self.0.forward(self, q, targets)
            }
            fn fit(
                &mut self,
                train: &Dataset,
                valid: &Dataset,
                config: &FitConfig,
                on_event: &mut dyn FnMut(&FitEvent),
            ) -> Result<FitReport> {
                self.0.fit(train, valid, config, on_event)
            }
            fn save(&self, dir: &Path) -> Result<()> {
                self.0.save(dir)
            }
        }
    };
}

learned_model!(
    /// DexNDM's joint-wise neural dynamics: joint `i`'s next position from its own `W`
    /// (position, target) pairs only (DexNDM §3.3), with its own weights (or, with
    /// [`JointWiseConfig::shared`], one network for all joints told the joint by a
    /// one-hot input). All joints run at once as batched matrix products.
    ///
    /// ```
    /// use dex_ndm::{DynamicsModel, JointWise, JointWiseConfig};
    /// let model = JointWise::new(16, JointWiseConfig::default())?;
    /// assert_eq!((model.dof(), model.window()), (16, 10));
    /// // Unfitted, it refuses to predict rather than guess.
    /// let h = ndarray::Array3::<f32>::zeros((1, 10, 16));
    /// assert!(model.predict(h.view(), h.view()).is_err());
    /// # Ok::<(), dex_ndm::Error>(())
    /// ```
    JointWise,
    GroupedMlp,
    JointWiseConfig
);

learned_model!(
    /// The whole-hand baseline: one network from every joint's `W` (position, target)
    /// pairs to every joint's next position (DexNDM §3.3, "Whole Hand NDM").
    WholeHand,
    WholeMlp,
    WholeHandConfig
);
