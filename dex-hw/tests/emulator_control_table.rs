//! The emulated XC330 follows the control table's rules as a client sees them
//! over the bus: access errors, data range and length errors, reboot, status
//! return level, Reg Write / Action, the bus watchdog, and a motor that moves.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_hw::control_table as ct;
use dex_hw::protocol::StatusError;
use dex_hw::{DynamixelBus, EmulatedPort, Error, ServoBus};

fn bus_with(ids: &[u8]) -> DynamixelBus<EmulatedPort> {
    DynamixelBus::new(EmulatedPort::new(
        ServoBus::with_servos(ids.iter().copied(), &[]),
        4_000_000,
    ))
}

fn status_error(r: Result<(), Error>) -> StatusError {
    match r {
        Err(Error::Status { error, .. }) => error,
        other => panic!("expected a status error, got {other:?}"),
    }
}

#[test]
fn ping_reports_the_xc330_and_absent_ids_time_out() {
    let mut bus = bus_with(&[1, 2]);
    let p = bus.ping(1).unwrap();
    assert_eq!((p.id, p.model), (1, 1240));
    assert!(matches!(
        bus.ping(3),
        Err(Error::Timeout { id: Some(3), .. })
    ));
    let all = bus
        .broadcast_ping(std::time::Duration::from_millis(5))
        .unwrap();
    assert_eq!(all.iter().map(|p| p.id).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn eeprom_is_writable_only_with_torque_off() {
    let mut bus = bus_with(&[1]);
    bus.write_value(1, ct::OPERATING_MODE, 5).unwrap();
    assert_eq!(bus.read_value(1, ct::OPERATING_MODE).unwrap(), 5);
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    assert_eq!(
        status_error(bus.write_value(1, ct::OPERATING_MODE, 3)),
        StatusError::Access
    );
    assert_eq!(
        bus.read_value(1, ct::OPERATING_MODE).unwrap(),
        5,
        "nothing was written"
    );
    // RAM stays writable.
    bus.write_value(1, ct::LED, 1).unwrap();
}

#[test]
fn bad_writes_are_refused_with_the_right_error() {
    let mut bus = bus_with(&[1]);
    // Read-only item.
    assert_eq!(
        status_error(bus.write_value(1, ct::PRESENT_POSITION, 5)),
        StatusError::Access
    );
    // Two bytes of a four-byte item.
    assert_eq!(
        status_error(bus.write(1, ct::GOAL_POSITION.address, &[0, 1])),
        StatusError::DataLength
    );
    // Out-of-range values.
    assert_eq!(
        status_error(bus.write_value(1, ct::OPERATING_MODE, 2)),
        StatusError::DataRange
    );
    assert_eq!(
        status_error(bus.write_value(1, ct::TORQUE_ENABLE, 2)),
        StatusError::DataRange
    );
    // Goal position beyond the position limits in position mode.
    assert_eq!(
        status_error(bus.write_value(1, ct::GOAL_POSITION, 5000)),
        StatusError::DataLimit
    );
    // Goal current beyond the current limit.
    assert_eq!(
        status_error(bus.write_value(1, ct::GOAL_CURRENT, 3000)),
        StatusError::DataLimit
    );
    // Undefined address.
    assert_eq!(status_error(bus.write(1, 14, &[0])), StatusError::Access);
}

#[test]
fn reg_write_waits_for_action() {
    let mut bus = bus_with(&[1]);
    bus.reg_write(1, ct::LED.address, &[1]).unwrap();
    assert_eq!(bus.read_value(1, ct::LED).unwrap(), 0);
    assert_eq!(bus.read_value(1, ct::REGISTERED_INSTRUCTION).unwrap(), 1);
    bus.action(1).unwrap();
    assert_eq!(bus.read_value(1, ct::LED).unwrap(), 1);
    // Action without a held write is an instruction error.
    assert_eq!(status_error(bus.action(1)), StatusError::Instruction);
}

#[test]
fn status_return_level_silences_replies() {
    let mut bus = bus_with(&[1]);
    // The level applies from this write on: its own acknowledgement is already silent.
    assert!(matches!(
        bus.write_value(1, ct::STATUS_RETURN_LEVEL, 1),
        Err(Error::Timeout { .. })
    ));
    assert_eq!(bus.read_value(1, ct::STATUS_RETURN_LEVEL).unwrap(), 1);
    // Writes no longer answer: the client times out waiting for the acknowledgement...
    assert!(matches!(
        bus.write_value(1, ct::LED, 1),
        Err(Error::Timeout { .. })
    ));
    // ...but the write happened, and reads and pings still answer.
    assert_eq!(bus.read_value(1, ct::LED).unwrap(), 1);
    bus.write(1, ct::STATUS_RETURN_LEVEL.address, &[0]).ok();
    assert!(matches!(
        bus.read_value(1, ct::LED),
        Err(Error::Timeout { .. })
    ));
    assert!(bus.ping(1).is_ok());
}

#[test]
fn return_delay_time_delays_replies() {
    let port = EmulatedPort::new(ServoBus::with_servos([1], &[]), 4_000_000);
    let shared = port.bus();
    let mut bus = DynamixelBus::new(port);
    let t0 = shared.lock().unwrap().time();
    bus.ping(1).unwrap(); // default 250 × 2 µs = 500 µs
    let slow = shared.lock().unwrap().time() - t0;
    bus.write_value(1, ct::RETURN_DELAY_TIME, 0).unwrap();
    let t1 = shared.lock().unwrap().time();
    bus.ping(1).unwrap();
    let fast = shared.lock().unwrap().time() - t1;
    assert!(
        slow > 450e-6 && fast < 100e-6,
        "slow {slow} s, fast {fast} s"
    );
}

#[test]
fn the_motor_moves_to_its_goal_over_time_not_instantly() {
    let port = EmulatedPort::new(
        ServoBus::with_servos([1], &[std::f64::consts::PI]),
        4_000_000,
    );
    let shared = port.bus();
    let mut bus = DynamixelBus::new(port);
    bus.write_value(1, ct::OPERATING_MODE, 5).unwrap();
    bus.write_value(1, ct::GOAL_CURRENT, 350).unwrap();
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    let start = bus.read_value(1, ct::PRESENT_POSITION).unwrap();
    assert_eq!(start, 2048);
    bus.write_value(1, ct::GOAL_POSITION, 2048 + 400).unwrap();
    let just_after = bus.read_value(1, ct::PRESENT_POSITION).unwrap();
    assert!(just_after < 2048 + 100, "moved too fast: {just_after}");
    shared.lock().unwrap().advance(1.0);
    let later = bus.read_value(1, ct::PRESENT_POSITION).unwrap();
    assert!((later - 2448).abs() <= 10, "did not settle: {later}");
    // The current never exceeded the cap (current-based position mode).
    let current = bus.read_value(1, ct::PRESENT_CURRENT).unwrap();
    assert!(current.abs() <= 350);
    // With torque off a load moves it freely.
    bus.write_value(1, ct::TORQUE_ENABLE, 0).unwrap();
    shared.lock().unwrap().servo_mut(1).unwrap().load_torque = -0.05;
    shared.lock().unwrap().advance(0.2);
    assert!(bus.read_value(1, ct::PRESENT_POSITION).unwrap() < later - 50);
}

#[test]
fn hardware_errors_raise_the_alert_and_only_reboot_clears_them() {
    let port = EmulatedPort::new(ServoBus::with_servos([1], &[]), 4_000_000);
    let shared = port.bus();
    let mut bus = DynamixelBus::new(port);
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    shared
        .lock()
        .unwrap()
        .servo_mut(1)
        .unwrap()
        .raise_hardware_error(ct::hardware_error::OVERLOAD);
    // Every reply carries the alert bit.
    assert!(matches!(
        bus.ping(1),
        Err(Error::HardwareError { id: 1, .. })
    ));
    let s = shared.lock().unwrap().servo(1).unwrap().clone();
    assert!(
        !s.torque_enabled(),
        "overload is in the default Shutdown mask"
    );
    // Torque cannot come back without a reboot.
    let _ = bus.write_value(1, ct::TORQUE_ENABLE, 1);
    assert!(!shared.lock().unwrap().servo(1).unwrap().torque_enabled());
    // Reboot answers (with the alert still set), then clears it.
    let _ = bus.reboot(1);
    assert_eq!(bus.read_value(1, ct::HARDWARE_ERROR_STATUS).unwrap(), 0);
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    assert_eq!(bus.read_value(1, ct::TORQUE_ENABLE).unwrap(), 1);
}

#[test]
fn bus_watchdog_stops_the_servo_and_locks_goals_until_cleared() {
    let port = EmulatedPort::new(
        ServoBus::with_servos([1], &[std::f64::consts::PI]),
        4_000_000,
    );
    let shared = port.bus();
    let mut bus = DynamixelBus::new(port);
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    bus.write_value(1, ct::BUS_WATCHDOG, 5).unwrap(); // 100 ms
    shared.lock().unwrap().advance(0.15);
    assert_eq!(
        bus.read_value(1, ct::BUS_WATCHDOG).unwrap(),
        255,
        "reads -1 when tripped"
    );
    assert_eq!(
        status_error(bus.write_value(1, ct::GOAL_POSITION, 2100)),
        StatusError::DataRange
    );
    bus.write_value(1, ct::BUS_WATCHDOG, 0).unwrap();
    bus.write_value(1, ct::GOAL_POSITION, 2100).unwrap();
}

#[test]
fn reboot_restores_ram_and_keeps_eeprom() {
    let mut bus = bus_with(&[1]);
    bus.write_value(1, ct::OPERATING_MODE, 5).unwrap();
    bus.write_value(1, ct::POSITION_P_GAIN, 600).unwrap();
    bus.write_value(1, ct::TORQUE_ENABLE, 1).unwrap();
    bus.reboot(1).unwrap();
    assert_eq!(bus.read_value(1, ct::TORQUE_ENABLE).unwrap(), 0);
    assert_eq!(bus.read_value(1, ct::POSITION_P_GAIN).unwrap(), 1100);
    assert_eq!(bus.read_value(1, ct::OPERATING_MODE).unwrap(), 5);
}

#[test]
fn sync_and_bulk_reads_return_each_servo() {
    let mut bus = bus_with(&[0, 1, 2]);
    let models = bus
        .sync_read(ct::MODEL_NUMBER.address, 2, &[0, 1, 2])
        .unwrap();
    assert!(models.iter().all(|m| m == &1240u16.to_le_bytes()));
    let mut out = vec![0u8; 6];
    bus.fast_sync_read(ct::MODEL_NUMBER.address, 2, &[2, 0, 1], &mut out)
        .unwrap();
    assert_eq!(out, [0xD8, 0x04, 0xD8, 0x04, 0xD8, 0x04]);
    let items = [
        dex_hw::protocol::BulkReadItem {
            id: 0,
            address: 7,
            length: 1,
        },
        dex_hw::protocol::BulkReadItem {
            id: 2,
            address: 0,
            length: 2,
        },
    ];
    assert_eq!(
        bus.bulk_read(&items).unwrap(),
        vec![vec![0], vec![0xD8, 0x04]]
    );
    assert_eq!(
        bus.fast_bulk_read(&items).unwrap(),
        vec![vec![0], vec![0xD8, 0x04]]
    );
}
