//! The `HandDriver` trait: one hand, joint values in radians, a lifecycle.

use dex_core::{JointState, JointTargets};

use crate::error::Result;

/// Where a driver is in its lifecycle.
///
/// ```text
/// open ──configure──▶ Configured ──enable──▶ Enabled ──disable──▶ Disabled
///   │                     ▲                     │                    │
///   └─────────────────────┴──── configure ──────┴────────────────────┘
/// any error while enabled ──▶ Faulted (torque off was attempted)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriverState {
    /// Connected, nothing written yet.
    Opened,
    /// Modes, gains and limits written; torque off.
    Configured,
    /// Torque on: targets are followed.
    Enabled,
    /// Torque turned off by request.
    Disabled,
    /// Torque turned off after an error; `configure` again to recover.
    Faulted,
}

impl DriverState {
    /// Lower-case name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            DriverState::Opened => "opened",
            DriverState::Configured => "configured",
            DriverState::Enabled => "enabled",
            DriverState::Disabled => "disabled",
            DriverState::Faulted => "faulted",
        }
    }
}

/// A dexterous hand: real (over its servo bus), emulated, simulated or mocked.
///
/// The contract:
/// - joint values are radians (and rad/s, N·m) in the order of the hand's
///   [`dex_core::HandModel`]; device units never leave the driver;
/// - `configure` writes modes, gains and limits with torque off and may be
///   called again to recover from [`DriverState::Faulted`]; `enable` turns
///   torque on; `read_state` and `write_targets` run once per control tick;
///   `disable` turns torque off;
/// - a driver turns torque off when dropped, and when a read or write fails
///   while enabled (then reporting [`DriverState::Faulted`]);
/// - every call blocks until the bus exchange is done.
///
/// The receiver model: the methods that talk to the hand take `&mut self`, so one
/// owner drives it at a time, and the trait asks `Send` (a driver can move to a control
/// thread) but not `Sync`. Code that shares a driver between threads (a watchdog, as
/// [`crate::StallGuard`] does) wraps it in a `Mutex`, which is `Sync` for any `Send`
/// driver; drivers themselves need no lock.
pub trait HandDriver: Send {
    /// Joint names, in model order.
    fn joint_names(&self) -> Vec<String>;

    /// Number of joints.
    fn dof(&self) -> usize {
        self.joint_names().len()
    }

    /// Lifecycle state.
    fn state(&self) -> DriverState;

    /// Writes modes, gains and limits, with torque off.
    ///
    /// # Errors
    ///
    /// As the implementation says; the driver stays with torque off.
    fn configure(&mut self) -> Result<()>;

    /// Turns torque on (the hand holds its present pose until the first target).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidState`] unless configured or disabled.
    fn enable(&mut self) -> Result<()>;

    /// Reads positions (rad), velocities (rad/s) and efforts (N·m).
    ///
    /// # Errors
    ///
    /// Bus errors; torque is turned off if the driver was enabled.
    fn read_state(&mut self) -> Result<JointState>;

    /// Sends position targets (rad).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidState`] unless enabled; [`crate::Error::LengthMismatch`]
    /// or [`crate::Error::NonFiniteTarget`] for bad targets (nothing is sent);
    /// bus errors (torque is then turned off).
    fn write_targets(&mut self, targets: &JointTargets) -> Result<()>;

    /// Turns torque off.
    ///
    /// # Errors
    ///
    /// Bus errors.
    fn disable(&mut self) -> Result<()>;
}

impl<D: HandDriver + ?Sized> HandDriver for Box<D> {
    fn joint_names(&self) -> Vec<String> {
        (**self).joint_names()
    }
    fn dof(&self) -> usize {
        (**self).dof()
    }
    fn state(&self) -> DriverState {
        (**self).state()
    }
    fn configure(&mut self) -> Result<()> {
        (**self).configure()
    }
    fn enable(&mut self) -> Result<()> {
        (**self).enable()
    }
    fn read_state(&mut self) -> Result<JointState> {
        (**self).read_state()
    }
    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        (**self).write_targets(targets)
    }
    fn disable(&mut self) -> Result<()> {
        (**self).disable()
    }
}

/// Checks targets before anything is sent: one finite value per joint.
pub(crate) fn check_targets(names: &[String], targets: &JointTargets) -> Result<()> {
    if targets.q.len() != names.len() {
        return Err(crate::Error::LengthMismatch {
            what: "joint targets",
            expected: names.len(),
            got: targets.q.len(),
        });
    }
    if let Some((i, &v)) = targets.q.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(crate::Error::NonFiniteTarget {
            joint: names[i].clone(),
            value: v,
        });
    }
    Ok(())
}
