//! [`FirstOrderPd`]: the analytic floor a learned model must beat.

use std::path::Path;
use std::time::Instant;

use candle_core::{Device, Tensor};
use nalgebra::{Matrix3, Vector3};
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result, data_error};
use crate::fit::{FitConfig, FitEvent, FitReport};
use crate::model::{DynamicsModel, ModelFile, ModelKind, accuracy, check_tensor_history};

/// Settings of [`FirstOrderPd`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PdConfig {
    /// History steps `W` (the model reads two of them and one target; a longer window
    /// only makes it score the same samples as the learned models).
    pub window: usize,
    /// Most control steps of dead time tried per joint (`0..=max_lag`, `< W`).
    pub max_lag: usize,
}

impl Default for PdConfig {
    fn default() -> Self {
        Self {
            window: 10,
            max_lag: 3,
        }
    }
}

/// One joint's fitted parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JointLag {
    /// Fraction of the (delayed) target error closed per step.
    pub gain: f64,
    /// Fraction of the last step's motion carried on.
    pub carry: f64,
    /// Constant drift per step (rad): gravity, a spring, an offset.
    pub bias: f64,
    /// Dead time in control steps: the target that acts is `a_{t−lag}`.
    pub lag: usize,
}

/// A first-order lag with dead time per joint, fitted by least squares:
///
/// `q_{t+1} = q_t + gain·(a_{t−lag} − q_t) + carry·(q_t − q_{t−1}) + bias`
///
/// Four numbers a joint: what a servo under position control does to first order.
/// Fitting again refits from scratch on the new data.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstOrderPd {
    config: PdConfig,
    dof: usize,
    joints: Option<Vec<JointLag>>,
    last_fit: Option<FitReport>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SavedPd {
    config: PdConfig,
    joints: Vec<JointLag>,
}

impl FirstOrderPd {
    /// An unfitted model for `dof` joints.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for no joints, a window under 2 or a lag the window
    /// cannot hold.
    pub fn new(dof: usize, config: PdConfig) -> Result<Self> {
        if dof == 0 || config.window < 2 || config.max_lag >= config.window {
            return Err(Error::InvalidSetting {
                what: "first-order model",
                reason: format!(
                    "needs joints, window ≥ 2 and max_lag < window, got {dof}, {}, {}",
                    config.window, config.max_lag
                ),
            });
        }
        Ok(Self {
            config,
            dof,
            joints: None,
            last_fit: None,
        })
    }

    /// A model with the given parameters.
    ///
    /// # Errors
    ///
    /// As [`FirstOrderPd::new`], and [`Error::InvalidSetting`] for a lag past
    /// `max_lag` or a parameter that is not finite.
    pub fn with_joints(config: PdConfig, joints: Vec<JointLag>) -> Result<Self> {
        let mut m = Self::new(joints.len(), config)?;
        if let Some(j) = joints.iter().position(|j| {
            j.lag > m.config.max_lag || ![j.gain, j.carry, j.bias].iter().all(|v| v.is_finite())
        }) {
            return Err(Error::InvalidSetting {
                what: "first-order parameters",
                reason: format!("joint {j}: {:?}", joints[j]),
            });
        }
        m.joints = Some(joints);
        Ok(m)
    }

    /// The fitted parameters per joint.
    pub fn joints(&self) -> Option<&[JointLag]> {
        self.joints.as_deref()
    }

    pub(crate) fn from_file(dir: &Path, file: &ModelFile) -> Result<Self> {
        let saved: SavedPd = file.settings(dir)?;
        if saved.joints.len() != file.dof || saved.config.window != file.window {
            return Err(data_error(
                &dir.join(crate::model::MODEL_FILE),
                "joints and window disagree with the parameters",
            ));
        }
        let mut m = Self::with_joints(saved.config, saved.joints)
            .map_err(|e| data_error(&dir.join(crate::model::MODEL_FILE), e.to_string()))?;
        m.last_fit = file.fit.clone();
        Ok(m)
    }
}

impl DynamicsModel for FirstOrderPd {
    fn kind(&self) -> ModelKind {
        ModelKind::Pd
    }

    fn dof(&self) -> usize {
        self.dof
    }

    fn window(&self) -> usize {
        self.config.window
    }

    fn forward(&self, q: &Tensor, targets: &Tensor) -> Result<Tensor> {
        check_tensor_history(self, q, targets)?;
        let joints = self
            .joints
            .as_ref()
            .ok_or_else(|| Error::NotFitted("the first-order model has not been fitted".into()))?;
        let (w, d) = (self.config.window, self.dof);
        let mut mask = vec![0f32; w * d];
        for (i, j) in joints.iter().enumerate() {
            mask[(w - 1 - j.lag) * d + i] = 1.0;
        }
        let row = |f: fn(&JointLag) -> f64| {
            let v: Vec<f32> = joints.iter().map(|j| f(j) as f32).collect();
            Tensor::from_vec(v, (1, 1, d), &Device::Cpu)
        };
        let mask = Tensor::from_vec(mask, (1, w, d), &Device::Cpu)?;
        let qt = q.narrow(1, w - 1, 1)?;
        let qp = q.narrow(1, w - 2, 1)?;
        let acting = targets.broadcast_mul(&mask)?.sum_keepdim(1)?;
        let step = acting
            .sub(&qt)?
            .broadcast_mul(&row(|j| j.gain)?)?
            .add(&qt.sub(&qp)?.broadcast_mul(&row(|j| j.carry)?)?)?
            .broadcast_add(&row(|j| j.bias)?)?;
        Ok(qt.add(&step)?.squeeze(1)?)
    }

    fn fit(
        &mut self,
        train: &Dataset,
        valid: &Dataset,
        _config: &FitConfig,
        on_event: &mut dyn FnMut(&FitEvent),
    ) -> Result<FitReport> {
        if train.dof() != self.dof || valid.dof() != self.dof {
            return Err(Error::InvalidSetting {
                what: "dataset",
                reason: format!(
                    "has {} (held-out {}) joints, the model {}",
                    train.dof(),
                    valid.dof(),
                    self.dof
                ),
            });
        }
        let start = Instant::now();
        let (w, d, lags) = (self.config.window, self.dof, self.config.max_lag + 1);
        let index = train.sample_index(w);
        if index.is_empty() {
            return Err(Error::InvalidSetting {
                what: "training data",
                reason: format!("no segment is longer than the {w}-step history"),
            });
        }
        // Normal equations per joint and lag: X'X (3 × 3), X'y, y'y.
        let mut xtx = vec![Matrix3::<f64>::zeros(); d * lags];
        let mut xty = vec![Vector3::<f64>::zeros(); d * lags];
        let mut yty = vec![0f64; d];
        for chunk in index.chunks(4096) {
            let b = train.batch(w, chunk)?;
            for s in 0..b.len {
                let at = |v: &[f32], j: usize, i: usize| f64::from(v[(s * w + j) * d + i]);
                for i in 0..d {
                    let qt = at(&b.q, w - 1, i);
                    let y = f64::from(b.next[s * d + i]) - qt;
                    let v = qt - at(&b.q, w - 2, i);
                    yty[i] += y * y;
                    for lag in 0..lags {
                        let x = Vector3::new(at(&b.targets, w - 1 - lag, i) - qt, v, 1.0);
                        xtx[i * lags + lag] += x * x.transpose();
                        xty[i * lags + lag] += x * y;
                    }
                }
            }
        }
        let n = index.len() as f64;
        let mut joints = Vec::with_capacity(d);
        let mut sse_total = 0.0;
        for i in 0..d {
            let mut best: Option<(f64, JointLag)> = None;
            for lag in 0..lags {
                let a = xtx[i * lags + lag] + Matrix3::identity() * 1e-9 * n;
                let Some(theta) = a.cholesky().map(|c| c.solve(&xty[i * lags + lag])) else {
                    continue;
                };
                let sse = yty[i] - 2.0 * theta.dot(&xty[i * lags + lag])
                    + (theta.transpose() * xtx[i * lags + lag] * theta)[(0, 0)];
                if best.as_ref().is_none_or(|(b, _)| sse < *b) {
                    best = Some((
                        sse,
                        JointLag {
                            gain: theta[0],
                            carry: theta[1],
                            bias: theta[2],
                            lag,
                        },
                    ));
                }
            }
            let (sse, j) = best.ok_or_else(|| Error::InvalidSetting {
                what: "training data",
                reason: format!("joint {i}: the least-squares problem is singular"),
            })?;
            sse_total += sse.max(0.0);
            joints.push(j);
        }
        self.joints = Some(joints);
        let valid_rmse_rad = if valid.sample_index(w).is_empty() {
            None
        } else {
            Some(accuracy(self, valid)?.rmse_rad)
        };
        let seconds = start.elapsed().as_secs_f64();
        let report = FitReport {
            steps: 0,
            epochs: 1.0,
            samples: index.len(),
            seconds,
            samples_per_s: n / seconds.max(1e-9),
            train_loss: sse_total / (n * d as f64),
            valid_rmse_rad,
            best_step: 0,
        };
        on_event(&FitEvent {
            step: 0,
            epoch: 1.0,
            train_loss: report.train_loss,
            valid_rmse_rad,
        });
        self.last_fit = Some(report.clone());
        Ok(report)
    }

    fn save(&self, dir: &Path) -> Result<()> {
        let joints = self
            .joints
            .clone()
            .ok_or_else(|| Error::NotFitted("the first-order model has not been fitted".into()))?;
        let saved = SavedPd {
            config: self.config.clone(),
            joints,
        };
        ModelFile::new(
            ModelKind::Pd,
            self.dof,
            self.config.window,
            &saved,
            self.last_fit.clone(),
        )?
        .write(dir)
    }
}
