//! The error type of `dex-diffusion`.

/// Everything that can go wrong in `dex-diffusion`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting is outside its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidSetting {
        /// The setting.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// A vector or batch has the wrong length or width.
    #[error("{what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was passed.
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// From dex-policy's network building blocks.
    #[error(transparent)]
    Policy(#[from] dex_policy::Error),
    /// From the simulation (task construction, stepping).
    #[error(transparent)]
    Sim(#[from] dex_sim::Error),
    /// A dataset or checkpoint file is missing, truncated or inconsistent.
    #[error("{path}: {reason}")]
    Data {
        /// The file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// From the tensor library.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
    /// A value is NaN or infinite.
    #[error("{what}: value {index} is not finite")]
    NotFinite {
        /// What was passed.
        what: &'static str,
        /// Index of the first bad value (row-major).
        index: usize,
    },
}

impl From<dex_policy::chunk_files::FileError> for Error {
    fn from(e: dex_policy::chunk_files::FileError) -> Self {
        Error::Data {
            path: e.path,
            reason: e.reason,
        }
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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

/// An [`Error::NotFinite`] for the first NaN or infinity in `values`.
pub(crate) fn check_finite<'a>(
    what: &'static str,
    values: impl IntoIterator<Item = &'a f32>,
) -> Result<()> {
    match values.into_iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NotFinite { what, index }),
        None => Ok(()),
    }
}
