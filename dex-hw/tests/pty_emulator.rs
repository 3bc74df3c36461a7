//! The emulator on a pseudo-terminal, driven through a real serial port by
//! the LEAP driver, as a USB adapter would be.

#![cfg(all(unix, feature = "serial"))]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::time::Duration;

use dex_hw::emulator::PtyEmulator;
use dex_hw::{
    DynamixelBus, HandDriver, JointTargets, LeapConfig, LeapHand, SerialTransport, ServoBus,
};

#[test]
fn the_leap_driver_runs_over_a_pty() {
    let emulator = PtyEmulator::start(ServoBus::leap_hand()).unwrap();
    let port = SerialTransport::open(emulator.path(), 4_000_000).unwrap();
    let mut hand = LeapHand::open(port, LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    let mut q = vec![0.0; 16];
    q[1] = 0.7;
    let mut state = hand.read_state().unwrap();
    for _ in 0..100 {
        hand.write_targets(&JointTargets::new(q.clone())).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        state = hand.read_state().unwrap();
    }
    assert!(
        (state.q[1] - 0.7).abs() < 0.02,
        "index MCP at {}",
        state.q[1]
    );
    hand.disable().unwrap();
    let bus = emulator.bus();
    assert!(!bus.lock().unwrap().servo(1).unwrap().torque_enabled());
}

#[test]
fn scanning_finds_all_sixteen_servos() {
    let emulator = PtyEmulator::start(ServoBus::leap_hand()).unwrap();
    let mut bus = DynamixelBus::new(SerialTransport::open(emulator.path(), 4_000_000).unwrap());
    let found = bus.broadcast_ping(Duration::from_millis(100)).unwrap();
    assert_eq!(
        found.iter().map(|p| p.id).collect::<Vec<_>>(),
        (0..16).collect::<Vec<u8>>()
    );
    assert!(found.iter().all(|p| p.model == 1240));
}
