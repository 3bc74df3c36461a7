//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in dex-policy.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of its domain (a shape, a setting, a file's contents).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An observation contains NaN or infinity.
    #[error("observation {row} has a non-finite value at index {index}")]
    NonFiniteObservation {
        /// Row (environment) of the batch.
        row: usize,
        /// Index in the observation.
        index: usize,
    },
    /// Training diverged (a loss or a parameter became non-finite).
    #[error("training diverged: {0}")]
    Diverged(String),
    /// A checkpoint could not be read or does not fit.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A dataset directory could not be read or written, or does not fit.
    #[error("dataset {path}: {reason}")]
    Dataset {
        /// The file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// From the tensor library.
    #[cfg(feature = "candle")]
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// From the simulator.
    #[error(transparent)]
    Sim(#[from] dex_sim::SimError),
    /// File system.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}
