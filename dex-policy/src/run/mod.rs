//! Training runs as `dex train` makes them, for any program: the run's settings and
//! the per-task presets ([`PpoRunConfig::for_task`], [`SacRunConfig::for_task`],
//! [`reach_task_settings`]), settings from layers (defaults, a TOML file, `KEY=VALUE`
//! overrides: [`layered_config`]), the loop with its time budget, checkpoints, metrics
//! log and final evaluation ([`run_training`]). Front-ends add progress bars and plots.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use std::time::Duration;
//! use dex_policy::PpoTrainer;
//! use dex_policy::run::{PpoRunConfig, RunEvent, TrainingRun, run_training};
//! use dex_sim::EnvSpec;
//!
//! let config = PpoRunConfig::for_task("reach");
//! let env = EnvSpec::state("reach", "leap", config.task.clone());
//! let mut trainer = PpoTrainer::new(env.build(config.ppo.num_envs)?, config.ppo.clone(), env.to_table()?)?;
//! let text = toml::to_string(&config).unwrap_or_default();
//! let run = TrainingRun {
//!     out: std::path::Path::new("runs/reach"),
//!     settings: &config.run,
//!     env: &env,
//!     seed: config.ppo.seed,
//!     budget: Duration::from_secs(600),
//!     resume: false,
//!     config_text: &text,
//! };
//! let report = run_training(&mut trainer, &run, &AtomicBool::new(false), &mut |e| {
//!     if let RunEvent::Iteration { metrics, success_window, .. } = e {
//!         println!("iteration {} success {success_window:.2}", metrics.iteration);
//!     }
//! })?;
//! println!("success {}", report.eval.success_rate);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod metrics;
mod overlay;
mod session;

pub use config::{PpoRunConfig, RunSettings, SacRunConfig, reach_task_settings};
pub use metrics::MetricsLog;
pub use overlay::layered_config;
pub use session::{RunEvent, RunReport, TrainingRun, run_training};
