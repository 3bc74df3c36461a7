//! The error type of `dex-hw`.

use std::time::Duration;

use crate::protocol::status::StatusError;

/// Everything that can go wrong talking to a hand.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The port or pseudo-terminal failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// No (complete) reply in time.
    #[error("no reply from {} to {operation} within {waited:?}", match id { Some(id) => format!("servo {id}"), None => "the bus".to_string() })]
    Timeout {
        /// The servo asked, if one.
        id: Option<u8>,
        /// The instruction.
        operation: &'static str,
        /// How long we waited.
        waited: Duration,
    },
    /// A packet arrived with a CRC that does not match its bytes.
    #[error("CRC mismatch: computed 0x{expected:04X}, packet says 0x{got:04X}")]
    Crc {
        /// CRC computed over the bytes.
        expected: u16,
        /// CRC carried by the packet.
        got: u16,
    },
    /// A packet is framed correctly but its content makes no sense.
    #[error("malformed packet: {message}")]
    Malformed {
        /// What is wrong.
        message: String,
    },
    /// A reply came from another servo, or with another instruction, than expected.
    #[error("unexpected reply: {message}")]
    UnexpectedReply {
        /// What was expected and what came.
        message: String,
    },
    /// A servo answered with an error number in its status packet.
    #[error("servo {id} reported {error} (status byte 0x{byte:02X})")]
    Status {
        /// The servo.
        id: u8,
        /// The error number.
        error: StatusError,
        /// The whole error byte.
        byte: u8,
    },
    /// A servo raised its alert bit: a hardware error (overload, overheating,
    /// electrical shock, encoder, input voltage); torque is off until a reboot.
    #[error("servo {id} reports a hardware error (Hardware Error Status 0x{hardware_error:02X}: {})", describe_hardware_error(*hardware_error))]
    HardwareError {
        /// The servo.
        id: u8,
        /// Hardware Error Status (address 70), 0 if it could not be read.
        hardware_error: u8,
    },
    /// A servo did not answer a ping at connection.
    #[error("servo {id} is missing from the bus")]
    MissingServo {
        /// The servo.
        id: u8,
    },
    /// A servo of another model than expected.
    #[error("servo {id} is model {model}, expected {expected}")]
    WrongModel {
        /// The servo.
        id: u8,
        /// Its model number.
        model: u16,
        /// The expected model number.
        expected: u16,
    },
    /// A caller's argument is invalid.
    #[error("invalid argument: {message}")]
    InvalidArgument {
        /// What is wrong.
        message: String,
    },
    /// A vector has the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    LengthMismatch {
        /// What was passed.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Given length.
        got: usize,
    },
    /// A target is NaN or infinite.
    #[error("target for joint `{joint}` is not finite ({value})")]
    NonFiniteTarget {
        /// The joint.
        joint: String,
        /// The value.
        value: f64,
    },
    /// A target lies outside the joint's limits.
    #[error("target {value} rad for joint `{joint}` is outside its limits [{lower}, {upper}]")]
    OutOfLimits {
        /// The joint.
        joint: String,
        /// The target.
        value: f64,
        /// Lower limit.
        lower: f64,
        /// Upper limit.
        upper: f64,
    },
    /// A target moves a joint further in one tick than allowed.
    #[error("target for joint `{joint}` moves {step} rad in one tick, more than the allowed {max}")]
    StepTooLarge {
        /// The joint.
        joint: String,
        /// The requested change.
        step: f64,
        /// The allowed change.
        max: f64,
    },
    /// The control loop stalled longer than allowed; torque was turned off.
    #[error("control loop stalled for {elapsed:?} (limit {limit:?}); torque turned off")]
    Stalled {
        /// Time since the last command.
        elapsed: Duration,
        /// The configured limit.
        limit: Duration,
    },
    /// The operation is not allowed in the driver's current state.
    #[error("cannot {operation} while the driver is {state}")]
    InvalidState {
        /// What was attempted.
        operation: &'static str,
        /// The current state.
        state: &'static str,
    },
    /// A hand-model error.
    #[error(transparent)]
    Model(#[from] dex_core::Error),
    /// The physics engine behind emulated servos refused targets or failed to step
    /// (see [`crate::emulator::JointPhysics`]).
    #[error("the physics behind the servos failed: {source}")]
    Physics {
        /// The engine's own error.
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Names the set bits of Hardware Error Status (address 70).
pub fn describe_hardware_error(bits: u8) -> String {
    let names = [
        (0x20, "overload"),
        (0x10, "electrical shock"),
        (0x08, "motor encoder"),
        (0x04, "overheating"),
        (0x01, "input voltage"),
    ];
    let set: Vec<&str> = names
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|(_, n)| *n)
        .collect();
    if set.is_empty() {
        "none".into()
    } else {
        set.join(", ")
    }
}

impl Error {
    /// An I/O error with context.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}
