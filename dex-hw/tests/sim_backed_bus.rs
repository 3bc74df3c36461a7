//! The LEAP driver against a servo bus whose shafts are a rapier simulation.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use dex_core::HandModel;
use dex_hw::emulator::{JointPhysics, PhysicsClock, SimJoints};
use dex_hw::{EmulatedPort, HandDriver, JointTargets, LeapConfig, LeapHand, ServoBus};
use dex_sim::{RapierSim, SimConfig, Simulator};

type SharedSim = Arc<Mutex<Box<dyn Simulator>>>;

fn leap_on_sim(clock: PhysicsClock) -> (LeapHand<EmulatedPort>, SharedSim) {
    let model = HandModel::leap_right();
    let config = SimConfig::for_hand(&model);
    let sim = RapierSim::new(model, &[], &[], config).unwrap();
    let joints = SimJoints::new(Box::new(sim));
    let handle = joints.handle();
    let bus = ServoBus::leap_hand_with_physics(Box::new(joints), clock).unwrap();
    let hand = LeapHand::open(EmulatedPort::new(bus, 4_000_000), LeapConfig::default()).unwrap();
    (hand, handle)
}

/// Drives joint 1 (index MCP flexion) to 0.6 rad for `ticks` control ticks; returns the
/// driver's reading of every joint at each tick.
fn flex_index(hand: &mut LeapHand<EmulatedPort>, ticks: usize) -> Vec<Vec<f64>> {
    hand.configure().unwrap();
    hand.enable().unwrap();
    let mut goal = hand.read_state().unwrap().q;
    goal[1] = 0.6;
    (0..ticks)
        .map(|_| {
            hand.write_targets(&JointTargets::new(goal.clone()))
                .unwrap();
            hand.read_state().unwrap().q
        })
        .collect()
}

#[test]
fn goals_written_over_the_bus_move_the_simulated_joint_and_reads_report_it() {
    let (mut hand, sim) = leap_on_sim(PhysicsClock::PerGoalWrite);
    let readings = flex_index(&mut hand, 40);
    let last = readings.last().unwrap();
    // The simulated joint followed the goal (PD with gravity: within a few degrees).
    assert!((last[1] - 0.6).abs() < 0.05, "joint 1 at {}", last[1]);
    // The other joints stayed near the open pose.
    assert!(last[5].abs() < 0.05, "joint 5 at {}", last[5]);
    // What the driver reads is the simulator's state, to the servo's tick (0.088°).
    let truth = sim.lock().unwrap().joint_state();
    for (read, q) in last.iter().zip(&truth.q) {
        assert!((read - q).abs() < 2e-3, "read {read}, simulated {q}");
    }
    // One physics period per goal write: 40 writes (plus the enable's hold) and no more.
    let t = sim.lock().unwrap().time();
    let period = sim.lock().unwrap().config().control_period();
    let steps = (t / period).round() as usize;
    assert!(
        (40..=42).contains(&steps),
        "{steps} physics periods for 40 writes"
    );
}

#[test]
fn the_same_bytes_give_the_same_motion_bit_for_bit() {
    let (mut a, _) = leap_on_sim(PhysicsClock::PerGoalWrite);
    let (mut b, _) = leap_on_sim(PhysicsClock::PerGoalWrite);
    assert_eq!(flex_index(&mut a, 15), flex_index(&mut b, 15));
}

#[test]
fn torque_off_leaves_the_simulated_joints_limp() {
    let (mut hand, sim) = leap_on_sim(PhysicsClock::PerGoalWrite);
    let readings = flex_index(&mut hand, 30);
    assert!(readings.last().unwrap()[1] > 0.5);
    hand.disable().unwrap();
    // Torque off reaches the physics at once: push the finger back and step the
    // simulator directly; the PD no longer pulls it to the old goal of 0.6 rad.
    let mut s = sim.lock().unwrap();
    let mut q = s.joint_state().q;
    q[1] = 0.1;
    s.set_joint_positions(&q).unwrap();
    for _ in 0..5 {
        s.step().unwrap();
    }
    let q1 = s.joint_state().q[1];
    assert!(
        q1 < 0.3,
        "a limp joint is not pulled back to its old goal: {q1}"
    );
}

#[test]
fn bus_time_clock_steps_the_physics_with_the_bus_clock() {
    let model = HandModel::leap_right();
    let config = SimConfig::for_hand(&model);
    let period = config.control_period();
    let sim = RapierSim::new(model, &[], &[], config).unwrap();
    let mut bus = ServoBus::leap_hand_with_physics(
        Box::new(SimJoints::new(Box::new(sim))),
        PhysicsClock::BusTime,
    )
    .unwrap();
    bus.advance(period * 3.5);
    assert_eq!(bus.physics_steps(), 3);
    bus.advance(period * 0.6);
    assert_eq!(bus.physics_steps(), 4);
    assert!(bus.physics_failure().is_none());
}

#[test]
fn a_physics_that_does_not_fit_the_bus_is_refused() {
    let model = HandModel::allegro_right();
    let config = SimConfig::for_hand(&model);
    let sim = RapierSim::new(model, &[], &[], config).unwrap();
    let joints = SimJoints::new(Box::new(sim));
    assert_eq!(joints.dof(), 16);
    let ids: Vec<u8> = (0..16).collect();
    // Zero angles of the wrong length.
    let err = ServoBus::leap_hand()
        .with_physics(
            Box::new(joints),
            &ids,
            &[0.0; 3],
            0.5,
            PhysicsClock::BusTime,
        )
        .unwrap_err();
    assert!(err.to_string().contains("zero angles"), "{err}");
    // A servo that is not on the bus.
    let sim = RapierSim::new(
        HandModel::leap_right(),
        &[],
        &[],
        SimConfig::for_hand(&HandModel::leap_right()),
    )
    .unwrap();
    let mut ids = ids;
    ids[15] = 40;
    let err = ServoBus::leap_hand()
        .with_physics(
            Box::new(SimJoints::new(Box::new(sim))),
            &ids,
            &[0.0; 16],
            0.5,
            PhysicsClock::BusTime,
        )
        .unwrap_err();
    assert!(err.to_string().contains("servo 40"), "{err}");
}
