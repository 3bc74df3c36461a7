//! No unsafe value reaches the bus: each safety layer is shown to stop (or, when
//! configured, correct) a bad command before the servos see it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dex_core::HandModel;
use dex_hw::control_table as ct;
use dex_hw::{
    DriverState, EmulatedPort, Error, HandDriver, JointTargets, LeapConfig, LeapHand, LimitPolicy,
    MockDriver, SafetyConfig, SafetyLimits, ServoBus, StallGuard,
};

fn guarded(
    policy: LimitPolicy,
    max_step: Option<f64>,
) -> (SafetyLimits<LeapHand<EmulatedPort>>, Arc<Mutex<ServoBus>>) {
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let shared = port.bus();
    let hand = LeapHand::open(port, LeapConfig::default()).unwrap();
    let mut config = SafetyConfig::from_model(&HandModel::leap_right(), max_step);
    config.policy = policy;
    let mut hand = SafetyLimits::new(hand, config).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    (hand, shared)
}

fn goals(shared: &Arc<Mutex<ServoBus>>) -> Vec<i64> {
    let bus = shared.lock().unwrap();
    (0..16)
        .map(|id| bus.servo(id).unwrap().get(ct::GOAL_POSITION))
        .collect()
}

#[test]
fn out_of_limit_nan_and_large_steps_are_refused_and_nothing_is_sent() {
    let (mut hand, shared) = guarded(LimitPolicy::Reject, Some(0.1));
    let before = goals(&shared);
    let cases: Vec<(Vec<f64>, &str)> = vec![
        (
            {
                let mut q = vec![0.0; 16];
                q[1] = 2.5;
                q
            },
            "out of limits",
        ),
        (
            {
                let mut q = vec![0.0; 16];
                q[7] = f64::NAN;
                q
            },
            "NaN",
        ),
        (
            {
                let mut q = vec![0.0; 16];
                q[3] = f64::INFINITY;
                q
            },
            "infinite",
        ),
        (
            {
                let mut q = vec![0.0; 16];
                q[2] = 0.3;
                q
            },
            "step of 0.3 rad",
        ),
        (vec![0.0; 12], "wrong length"),
    ];
    for (q, what) in cases {
        let e = hand.write_targets(&JointTargets::new(q)).unwrap_err();
        assert!(
            matches!(
                e,
                Error::OutOfLimits { .. }
                    | Error::NonFiniteTarget { .. }
                    | Error::StepTooLarge { .. }
                    | Error::LengthMismatch { .. }
            ),
            "{what}: {e}"
        );
        assert_eq!(goals(&shared), before, "{what} reached the servos");
    }
    assert_eq!(hand.events().rejected, 5);
    // A small step within limits goes through.
    let mut q = vec![0.0; 16];
    q[2] = 0.05;
    hand.write_targets(&JointTargets::new(q)).unwrap();
    assert_ne!(goals(&shared), before);
    assert_eq!(hand.state(), DriverState::Enabled);
}

#[test]
fn clamping_policy_corrects_instead_and_counts() {
    let (mut hand, shared) = guarded(LimitPolicy::Clamp, Some(0.1));
    let mut q = vec![0.0; 16];
    q[1] = 2.5; // beyond the 2.23 limit and far beyond one step
    hand.write_targets(&JointTargets::new(q)).unwrap();
    let goal = goals(&shared)[1];
    let expected = ((0.1 + std::f64::consts::PI) / ct::RAD_PER_TICK).round() as i64;
    assert!(
        (goal - expected).abs() <= 3,
        "clamped to one step: {goal} vs {expected}"
    );
    assert_eq!(hand.events().clamped, 1);
    assert_eq!(hand.events().step_limited, 1);
    // NaN is never clamped: it is refused.
    let mut nan = vec![0.0; 16];
    nan[0] = f64::NAN;
    assert!(matches!(
        hand.write_targets(&JointTargets::new(nan)),
        Err(Error::NonFiniteTarget { .. })
    ));
}

#[test]
fn the_current_cap_holds_against_a_blocked_finger() {
    let (mut hand, shared) = guarded(LimitPolicy::Reject, None);
    // Block joint 9 with an opposing load and command it far away.
    shared.lock().unwrap().servo_mut(9).unwrap().load_torque = -0.5;
    let mut q = vec![0.0; 16];
    q[9] = 1.5;
    hand.write_targets(&JointTargets::new(q.clone())).unwrap();
    for _ in 0..20 {
        shared.lock().unwrap().advance(0.01);
        let s = hand.read_state().unwrap();
        // Effort = current × torque constant: the 350 mA cap bounds it.
        assert!(
            s.effort[9].abs() <= 0.350 * 0.93 / 1.80 + 1e-3,
            "effort {}",
            s.effort[9]
        );
        hand.write_targets(&JointTargets::new(q.clone())).unwrap();
    }
}

#[test]
fn stall_guard_turns_torque_off_when_the_loop_stops() {
    let port = EmulatedPort::new(ServoBus::leap_hand(), 4_000_000);
    let shared = port.bus();
    let hand = LeapHand::open(port, LeapConfig::default()).unwrap();
    let mut hand = StallGuard::new(hand, Duration::from_millis(60)).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    for _ in 0..5 {
        hand.write_targets(&JointTargets::new(vec![0.0; 16]))
            .unwrap();
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!hand.tripped());
    std::thread::sleep(Duration::from_millis(200)); // the loop stalls
    assert!(hand.tripped());
    assert!((0..16).all(|id| !shared.lock().unwrap().servo(id).unwrap().torque_enabled()));
    let e = hand
        .write_targets(&JointTargets::new(vec![0.0; 16]))
        .unwrap_err();
    assert!(matches!(e, Error::Stalled { .. }), "{e}");
    hand.enable().unwrap();
    hand.write_targets(&JointTargets::new(vec![0.0; 16]))
        .unwrap();
}

#[test]
fn safety_layers_stack_on_the_mock_too() {
    let mock = MockDriver::new(3);
    let config = SafetyConfig {
        limits: vec![(-1.0, 1.0); 3],
        max_step: Some(0.5),
        policy: LimitPolicy::Reject,
    };
    let mut d = SafetyLimits::new(mock, config).unwrap();
    d.configure().unwrap();
    d.enable().unwrap();
    d.write_targets(&JointTargets::new(vec![0.4, 0.0, -0.4]))
        .unwrap();
    assert!(
        d.write_targets(&JointTargets::new(vec![1.2, 0.0, 0.0]))
            .is_err()
    );
    assert_eq!(d.get_ref().targets, vec![vec![0.4, 0.0, -0.4]]);
    assert!(
        SafetyLimits::new(
            MockDriver::new(3),
            SafetyConfig {
                limits: vec![(1.0, -1.0); 3],
                max_step: None,
                policy: LimitPolicy::Clamp
            }
        )
        .is_err()
    );
}
