//! [`SimDriver`]: a simulated hand behind the [`HandDriver`] interface, one control
//! period per command.

use dex_core::{JointState, JointTargets};
use dex_sim::Simulator;

use crate::driver::{DriverState, HandDriver, check_targets};
use crate::error::{Error, Result};

/// A [`Simulator`] driven as a hand: `write_targets` sets the PD targets and advances
/// the simulation by one control period (`SimConfig::control_period`), `read_state`
/// reads the joints. No bus, no servo model and no wall clock: the ideal simulation at
/// the speed the engine runs, deterministic, for code written against `HandDriver`
/// (data collection, evaluation) to run on the simulator unchanged.
///
/// Torque off (`disable`, or before `enable`) leaves the joints limp: Kp = 0, the
/// model's damping kept, as `SimJoints` does behind the emulated bus.
///
/// ```
/// use dex_hw::{HandDriver, SimDriver, JointTargets};
/// let model = dex_core::HandModel::leap_right();
/// let sim = dex_sim::MockSimulator::new(model.clone(), dex_sim::SimConfig::for_hand(&model))?;
/// let mut hand = SimDriver::new(Box::new(sim))?;
/// hand.configure()?;
/// hand.enable()?;
/// let mut q = hand.read_state()?.q;
/// q[1] += 0.1;
/// hand.write_targets(&JointTargets::new(q))?;
/// assert!(hand.read_state()?.q[1] > 0.0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SimDriver {
    sim: Box<dyn Simulator>,
    names: Vec<String>,
    state: DriverState,
    kp: Vec<f64>,
    kd: Vec<f64>,
}

impl std::fmt::Debug for SimDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimDriver")
            .field("backend", &self.sim.backend())
            .field("state", &self.state)
            .finish()
    }
}

fn physics(e: dex_sim::Error) -> Error {
    Error::Physics {
        source: Box::new(e),
    }
}

impl SimDriver {
    /// Wraps `sim`, torque off until `enable`.
    ///
    /// # Errors
    ///
    /// [`Error::Physics`] if the simulator refuses the limp gains.
    pub fn new(sim: Box<dyn Simulator>) -> Result<Self> {
        let (kp, kd) = dex_sim::nominal_pd_gains(sim.model());
        let names = sim
            .model()
            .joint_names()
            .into_iter()
            .map(String::from)
            .collect();
        let mut driver = Self {
            sim,
            names,
            state: DriverState::Opened,
            kp,
            kd,
        };
        driver.set_torque(false)?;
        Ok(driver)
    }

    /// The simulator.
    pub fn simulator(&self) -> &dyn Simulator {
        self.sim.as_ref()
    }

    /// The simulator, to change the scene (gravity, objects) between commands.
    pub fn simulator_mut(&mut self) -> &mut dyn Simulator {
        self.sim.as_mut()
    }

    /// Gives the simulator back.
    pub fn into_inner(self) -> Box<dyn Simulator> {
        self.sim
    }

    fn set_torque(&mut self, on: bool) -> Result<()> {
        let kp: Vec<f64> = if on {
            self.kp.clone()
        } else {
            vec![0.0; self.kp.len()]
        };
        self.sim.set_pd_gains(&kp, &self.kd).map_err(physics)
    }

    fn fault(&mut self, e: Error) -> Error {
        if self.state == DriverState::Enabled {
            // Fail safe, as a bus driver does: torque off, best effort.
            let _ = self.set_torque(false);
        }
        self.state = DriverState::Faulted;
        e
    }
}

impl HandDriver for SimDriver {
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn state(&self) -> DriverState {
        self.state
    }

    fn configure(&mut self) -> Result<()> {
        self.set_torque(false)?;
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
        let q = self.sim.joint_state().q;
        self.sim.set_joint_targets(&q).map_err(physics)?;
        self.set_torque(true)?;
        self.state = DriverState::Enabled;
        Ok(())
    }

    fn read_state(&mut self) -> Result<JointState> {
        Ok(self.sim.joint_state())
    }

    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        if self.state != DriverState::Enabled {
            return Err(Error::InvalidState {
                operation: "write targets",
                state: self.state.as_str(),
            });
        }
        check_targets(&self.names, targets)?;
        if let Err(e) = self.sim.set_joint_targets(&targets.q).map_err(physics) {
            return Err(self.fault(e));
        }
        if let Err(e) = self.sim.step().map_err(physics) {
            return Err(self.fault(e));
        }
        Ok(())
    }

    fn disable(&mut self) -> Result<()> {
        self.set_torque(false)?;
        if self.state != DriverState::Faulted {
            self.state = DriverState::Disabled;
        }
        Ok(())
    }
}
