#![doc = include_str!("../README.md")]

mod error;
mod mock;
mod sampler;
mod schedule;

pub use error::{Error, Result};
pub use mock::MockPredictor;
pub use sampler::{
    DdimSampler, Guidance, NoisePredictor, add_noise, command_distance, command_distance_gradient,
    gaussian_noise,
};
pub use schedule::NoiseSchedule;

// Foreign crates whose types appear in our signatures.
pub use ndarray;

/// The names most programs need: `use dex_diffusion::prelude::*;`.
pub mod prelude {
    pub use crate::{DdimSampler, Error, Guidance, NoisePredictor, NoiseSchedule, Result};
}
