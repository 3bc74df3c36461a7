//! How much of `FingertipReach` (LEAP) a scripted inverse-kinematics expert solves:
//! the reference figure for the learned policies and the teacher of
//! `dex train dagger --teacher reach-ik`.
//!
//! ```sh
//! cargo run --release -p dex-policy --example reach_expert -- [EPISODES] [--mock] [--feedback] [--tolerance M] [--dt S --substeps N]
//! ```
//!
//! `--feedback` turns the expert's feedback on (`ReachIkExpert::with_feedback`); without
//! it the target stays the open-loop IK solution. `--tolerance M` keeps the IK solution
//! from the observed configuration when it is within M metres of every target
//! (`ReachIkExpert::with_restart_tolerance`; default 0.002, 0 solves every start).
//! `--dt` and `--substeps` change the physics step (the task's defaults: 0.002 s × 25,
//! a 50 ms control period).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_policy::{ActMode, ReachIkExpert, evaluate};
use dex_sim::{TaskConfig, VecEnv, make_env};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let episodes: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let defaults = TaskConfig::default();
    let config = TaskConfig {
        mock_physics: args.iter().any(|a| a == "--mock"),
        dt: flag("--dt")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(defaults.dt),
        substeps: flag("--substeps")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(defaults.substeps),
        ..defaults
    };
    let started = std::time::Instant::now();
    let model = HandModel::leap_right();
    let feedback = args.iter().any(|a| a == "--feedback");
    let gain = if feedback {
        ReachIkExpert::FEEDBACK_GAIN
    } else {
        0.0
    };
    let tolerance: f64 = args
        .iter()
        .position(|a| a == "--tolerance")
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(ReachIkExpert::RESTART_TOLERANCE);
    let mut expert = ReachIkExpert::new(model.clone(), config.history)?
        .with_feedback(gain)?
        .with_restart_tolerance(tolerance)?;
    let mut venv = VecEnv::from_fn(25, |_| make_env("reach", model.clone(), config.clone()))?;
    let r = evaluate(&mut expert, &mut venv, episodes, 2, ActMode::Deterministic)?;
    println!(
        "reach-ik expert ({}, restart tolerance {tolerance} m) on reach (leap, {}): {} episodes, \
         mean return {:.2}, mean length {:.1}",
        if feedback { "feedback" } else { "open loop" },
        if config.mock_physics {
            "mock physics"
        } else {
            "rapier"
        },
        r.episodes,
        r.mean_return,
        r.mean_length
    );
    println!(
        "dt {} s x {} substeps: {:.1} s wall",
        config.dt,
        config.substeps,
        started.elapsed().as_secs_f64()
    );
    println!("success {}", r.success_rate);
    Ok(())
}
