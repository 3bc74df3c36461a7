//! `dex`: the command-line front end of the dex stack.
//!
//! Every subcommand prints its result on stdout and errors on stderr; a bad
//! argument or input exits with code 2.

mod demo;
mod diffusion;
mod hand;
mod hw;
mod ndm;
mod plot;
mod progress;
mod record;
mod sim;
mod stdout;
mod track;
mod tracks;
mod train;

use std::process::ExitCode;

/// candle allocates a fresh buffer for every tensor op; glibc's allocator maps and
/// unmaps the large ones each time, mimalloc keeps them (training runs markedly faster,
/// more so with purging off, see [`dex_alloc::keep_freed_memory`]).
#[global_allocator]
static GLOBAL: dex_alloc::MiMalloc = dex_alloc::MiMalloc;

use clap::{Parser, Subcommand};

/// dex: dexterous robot hands, from simulation to real hardware.
#[derive(Debug, Parser)]
#[command(name = "dex", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect hand models.
    #[command(subcommand)]
    Hand(hand::HandCommand),
    /// Forward kinematics: the pose of every link in the root (palm) frame.
    Fk(hand::FkArgs),
    /// Hardware: the servo-bus emulator, scanning, monitoring and timing a hand.
    #[command(subcommand)]
    Hw(hw::HwCommand),
    /// Simulation: benchmark, run tasks, render depth.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Point tracking and rigid registration.
    #[command(subcommand)]
    Track(track::TrackCommand),
    /// Train a policy on a simulated task (PPO, SAC, DAgger or a gait search).
    #[command(subcommand)]
    Train(train::TrainCommand),
    /// Evaluate a checkpoint written by `dex train`; ends with `success <fraction>`
    /// (`rotation_rad <x> ttf_s <y>` for the rotate task).
    Eval(train::EvalArgs),
    /// DexGen: collect its dataset, train it, evaluate it around a command source.
    #[command(subcommand)]
    Diffusion(diffusion::DiffusionCommand),
    /// DexNDM: train and score joint dynamics models.
    #[command(subcommand)]
    Ndm(ndm::NdmCommand),
    /// The whole stack in one run: a simulated LEAP Hand behind an emulated servo bus,
    /// the real driver and safety layer, a policy, a grasp, point tracking.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    dex_alloc::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hand(cmd) => hand::run_hand(cmd),
        Command::Fk(args) => hand::run_fk(args),
        Command::Hw(cmd) => hw::run(cmd),
        Command::Sim(cmd) => sim::run(cmd),
        Command::Track(cmd) => track::run(cmd),
        Command::Train(cmd) => train::run(cmd),
        Command::Eval(args) => train::run_eval(args),
        Command::Demo(args) => demo::run(args),
        Command::Diffusion(cmd) => diffusion::run(cmd),
        Command::Ndm(cmd) => ndm::run(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
