//! Pre-train on simulated data, fine-tune on the hand's: [`TrainSettings`] and
//! [`train_model`], what `dex ndm train` runs.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::fit::{FitConfig, FitEvent, FitReport};
use crate::model::{DynamicsModel, ModelKind};
use crate::neural::{JointWise, JointWiseConfig, WholeHand, WholeHandConfig};
use crate::pd::{FirstOrderPd, PdConfig};

/// Everything `dex ndm train` reads from its config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSettings {
    /// Fraction of each dataset's segments held out to pick the best parameters
    /// (DexNDM App. C splits its real data 9:1).
    pub holdout: f64,
    /// Fitting on the hand's data (or on the only dataset).
    pub fit: FitConfig,
    /// Fitting on the simulated data first, when there is some.
    pub pretrain: FitConfig,
    /// [`JointWise`]'s settings.
    pub joint: JointWiseConfig,
    /// [`WholeHand`]'s settings.
    pub whole: WholeHandConfig,
    /// [`FirstOrderPd`]'s settings.
    pub pd: PdConfig,
}

impl Default for TrainSettings {
    fn default() -> Self {
        Self {
            holdout: 0.1,
            fit: FitConfig::default(),
            pretrain: FitConfig {
                epochs: 3.0,
                ..FitConfig::default()
            },
            joint: JointWiseConfig::default(),
            whole: WholeHandConfig::default(),
            pd: PdConfig::default(),
        }
    }
}

impl TrainSettings {
    /// A fresh, unfitted model of `kind` for `dof` joints.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for the mock (it is not trained) or bad sizes.
    pub fn model(&self, kind: ModelKind, dof: usize) -> Result<Box<dyn DynamicsModel>> {
        Ok(match kind {
            ModelKind::Joint => Box::new(JointWise::new(dof, self.joint.clone())?),
            ModelKind::Whole => Box::new(WholeHand::new(dof, self.whole.clone())?),
            ModelKind::Pd => Box::new(FirstOrderPd::new(dof, self.pd.clone())?),
            ModelKind::Mock => {
                return Err(Error::InvalidSetting {
                    what: "model kind",
                    reason: "the mock is not trained (joint, whole or pd)".into(),
                });
            }
        })
    }
}

/// Which phase a [`FitEvent`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Fitting on simulated data.
    Pretrain,
    /// Fitting on the hand's data.
    Finetune,
}

impl Phase {
    /// `pretrain` or `finetune`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pretrain => "pretrain",
            Self::Finetune => "finetune",
        }
    }
}

/// What [`train_model`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainReport {
    /// The pre-training fit, when there was simulated data.
    pub pretrain: Option<FitReport>,
    /// The fit on the hand's data.
    pub finetune: FitReport,
}

/// Trains a `kind` model: on `pretrain` first when given (its own held-out part picks
/// the parameters), then on `data`. Each dataset's held-out part is
/// `settings.holdout` of its segments, drawn with `seed`, which also seeds the weights
/// and the batches.
///
/// # Errors
///
/// [`Error::InvalidSetting`] for a hold-out fraction outside `[0, 1)`, datasets of
/// different joints, or the model's own errors.
pub fn train_model(
    settings: &TrainSettings,
    kind: ModelKind,
    data: &Dataset,
    pretrain: Option<&Dataset>,
    seed: u64,
    on_event: &mut dyn FnMut(Phase, &FitEvent),
) -> Result<(Box<dyn DynamicsModel>, TrainReport)> {
    if !(0.0..1.0).contains(&settings.holdout) {
        return Err(Error::InvalidSetting {
            what: "holdout",
            reason: format!("must be in [0, 1), got {}", settings.holdout),
        });
    }
    if let Some(p) = pretrain
        && p.joint_names != data.joint_names
    {
        return Err(Error::InvalidSetting {
            what: "pre-training data",
            reason: format!(
                "its joints {:?} are not the data's {:?}",
                p.joint_names, data.joint_names
            ),
        });
    }
    let mut model = settings.model(kind, data.dof())?;
    let pre = match pretrain {
        Some(p) => {
            let (train, valid) = p.split(settings.holdout, seed);
            let config = FitConfig {
                seed,
                ..settings.pretrain.clone()
            };
            Some(model.fit(&train, &valid, &config, &mut |e| {
                on_event(Phase::Pretrain, e)
            })?)
        }
        None => None,
    };
    let (train, valid) = data.split(settings.holdout, seed);
    let config = FitConfig {
        seed,
        ..settings.fit.clone()
    };
    let fine = model.fit(&train, &valid, &config, &mut |e| {
        on_event(Phase::Finetune, e)
    })?;
    Ok((
        model,
        TrainReport {
            pretrain: pre,
            finetune: fine,
        },
    ))
}
