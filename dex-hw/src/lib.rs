#![doc = include_str!("../README.md")]

pub mod bus;
pub mod control_loop;
pub mod control_table;
mod driver;
pub mod emulator;
mod error;
mod leap;
mod mock;
pub mod protocol;
pub mod safety;
#[cfg(feature = "sim")]
mod sim_driver;
pub mod transport;

pub use bus::{DynamixelBus, PingReply};
pub use control_loop::{LoopReport, run_control_loop, run_control_loop_while};
pub use driver::{DriverState, HandDriver};
pub use emulator::{EmulatedPort, ServoBus};
pub use error::{Error, Result, describe_hardware_error};
pub use leap::{LeapConfig, LeapHand};
pub use mock::MockDriver;
pub use safety::{LimitPolicy, SafetyConfig, SafetyEvents, SafetyLimits, StallGuard};
#[cfg(feature = "sim")]
pub use sim_driver::SimDriver;
#[cfg(feature = "serial")]
pub use transport::SerialTransport;
pub use transport::Transport;

// Types from dex-core that appear in our signatures.
pub use dex_core::{JointState, JointTargets};

/// The names most programs need: `use dex_hw::prelude::*;`.
pub mod prelude {
    pub use crate::{
        DriverState, DynamixelBus, EmulatedPort, HandDriver, JointState, JointTargets, LeapConfig,
        LeapHand, LimitPolicy, MockDriver, SafetyConfig, SafetyLimits, ServoBus, StallGuard,
        Transport, run_control_loop,
    };
}
