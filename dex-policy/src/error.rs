//! The crate's error type.

use thiserror::Error;

/// Everything that can go wrong in dex-policy.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum Error {
    /// An argument is out of its domain (anything the variants below do not name).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A vector or batch has the wrong length or width.
    #[error("{what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was passed (`"observation width"`, `"clip bounds"`, ...).
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A setting is outside its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidSetting {
        /// The setting.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A lock around network variables was poisoned by a panic in another thread.
    #[error("the lock of {what} was poisoned by a panic in another thread")]
    LockPoisoned {
        /// What the lock guards.
        what: &'static str,
    },
    /// An array could not take the shape asked for.
    #[error("array shape: {0}")]
    Shape(#[from] ndarray::ShapeError),
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
    Sim(#[from] dex_sim::Error),
    /// File system.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Shorthand.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidInput(msg.into())
}

/// An [`Error::LengthMismatch`] unless `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}

/// An [`Error::InvalidSetting`].
pub(crate) fn invalid_setting(what: &'static str, reason: impl Into<String>) -> Error {
    Error::InvalidSetting {
        what,
        reason: reason.into(),
    }
}

/// An [`Error::LockPoisoned`] for the variable store.
#[cfg(feature = "candle")]
pub(crate) fn poisoned<T>(_: T) -> Error {
    Error::LockPoisoned {
        what: "the variable store",
    }
}
