//! Criterion bench of a LEAP control cycle against a servo bus backed by a rapier
//! simulation (`SimJoints`, one physics period per goal write): what each tick of
//! `dex demo` costs apart from the policy and the pseudo-terminal.
//!
//! Run with `cargo bench -p dex-hw --features sim --bench sim_bus`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // benches may panic on failure
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{Criterion, criterion_group, criterion_main};
use dex_core::HandModel;
use dex_hw::emulator::{PhysicsClock, SimJoints};
use dex_hw::{EmulatedPort, HandDriver, JointTargets, LeapConfig, LeapHand, ServoBus};
use dex_sim::{RapierSim, SimConfig};

fn hand(substeps: usize) -> LeapHand<EmulatedPort> {
    let model = HandModel::leap_right();
    let mut config = SimConfig::for_hand(&model);
    config.substeps = substeps;
    let sim = RapierSim::new(model, &[], &[], config).unwrap();
    let bus = ServoBus::leap_hand_with_physics(
        Box::new(SimJoints::new(Box::new(sim))),
        PhysicsClock::PerGoalWrite,
    )
    .unwrap();
    let mut hand =
        LeapHand::open(EmulatedPort::new(bus, 4_000_000), LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    hand
}

fn sim_bus(c: &mut Criterion) {
    // 1 substep: a 2 ms period (a 500 Hz loop); 25: the reach task's 50 ms (20 Hz).
    for substeps in [1usize, 25] {
        let mut h = hand(substeps);
        let mut goal = h.read_state().unwrap().q;
        let mut k = 0u32;
        c.bench_function(&format!("sim_bus/leap_cycle_{substeps}_substeps"), |b| {
            b.iter(|| {
                // A slow sine on the index finger, so the physics has work to do.
                k = k.wrapping_add(1);
                goal[1] = 0.6 + 0.4 * (f64::from(k) * 0.01).sin();
                h.write_targets(&JointTargets::new(goal.clone())).unwrap();
                h.read_state().unwrap()
            });
        });
    }
}

criterion_group!(benches, sim_bus);
criterion_main!(benches);
