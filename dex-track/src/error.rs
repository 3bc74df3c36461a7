//! The error type of `dex-track`.

/// Everything that can go wrong while tracking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An input is invalid (empty query list, query outside the image, bad setting).
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// Frames of different sizes in one sequence.
    #[error("frame is {got_width}×{got_height}, the sequence is {width}×{height}")]
    FrameSize {
        /// Width of the sequence.
        width: u32,
        /// Height of the sequence.
        height: u32,
        /// Width of the offending frame.
        got_width: u32,
        /// Height of the offending frame.
        got_height: u32,
    },
    /// The tracker was asked to track before it was initialised.
    #[error("the tracker has no query points yet: call init first")]
    NotInitialized,
    /// A shared-geometry error (Kabsch with too few points, bad shapes...).
    #[error(transparent)]
    Core(#[from] dex_core::Error),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn invalid(message: impl Into<String>) -> Error {
    Error::InvalidInput {
        message: message.into(),
    }
}
