//! One emulated XC330-M288-T: its control table with the real access rules, and a
//! motor that moves like one.

use crate::control_table::{self as ct, Item, mode};
use crate::protocol::StatusError;

/// Size of the emulated control table (addresses 0..=227).
pub(crate) const TABLE_SIZE: usize = 228;

/// Physical constants of the emulated motor. The torque and speed figures are
/// the XC330-M288-T spec sheet's (stall 0.93 N·m at 1.80 A, no-load 81 rpm, at
/// 5 V); the inertia and friction are plausible values for a finger joint, not
/// measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MotorModel {
    /// Torque per ampere (N·m/A).
    pub torque_constant: f64,
    /// Stall torque (N·m).
    pub stall_torque: f64,
    /// No-load speed (rad/s).
    pub no_load_speed: f64,
    /// Inertia seen at the output, rotor and link (kg·m²).
    pub inertia: f64,
    /// Viscous friction at the output (N·m·s/rad).
    pub viscous_friction: f64,
    /// Integration step (s).
    pub step: f64,
}

impl Default for MotorModel {
    fn default() -> Self {
        Self {
            torque_constant: 0.93 / 1.80,
            stall_torque: 0.93,
            no_load_speed: 81.0 * std::f64::consts::TAU / 60.0,
            inertia: 1.0e-4,
            viscous_friction: 0.01,
            step: 2.5e-4,
        }
    }
}

/// Identity of an emulated servo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServoInfo {
    /// Model number (1240 for the XC330-M288-T).
    pub model: u16,
    /// Firmware version (Fast Sync Read needs 46 or newer on X330).
    pub firmware: u8,
}

impl Default for ServoInfo {
    fn default() -> Self {
        Self {
            model: ct::XC330_M288_MODEL,
            firmware: 52,
        }
    }
}

/// A servo's control law at one instant (see [`Servo::drive`]); the bus may alter it
/// (a delayed goal, gain errors, a dead band) before [`Servo::drive_torque`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Drive {
    pub(crate) position_mode: bool,
    pub(crate) current_mode: bool,
    /// Position gains in mA per tick, mA per tick·s (×1000), mA per tick/ms.
    pub(crate) kp: f64,
    pub(crate) ki: f64,
    pub(crate) kd: f64,
    /// Current Limit and the cap in force (mA).
    pub(crate) limit_ma: f64,
    pub(crate) cap_ma: f64,
    pub(crate) goal_current_ma: f64,
    /// Goal Position (ticks).
    pub(crate) goal: f64,
    /// Position error (ticks) the law ignores, either side of the goal.
    pub(crate) dead_band: f64,
    /// The bus watchdog has stopped the servo.
    pub(crate) stopped: bool,
}

/// One emulated servo.
#[derive(Debug, Clone)]
pub struct Servo {
    table: [u8; TABLE_SIZE],
    info: ServoInfo,
    motor: MotorModel,
    /// Output shaft angle (rad, multi-turn).
    angle: f64,
    /// Output shaft speed (rad/s).
    speed: f64,
    /// Motor current (A).
    current: f64,
    /// Integral of the position error (tick·s).
    integral: f64,
    /// External torque on the output (N·m), e.g. a load or a contact.
    pub load_torque: f64,
    /// Held Reg Write.
    registered: Option<(u16, Vec<u8>)>,
    /// Seconds since the last instruction addressed to this servo.
    since_instruction: f64,
    /// Seconds since boot (for Realtime Tick).
    uptime: f64,
    /// Seconds spent at the current limit (for overload detection).
    saturated_for: f64,
}

/// Defaults of the control table after a factory reset (XC330-M288-T column of
/// the e-Manual's table).
fn factory_table(id: u8, info: ServoInfo) -> [u8; TABLE_SIZE] {
    let mut t = [0u8; TABLE_SIZE];
    let mut set = |item: Item, value: i64| set_item(&mut t, item, value);
    set(ct::MODEL_NUMBER, i64::from(info.model));
    set(ct::FIRMWARE_VERSION, i64::from(info.firmware));
    set(ct::ID, i64::from(id));
    set(ct::BAUD_RATE, 1);
    set(ct::RETURN_DELAY_TIME, 250);
    set(ct::OPERATING_MODE, i64::from(mode::POSITION));
    set(ct::SECONDARY_ID, 255);
    set(ct::PROTOCOL_TYPE, 2);
    set(ct::MOVING_THRESHOLD, 10);
    set(ct::TEMPERATURE_LIMIT, 70);
    set(ct::MAX_VOLTAGE_LIMIT, 70);
    set(ct::MIN_VOLTAGE_LIMIT, 35);
    set(ct::PWM_LIMIT, 885);
    set(ct::CURRENT_LIMIT, 2352);
    set(ct::VELOCITY_LIMIT, 350);
    set(ct::MAX_POSITION_LIMIT, 4095);
    set(ct::MIN_POSITION_LIMIT, 0);
    set(ct::PWM_SLOPE, 140);
    set(ct::SHUTDOWN, 52);
    set(ct::STATUS_RETURN_LEVEL, 2);
    set(ct::PRESENT_INPUT_VOLTAGE, 50);
    set(ct::PRESENT_TEMPERATURE, 30);
    ram_defaults(&mut t);
    t
}

fn set_item(t: &mut [u8; TABLE_SIZE], item: Item, value: i64) {
    let bytes = value.to_le_bytes();
    let a = usize::from(item.address);
    t[a..a + usize::from(item.size)].copy_from_slice(&bytes[..usize::from(item.size)]);
}

/// RAM defaults (what a reboot restores).
fn ram_defaults(t: &mut [u8; TABLE_SIZE]) {
    let pwm_limit = i64::from(u16::from_le_bytes([t[36], t[37]]));
    let current_limit = i64::from(u16::from_le_bytes([t[38], t[39]]));
    let mut set = |item: Item, value: i64| set_item(t, item, value);
    set(ct::TORQUE_ENABLE, 0);
    set(ct::LED, 0);
    set(ct::STATUS_RETURN_LEVEL, 2);
    set(ct::REGISTERED_INSTRUCTION, 0);
    set(ct::HARDWARE_ERROR_STATUS, 0);
    set(ct::VELOCITY_I_GAIN, 1600);
    set(ct::VELOCITY_P_GAIN, 50);
    set(ct::POSITION_D_GAIN, 500);
    set(ct::POSITION_I_GAIN, 0);
    set(ct::POSITION_P_GAIN, 1100);
    set(ct::BUS_WATCHDOG, 0);
    set(ct::GOAL_PWM, pwm_limit);
    set(ct::GOAL_CURRENT, current_limit);
    set(ct::GOAL_VELOCITY, 0);
    set(ct::PROFILE_ACCELERATION, 0);
    set(ct::PROFILE_VELOCITY, 0);
}

impl Servo {
    /// A servo with factory settings and the given ID, at rest at `angle` (rad).
    pub fn new(id: u8, info: ServoInfo, angle: f64) -> Self {
        let mut s = Self {
            table: factory_table(id, info),
            info,
            motor: MotorModel::default(),
            angle,
            speed: 0.0,
            current: 0.0,
            integral: 0.0,
            load_torque: 0.0,
            registered: None,
            since_instruction: 0.0,
            uptime: 0.0,
            saturated_for: 0.0,
        };
        s.sync_present();
        let p = s.get(ct::PRESENT_POSITION);
        s.set(ct::GOAL_POSITION, p);
        s
    }

    /// The motor model, to change the emulated physics.
    pub fn motor_mut(&mut self) -> &mut MotorModel {
        &mut self.motor
    }

    /// Current value of a control-table item.
    pub fn get(&self, item: Item) -> i64 {
        let a = usize::from(item.address);
        ct::from_bytes(&self.table[a..a + usize::from(item.size)], item.signed)
    }

    fn set(&mut self, item: Item, value: i64) {
        set_item(&mut self.table, item, value);
    }

    /// The servo's ID (address 7).
    pub fn id(&self) -> u8 {
        self.table[usize::from(ct::ID.address)]
    }

    /// Output angle (rad), as the encoder sees it before the homing offset.
    pub fn angle(&self) -> f64 {
        self.angle
    }

    /// Output speed (rad/s).
    pub fn speed(&self) -> f64 {
        self.speed
    }

    /// Whether torque is on.
    pub fn torque_enabled(&self) -> bool {
        self.table[usize::from(ct::TORQUE_ENABLE.address)] == 1
    }

    /// Hardware Error Status (address 70).
    pub fn hardware_error(&self) -> u8 {
        self.table[usize::from(ct::HARDWARE_ERROR_STATUS.address)]
    }

    /// The error byte of this servo's status packets (alert bit when a hardware error is set).
    pub(crate) fn alert(&self) -> u8 {
        if self.hardware_error() != 0 { 0x80 } else { 0 }
    }

    /// Raises hardware error bits; the ones selected by Shutdown (63) turn torque off.
    pub fn raise_hardware_error(&mut self, bits: u8) {
        let status = self.hardware_error() | bits;
        self.set(ct::HARDWARE_ERROR_STATUS, i64::from(status));
        if bits & (self.get(ct::SHUTDOWN) as u8) != 0 {
            self.set(ct::TORQUE_ENABLE, 0);
        }
    }

    /// Reboot: RAM back to defaults (torque off, errors cleared), EEPROM kept.
    pub fn reboot(&mut self) {
        ram_defaults(&mut self.table);
        self.registered = None;
        self.integral = 0.0;
        self.current = 0.0;
        self.uptime = 0.0;
        self.saturated_for = 0.0;
        self.sync_present();
        let p = self.get(ct::PRESENT_POSITION);
        self.set(ct::GOAL_POSITION, p);
    }

    /// Factory reset: everything to defaults; `keep_id`, `keep_baud` as the instruction says.
    pub(crate) fn factory_reset(&mut self, keep_id: bool, keep_baud: bool) {
        let id = if keep_id { self.id() } else { 1 };
        let baud = self.table[usize::from(ct::BAUD_RATE.address)];
        self.table = factory_table(id, self.info);
        if keep_baud {
            self.table[usize::from(ct::BAUD_RATE.address)] = baud;
        }
        self.reboot();
    }

    /// Marks that an instruction for this servo arrived (feeds the bus watchdog).
    pub(crate) fn heard(&mut self) {
        self.since_instruction = 0.0;
    }

    /// Reads `length` bytes at `address`.
    pub(crate) fn read(&self, address: u16, length: u16) -> Result<Vec<u8>, StatusError> {
        let (a, n) = (usize::from(address), usize::from(length));
        if n == 0 || a + n > TABLE_SIZE {
            return Err(StatusError::Access);
        }
        Ok(self.table[a..a + n].to_vec())
    }

    /// Checks a write of `data` at `address` against the control table's rules
    /// without applying it.
    pub(crate) fn check_write(&self, address: u16, data: &[u8]) -> Result<(), StatusError> {
        let end = usize::from(address) + data.len();
        if data.is_empty() || end > TABLE_SIZE {
            return Err(StatusError::Access);
        }
        let mut a = address;
        while usize::from(a) < end {
            let Some(item) = ct::item_containing(a) else {
                return Err(StatusError::Access);
            };
            if item.address != a || usize::from(item.address + item.size) > end {
                // Writing part of an item.
                return Err(StatusError::DataLength);
            }
            if !item.writable {
                return Err(StatusError::Access);
            }
            if item.address < ct::RAM_START && self.torque_enabled() {
                return Err(StatusError::Access);
            }
            let off = usize::from(item.address - address);
            let value = ct::from_bytes(&data[off..off + usize::from(item.size)], item.signed);
            self.check_value(item, value)?;
            a += item.size;
        }
        Ok(())
    }

    fn check_value(&self, item: Item, value: i64) -> Result<(), StatusError> {
        let range = |lo: i64, hi: i64| {
            if (lo..=hi).contains(&value) {
                Ok(())
            } else {
                Err(StatusError::DataRange)
            }
        };
        let watchdog_tripped = self.get(ct::BUS_WATCHDOG) == 0xFF;
        match item {
            i if i == ct::ID => range(0, 252),
            i if i == ct::BAUD_RATE => range(0, 6),
            i if i == ct::RETURN_DELAY_TIME => range(0, 254),
            i if i == ct::OPERATING_MODE => match value as u8 {
                mode::CURRENT
                | mode::VELOCITY
                | mode::POSITION
                | mode::EXTENDED_POSITION
                | mode::CURRENT_BASED_POSITION
                | mode::PWM => Ok(()),
                _ => Err(StatusError::DataRange),
            },
            i if i == ct::TORQUE_ENABLE || i == ct::LED => range(0, 1),
            i if i == ct::STATUS_RETURN_LEVEL => range(0, 2),
            i if i == ct::BUS_WATCHDOG => range(0, 127),
            i if i == ct::CURRENT_LIMIT => range(0, 2352),
            i if i == ct::GOAL_CURRENT => {
                if watchdog_tripped {
                    return Err(StatusError::DataRange);
                }
                let limit = self.get(ct::CURRENT_LIMIT);
                if value.abs() > limit {
                    Err(StatusError::DataLimit)
                } else {
                    Ok(())
                }
            }
            i if i == ct::GOAL_POSITION => {
                if watchdog_tripped {
                    return Err(StatusError::DataRange);
                }
                match self.get(ct::OPERATING_MODE) as u8 {
                    mode::POSITION => {
                        let (lo, hi) = (
                            self.get(ct::MIN_POSITION_LIMIT),
                            self.get(ct::MAX_POSITION_LIMIT),
                        );
                        if (lo..=hi).contains(&value) {
                            Ok(())
                        } else {
                            Err(StatusError::DataLimit)
                        }
                    }
                    _ => {
                        if value.abs() <= 1_048_575 {
                            Ok(())
                        } else {
                            Err(StatusError::DataLimit)
                        }
                    }
                }
            }
            i if i == ct::GOAL_VELOCITY || i == ct::GOAL_PWM => {
                if watchdog_tripped {
                    Err(StatusError::DataRange)
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies a write already checked by [`Servo::check_write`].
    pub(crate) fn apply_write(&mut self, address: u16, data: &[u8]) {
        let a = usize::from(address);
        let old_mode = self.get(ct::OPERATING_MODE);
        let torque_was_on = self.torque_enabled();
        self.table[a..a + data.len()].copy_from_slice(data);
        if self.get(ct::OPERATING_MODE) != old_mode {
            // Switching the mode resets the profile and the goal PWM and current to their limits.
            self.set(ct::PROFILE_ACCELERATION, 0);
            self.set(ct::PROFILE_VELOCITY, 0);
            let (pwm, cur) = (self.get(ct::PWM_LIMIT), self.get(ct::CURRENT_LIMIT));
            self.set(ct::GOAL_PWM, pwm);
            self.set(ct::GOAL_CURRENT, cur);
        }
        if !torque_was_on && self.torque_enabled() {
            if self.hardware_error() != 0 {
                // Only a reboot re-enables torque after a shutdown error.
                self.set(ct::TORQUE_ENABLE, 0);
            } else {
                self.integral = 0.0;
                // Torque on holds the present position unless a goal was set.
                let present = self.get(ct::PRESENT_POSITION);
                let goal = self.get(ct::GOAL_POSITION);
                if self.get(ct::OPERATING_MODE) as u8 == mode::POSITION
                    && !(self.get(ct::MIN_POSITION_LIMIT)..=self.get(ct::MAX_POSITION_LIMIT))
                        .contains(&goal)
                {
                    self.set(ct::GOAL_POSITION, present);
                }
            }
        }
        if self.get(ct::BUS_WATCHDOG) == 0 {
            self.since_instruction = 0.0;
        }
    }

    /// Holds a Reg Write until Action.
    pub(crate) fn register(&mut self, address: u16, data: Vec<u8>) {
        self.registered = Some((address, data));
        self.set(ct::REGISTERED_INSTRUCTION, 1);
    }

    /// Executes the held Reg Write; `Err` if there is none.
    pub(crate) fn action(&mut self) -> Result<(), StatusError> {
        let (address, data) = self.registered.take().ok_or(StatusError::Instruction)?;
        self.set(ct::REGISTERED_INSTRUCTION, 0);
        self.check_write(address, &data)?;
        self.apply_write(address, &data);
        Ok(())
    }

    /// Uptime and the bus watchdog.
    fn tick_clock(&mut self, dt: f64) {
        self.uptime += dt;
        let watchdog = self.get(ct::BUS_WATCHDOG);
        if self.torque_enabled() && watchdog > 0 && watchdog != 0xFF {
            self.since_instruction += dt;
            if self.since_instruction > watchdog as f64 * 0.020 {
                // Bus watchdog: stop, and refuse goal writes until 98 is cleared.
                self.set(ct::BUS_WATCHDOG, 0xFF);
                let present = self.get(ct::PRESENT_POSITION);
                self.set(ct::GOAL_POSITION, present);
            }
        }
    }

    /// Advances the clocks only: the shaft belongs to an outside physics engine.
    pub(crate) fn advance_clock(&mut self, dt: f64) {
        if dt > 0.0 {
            self.tick_clock(dt);
            self.sync_present();
        }
    }

    /// Sets the shaft's state from an outside physics engine: angle (rad), speed
    /// (rad/s), motor current (A).
    pub(crate) fn set_measured(&mut self, angle: f64, speed: f64, current: f64) {
        self.angle = angle;
        self.speed = speed;
        self.current = current;
        self.sync_present();
    }

    /// Goal Position := Present Position (as after boot).
    pub(crate) fn hold_present(&mut self) {
        let p = self.get(ct::PRESENT_POSITION);
        self.set(ct::GOAL_POSITION, p);
    }

    /// Goal Position as a shaft angle (rad), before the homing offset.
    pub(crate) fn goal_angle(&self) -> f64 {
        (self.get(ct::GOAL_POSITION) - self.get(ct::HOMING_OFFSET)) as f64 * ct::RAD_PER_TICK
    }

    /// Whether the bus watchdog has stopped the servo.
    pub(crate) fn watchdog_stopped(&self) -> bool {
        self.get(ct::BUS_WATCHDOG) == 0xFF
    }

    /// Position reported by the encoder, in ticks (with the homing offset).
    fn present_ticks(&self) -> f64 {
        self.angle / ct::RAD_PER_TICK + self.get(ct::HOMING_OFFSET) as f64
    }

    fn sync_present(&mut self) {
        let ticks = self.present_ticks().round() as i64;
        let ticks = match self.get(ct::OPERATING_MODE) as u8 {
            // One-turn modes report 0..4095.
            mode::POSITION | mode::VELOCITY => ticks.rem_euclid(4096),
            _ => ticks,
        };
        self.set(ct::PRESENT_POSITION, ticks);
        let vel = (self.speed / ct::RAD_S_PER_VELOCITY_UNIT).round() as i64;
        self.set(ct::PRESENT_VELOCITY, vel);
        let ma = (self.current / ct::AMP_PER_CURRENT_UNIT).round() as i64;
        self.set(ct::PRESENT_CURRENT, ma.clamp(-32768, 32767));
        self.set(
            ct::REALTIME_TICK,
            ((self.uptime * 1000.0) as i64).rem_euclid(32768),
        );
        let moving =
            self.speed.abs() > self.get(ct::MOVING_THRESHOLD) as f64 * ct::RAD_S_PER_VELOCITY_UNIT;
        self.set(ct::MOVING, i64::from(moving));
    }

    /// The control law in force: mode, gains and current cap from the control table.
    pub(crate) fn drive(&self) -> Drive {
        let operating_mode = self.get(ct::OPERATING_MODE) as u8;
        let limit_ma = self.get(ct::CURRENT_LIMIT) as f64;
        let current_capped =
            operating_mode == mode::CURRENT_BASED_POSITION || operating_mode == mode::CURRENT;
        Drive {
            position_mode: matches!(
                operating_mode,
                mode::POSITION | mode::EXTENDED_POSITION | mode::CURRENT_BASED_POSITION
            ),
            current_mode: operating_mode == mode::CURRENT,
            kp: self.get(ct::POSITION_P_GAIN) as f64 / 128.0,
            ki: self.get(ct::POSITION_I_GAIN) as f64 / 65536.0,
            kd: self.get(ct::POSITION_D_GAIN) as f64 / 16.0,
            limit_ma,
            cap_ma: if current_capped {
                (self.get(ct::GOAL_CURRENT).abs() as f64).min(limit_ma)
            } else {
                limit_ma
            },
            goal_current_ma: self.get(ct::GOAL_CURRENT) as f64,
            goal: self.get(ct::GOAL_POSITION) as f64,
            dead_band: 0.0,
            stopped: self.watchdog_stopped(),
        }
    }

    /// The output torque (N·m) the servo applies for the next `h` seconds at its present
    /// angle and speed under `d`, with its integrator, current and overload timer
    /// updated.
    ///
    /// Position modes run the e-Manual's position PID on ticks (KP = P/128,
    /// KI = I/65536, KD = D/16 per tick/ms), read as a current command in mA,
    /// capped by Goal Current in current-based position mode and by Current
    /// Limit, and limited by the motor's torque-speed line. At the Current Limit for
    /// more than 2 s it raises an overload (which turns torque off).
    pub(crate) fn drive_torque(&mut self, d: &Drive, h: f64) -> f64 {
        let m = self.motor;
        let mut command_ma = 0.0;
        if self.torque_enabled() && !d.stopped {
            if d.position_mode {
                let err = d.goal - self.present_ticks();
                let err = err.signum() * (err.abs() - d.dead_band).max(0.0);
                self.integral += err * h;
                let speed_ticks_per_ms = self.speed / ct::RAD_PER_TICK / 1000.0;
                command_ma = d.kp * err + d.ki * self.integral * 1000.0 - d.kd * speed_ticks_per_ms;
            } else if d.current_mode {
                command_ma = d.goal_current_ma;
            }
        } else if self.torque_enabled() && d.stopped {
            // Watchdog stop: brake.
            command_ma = -self.speed / ct::RAD_PER_TICK / 1000.0 * d.kd;
        }
        let saturated = command_ma.abs() >= d.cap_ma && d.cap_ma > 0.0;
        let command_ma = command_ma.clamp(-d.cap_ma, d.cap_ma);
        // Torque–speed line: the motor cannot push beyond its no-load speed.
        let mut torque = command_ma * 1e-3 * m.torque_constant;
        let headroom = (1.0 - self.speed.abs() / m.no_load_speed).max(0.0) * m.stall_torque;
        if torque * self.speed > 0.0 {
            torque = torque.clamp(-headroom, headroom);
        }
        self.current = torque / m.torque_constant;
        if saturated && command_ma.abs() >= d.limit_ma {
            self.saturated_for += h;
        } else {
            self.saturated_for = 0.0;
        }
        if self.saturated_for > 2.0 && self.torque_enabled() {
            self.raise_hardware_error(ct::hardware_error::OVERLOAD);
        }
        torque
    }

    /// Advances the motor by `dt` seconds: [`Servo::drive_torque`] on its own shaft
    /// (inertia, viscous friction and the external load of the [`MotorModel`]).
    pub(crate) fn advance(&mut self, dt: f64) {
        if dt <= 0.0 {
            return;
        }
        self.tick_clock(dt);
        let m = self.motor;
        let steps = (dt / m.step).ceil().max(1.0) as usize;
        let h = dt / steps as f64;
        let d = self.drive();
        for _ in 0..steps {
            let torque = self.drive_torque(&d, h);
            let accel = (torque + self.load_torque - m.viscous_friction * self.speed) / m.inertia;
            self.speed += accel * h;
            self.angle += self.speed * h;
        }
        self.sync_present();
    }
}
