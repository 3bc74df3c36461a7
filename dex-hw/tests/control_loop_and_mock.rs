//! The control loop runner keeps its rate and reports timing; the mock records
//! what it was asked and fails on request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_hw::{
    DriverState, EmulatedPort, Error, HandDriver, JointTargets, LeapConfig, LeapHand, MockDriver,
    ServoBus, run_control_loop,
};

#[test]
fn the_loop_runs_at_its_rate_against_the_mock() {
    let mut mock = MockDriver::new(4);
    mock.configure().unwrap();
    mock.enable().unwrap();
    let report = run_control_loop(&mut mock, 200.0, 40, |k, s| {
        JointTargets::new(s.q.iter().map(|_| 0.01 * k as f64).collect())
    })
    .unwrap();
    assert_eq!(report.cycles, 40);
    assert_eq!(mock.targets.len(), 40);
    assert_eq!(mock.read_calls, 40);
    // 40 ticks at 200 Hz take at least 195 ms; the achieved rate cannot exceed the request.
    assert!(report.achieved_hz <= 201.0, "{report:?}");
    assert!(report.jitter_p50 >= 0.0 && report.jitter_p99 >= report.jitter_p50);
}

#[test]
fn a_driver_error_ends_the_loop_with_it() {
    let mut mock = MockDriver::new(2);
    mock.configure().unwrap();
    mock.enable().unwrap();
    mock.fail_next_read = true;
    let e =
        run_control_loop(&mut mock, 100.0, 5, |_, s| JointTargets::new(s.q.clone())).unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }));
    assert_eq!(mock.state, DriverState::Faulted);
    assert!(run_control_loop(&mut mock, 0.0, 5, |_, s| JointTargets::new(s.q.clone())).is_err());
}

#[test]
fn the_mock_moves_toward_its_targets_deterministically() {
    let mut a = MockDriver::new(2);
    a.configure().unwrap();
    a.enable().unwrap();
    a.write_targets(&JointTargets::new(vec![1.0, -1.0]))
        .unwrap();
    let s1 = a.read_state().unwrap();
    let s2 = a.read_state().unwrap();
    assert_eq!(s1.q, vec![0.5, -0.5]);
    assert_eq!(s2.q, vec![0.75, -0.75]);
    assert!(a.write_targets(&JointTargets::new(vec![0.0])).is_err());
}

#[test]
fn the_leap_hand_follows_a_500_hz_loop_on_the_emulator() {
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let mut hand = LeapHand::open(port, LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    let mut last = None;
    let report = run_control_loop(&mut hand, 500.0, 100, |_, s| {
        last = Some(s.clone());
        let mut q = vec![0.0; 16];
        q[5] = 0.6;
        JointTargets::new(q)
    })
    .unwrap();
    assert_eq!(report.cycles, 100);
    // Emulated time advances with the bus traffic and timeouts, not the wall clock:
    // the finger has started moving toward the target.
    assert!(last.unwrap().q[5] > 0.0);
}
