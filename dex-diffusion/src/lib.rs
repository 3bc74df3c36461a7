#![doc = include_str!("../README.md")]

mod denoiser;
mod error;
mod mock;
mod sampler;
mod schedule;
mod train;

pub use denoiser::{Denoiser, DenoiserConfig, timestep_embedding};
pub use error::{Error, Result};
pub use mock::MockPredictor;
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
