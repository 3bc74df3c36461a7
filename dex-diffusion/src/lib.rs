#![doc = include_str!("../README.md")]

mod collect;
mod controller;
pub mod dataset;
mod denoiser;
mod error;
mod eval;
mod expert;
mod fit;
mod idm;
mod mock;
mod model;
mod sampler;
mod schedule;
mod train;

pub use collect::{CollectConfig, CollectReport, collect, object_for};
pub use controller::{CommandReference, CommandSteps, DexGenController};
pub use denoiser::{Denoiser, DenoiserConfig, Precision, timestep_embedding};
pub use error::{Error, Result};
pub use eval::{CommandSpec, EpisodeOutcome, EvalConfig, EvalReport, evaluate};
pub use expert::{GraspExpert, TaskSettings};
pub use fit::{FitConfig, FitEvent, FitReport, fit};
pub use idm::{IdmConfig, IdmTrainer, InverseDynamics};
pub use mock::MockPredictor;
pub use model::{DexGen, DexGenConfig, MODEL_FILE, ModelFile, Normalizer};
pub use sampler::{
    DdimSampler, Guidance, NoisePredictor, add_noise, command_distance, command_distance_gradient,
    gaussian_noise,
};
pub use schedule::NoiseSchedule;
pub use train::{DenoiserPredictor, DiffusionTrainer, TrainConfig};

// Foreign crates whose types appear in our signatures.
pub use candle_core;
pub use candle_nn;
pub use ndarray;

/// The names most programs need: `use dex_diffusion::prelude::*;`.
pub mod prelude {
    pub use crate::{
        DdimSampler, Denoiser, DenoiserConfig, DiffusionTrainer, Error, Guidance, NoisePredictor,
        NoiseSchedule, Result, TrainConfig,
    };
}
