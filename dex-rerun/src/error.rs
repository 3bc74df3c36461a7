//! Errors of a recording.

/// What can go wrong while recording.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Data of the wrong length for the hand or camera being recorded.
    #[error("{what}: expected {expected} values, got {got}")]
    Mismatch {
        /// What was given.
        what: &'static str,
        /// How many the recorder expects.
        expected: usize,
        /// How many it got.
        got: usize,
    },
    /// The recording could not be created or written.
    #[error("recording {path}: {message}")]
    Sink {
        /// The file (or destination) of the recording.
        path: String,
        /// What the recording library said.
        message: String,
    },
    /// The simulator refused a query.
    #[error(transparent)]
    Sim(#[from] dex_sim::Error),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
