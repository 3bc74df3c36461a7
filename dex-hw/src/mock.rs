//! A public mock driver for tests of code that drives a hand.

use dex_core::{JointState, JointTargets};

use crate::driver::{DriverState, HandDriver, check_targets};
use crate::error::{Error, Result};

/// A deterministic stand-in for a hand: positions move a fixed fraction of the
/// way to the last target each read; everything asked of it is recorded.
#[derive(Debug, Clone)]
pub struct MockDriver {
    /// Joint names.
    pub names: Vec<String>,
    /// Lifecycle state.
    pub state: DriverState,
    /// Present positions (rad).
    pub q: Vec<f64>,
    /// Last velocities reported (rad/s per read).
    pub qdot: Vec<f64>,
    /// Fraction of the remaining distance covered at each read (1 = instant).
    pub response: f64,
    /// Every target accepted, in order.
    pub targets: Vec<Vec<f64>>,
    /// Number of `configure` calls.
    pub configure_calls: usize,
    /// Number of `enable` calls.
    pub enable_calls: usize,
    /// Number of `disable` calls.
    pub disable_calls: usize,
    /// Number of `read_state` calls.
    pub read_calls: usize,
    /// When set, the next read fails (simulating a bus error) and the mock faults.
    pub fail_next_read: bool,
}

impl Default for MockDriver {
    fn default() -> Self {
        Self::new(16)
    }
}

impl MockDriver {
    /// A mock of `dof` joints named `j0`, `j1`, … at zero.
    pub fn new(dof: usize) -> Self {
        Self::with_names((0..dof).map(|i| format!("j{i}")).collect())
    }

    /// A mock with the given joint names, at zero.
    pub fn with_names(names: Vec<String>) -> Self {
        let n = names.len();
        Self {
            names,
            state: DriverState::Opened,
            q: vec![0.0; n],
            qdot: vec![0.0; n],
            response: 0.5,
            targets: Vec::new(),
            configure_calls: 0,
            enable_calls: 0,
            disable_calls: 0,
            read_calls: 0,
            fail_next_read: false,
        }
    }

    /// Whether torque is on.
    pub fn torque_on(&self) -> bool {
        self.state == DriverState::Enabled
    }
}

impl HandDriver for MockDriver {
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }
    fn state(&self) -> DriverState {
        self.state
    }
    fn configure(&mut self) -> Result<()> {
        self.configure_calls += 1;
        self.state = DriverState::Configured;
        Ok(())
    }
    fn enable(&mut self) -> Result<()> {
        if !matches!(self.state, DriverState::Configured | DriverState::Disabled) {
            return Err(Error::InvalidState {
                operation: "enable torque",
                state: self.state.as_str(),
            });
        }
        self.enable_calls += 1;
        self.state = DriverState::Enabled;
        Ok(())
    }
    fn read_state(&mut self) -> Result<JointState> {
        self.read_calls += 1;
        if self.fail_next_read {
            self.fail_next_read = false;
            self.state = DriverState::Faulted;
            return Err(Error::Timeout {
                id: None,
                operation: "mock read",
                waited: std::time::Duration::ZERO,
            });
        }
        if let (true, Some(target)) = (self.torque_on(), self.targets.last()) {
            for ((q, qdot), t) in self.q.iter_mut().zip(self.qdot.iter_mut()).zip(target) {
                let step = self.response * (t - *q);
                *qdot = step;
                *q += step;
            }
        } else {
            self.qdot.iter_mut().for_each(|v| *v = 0.0);
        }
        Ok(JointState {
            q: self.q.clone(),
            qdot: self.qdot.clone(),
            effort: vec![0.0; self.q.len()],
        })
    }
    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        if self.state != DriverState::Enabled {
            return Err(Error::InvalidState {
                operation: "write targets",
                state: self.state.as_str(),
            });
        }
        check_targets(&self.names, targets)?;
        self.targets.push(targets.q.clone());
        Ok(())
    }
    fn disable(&mut self) -> Result<()> {
        self.disable_calls += 1;
        if self.state != DriverState::Faulted {
            self.state = DriverState::Disabled;
        }
        Ok(())
    }
}
