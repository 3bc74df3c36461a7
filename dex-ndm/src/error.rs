//! The error type of `dex-ndm`.

/// Everything that can go wrong in `dex-ndm`.
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
    /// A vector or batch has the wrong length or shape.
    #[error("{what}: expected {expected}, got {got}")]
    LengthMismatch {
        /// What was passed.
        what: &'static str,
        /// The length needed.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what}: value {index} is not finite")]
    NotFinite {
        /// What was passed.
        what: &'static str,
        /// Index of the first bad value (row-major).
        index: usize,
    },
    /// A dataset or model file is missing, truncated, mis-shaped or of another format.
    #[error("{path}: {reason}")]
    Data {
        /// The file or directory.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A model was asked for something it cannot do yet (e.g. predict before `fit`).
    #[error("{0}")]
    NotFitted(String),
    /// From the hand model (kinematics).
    #[error(transparent)]
    Model(#[from] dex_core::Error),
    /// From the hand driver (collection).
    #[error(transparent)]
    Hardware(#[from] dex_hw::Error),
    /// From dex-policy (networks, policies).
    #[error(transparent)]
    Policy(#[from] dex_policy::Error),
    /// From the tensor library.
    #[error("tensor error: {0}")]
    Tensor(#[from] candle_core::Error),
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

/// An [`Error::NotFinite`] for the first NaN or infinity in `values`.
pub(crate) fn check_finite<'a, T: Into<f64> + Copy + 'a>(
    what: &'static str,
    values: impl IntoIterator<Item = &'a T>,
) -> Result<()> {
    match values.into_iter().position(|v| !(*v).into().is_finite()) {
        Some(index) => Err(Error::NotFinite { what, index }),
        None => Ok(()),
    }
}

/// An [`Error::Data`] for `path`.
pub(crate) fn data_error(path: &std::path::Path, reason: impl Into<String>) -> Error {
    Error::Data {
        path: path.display().to_string(),
        reason: reason.into(),
    }
}
