//! The LEAP Hand driver against 16 emulated servos: start-up as the LEAP Hand
//! API does it, targets in radians reach the servos as ticks, the hand follows,
//! and every injected fault ends in a clear error with torque off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::f64::consts::PI;
use std::sync::{Arc, Mutex};

use dex_hw::control_table as ct;
use dex_hw::{
    DriverState, EmulatedPort, Error, HandDriver, JointTargets, LeapConfig, LeapHand, ServoBus,
};

fn leap() -> (LeapHand<EmulatedPort>, Arc<Mutex<ServoBus>>) {
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let shared = port.bus();
    (LeapHand::open(port, LeapConfig::default()).unwrap(), shared)
}

fn torque(shared: &Arc<Mutex<ServoBus>>) -> Vec<bool> {
    let bus = shared.lock().unwrap();
    (0..16)
        .map(|id| bus.servo(id).unwrap().torque_enabled())
        .collect()
}

#[test]
fn configure_writes_the_leap_settings() {
    let (mut hand, shared) = leap();
    assert_eq!(hand.state(), DriverState::Opened);
    hand.configure().unwrap();
    assert_eq!(hand.state(), DriverState::Configured);
    let bus = shared.lock().unwrap();
    for id in 0..16u8 {
        let s = bus.servo(id).unwrap();
        assert_eq!(s.get(ct::OPERATING_MODE), 5, "servo {id}");
        assert_eq!(s.get(ct::GOAL_CURRENT), 350);
        assert_eq!(s.get(ct::RETURN_DELAY_TIME), 0);
        let side = [0, 4, 8].contains(&id);
        assert_eq!(s.get(ct::POSITION_P_GAIN), if side { 450 } else { 600 });
        assert_eq!(s.get(ct::POSITION_D_GAIN), if side { 150 } else { 200 });
        assert!(!s.torque_enabled());
    }
}

#[test]
fn targets_in_radians_drive_the_hand_and_state_reads_back() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    assert!(torque(&shared).iter().all(|&t| t));
    // The open hand reads zero in the model's convention (servos at π).
    let s0 = hand.read_state().unwrap();
    assert!(s0.q.iter().all(|q| q.abs() < 2e-3), "{:?}", s0.q);
    let mut target = vec![0.0; 16];
    target[1] = 0.8; // index MCP forward = motor ID 1
    target[13] = -0.2; // thumb, a negative angle
    hand.write_targets(&JointTargets::new(target.clone()))
        .unwrap();
    {
        let bus = shared.lock().unwrap();
        assert_eq!(
            bus.servo(1).unwrap().get(ct::GOAL_POSITION),
            ((0.8 + PI) / ct::RAD_PER_TICK).round() as i64
        );
        assert_eq!(
            bus.servo(13).unwrap().get(ct::GOAL_POSITION),
            ((-0.2 + PI) / ct::RAD_PER_TICK).round() as i64
        );
    }
    // A 50 Hz loop for one second (the servo bus watchdog needs the host to keep talking).
    let mut s = hand.read_state().unwrap();
    for _ in 0..50 {
        shared.lock().unwrap().advance(0.02);
        s = hand.read_state().unwrap();
    }
    for (i, (q, t)) in s.q.iter().zip(&target).enumerate() {
        assert!((q - t).abs() < 0.01, "joint {i}: {q} vs {t}");
    }
    hand.disable().unwrap();
    assert_eq!(hand.state(), DriverState::Disabled);
    assert!(torque(&shared).iter().all(|&t| !t));
}

#[test]
fn lifecycle_is_enforced_and_drop_turns_torque_off() {
    let (mut hand, shared) = leap();
    assert!(matches!(
        hand.write_targets(&JointTargets::new(vec![0.0; 16])),
        Err(Error::InvalidState { .. })
    ));
    assert!(matches!(hand.enable(), Err(Error::InvalidState { .. })));
    hand.configure().unwrap();
    hand.enable().unwrap();
    assert!(matches!(
        hand.write_targets(&JointTargets::new(vec![0.0; 15])),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = vec![0.0; 16];
    nan[5] = f64::NAN;
    let e = hand.write_targets(&JointTargets::new(nan)).unwrap_err();
    assert!(
        matches!(&e, Error::NonFiniteTarget { joint, .. } if joint == "mf_mcp"),
        "{e}"
    );
    assert_eq!(
        hand.state(),
        DriverState::Enabled,
        "refused input does not fault the driver"
    );
    drop(hand);
    assert!(torque(&shared).iter().all(|&t| !t), "torque off on drop");
}

#[test]
fn a_missing_servo_is_reported_at_open() {
    let mut bus = ServoBus::leap_hand();
    bus.faults.missing_ids.insert(9);
    let e = LeapHand::open(EmulatedPort::new(bus, 4_000_000), LeapConfig::default()).unwrap_err();
    assert!(matches!(e, Error::MissingServo { id: 9 }), "{e}");
}

#[test]
fn a_servo_that_drops_out_mid_run_faults_the_driver_with_torque_off() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    shared.lock().unwrap().faults.missing_ids.insert(4);
    let e = hand.read_state().unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert_eq!(hand.state(), DriverState::Faulted);
    let bus = shared.lock().unwrap();
    for id in (0..16).filter(|&id| id != 4) {
        assert!(
            !bus.servo(id).unwrap().torque_enabled(),
            "servo {id} still has torque"
        );
    }
}

#[test]
fn corrupted_and_dropped_replies_are_errors_and_recovery_works() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    shared.lock().unwrap().faults.corrupt_reply = 1.0;
    let e = hand.read_state().unwrap_err();
    assert!(
        matches!(e, Error::Crc { .. } | Error::Timeout { .. }),
        "{e}"
    );
    assert_eq!(hand.state(), DriverState::Faulted);
    // Garbage before replies alone is harmless.
    shared.lock().unwrap().faults = dex_hw::emulator::Faults {
        garbage_before_reply: 7,
        ..Default::default()
    };
    hand.configure().unwrap();
    hand.enable().unwrap();
    hand.read_state().unwrap();
    shared.lock().unwrap().faults.drop_reply = 1.0;
    assert!(matches!(hand.read_state(), Err(Error::Timeout { .. })));
    assert_eq!(hand.state(), DriverState::Faulted);
}

#[test]
fn late_replies_time_out() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    shared.lock().unwrap().faults.reply_delay = 0.05; // 50 ms, beyond the 20 ms timeout
    assert!(matches!(hand.read_state(), Err(Error::Timeout { .. })));
    assert_eq!(hand.state(), DriverState::Faulted);
}

#[test]
fn an_overload_is_reported_with_its_hardware_error_bits() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    shared
        .lock()
        .unwrap()
        .servo_mut(6)
        .unwrap()
        .raise_hardware_error(ct::hardware_error::OVERLOAD);
    let e = hand.read_state().unwrap_err();
    assert!(
        matches!(
            e,
            Error::HardwareError {
                id: 6,
                hardware_error: 0x20
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("overload"));
    assert_eq!(hand.state(), DriverState::Faulted);
    assert!(torque(&shared).iter().all(|&t| !t));
    // Recovery: reboot the servo, configure, enable.
    hand.bus_mut().reboot(6).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    hand.read_state().unwrap();
}

#[test]
fn the_servo_bus_watchdog_is_armed_on_enable() {
    let (mut hand, shared) = leap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    assert_eq!(
        shared
            .lock()
            .unwrap()
            .servo(0)
            .unwrap()
            .get(ct::BUS_WATCHDOG),
        10
    ); // 200 ms
    // The host goes silent: the servos stop on their own and refuse goals.
    shared.lock().unwrap().advance(0.3);
    assert_eq!(
        shared
            .lock()
            .unwrap()
            .servo(0)
            .unwrap()
            .get(ct::BUS_WATCHDOG),
        255
    );
    // Recovery through configure (which clears the watchdog).
    hand.disable().unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
}

#[test]
fn calibration_offsets_shift_the_servo_angle() {
    let mut config = LeapConfig::default();
    config.offsets[2] = 0.1;
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let hand = LeapHand::open(port, config).unwrap();
    assert_eq!(
        hand.joint_to_ticks(2, 0.0),
        ((PI + 0.1) / ct::RAD_PER_TICK).round() as i32
    );
    assert!((hand.ticks_to_joint(2, hand.joint_to_ticks(2, 0.5)) - 0.5).abs() < ct::RAD_PER_TICK);
    let mut bad = LeapConfig::default();
    bad.ids.pop();
    assert!(matches!(
        LeapHand::open(EmulatedPort::new(ServoBus::leap_hand(), 4_000_000), bad),
        Err(Error::InvalidArgument { .. })
    ));
}
