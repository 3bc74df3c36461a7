//! How much a coarser physics step changes the hand's motion: the fingertip
//! trajectories of PD step responses at several `(dt, substeps)` pairs with the same
//! control period, against the 2 ms reference, and the time each control step costs.
//!
//! ```sh
//! cargo run --release -p dex-sim --example step_size -- [TRIALS] [--no-self-collision]
//! ```
//!
//! Each trial teleports the LEAP hand to its open configuration, sets joint targets
//! drawn uniformly in the central 80% of every range (as `FingertipReach` draws them),
//! and records every fingertip at each of 20 control steps (1 s at 20 Hz).
//! `--no-self-collision` turns contacts between fingers off, which separates the
//! integration error of the PD-driven joints from the outcome of finger-finger contacts
//! (which differ between step sizes the way two nearby starts of a chaotic system do).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::{RapierSim, SimConfig, Simulator, open_configuration};
use nalgebra::Point3;
use rand::{Rng, SeedableRng};

const CONTROL_STEPS: usize = 20;

fn trajectories(
    model: &HandModel,
    dt: f64,
    substeps: usize,
    targets: &[Vec<f64>],
    self_collision: bool,
) -> anyhow::Result<(Vec<Vec<Point3<f64>>>, f64)> {
    let config = SimConfig {
        dt,
        substeps,
        hand_self_collision: self_collision,
        ..SimConfig::for_hand(model)
    };
    let mut sim = RapierSim::hand_only(model.clone(), config)?;
    let open = open_configuration(model);
    let mut out = Vec::new();
    let started = std::time::Instant::now();
    for q in targets {
        sim.set_joint_positions(&open)?;
        sim.set_joint_targets(q)?;
        for _ in 0..CONTROL_STEPS {
            sim.step()?;
            out.push(sim.fingertip_positions());
        }
    }
    let per_step = started.elapsed().as_secs_f64() / (targets.len() * CONTROL_STEPS) as f64;
    Ok((out, per_step))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let trials: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let self_collision = !args.iter().any(|a| a == "--no-self-collision");
    let model = HandModel::leap_right();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let targets: Vec<Vec<f64>> = (0..trials)
        .map(|_| {
            model
                .joint_limits()
                .iter()
                .map(|l| {
                    let half = (l.upper - l.lower) * 0.8 / 2.0;
                    l.mid() + rng.random_range(-half..=half)
                })
                .collect()
        })
        .collect();
    let (reference, ref_cost) = trajectories(&model, 0.002, 25, &targets, self_collision)?;
    println!(
        "dt 0.002 s x 25: {:.0} us per control step (reference)",
        ref_cost * 1e6
    );
    for (dt, substeps) in [
        (0.001, 50),
        (0.0025, 20),
        (0.005, 10),
        (0.01, 5),
        (0.0125, 4),
    ] {
        let (traj, cost) = trajectories(&model, dt, substeps, &targets, self_collision)?;
        let mut sq = 0.0;
        let mut n = 0usize;
        let mut worst: f64 = 0.0;
        let mut final_sq = 0.0;
        for (i, (a, b)) in traj.iter().zip(&reference).enumerate() {
            for (p, q) in a.iter().zip(b) {
                let e = (p - q).norm();
                sq += e * e;
                n += 1;
                worst = worst.max(e);
                if i % CONTROL_STEPS == CONTROL_STEPS - 1 {
                    final_sq += e * e;
                }
            }
        }
        let finals = (trials * model.fingertips().len()) as f64;
        println!(
            "dt {dt} s x {substeps}: {:.0} us per control step ({:.2}x faster); fingertip \
             difference RMS {:.2} mm, worst {:.1} mm, at rest (1 s) RMS {:.2} mm",
            cost * 1e6,
            ref_cost / cost,
            (sq / n as f64).sqrt() * 1e3,
            worst * 1e3,
            (final_sq / finals).sqrt() * 1e3
        );
    }
    Ok(())
}
