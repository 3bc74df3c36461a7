//! [`MockDynamics`]: a fixed first-order lag, for testing code that takes a
//! [`DynamicsModel`].

use std::path::Path;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result, data_error};
use crate::fit::{FitConfig, FitEvent, FitReport};
use crate::model::{DynamicsModel, ModelFile, ModelKind, check_tensor_history};

/// A model that needs no data: every joint closes `gain` of its present target error
/// per step, `q_{t+1} = q_t + gain·(a_t − q_t)`. `fit` learns nothing and counts calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockDynamics {
    /// Joints.
    pub dof: usize,
    /// History steps it asks for (it reads only the last).
    pub window: usize,
    /// Fraction of the target error closed per step.
    pub gain: f64,
    /// `fit` calls so far.
    #[serde(skip)]
    pub fits: usize,
}

impl MockDynamics {
    /// A mock for `dof` joints with history `window`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for no joints, a zero window or a gain that is not
    /// finite.
    pub fn new(dof: usize, window: usize, gain: f64) -> Result<Self> {
        if dof == 0 || window == 0 || !gain.is_finite() {
            return Err(Error::InvalidSetting {
                what: "mock dynamics",
                reason: format!(
                    "needs joints, a window and a finite gain, got {dof}, {window}, {gain}"
                ),
            });
        }
        Ok(Self {
            dof,
            window,
            gain,
            fits: 0,
        })
    }

    pub(crate) fn from_file(dir: &Path, file: &ModelFile) -> Result<Self> {
        let m: Self = file.settings(dir)?;
        Self::new(m.dof, m.window, m.gain)
            .map_err(|e| data_error(&dir.join(crate::model::MODEL_FILE), e.to_string()))
    }
}

impl DynamicsModel for MockDynamics {
    fn kind(&self) -> ModelKind {
        ModelKind::Mock
    }

    fn dof(&self) -> usize {
        self.dof
    }

    fn window(&self) -> usize {
        self.window
    }

    fn forward(&self, q: &Tensor, targets: &Tensor) -> Result<Tensor> {
        check_tensor_history(self, q, targets)?;
        let w = self.window;
        let qt = q.narrow(1, w - 1, 1)?.squeeze(1)?;
        let at = targets.narrow(1, w - 1, 1)?.squeeze(1)?;
        Ok(qt.add(&(at.sub(&qt)? * self.gain)?)?)
    }

    fn fit(
        &mut self,
        train: &Dataset,
        _valid: &Dataset,
        _config: &FitConfig,
        _on_event: &mut dyn FnMut(&FitEvent),
    ) -> Result<FitReport> {
        self.fits += 1;
        Ok(FitReport {
            steps: 0,
            epochs: 0.0,
            samples: train.sample_index(self.window).len(),
            seconds: 0.0,
            samples_per_s: 0.0,
            train_loss: f64::NAN,
            valid_rmse_rad: None,
            best_step: 0,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        ModelFile::new(ModelKind::Mock, self.dof, self.window, self, None)?.write(dir)
    }
}
