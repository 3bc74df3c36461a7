//! The LEAP Hand driver: 16 XC330-M288-T servos (IDs 0–15) on one bus.
//!
//! Start-up follows the LEAP Hand API (`leap-hand/LEAP_Hand_API`): current-based
//! position mode (5), position P = 600 (0.75 × on the side-to-side joints, IDs
//! 0, 4, 8), I = 0, D = 200, and the current cap (350 mA) written to Goal
//! Current. One Fast Sync Read of Present Current, Velocity and Position
//! (address 126, 10 bytes) reads the hand each tick; one Sync Write of Goal
//! Position (116, 4 bytes) commands it.
//!
//! **Angle convention.** Joint `i` of [`dex_core::HandModel::leap_right`] drives
//! servo ID `i`. Joint angles follow the simulation convention (0 = open hand,
//! positive closes); the servo reads `joint angle + π + offset[i]` (2,048 ticks =
//! open, as the LEAP Hand API's "LEAPhand" convention), where `offset` is the
//! per-joint calibration. Conversions are done in two's complement on all 32
//! bits; the reference Python API's off-by-one on negative values and its 1.34
//! current scale (meant for XH servos) are not repeated: the XC330 reports 1 mA
//! per unit.

use std::f64::consts::PI;
use std::time::Duration;

use dex_core::{HandModel, JointState, JointTargets};

use crate::bus::DynamixelBus;
use crate::control_table::{self as ct, mode};
use crate::driver::{DriverState, HandDriver, check_targets};
use crate::error::{Error, Result};
use crate::transport::Transport;

/// Settings of the LEAP Hand driver.
#[derive(Debug, Clone, PartialEq)]
pub struct LeapConfig {
    /// Servo ID of each joint, in model order (0–15 on a stock hand).
    pub ids: Vec<u8>,
    /// Position P gain (address 84).
    pub kp: u16,
    /// Position I gain (address 82).
    pub ki: u16,
    /// Position D gain (address 80).
    pub kd: u16,
    /// Scale of the gains of the side-to-side joints (IDs 0, 4, 8 on a stock hand).
    pub side_gain_scale: f64,
    /// Which joints are side-to-side joints (model indices).
    pub side_joints: Vec<usize>,
    /// Current cap written to Goal Current (mA).
    pub current_cap_ma: u16,
    /// Return Delay Time (2 µs units); the LEAP readme recommends 0 (default 250).
    pub return_delay: u8,
    /// Servo Bus Watchdog: the servos stop if no instruction arrives for this long
    /// while torque is on (rounded up to 20 ms steps, at most 2.54 s; `None` = off).
    pub bus_watchdog: Option<Duration>,
    /// Calibration offsets (rad) added to each joint's servo angle.
    pub offsets: Vec<f64>,
    /// Torque per ampere (N·m/A), to report effort from current; 0.93 / 1.80
    /// from the XC330-M288-T stall figures. XC330s measure supply current, so
    /// this is an estimate.
    pub torque_constant: f64,
    /// Expected model number (1240, XC330-M288-T); `None` skips the check.
    pub expected_model: Option<u16>,
}

impl Default for LeapConfig {
    fn default() -> Self {
        Self {
            ids: (0..16).collect(),
            kp: 600,
            ki: 0,
            kd: 200,
            side_gain_scale: 0.75,
            side_joints: vec![0, 4, 8],
            current_cap_ma: 350,
            return_delay: 0,
            bus_watchdog: Some(Duration::from_millis(200)),
            offsets: vec![0.0; 16],
            torque_constant: 0.93 / 1.80,
            expected_model: Some(ct::XC330_M288_MODEL),
        }
    }
}

/// Bytes per servo in the state read: Present Current (2), Velocity (4), Position (4).
const STATE_LEN: u16 = 10;

/// The LEAP Hand over a Dynamixel bus.
pub struct LeapHand<T: Transport> {
    bus: DynamixelBus<T>,
    config: LeapConfig,
    names: Vec<String>,
    limits: Vec<(f64, f64)>,
    state: DriverState,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

impl<T: Transport> std::fmt::Debug for LeapHand<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeapHand")
            .field("state", &self.state)
            .field("ids", &self.config.ids)
            .finish()
    }
}

impl<T: Transport> LeapHand<T> {
    /// Connects: pings every servo and checks its model number. Writes nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a configuration that does not fit the
    /// model, [`Error::MissingServo`], [`Error::WrongModel`], bus errors.
    pub fn open(port: T, config: LeapConfig) -> Result<Self> {
        let model = HandModel::leap_right();
        let names: Vec<String> = model.joint_names().iter().map(|s| s.to_string()).collect();
        if config.ids.len() != names.len() || config.offsets.len() != names.len() {
            return Err(Error::InvalidArgument {
                message: format!(
                    "the LEAP Hand has {} joints: got {} IDs and {} offsets",
                    names.len(),
                    config.ids.len(),
                    config.offsets.len()
                ),
            });
        }
        if let Some(w) = config.bus_watchdog
            && (w.is_zero() || w > Duration::from_millis(127 * 20))
        {
            return Err(Error::InvalidArgument {
                message: format!("bus watchdog {w:?} is outside 20 ms ..= 2.54 s"),
            });
        }
        if config.offsets.iter().any(|o| !o.is_finite()) {
            return Err(Error::InvalidArgument {
                message: "calibration offsets must be finite".into(),
            });
        }
        let limits = model
            .joint_limits()
            .iter()
            .map(|l| (l.lower, l.upper))
            .collect();
        let mut bus = DynamixelBus::new(port);
        for &id in &config.ids {
            let reply = bus.ping(id).map_err(|e| match e {
                Error::Timeout { .. } => Error::MissingServo { id },
                other => other,
            })?;
            if let Some(expected) = config.expected_model
                && reply.model != expected
            {
                return Err(Error::WrongModel {
                    id,
                    model: reply.model,
                    expected,
                });
            }
        }
        let n = config.ids.len();
        Ok(Self {
            bus,
            config,
            names,
            limits,
            state: DriverState::Opened,
            rx: vec![0; n * usize::from(STATE_LEN)],
            tx: vec![0; n * 4],
        })
    }

    /// The configuration.
    pub fn config(&self) -> &LeapConfig {
        &self.config
    }

    /// The bus, for direct access (diagnostics, calibration).
    pub fn bus_mut(&mut self) -> &mut DynamixelBus<T> {
        &mut self.bus
    }

    /// Joint limits of the model (rad), in model order.
    pub fn joint_limits(&self) -> &[(f64, f64)] {
        &self.limits
    }

    /// Servo ticks for joint `i` at angle `q` (rad).
    pub fn joint_to_ticks(&self, i: usize, q: f64) -> i32 {
        ((q + PI + self.config.offsets[i]) / ct::RAD_PER_TICK).round() as i32
    }

    /// Joint angle (rad) of joint `i` for servo ticks.
    pub fn ticks_to_joint(&self, i: usize, ticks: i32) -> f64 {
        f64::from(ticks) * ct::RAD_PER_TICK - PI - self.config.offsets[i]
    }

    /// Sync-writes one value per servo of a 1-, 2- or 4-byte item.
    fn sync_write_values(&mut self, item: ct::Item, values: &[i64]) -> Result<()> {
        let data: Vec<u8> = values
            .iter()
            .flat_map(|&v| ct::to_bytes(v, item.size))
            .collect();
        let ids = self.config.ids.clone();
        self.bus.sync_write(item.address, item.size, &ids, &data)
    }

    fn sync_write_all(&mut self, item: ct::Item, value: i64) -> Result<()> {
        let values = vec![value; self.config.ids.len()];
        self.sync_write_values(item, &values)
    }

    /// Reads one item from every servo (Fast Sync Read).
    fn read_all(&mut self, item: ct::Item) -> Result<Vec<i64>> {
        let ids = self.config.ids.clone();
        let mut out = vec![0u8; ids.len() * usize::from(item.size)];
        self.bus
            .fast_sync_read(item.address, item.size, &ids, &mut out)?;
        Ok(out
            .chunks_exact(usize::from(item.size))
            .map(|c| ct::from_bytes(c, item.signed))
            .collect())
    }

    fn verify_all(&mut self, item: ct::Item, expected: &[i64], what: &str) -> Result<()> {
        let got = self.read_all(item)?;
        for ((&id, g), e) in self.config.ids.iter().zip(&got).zip(expected) {
            if g != e {
                return Err(Error::UnexpectedReply {
                    message: format!("servo {id}: {what} reads {g} after writing {e}"),
                });
            }
        }
        Ok(())
    }

    /// Turns torque off, best effort, after an error; keeps the first error.
    fn fault(&mut self, error: Error) -> Error {
        if self.state == DriverState::Enabled {
            let _ = self.sync_write_all(ct::TORQUE_ENABLE, 0);
            tracing::warn!("LEAP Hand: torque off after error: {error}");
        }
        self.state = DriverState::Faulted;
        match error {
            Error::HardwareError { id, .. } => {
                let bits = self.bus.hardware_error_status(id).unwrap_or(0);
                Error::HardwareError {
                    id,
                    hardware_error: bits,
                }
            }
            e => e,
        }
    }

    fn configure_inner(&mut self) -> Result<()> {
        let n = self.config.ids.len();
        // Torque off first: EEPROM items are writable only then. Clearing the bus
        // watchdog also re-opens goal writes after it tripped.
        self.sync_write_all(ct::TORQUE_ENABLE, 0)?;
        self.sync_write_all(ct::BUS_WATCHDOG, 0)?;
        self.sync_write_all(ct::RETURN_DELAY_TIME, i64::from(self.config.return_delay))?;
        self.sync_write_all(ct::OPERATING_MODE, i64::from(mode::CURRENT_BASED_POSITION))?;
        let gain = |base: u16, i: usize, cfg: &LeapConfig| -> i64 {
            if cfg.side_joints.contains(&i) {
                (f64::from(base) * cfg.side_gain_scale).round() as i64
            } else {
                i64::from(base)
            }
        };
        let cfg = self.config.clone();
        let kp: Vec<i64> = (0..n).map(|i| gain(cfg.kp, i, &cfg)).collect();
        let kd: Vec<i64> = (0..n).map(|i| gain(cfg.kd, i, &cfg)).collect();
        let ki: Vec<i64> = (0..n).map(|i| gain(cfg.ki, i, &cfg)).collect();
        self.sync_write_values(ct::POSITION_P_GAIN, &kp)?;
        self.sync_write_values(ct::POSITION_I_GAIN, &ki)?;
        self.sync_write_values(ct::POSITION_D_GAIN, &kd)?;
        self.sync_write_all(ct::GOAL_CURRENT, i64::from(cfg.current_cap_ma))?;
        // Sync Write has no reply: read back what matters.
        self.verify_all(
            ct::OPERATING_MODE,
            &vec![i64::from(mode::CURRENT_BASED_POSITION); n],
            "operating mode",
        )?;
        self.verify_all(ct::POSITION_P_GAIN, &kp, "position P gain")?;
        self.verify_all(
            ct::GOAL_CURRENT,
            &vec![i64::from(cfg.current_cap_ma); n],
            "goal current",
        )?;
        Ok(())
    }

    fn enable_inner(&mut self) -> Result<()> {
        // Hold the present pose: goal = present, then torque on, then the watchdog.
        let present = self.read_all(ct::PRESENT_POSITION)?;
        self.sync_write_values(ct::GOAL_POSITION, &present)?;
        self.sync_write_all(ct::TORQUE_ENABLE, 1)?;
        let n = self.config.ids.len();
        self.verify_all(ct::TORQUE_ENABLE, &vec![1; n], "torque enable")?;
        if let Some(w) = self.config.bus_watchdog {
            let units = w.as_millis().div_ceil(20).clamp(1, 127) as i64;
            self.sync_write_all(ct::BUS_WATCHDOG, units)?;
        }
        Ok(())
    }

    fn read_inner(&mut self) -> Result<JointState> {
        let ids = self.config.ids.clone();
        let mut rx = std::mem::take(&mut self.rx);
        let r = self
            .bus
            .fast_sync_read(ct::PRESENT_CURRENT.address, STATE_LEN, &ids, &mut rx);
        let result = r.map(|()| {
            let n = ids.len();
            let mut state = JointState::zeros(n);
            for (i, c) in rx.chunks_exact(usize::from(STATE_LEN)).enumerate() {
                let current = i16::from_le_bytes([c[0], c[1]]);
                let velocity = i32::from_le_bytes([c[2], c[3], c[4], c[5]]);
                let position = i32::from_le_bytes([c[6], c[7], c[8], c[9]]);
                state.q[i] = self.ticks_to_joint(i, position);
                state.qdot[i] = f64::from(velocity) * ct::RAD_S_PER_VELOCITY_UNIT;
                state.effort[i] =
                    f64::from(current) * ct::AMP_PER_CURRENT_UNIT * self.config.torque_constant;
            }
            state
        });
        self.rx = rx;
        result
    }

    fn write_inner(&mut self, targets: &JointTargets) -> Result<()> {
        for (i, &q) in targets.q.iter().enumerate() {
            let ticks = self.joint_to_ticks(i, q);
            self.tx[4 * i..4 * i + 4].copy_from_slice(&ticks.to_le_bytes());
        }
        let ids = self.config.ids.clone();
        let tx = std::mem::take(&mut self.tx);
        let r = self.bus.sync_write(ct::GOAL_POSITION.address, 4, &ids, &tx);
        self.tx = tx;
        r
    }
}

impl<T: Transport> HandDriver for LeapHand<T> {
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn dof(&self) -> usize {
        self.names.len()
    }

    fn state(&self) -> DriverState {
        self.state
    }

    fn configure(&mut self) -> Result<()> {
        match self.configure_inner() {
            Ok(()) => {
                self.state = DriverState::Configured;
                Ok(())
            }
            Err(e) => Err(self.fault(e)),
        }
    }

    fn enable(&mut self) -> Result<()> {
        if !matches!(self.state, DriverState::Configured | DriverState::Disabled) {
            return Err(Error::InvalidState {
                operation: "enable torque",
                state: self.state.as_str(),
            });
        }
        match self.enable_inner() {
            Ok(()) => {
                self.state = DriverState::Enabled;
                Ok(())
            }
            Err(e) => {
                self.state = DriverState::Enabled; // so that fault() turns torque off
                Err(self.fault(e))
            }
        }
    }

    fn read_state(&mut self) -> Result<JointState> {
        self.read_inner().map_err(|e| self.fault(e))
    }

    fn write_targets(&mut self, targets: &JointTargets) -> Result<()> {
        if self.state != DriverState::Enabled {
            return Err(Error::InvalidState {
                operation: "write targets",
                state: self.state.as_str(),
            });
        }
        check_targets(&self.names, targets)?;
        self.write_inner(targets).map_err(|e| self.fault(e))
    }

    fn disable(&mut self) -> Result<()> {
        self.sync_write_all(ct::TORQUE_ENABLE, 0)?;
        // Sync Write has no reply: confirm, and try once more if a servo missed it.
        let n = self.config.ids.len();
        if self
            .verify_all(ct::TORQUE_ENABLE, &vec![0; n], "torque enable")
            .is_err()
        {
            self.sync_write_all(ct::TORQUE_ENABLE, 0)?;
            self.verify_all(ct::TORQUE_ENABLE, &vec![0; n], "torque enable")?;
        }
        if self.state != DriverState::Faulted {
            self.state = DriverState::Disabled;
        }
        Ok(())
    }
}

impl<T: Transport> Drop for LeapHand<T> {
    fn drop(&mut self) {
        if self.state == DriverState::Enabled
            && let Err(e) = self.sync_write_all(ct::TORQUE_ENABLE, 0)
        {
            tracing::error!("LEAP Hand: torque off on drop failed: {e}");
        }
    }
}
