//! The error type of `dex-sim`.

use std::path::PathBuf;

/// Everything that can go wrong in `dex-sim`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An error from the hand model layer.
    #[error(transparent)]
    Core(#[from] dex_core::Error),
    /// A vector argument has the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    LengthMismatch {
        /// What the vector is (`"joint targets"`, `"action"`, ...).
        what: &'static str,
        /// The required length.
        expected: usize,
        /// The given length.
        got: usize,
    },
    /// A value is NaN or infinite.
    #[error("{what}: value {index} is not finite ({value})")]
    NotFinite {
        /// What the vector is.
        what: &'static str,
        /// Index of the first bad value.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A numeric parameter is outside its valid range.
    #[error("invalid {what}: {reason}")]
    InvalidParameter {
        /// The parameter.
        what: &'static str,
        /// Why it is invalid.
        reason: String,
    },
    /// An object index is out of range.
    #[error("no object {index}: the scene has {count} objects")]
    NoSuchObject {
        /// The requested index.
        index: usize,
        /// How many objects the scene holds.
        count: usize,
    },
    /// An object description is unusable (degenerate shape, bad mass, ...).
    #[error("object `{name}`: {reason}")]
    InvalidObject {
        /// The object's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A mesh file is malformed.
    #[error("{path}:{line}: {reason}")]
    Mesh {
        /// The file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A configuration (TOML) could not be parsed or holds an unknown key.
    #[error("invalid configuration: {message}")]
    Config {
        /// What the parser reported.
        message: String,
    },
    /// A user's MJCF file could not be loaded (malformed, a missing include or mesh, a
    /// name that clashes with dex's scene), as MuJoCo's compiler says.
    #[error("MJCF file {path}: {reason}")]
    Mjcf {
        /// The file.
        path: std::path::PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A joint of the hand model has no counterpart in a user's MJCF file under the
    /// name the joint map gives (or the map names a joint the model does not have).
    #[error("MJCF file {path}: {reason}")]
    MjcfJoint {
        /// The file.
        path: std::path::PathBuf,
        /// The joint and what is wrong with it.
        reason: String,
    },
    /// A user's MJCF hand does not move as the hand model does: after the best rigid
    /// placement, a joint anchor or axis of the file lies farther than the tolerance
    /// from the model's.
    #[error(
        "MJCF file {path}: the joints do not match the hand model: `{joint}` is {error_mm:.2} mm off (tolerance {tolerance_mm:.2} mm){hint}"
    )]
    MjcfKinematics {
        /// The file.
        path: std::path::PathBuf,
        /// The model's joint that disagrees most.
        joint: String,
        /// Its distance (mm).
        error_mm: f64,
        /// The tolerance (mm).
        tolerance_mm: f64,
        /// A hint (e.g. an axis that points the other way).
        hint: String,
    },
    /// The hand model uses a feature this backend does not simulate.
    #[error("unsupported by the {backend} backend: {what}")]
    Unsupported {
        /// The backend.
        backend: &'static str,
        /// What is unsupported.
        what: String,
    },
    /// Something was asked of a part of the crate that this build left out.
    #[error("{what} needs dex-sim's `{feature}` feature, which this build does not enable")]
    FeatureDisabled {
        /// The cargo feature that provides it.
        feature: &'static str,
        /// What was asked for.
        what: &'static str,
    },
    /// A saved state was restored into a simulator it does not belong to.
    #[error("state mismatch: {reason}")]
    StateMismatch {
        /// Why the state does not fit.
        reason: String,
    },
    /// The physics produced a non-finite state (the simulation blew up).
    #[error("the simulation diverged at t = {time} s ({what})")]
    Diverged {
        /// Simulated time.
        time: f64,
        /// What became non-finite.
        what: String,
    },
    /// An unknown task, object or policy name.
    #[error("unknown {kind} `{name}` (known: {known})")]
    UnknownName {
        /// `"task"`, `"object"`, ...
        kind: &'static str,
        /// The name given.
        name: String,
        /// The accepted names.
        known: String,
    },
    /// `step` was called on an environment that needs `reset` first.
    #[error("the environment must be reset before it is stepped{reason}")]
    NeedsReset {
        /// Extra detail (may be empty).
        reason: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks a slice's length and finiteness.
pub(crate) fn check_vector(what: &'static str, values: &[f64], expected: usize) -> Result<()> {
    if values.len() != expected {
        return Err(Error::LengthMismatch {
            what,
            expected,
            got: values.len(),
        });
    }
    check_finite(what, values)
}

/// Checks that every value is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(Error::NotFinite {
            what,
            index,
            value: values[index],
        }),
        None => Ok(()),
    }
}
