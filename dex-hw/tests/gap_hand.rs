//! The gap hand: simulated joints driven by the servos' control law.
#![cfg(feature = "sim")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_hw::control_table::RAD_PER_TICK;
use dex_hw::emulator::{GapConfig, MotorModel, PhysicsClock, gap_hand};
use dex_hw::{EmulatedPort, HandDriver, JointTargets, LeapConfig, LeapHand};
use dex_sim::{RapierSim, SimConfig, Simulator};

fn config_1ms() -> SimConfig {
    SimConfig {
        dt: 0.001,
        substeps: 1,
        ..SimConfig::for_hand(&HandModel::leap_right())
    }
}

/// The LEAP driver on the gap hand, 50 physics steps (50 ms) per goal write.
fn gap_leap(gap: &GapConfig) -> LeapHand<EmulatedPort> {
    let sim = RapierSim::new(HandModel::leap_right(), &[], &[], config_1ms()).unwrap();
    let bus = gap_hand(Box::new(sim), gap, PhysicsClock::StepsPerGoalWrite(50)).unwrap();
    let mut hand =
        LeapHand::open(EmulatedPort::new(bus, 4_000_000), LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    hand
}

/// Small target steps (below the current cap) on every joint, 40 ticks.
fn goals(start: &[f64]) -> Vec<Vec<f64>> {
    (0..40)
        .map(|k| {
            start
                .iter()
                .enumerate()
                .map(|(i, q)| q + if (k / 10 + i) % 2 == 0 { 0.08 } else { 0.0 })
                .collect()
        })
        .collect()
}

#[test]
fn with_a_zero_gap_the_servo_hand_moves_as_a_pd_hand_with_the_servos_gains() {
    let mut hand = gap_leap(&GapConfig::zero());
    let start = hand.read_state().unwrap().q;
    let goals = goals(&start);
    // The same plant with the engine's PD at the servo law's gains: P/128 mA per tick,
    // D/16 mA per tick/ms, times the torque constant (LEAP driver: P 600, D 200, the
    // side joints ×0.75), the motor's armature and viscous friction.
    let model = HandModel::leap_right();
    let motor = MotorModel::default();
    let leap = LeapConfig::default();
    let mut sim = RapierSim::new(model.clone(), &[], &[], config_1ms()).unwrap();
    let (mut kp, mut kd) = (vec![0.0; 16], vec![0.0; 16]);
    for i in 0..16 {
        let s = if leap.side_joints.contains(&i) {
            leap.side_gain_scale
        } else {
            1.0
        };
        let p = (f64::from(leap.kp) * s).round() / 128.0;
        let d = (f64::from(leap.kd) * s).round() / 16.0;
        kp[i] = p / RAD_PER_TICK * 1e-3 * motor.torque_constant;
        kd[i] = d / RAD_PER_TICK / 1000.0 * 1e-3 * motor.torque_constant;
    }
    sim.set_pd_gains(&kp, &kd).unwrap();
    sim.set_joint_armature(&[motor.inertia; 16]).unwrap();
    let damping: Vec<f64> = model
        .dof_joints()
        .map(|j| j.dynamics.damping + motor.viscous_friction)
        .collect();
    sim.set_joint_damping(&damping).unwrap();
    sim.set_joint_positions(&start).unwrap();
    let (mut diff, mut motion) = (0.0, 0.0);
    for g in &goals {
        hand.write_targets(&JointTargets::new(g.clone())).unwrap();
        let q_servo = hand.read_state().unwrap().q;
        sim.set_joint_targets(g).unwrap();
        for _ in 0..50 {
            sim.step().unwrap();
        }
        let q_pd = sim.joint_state().q;
        for i in 0..16 {
            diff += (q_servo[i] - q_pd[i]).powi(2);
            motion += (q_pd[i] - start[i]).powi(2);
        }
    }
    let relative = (diff / motion).sqrt();
    eprintln!("servo hand vs the equivalent PD hand: {relative:.4} of the motion");
    // What remains is the servo law's own: it acts on whole ticks, a step late.
    assert!(relative < 0.1, "servo vs equivalent PD: {relative}");
    // The comparison means something: the hands moved (0.08 rad steps; a P-only servo
    // under its current cap sags under gravity by a few centiradians, both hands alike).
    assert!((motion / (16.0 * 40.0)).sqrt() > 0.02, "motion {motion}");
}

#[test]
fn latency_delays_the_response_and_the_gap_is_seeded() {
    let moved_after_one_tick = |latency_ticks: usize| {
        let gap = GapConfig {
            latency_ticks,
            ..GapConfig::zero()
        };
        let mut hand = gap_leap(&gap);
        let mut g = hand.read_state().unwrap().q;
        let q0 = g[1];
        g[1] += 0.08;
        hand.write_targets(&JointTargets::new(g)).unwrap();
        hand.read_state().unwrap().q[1] - q0
    };
    let prompt = moved_after_one_tick(0);
    let late = moved_after_one_tick(45);
    eprintln!("moved in the first tick: {prompt} rad prompt, {late} rad with 45 ms latency");
    assert!(prompt > 0.005, "{prompt}");
    assert!(late < 0.25 * prompt, "{late} vs {prompt}");
    let gap = GapConfig::default();
    let scales = gap.gain_scales(16);
    assert_eq!(scales, gap.gain_scales(16));
    assert!(scales.iter().all(|s| (0.8..=1.2).contains(s)));
    assert_ne!(
        scales,
        GapConfig {
            seed: 1,
            ..gap.clone()
        }
        .gain_scales(16)
    );
}

#[test]
fn bad_gaps_and_engines_without_torque_control_are_errors() {
    let bad = GapConfig {
        gain_error: 1.5,
        ..GapConfig::default()
    };
    assert!(bad.validate().is_err());
    let sim = RapierSim::new(HandModel::leap_right(), &[], &[], config_1ms()).unwrap();
    // The simulation's step must be the gap's.
    let coarse = GapConfig {
        physics_dt: 0.002,
        ..GapConfig::default()
    };
    assert!(gap_hand(Box::new(sim), &coarse, PhysicsClock::BusTime).is_err());
    let mock = dex_sim::MockSimulator::new(HandModel::leap_right(), config_1ms()).unwrap();
    let err = gap_hand(Box::new(mock), &GapConfig::default(), PhysicsClock::BusTime).unwrap_err();
    assert!(matches!(err, dex_hw::Error::Physics { .. }), "{err}");
}
