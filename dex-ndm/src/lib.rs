#![doc = include_str!("../README.md")]

mod collect;
pub mod dataset;
mod deploy;
mod error;
mod fit;
mod mock;
mod model;
mod neural;
mod pd;
mod residual;
pub mod synthetic;
mod train;

pub use collect::{
    PolicyRollouts, RandomTargets, ReplayConfig, ReplayReport, SequenceSource, TrackingGap, replay,
    tracking_gap,
};
pub use dataset::{Batch, DataWriter, Dataset, Segment};
pub use deploy::{
    ObjectScene, ReachEpisode, ReachOutcome, RotateEpisode, RotateOutcome, goals_in_hand_frame,
    reach_over_driver, rotate_over_driver,
};
pub use error::{Error, Result};
pub use fit::{FitConfig, FitEvent, FitReport};
pub use mock::MockDynamics;
pub use model::{
    Accuracy, DynamicsModel, MODEL_FILE, ModelKind, Scales, WEIGHTS_FILE, accuracy, load_model,
};
pub use neural::{JointWise, JointWiseConfig, WholeHand, WholeHandConfig};
pub use pd::{FirstOrderPd, JointLag, PdConfig};
pub use residual::{
    ActionUnits, ResidualConfig, ResidualPolicy, ResidualReport, Rollouts, record_rollouts,
    train_residual,
};
pub use train::{Phase, TrainReport, TrainSettings, train_model};

// Foreign crates whose types appear in our signatures.
pub use candle_core;
pub use ndarray;
