//! The XC330-M288-T control table: addresses, sizes, units and the servo-side
//! conventions of the LEAP Hand. From the ROBOTIS e-Manual (XC330-M288 page and
//! its shared control-table includes).

/// One item of the control table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    /// Address.
    pub address: u16,
    /// Size in bytes (1, 2 or 4).
    pub size: u16,
    /// Whether the host may write it.
    pub writable: bool,
    /// Whether the value is two's-complement signed.
    pub signed: bool,
}

const fn rw(address: u16, size: u16) -> Item {
    Item {
        address,
        size,
        writable: true,
        signed: false,
    }
}
const fn rw_signed(address: u16, size: u16) -> Item {
    Item {
        address,
        size,
        writable: true,
        signed: true,
    }
}
const fn ro(address: u16, size: u16) -> Item {
    Item {
        address,
        size,
        writable: false,
        signed: false,
    }
}
const fn ro_signed(address: u16, size: u16) -> Item {
    Item {
        address,
        size,
        writable: false,
        signed: true,
    }
}

/// Model Number (R, EEPROM).
pub const MODEL_NUMBER: Item = ro(0, 2);
/// Model Information (R).
pub const MODEL_INFORMATION: Item = ro(2, 4);
/// Firmware Version (R).
pub const FIRMWARE_VERSION: Item = ro(6, 1);
/// ID (EEPROM).
pub const ID: Item = rw(7, 1);
/// Baud Rate (EEPROM): 0 = 9600, 1 = 57,600, 2 = 115,200, 3 = 1 M, 4 = 2 M, 5 = 3 M, 6 = 4 M.
pub const BAUD_RATE: Item = rw(8, 1);
/// Return Delay Time (EEPROM), 2 µs units.
pub const RETURN_DELAY_TIME: Item = rw(9, 1);
/// Drive Mode (EEPROM).
pub const DRIVE_MODE: Item = rw(10, 1);
/// Operating Mode (EEPROM): 0 current, 1 velocity, 3 position, 4 extended position,
/// 5 current-based position, 16 PWM.
pub const OPERATING_MODE: Item = rw(11, 1);
/// Secondary (shadow) ID (EEPROM).
pub const SECONDARY_ID: Item = rw(12, 1);
/// Protocol Type (EEPROM).
pub const PROTOCOL_TYPE: Item = rw(13, 1);
/// Homing Offset (EEPROM), ticks.
pub const HOMING_OFFSET: Item = rw_signed(20, 4);
/// Moving Threshold (EEPROM), 0.229 rpm.
pub const MOVING_THRESHOLD: Item = rw(24, 4);
/// Temperature Limit (EEPROM), °C.
pub const TEMPERATURE_LIMIT: Item = rw(31, 1);
/// Max Voltage Limit (EEPROM), 0.1 V.
pub const MAX_VOLTAGE_LIMIT: Item = rw(32, 2);
/// Min Voltage Limit (EEPROM), 0.1 V.
pub const MIN_VOLTAGE_LIMIT: Item = rw(34, 2);
/// PWM Limit (EEPROM).
pub const PWM_LIMIT: Item = rw(36, 2);
/// Current Limit (EEPROM), mA.
pub const CURRENT_LIMIT: Item = rw(38, 2);
/// Velocity Limit (EEPROM), 0.229 rpm.
pub const VELOCITY_LIMIT: Item = rw(44, 4);
/// Max Position Limit (EEPROM), ticks.
pub const MAX_POSITION_LIMIT: Item = rw(48, 4);
/// Min Position Limit (EEPROM), ticks.
pub const MIN_POSITION_LIMIT: Item = rw(52, 4);
/// Startup Configuration (EEPROM).
pub const STARTUP_CONFIGURATION: Item = rw(60, 1);
/// PWM Slope (EEPROM).
pub const PWM_SLOPE: Item = rw(62, 1);
/// Shutdown (EEPROM): which hardware errors turn torque off.
pub const SHUTDOWN: Item = rw(63, 1);
/// Torque Enable (RAM).
pub const TORQUE_ENABLE: Item = rw(64, 1);
/// LED (RAM).
pub const LED: Item = rw(65, 1);
/// Status Return Level (RAM): 0 ping only, 1 ping + read, 2 all.
pub const STATUS_RETURN_LEVEL: Item = rw(68, 1);
/// Registered Instruction (R).
pub const REGISTERED_INSTRUCTION: Item = ro(69, 1);
/// Hardware Error Status (R).
pub const HARDWARE_ERROR_STATUS: Item = ro(70, 1);
/// Velocity I Gain.
pub const VELOCITY_I_GAIN: Item = rw(76, 2);
/// Velocity P Gain.
pub const VELOCITY_P_GAIN: Item = rw(78, 2);
/// Position D Gain.
pub const POSITION_D_GAIN: Item = rw(80, 2);
/// Position I Gain.
pub const POSITION_I_GAIN: Item = rw(82, 2);
/// Position P Gain.
pub const POSITION_P_GAIN: Item = rw(84, 2);
/// Feedforward 2nd Gain.
pub const FEEDFORWARD_2ND_GAIN: Item = rw(88, 2);
/// Feedforward 1st Gain.
pub const FEEDFORWARD_1ST_GAIN: Item = rw(90, 2);
/// Bus Watchdog, 20 ms units (0 = off).
pub const BUS_WATCHDOG: Item = rw(98, 1);
/// Goal PWM.
pub const GOAL_PWM: Item = rw_signed(100, 2);
/// Goal Current, mA (the current cap in current-based position mode).
pub const GOAL_CURRENT: Item = rw_signed(102, 2);
/// Goal Velocity, 0.229 rpm.
pub const GOAL_VELOCITY: Item = rw_signed(104, 4);
/// Profile Acceleration.
pub const PROFILE_ACCELERATION: Item = rw(108, 4);
/// Profile Velocity.
pub const PROFILE_VELOCITY: Item = rw(112, 4);
/// Goal Position, ticks.
pub const GOAL_POSITION: Item = rw_signed(116, 4);
/// Realtime Tick, ms (R).
pub const REALTIME_TICK: Item = ro(120, 2);
/// Moving (R).
pub const MOVING: Item = ro(122, 1);
/// Moving Status (R).
pub const MOVING_STATUS: Item = ro(123, 1);
/// Present PWM (R).
pub const PRESENT_PWM: Item = ro_signed(124, 2);
/// Present Current, mA (R).
pub const PRESENT_CURRENT: Item = ro_signed(126, 2);
/// Present Velocity, 0.229 rpm (R).
pub const PRESENT_VELOCITY: Item = ro_signed(128, 4);
/// Present Position, ticks (R).
pub const PRESENT_POSITION: Item = ro_signed(132, 4);
/// Velocity Trajectory (R).
pub const VELOCITY_TRAJECTORY: Item = ro_signed(136, 4);
/// Position Trajectory (R).
pub const POSITION_TRAJECTORY: Item = ro_signed(140, 4);
/// Present Input Voltage, 0.1 V (R).
pub const PRESENT_INPUT_VOLTAGE: Item = ro(144, 2);
/// Present Temperature, °C (R).
pub const PRESENT_TEMPERATURE: Item = ro(146, 1);
/// Backup Ready (R).
pub const BACKUP_READY: Item = ro(147, 1);

/// Every named item, in address order.
pub const ITEMS: &[Item] = &[
    MODEL_NUMBER,
    MODEL_INFORMATION,
    FIRMWARE_VERSION,
    ID,
    BAUD_RATE,
    RETURN_DELAY_TIME,
    DRIVE_MODE,
    OPERATING_MODE,
    SECONDARY_ID,
    PROTOCOL_TYPE,
    HOMING_OFFSET,
    MOVING_THRESHOLD,
    TEMPERATURE_LIMIT,
    MAX_VOLTAGE_LIMIT,
    MIN_VOLTAGE_LIMIT,
    PWM_LIMIT,
    CURRENT_LIMIT,
    VELOCITY_LIMIT,
    MAX_POSITION_LIMIT,
    MIN_POSITION_LIMIT,
    STARTUP_CONFIGURATION,
    PWM_SLOPE,
    SHUTDOWN,
    TORQUE_ENABLE,
    LED,
    STATUS_RETURN_LEVEL,
    REGISTERED_INSTRUCTION,
    HARDWARE_ERROR_STATUS,
    VELOCITY_I_GAIN,
    VELOCITY_P_GAIN,
    POSITION_D_GAIN,
    POSITION_I_GAIN,
    POSITION_P_GAIN,
    FEEDFORWARD_2ND_GAIN,
    FEEDFORWARD_1ST_GAIN,
    BUS_WATCHDOG,
    GOAL_PWM,
    GOAL_CURRENT,
    GOAL_VELOCITY,
    PROFILE_ACCELERATION,
    PROFILE_VELOCITY,
    GOAL_POSITION,
    REALTIME_TICK,
    MOVING,
    MOVING_STATUS,
    PRESENT_PWM,
    PRESENT_CURRENT,
    PRESENT_VELOCITY,
    PRESENT_POSITION,
    VELOCITY_TRAJECTORY,
    POSITION_TRAJECTORY,
    PRESENT_INPUT_VOLTAGE,
    PRESENT_TEMPERATURE,
    BACKUP_READY,
];

/// The item that starts at `address`, if any.
pub fn item_at(address: u16) -> Option<Item> {
    ITEMS.iter().copied().find(|i| i.address == address)
}

/// The item that contains `address`, if any.
pub fn item_containing(address: u16) -> Option<Item> {
    ITEMS
        .iter()
        .copied()
        .find(|i| address >= i.address && address < i.address + i.size)
}

/// The first RAM address; everything below is EEPROM, writable only with torque off.
pub const RAM_START: u16 = 64;

/// Model number of the XC330-M288-T.
pub const XC330_M288_MODEL: u16 = 1240;

/// Operating modes (address 11).
pub mod mode {
    /// Current control.
    pub const CURRENT: u8 = 0;
    /// Velocity control.
    pub const VELOCITY: u8 = 1;
    /// Position control (one turn, the default).
    pub const POSITION: u8 = 3;
    /// Extended (multi-turn) position control.
    pub const EXTENDED_POSITION: u8 = 4;
    /// Current-based position control: position control with a current cap.
    pub const CURRENT_BASED_POSITION: u8 = 5;
    /// PWM (voltage) control.
    pub const PWM: u8 = 16;
}

/// Hardware Error Status bits (address 70) and Shutdown bits (address 63).
pub mod hardware_error {
    /// Input voltage out of range.
    pub const INPUT_VOLTAGE: u8 = 0x01;
    /// Overheating.
    pub const OVERHEATING: u8 = 0x04;
    /// Motor encoder failure.
    pub const MOTOR_ENCODER: u8 = 0x08;
    /// Electrical shock.
    pub const ELECTRICAL_SHOCK: u8 = 0x10;
    /// Overload: sustained load beyond the servo's capacity.
    pub const OVERLOAD: u8 = 0x20;
}

/// Encoder ticks per revolution (12-bit, 4096 pulses).
pub const TICKS_PER_REV: f64 = 4096.0;
/// Radians per position tick.
pub const RAD_PER_TICK: f64 = std::f64::consts::TAU / TICKS_PER_REV;
/// Radians per second per velocity unit (0.229 rpm).
pub const RAD_S_PER_VELOCITY_UNIT: f64 = 0.229 * std::f64::consts::TAU / 60.0;
/// Amperes per current unit on the XC330 (1 mA; other X models differ).
pub const AMP_PER_CURRENT_UNIT: f64 = 0.001;

/// Baud rate of a Baud Rate (address 8) value, for the XC330 / XL330.
pub fn baud_rate(value: u8) -> Option<u32> {
    Some(match value {
        0 => 9_600,
        1 => 57_600,
        2 => 115_200,
        3 => 1_000_000,
        4 => 2_000_000,
        5 => 3_000_000,
        6 => 4_000_000,
        _ => return None,
    })
}

/// Sign-extends the low `size` bytes of `raw` (two's complement).
pub fn to_signed(raw: u32, size: u16) -> i32 {
    match size {
        1 => raw as u8 as i8 as i32,
        2 => raw as u16 as i16 as i32,
        _ => raw as i32,
    }
}

/// Little-endian bytes of an item value (two's complement for negative values).
pub fn to_bytes(value: i64, size: u16) -> Vec<u8> {
    value.to_le_bytes()[..usize::from(size)].to_vec()
}

/// The value of little-endian bytes, sign-extended if `signed`.
pub fn from_bytes(bytes: &[u8], signed: bool) -> i64 {
    let mut raw = [0u8; 4];
    let n = bytes.len().min(4);
    raw[..n].copy_from_slice(&bytes[..n]);
    let unsigned = u32::from_le_bytes(raw);
    if signed {
        i64::from(to_signed(unsigned, n as u16))
    } else {
        i64::from(unsigned)
    }
}
