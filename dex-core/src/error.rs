//! The error type of `dex-core`.

use std::path::PathBuf;

/// Everything that can go wrong in `dex-core`.
///
/// Model errors name the link or joint at fault, so that a malformed URDF can be
/// fixed from the message alone.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The text is not well-formed XML or not a URDF `<robot>`.
    #[error("malformed URDF: {message}")]
    Urdf {
        /// What the parser reported.
        message: String,
    },
    /// Two links share a name.
    #[error("duplicate link name `{name}`")]
    DuplicateLink {
        /// The repeated name.
        name: String,
    },
    /// Two joints share a name.
    #[error("duplicate joint name `{name}`")]
    DuplicateJoint {
        /// The repeated name.
        name: String,
    },
    /// A joint names a parent or child link that the model does not declare.
    #[error("joint `{joint}` refers to {role} link `{link}`, which is not declared")]
    MissingLink {
        /// The joint.
        joint: String,
        /// `"parent"` or `"child"`.
        role: &'static str,
        /// The missing link name.
        link: String,
    },
    /// A link is the child of more than one joint.
    #[error("link `{link}` is the child of both joint `{first}` and joint `{second}`")]
    MultipleParents {
        /// The link.
        link: String,
        /// The first joint naming it as child.
        first: String,
        /// The second joint naming it as child.
        second: String,
    },
    /// The joints form a cycle (or a cycle disconnected from the root).
    #[error("the kinematic graph has a cycle through link `{link}`")]
    Cycle {
        /// A link on the cycle.
        link: String,
    },
    /// The model has no root link, or more than one.
    #[error("a hand model needs exactly one root link; found {}", if roots.is_empty() { "none".to_string() } else { roots.join(", ") })]
    Root {
        /// The links without a parent joint.
        roots: Vec<String>,
    },
    /// A joint type that is not URDF.
    #[error(
        "joint `{joint}` has unknown type `{kind}` (expected revolute, continuous, prismatic or fixed)"
    )]
    UnknownJointType {
        /// The joint.
        joint: String,
        /// The type given.
        kind: String,
    },
    /// A URDF joint type that hand models do not support.
    #[error(
        "joint `{joint}` has type `{kind}`, which hand models do not support (use revolute, continuous, prismatic or fixed)"
    )]
    UnsupportedJointType {
        /// The joint.
        joint: String,
        /// The type given.
        kind: String,
    },
    /// A number in the model is NaN or infinite where it must be finite.
    #[error("{what} is not finite ({value})")]
    NonFinite {
        /// What the number is, e.g. "origin xyz of joint `if_mcp`".
        what: String,
        /// The value found.
        value: f64,
    },
    /// A joint's lower limit is above its upper limit.
    #[error("joint `{joint}` has lower limit {lower} above upper limit {upper}")]
    InvalidLimits {
        /// The joint.
        joint: String,
        /// Lower limit.
        lower: f64,
        /// Upper limit.
        upper: f64,
    },
    /// A value that must be positive or non-negative is not (a mass, a size, an axis).
    #[error("{what}: {message}")]
    InvalidValue {
        /// What the value is.
        what: String,
        /// Why it is invalid.
        message: String,
    },
    /// A `dex:` extension element of the URDF is malformed.
    #[error("extension element <dex:{element}>: {message}")]
    InvalidExtension {
        /// The element name.
        element: String,
        /// What is wrong.
        message: String,
    },
    /// A name that the model does not know.
    #[error("unknown {kind} `{name}`{}", if known.is_empty() { String::new() } else { format!(" (known: {})", known.join(", ")) })]
    UnknownName {
        /// `"link"`, `"joint"`, `"frame"`, `"hand"`...
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Names that would have been accepted (may be empty).
        known: Vec<String>,
    },
    /// A slice or array has the wrong length.
    #[error("{what}: expected length {expected}, got {got}")]
    LengthMismatch {
        /// What was passed.
        what: &'static str,
        /// The length the model needs.
        expected: usize,
        /// The length given.
        got: usize,
    },
    /// An array has the wrong shape.
    #[error("{what}: expected shape {expected}, got {got:?}")]
    ShapeMismatch {
        /// What was passed.
        what: &'static str,
        /// The expected shape, in words (e.g. `"(T, N, 3)"`).
        expected: String,
        /// The shape given.
        got: Vec<usize>,
    },
    /// An input value is NaN or infinite.
    #[error("{what}[{index}] is not finite ({value})")]
    NonFiniteInput {
        /// What was passed.
        what: &'static str,
        /// Index of the first offending element.
        index: usize,
        /// The value.
        value: f64,
    },
    /// A joint value lies outside the joint's limits.
    #[error("joint `{joint}` value {value} is outside its limits [{lower}, {upper}]")]
    OutOfLimits {
        /// The joint.
        joint: String,
        /// The value given.
        value: f64,
        /// Lower limit.
        lower: f64,
        /// Upper limit.
        upper: f64,
    },
    /// Too few points for a geometric estimate.
    #[error("{what} needs at least {needed} points, got {got}")]
    TooFewPoints {
        /// The estimate.
        what: &'static str,
        /// Minimum number of points.
        needed: usize,
        /// Number given.
        got: usize,
    },
    /// The input is degenerate (e.g. collinear points for a rigid alignment).
    #[error("{what} is degenerate: {message}")]
    Degenerate {
        /// The estimate.
        what: &'static str,
        /// Why.
        message: String,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Checks that every element of `values` is finite.
pub(crate) fn check_finite(what: &'static str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(index) => Err(Error::NonFiniteInput {
            what,
            index,
            value: values[index],
        }),
    }
}

/// Checks that `got == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, got: usize) -> Result<()> {
    if expected == got {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            got,
        })
    }
}
