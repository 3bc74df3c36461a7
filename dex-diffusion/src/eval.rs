//! DexGen's Fig. 8 evaluation: sub-optimal experts with and without the controller.

use std::str::FromStr;

use dex_core::HandModel;
use dex_policy::{ActMode, ActionNoise, NoiseKind, Policy};
use dex_sim::Env;
use dex_sim::tasks::AnygraspToAnygrasp;
use ndarray::Array2;
use rand::SeedableRng;
use rayon::prelude::*;

use crate::collect::object_for;
use crate::controller::{CommandReference, CommandSteps, DexGenController};
use crate::error::{Error, Result};
use crate::expert::{GraspExpert, TaskSettings};
use crate::model::DexGen;

/// A command source of the evaluation (DexGen Fig. 8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CommandSpec {
    /// The expert as it is.
    Expert,
    /// The expert's action plus U(−a, a) per value.
    Noisy(f32),
    /// The expert's action times one U(0, a) per step.
    Slow(f32),
}

impl FromStr for CommandSpec {
    type Err = Error;

    /// `expert`, `noisy:A` or `slow:A` (A > 0).
    fn from_str(s: &str) -> Result<Self> {
        let bad = |reason: &str| Error::InvalidSetting {
            what: "command",
            reason: format!("`{s}`: {reason}; expected expert, noisy:A or slow:A"),
        };
        if s == "expert" {
            return Ok(Self::Expert);
        }
        let (kind, value) = s
            .split_once(':')
            .ok_or_else(|| bad("unknown command source"))?;
        let a: f32 = value.parse().map_err(|_| bad("A is not a number"))?;
        if !(a.is_finite() && a > 0.0) {
            return Err(bad("A must be positive"));
        }
        match kind {
            "noisy" => Ok(Self::Noisy(a)),
            "slow" => Ok(Self::Slow(a)),
            _ => Err(bad("unknown command source")),
        }
    }
}

impl std::fmt::Display for CommandSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Expert => write!(f, "expert"),
            Self::Noisy(a) => write!(f, "noisy:{a}"),
            Self::Slow(a) => write!(f, "slow:{a}"),
        }
    }
}

/// Settings of [`evaluate`].
#[derive(Debug, Clone, PartialEq)]
pub struct EvalConfig {
    /// The command source.
    pub command: CommandSpec,
    /// Episodes (spread over the environments).
    pub episodes: usize,
    /// Environments stepped together (each with its own object).
    pub envs: usize,
    /// Seed of objects, resets, noise and sampling.
    pub seed: u64,
    /// The expert's largest target change per step (rad).
    pub expert_step: f64,
    /// The task (its `episode_steps` is the cap on the hold time).
    pub task: TaskSettings,
    /// What the controller measures a command from.
    pub reference: CommandReference,
    /// How the controller spreads a command over the future steps.
    pub command_steps: CommandSteps,
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            command: CommandSpec::Expert,
            episodes: 20,
            envs: 4,
            seed: 1,
            expert_step: 0.03,
            task: TaskSettings::default(),
            reference: CommandReference::default(),
            command_steps: CommandSteps::default(),
        }
    }
}

/// One episode's outcome.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpisodeOutcome {
    /// Simulated seconds before the drop or the cap.
    pub hold_s: f64,
    /// Goals reached.
    pub goals: usize,
    /// Whether it ended in a drop.
    pub dropped: bool,
}

/// What [`evaluate`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalReport {
    /// Every episode, in the order they were counted.
    pub episodes: Vec<EpisodeOutcome>,
    /// The cap on an episode's hold time (s).
    pub cap_s: f64,
}

impl EvalReport {
    /// Mean hold time (s).
    pub fn hold_s(&self) -> f64 {
        mean(self.episodes.iter().map(|e| e.hold_s))
    }

    /// Mean goals per episode.
    pub fn goals(&self) -> f64 {
        mean(self.episodes.iter().map(|e| e.goals as f64))
    }

    /// Fraction of episodes that ended in a drop.
    pub fn drops(&self) -> f64 {
        mean(self.episodes.iter().map(|e| f64::from(u8::from(e.dropped))))
    }

    /// `hold_s <mean> goals <mean per episode> drops <fraction>`.
    pub fn summary_line(&self) -> String {
        format!(
            "hold_s {:.2} goals {:.2} drops {:.3}",
            self.hold_s(),
            self.goals(),
            self.drops()
        )
    }
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for v in values {
        sum += v;
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// The environments of an evaluation: `n` tasks on objects of slots `seed`-drawn, each
/// with its grasp set; slots whose object has too few stable grasps are skipped.
fn build_envs(hand: &HandModel, config: &EvalConfig) -> Result<Vec<AnygraspToAnygrasp>> {
    let mut envs = Vec::with_capacity(config.envs);
    let mut slot = 0;
    while envs.len() < config.envs {
        if slot > 8 * config.envs + 8 {
            return Err(Error::InvalidSetting {
                what: "evaluation",
                reason: "too few objects with stable grasps".into(),
            });
        }
        let object = object_for(config.seed ^ 0xE7A1, slot);
        if let Some(t) = config
            .task
            .try_build(hand.clone(), object, config.seed ^ slot as u64)?
        {
            envs.push(t);
        }
        slot += 1;
    }
    Ok(envs)
}

/// The command source of `spec` around the scripted expert for `envs`.
fn source(
    hand: &HandModel,
    envs: &[AnygraspToAnygrasp],
    config: &EvalConfig,
) -> Result<Box<dyn Policy>> {
    let od = envs
        .first()
        .map(|e| e.observation_spec().state.dim())
        .unwrap_or(0);
    let expert = GraspExpert::new(
        hand,
        envs.iter().map(|e| e.grasps().to_vec()).collect(),
        od,
        config.task.relative_scale,
        config.expert_step,
    )?;
    Ok(match config.command {
        CommandSpec::Expert => Box::new(expert),
        CommandSpec::Noisy(a) => Box::new(ActionNoise::new(expert, NoiseKind::Uniform(a))?),
        CommandSpec::Slow(a) => Box::new(ActionNoise::new(expert, NoiseKind::Slow(a))?),
    })
}

/// Runs the command source of `config` on DexGen's task, through `model` at guidance
/// strength `guidance` when a model is given, raw otherwise. Environment `i` runs
/// episodes `i, i + n, …`; an episode ends at a drop or after `episode_steps`.
/// Deterministic for a seed.
///
/// # Errors
///
/// Bad settings; simulation, policy and model errors.
pub fn evaluate(
    hand: &HandModel,
    config: &EvalConfig,
    model: Option<(DexGen, f64)>,
    progress: &mut dyn FnMut(usize),
) -> Result<EvalReport> {
    config.task.validate()?;
    if config.episodes == 0 || config.envs == 0 {
        return Err(Error::InvalidSetting {
            what: "evaluation",
            reason: "episodes and envs must be at least 1".into(),
        });
    }
    let n = config.envs.min(config.episodes);
    let config = EvalConfig {
        envs: n,
        ..config.clone()
    };
    let mut envs = build_envs(hand, &config)?;
    let raw = source(hand, &envs, &config)?;
    let mut policy: Box<dyn Policy> = match model {
        Some((m, g)) => Box::new(
            DexGenController::new(m, raw, hand.clone(), config.task.relative_scale, g)?
                .with_reference(config.reference)
                .with_command_steps(config.command_steps),
        ),
        None => raw,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ 0x5EED);
    let quota: Vec<usize> = (0..n)
        .map(|i| config.episodes / n + usize::from(i < config.episodes % n))
        .collect();
    let mut started = vec![0usize; n];
    let mut steps = vec![0usize; n];
    let mut active = vec![true; n];
    let mut obs: Vec<Vec<f32>> = Vec::with_capacity(n);
    for (i, env) in envs.iter_mut().enumerate() {
        let (o, _) = env.reset(Some(config.seed.wrapping_mul(7919) ^ (i as u64) << 20))?;
        obs.push(o.state);
        started[i] = 1;
    }
    let od = obs[0].len();
    let period = config.task.task_config().sim_config(hand).control_period();
    let mut report = EvalReport {
        episodes: Vec::with_capacity(config.episodes),
        cap_s: config.task.episode_steps as f64 * period,
    };
    while active.iter().any(|a| *a) {
        let batch = Array2::from_shape_fn((n, od), |(i, j)| obs[i][j]);
        let actions = policy.act(batch.view(), ActMode::Deterministic, &mut rng)?;
        let results: Vec<Option<Result<dex_sim::Step>>> = envs
            .par_iter_mut()
            .enumerate()
            .map(|(i, env)| {
                if !active[i] {
                    return None;
                }
                let a: Vec<f32> = actions.row(i).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
                Some(env.step(&a).map_err(Error::from))
            })
            .collect();
        for (i, r) in results.into_iter().enumerate() {
            let Some(step) = r else { continue };
            let step = step?;
            steps[i] += 1;
            obs[i] = step.obs.state;
            if step.terminated || step.truncated {
                report.episodes.push(EpisodeOutcome {
                    hold_s: steps[i] as f64 * period,
                    goals: step.info.get("goals_reached").unwrap_or(0.0) as usize,
                    dropped: step.terminated,
                });
                progress(report.episodes.len());
                policy.reset(i);
                steps[i] = 0;
                if started[i] < quota[i] {
                    let seed =
                        config.seed.wrapping_mul(7919) ^ ((i as u64) << 20) ^ started[i] as u64;
                    let (o, _) = envs[i].reset(Some(seed))?;
                    obs[i] = o.state;
                    started[i] += 1;
                } else {
                    active[i] = false;
                }
            }
        }
    }
    Ok(report)
}
