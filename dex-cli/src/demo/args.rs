//! The demo's command-line arguments and the embedded student.

use std::path::PathBuf;

use clap::Args;

/// The student policy the project ships, made by the command in `assets/README.md`.
pub(super) const SHIPPED_META: &str = include_str!("../../assets/reach-student/checkpoint.toml");
pub(super) const SHIPPED_WEIGHTS: &[u8] =
    include_bytes!("../../assets/reach-student/policy.safetensors");

/// Arguments of `dex demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the policy training, the reach targets and the tracker's queries.
    #[arg(long, default_value_t = 0)]
    pub(super) seed: u64,
    /// Output directory: figure, summary.json, the trained policy.
    #[arg(long, default_value = "demo-out")]
    pub(super) out: PathBuf,
    /// Train a student in the run (DAgger from the inverse-kinematics expert, a fixed
    /// number of iterations) instead of running the shipped one.
    #[arg(long)]
    pub(super) train: bool,
    /// A 30-second version: 2 target sets, a shorter grasp (and with --train, 2 DAgger
    /// iterations).
    #[arg(long)]
    pub(super) quick: bool,
    /// The hand (only `leap`: the demo drives its servo bus).
    #[arg(long, default_value = "leap")]
    pub(super) hand: String,
    /// A reach checkpoint written by `dex train` (dagger, ppo or sac from state) to run
    /// instead of the shipped student, with the task settings it was trained with.
    #[arg(long)]
    pub(super) checkpoint: Option<PathBuf>,
    /// Largest target change per control tick the safety layer lets through (rad;
    /// larger steps are shortened and counted). The policies here are trained without
    /// a rate limit: 0.35 (7 rad/s, under the XC330's 8.5 rad/s no-load speed) costs
    /// the shipped student more than half its reaches.
    #[arg(long, default_value_t = 1.0)]
    pub(super) max_step: f64,
    /// Record the run for the rerun viewer (0.35) in this `.rrd` file: the hand's
    /// links, the cube, reach goals, the tracker's camera images with its points, joint
    /// targets against the angles the driver reads (needs dex built with the `rerun`
    /// feature).
    #[arg(long, value_name = "FILE.rrd")]
    pub(super) rerun: Option<PathBuf>,
}
