//! One training run: resume or start, iterate within a time budget, checkpoint, and
//! evaluate the result.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dex_sim::EnvSpec;

use super::config::RunSettings;
use super::metrics::MetricsLog;
use crate::checkpoint::META_FILE;
use crate::error::{Result, invalid};
use crate::eval::{EvalResult, evaluate};
use crate::policy::ActMode;
use crate::train::{Metrics, Trainer};

/// Where and how long a run trains.
#[derive(Debug, Clone)]
pub struct TrainingRun<'a> {
    /// Output directory: the checkpoint, `config.toml`, `metrics.csv`.
    pub out: &'a Path,
    /// The run's settings.
    pub settings: &'a RunSettings,
    /// The environment (stored in checkpoints; rebuilt for the evaluation).
    pub env: &'a EnvSpec,
    /// The trainer's seed; the evaluation uses `seed + 1`.
    pub seed: u64,
    /// Wall-clock budget of training (evaluation comes after it).
    pub budget: Duration,
    /// Continue from the checkpoint in `out` instead of starting afresh.
    pub resume: bool,
    /// The full config, written to `out/config.toml`.
    pub config_text: &'a str,
}

/// What a run reports while it trains.
#[derive(Debug, Clone)]
pub enum RunEvent<'a> {
    /// Resumed from the checkpoint in `out`, at this many environment steps.
    Resumed {
        /// Environment steps of the checkpoint.
        env_steps: u64,
    },
    /// One iteration done.
    Iteration {
        /// Its metrics.
        metrics: &'a Metrics,
        /// Success over the last `success_window` episodes (NaN before any).
        success_window: f64,
        /// Time since training started.
        elapsed: Duration,
    },
}

/// What a run gives.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The trainer's algorithm (`ppo`, `sac`).
    pub algorithm: &'static str,
    /// Seconds of training.
    pub train_s: f64,
    /// Environment steps at the end.
    pub env_steps: u64,
    /// Seconds until the windowed training success first reached 0.9 (with the window
    /// at least half full), if it did.
    pub time_to_90: Option<f64>,
    /// Training was stopped by `stop` before its budget.
    pub interrupted: bool,
    /// Deterministic evaluation of the final policy.
    pub eval: EvalResult,
    /// Its seed (`seed + 1`).
    pub eval_seed: u64,
    /// `(wall-clock minutes, windowed success, windowed return)` per iteration,
    /// resumed runs' earlier rows included.
    pub curve: Vec<(f64, f64, f64)>,
}

/// Runs `trainer` as `run` says: resumes from (or refuses to overwrite) a checkpoint in
/// `run.out`, writes `config.toml`, iterates until the budget, `settings.max_iterations`
/// or `stop`, appending to `metrics.csv` and checkpointing every
/// `settings.checkpoint_every` iterations and at the end, then evaluates the policy on
/// `settings.eval_envs` fresh environments for `settings.eval_episodes` episodes.
/// `on_event` sees each iteration (for progress bars); the library prints nothing.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] when `out` holds a checkpoint and `resume` is off, or
/// holds none and it is on; trainer, environment and I/O errors.
pub fn run_training(
    trainer: &mut dyn Trainer,
    run: &TrainingRun<'_>,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(RunEvent<'_>),
) -> Result<RunReport> {
    let out = run.out;
    let has_checkpoint = out.join(META_FILE).exists();
    if run.resume {
        if !has_checkpoint {
            return Err(invalid(format!(
                "--resume: {} holds no checkpoint",
                out.display()
            )));
        }
        trainer.resume(out)?;
        on_event(RunEvent::Resumed {
            env_steps: trainer.env_steps(),
        });
    } else if has_checkpoint {
        return Err(invalid(format!(
            "{} already holds a checkpoint: pass --resume to continue it, or choose another --out",
            out.display()
        )));
    }
    std::fs::create_dir_all(out)?;
    std::fs::write(out.join("config.toml"), run.config_text)?;
    let settings = run.settings;
    let mut log = MetricsLog::open(
        &out.join("metrics.csv"),
        run.resume,
        settings.success_window,
    )?;
    let start = Instant::now();
    let mut last_iter = Duration::ZERO;
    let mut time_to_90: Option<f64> = None;
    let mut iterations = 0usize;
    while !stop.load(Ordering::SeqCst)
        && start.elapsed() + last_iter <= run.budget
        && (settings.max_iterations == 0 || iterations < settings.max_iterations)
    {
        let t0 = Instant::now();
        let m = trainer.iterate()?;
        last_iter = t0.elapsed();
        iterations += 1;
        let sw = log.record(&m, start.elapsed().as_secs_f64())?;
        if time_to_90.is_none() && sw >= 0.9 && log.window_filled() >= settings.success_window / 2 {
            time_to_90 = Some(start.elapsed().as_secs_f64());
        }
        on_event(RunEvent::Iteration {
            metrics: &m,
            success_window: sw,
            elapsed: start.elapsed(),
        });
        if iterations.is_multiple_of(settings.checkpoint_every) {
            trainer.save(out)?;
        }
    }
    let train_s = start.elapsed().as_secs_f64();
    let interrupted = stop.load(Ordering::SeqCst);
    trainer.save(out)?;
    log.flush()?;
    let mut policy = trainer.current_policy()?;
    let eval_seed = run.seed.wrapping_add(1);
    let mut venv = run.env.build(settings.eval_envs)?;
    let eval = evaluate(
        policy.as_mut(),
        &mut venv,
        settings.eval_episodes,
        eval_seed,
        ActMode::Deterministic,
    )?;
    Ok(RunReport {
        algorithm: trainer.algorithm(),
        train_s,
        env_steps: trainer.env_steps(),
        time_to_90,
        interrupted,
        eval,
        eval_seed,
        curve: log.curve().to_vec(),
    })
}
