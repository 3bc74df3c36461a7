//! A periodic finger gait as a policy, and a cross-entropy search of its parameters on
//! a task: the base policy to fall back on where reinforcement learning does not find
//! the motion in the time at hand.
//!
//! The gait sets every joint's target to `centre_j + amplitude_j · sin(2π f t + phase_j)`
//! at control step `t` of the episode, whatever it observes (open loop). It acts through
//! the task's absolute action mapping (`a ∈ [−1, 1]` over each joint's range), so a
//! checkpoint of it runs wherever a policy of the task runs, and a residual can be
//! trained on top of it.
//!
//! [`search_gait`] finds the parameters by the cross-entropy method (Rubinstein 1999):
//! sample a population from a diagonal Gaussian, score each candidate by the mean of a
//! figure of the task's info at the episode's end (`rotation` for the rotate task) over
//! the same episode seeds for every candidate, refit the Gaussian to the best ones.

use std::path::Path;
use std::time::Instant;

use dex_sim::{ActionMode, EnvSpec};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::checkpoint::META_FILE;
use crate::error::{Error, Result, invalid, invalid_setting};
use crate::policy::{ActMode, Policy, check_observations};

/// The parameters of a gait, per joint (model order).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gait {
    /// Cycles per second.
    pub frequency_hz: f64,
    /// Centre of each joint's oscillation (rad).
    pub centre: Vec<f64>,
    /// Amplitude of each joint's oscillation (rad).
    pub amplitude: Vec<f64>,
    /// Phase of each joint's oscillation (rad).
    pub phase: Vec<f64>,
}

impl Gait {
    /// The targets (rad) at time `t` (s) of the episode.
    pub fn targets(&self, t: f64) -> Vec<f64> {
        let w = std::f64::consts::TAU * self.frequency_hz * t;
        self.centre
            .iter()
            .zip(&self.amplitude)
            .zip(&self.phase)
            .map(|((c, a), p)| c + a * (w + p).sin())
            .collect()
    }
}

/// What a gait checkpoint's `checkpoint.toml` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaitCheckpoint {
    /// The gait.
    pub gait: Gait,
    /// The environment it was found on ([`EnvSpec::to_table`]).
    pub env: toml::Table,
    /// Environment steps the search took.
    pub env_steps: u64,
    /// The search's score of the gait (mean of the scored figure).
    pub score: f64,
}

/// A [`Gait`] acting on a task through its absolute action mapping; it counts each
/// environment's control steps since its last `reset`.
#[derive(Debug, Clone)]
pub struct GaitPolicy {
    meta: GaitCheckpoint,
    lower: Vec<f64>,
    upper: Vec<f64>,
    period: f64,
    observation_dim: usize,
    steps: Vec<usize>,
}

impl GaitPolicy {
    /// The gait on the task `env` describes (which must use absolute actions).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for relative actions, a gait of another joint count or
    /// non-finite parameters; the task's errors when it cannot be built.
    pub fn new(gait: Gait, env: &EnvSpec, env_steps: u64, score: f64) -> Result<Self> {
        if env.config.action_mode != ActionMode::Absolute {
            return Err(invalid(
                "a gait acts through absolute actions: set task.action_mode = \"absolute\"",
            ));
        }
        let model = env.model()?;
        let dof = model.dof();
        if gait.centre.len() != dof || gait.amplitude.len() != dof || gait.phase.len() != dof {
            return Err(invalid(format!(
                "the gait has {} centres, {} amplitudes and {} phases for {dof} joints",
                gait.centre.len(),
                gait.amplitude.len(),
                gait.phase.len()
            )));
        }
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        if !(gait.frequency_hz.is_finite()
            && gait.frequency_hz > 0.0
            && finite(&gait.centre)
            && finite(&gait.amplitude)
            && finite(&gait.phase))
        {
            return Err(invalid(
                "gait parameters must be finite, the frequency positive",
            ));
        }
        let probe = dex_sim::make_env(&env.sim_task()?, model.clone(), env.config.clone())?;
        let observation_dim = probe.observation_spec().state.dim();
        let limits = model.joint_limits();
        Ok(Self {
            meta: GaitCheckpoint {
                gait,
                env: env.to_table()?,
                env_steps,
                score,
            },
            lower: limits.iter().map(|l| l.lower).collect(),
            upper: limits.iter().map(|l| l.upper).collect(),
            period: env.config.dt * env.config.substeps as f64,
            observation_dim,
            steps: Vec::new(),
        })
    }

    /// The gait and where it was found.
    pub fn meta(&self) -> &GaitCheckpoint {
        &self.meta
    }

    /// This policy (same task) with another gait, its step counts forgotten.
    fn with_gait(&self, gait: Gait) -> Self {
        let mut p = self.clone();
        p.meta.gait = gait;
        p.steps.clear();
        p
    }

    /// The absolute action that sets the targets of control step `step`.
    fn action(&self, step: usize) -> Vec<f32> {
        self.meta
            .gait
            .targets(step as f64 * self.period)
            .iter()
            .zip(self.lower.iter().zip(&self.upper))
            .map(|(t, (lo, hi))| ((2.0 * (t - lo) / (hi - lo) - 1.0).clamp(-1.0, 1.0)) as f32)
            .collect()
    }

    /// Writes `checkpoint.toml` into `dir` (created if needed).
    ///
    /// # Errors
    ///
    /// I/O errors.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir)?;
        let file = GaitFile {
            checkpoint: self.meta.clone(),
        };
        let text = toml::to_string(&file).map_err(|e| invalid(e.to_string()))?;
        std::fs::write(dir.join(META_FILE), text)?;
        Ok(())
    }

    /// Reads a gait checkpoint written by [`GaitPolicy::save`].
    ///
    /// # Errors
    ///
    /// [`Error::Checkpoint`] for a missing, corrupt or mismatched one.
    pub fn load(dir: &Path) -> Result<Self> {
        let fail = |reason: String| Error::Checkpoint {
            path: dir.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(dir.join(META_FILE))
            .map_err(|e| fail(format!("reading {META_FILE}: {e}")))?;
        let file: GaitFile =
            toml::from_str(&text).map_err(|e| fail(format!("parsing {META_FILE}: {e}")))?;
        let env = EnvSpec::from_table(&file.checkpoint.env).map_err(|e| fail(e.to_string()))?;
        Self::new(
            file.checkpoint.gait,
            &env,
            file.checkpoint.env_steps,
            file.checkpoint.score,
        )
        .map_err(|e| fail(e.to_string()))
    }
}

/// The file layout: everything under `[gait]`, which tells the loader what it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GaitFile {
    #[serde(rename = "gait")]
    checkpoint: GaitCheckpoint,
}

impl Policy for GaitPolicy {
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    fn action_dim(&self) -> usize {
        self.lower.len()
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn rand::RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim)?;
        let rows = observations.nrows();
        if self.steps.len() < rows {
            self.steps.resize(rows, 0);
        }
        let dof = self.lower.len();
        let mut out = Array2::zeros((rows, dof));
        for i in 0..rows {
            let a = self.action(self.steps[i]);
            self.steps[i] += 1;
            out.row_mut(i).assign(&ndarray::ArrayView1::from(&a));
        }
        Ok(out)
    }

    fn reset(&mut self, env: usize) {
        if let Some(s) = self.steps.get_mut(env) {
            *s = 0;
        }
    }
}

/// Settings of [`search_gait`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GaitSearchConfig {
    /// Gait frequency (Hz), fixed during the search.
    pub frequency_hz: f64,
    /// Candidates per iteration.
    pub population: usize,
    /// The best this many refit the sampling distribution.
    pub elites: usize,
    /// Episodes (seeds shared by every candidate of an iteration) per candidate.
    pub episodes: usize,
    /// Initial standard deviation of the centre offsets from the start configuration
    /// (rad), and their bound.
    pub centre_range: f64,
    /// Initial standard deviation of each joint's oscillation (its two quadrature
    /// components, rad), and the bound of the amplitude.
    pub amplitude_range: f64,
    /// Added to every standard deviation after a refit (keeps the search from
    /// collapsing early; rad).
    pub extra_std: f64,
    /// The figure of the task's info, at the episode's end, that the search maximises.
    pub score_key: String,
    /// Iterations (0: as many as the time budget allows).
    pub max_iterations: usize,
    /// Worker threads (stepping candidates in parallel).
    pub threads: usize,
}

impl Default for GaitSearchConfig {
    fn default() -> Self {
        Self {
            frequency_hz: 1.0,
            population: 32,
            elites: 8,
            episodes: 2,
            centre_range: 0.3,
            amplitude_range: 0.3,
            extra_std: 0.01,
            score_key: "rotation".into(),
            max_iterations: 0,
            threads: 2,
        }
    }
}

/// One iteration of [`search_gait`], for progress and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct GaitIteration {
    /// Iteration (from 1).
    pub iteration: usize,
    /// Environment steps so far.
    pub env_steps: u64,
    /// Best score of the iteration.
    pub best: f64,
    /// Mean score of its elites.
    pub elite_mean: f64,
    /// Mean score of the population.
    pub mean: f64,
}

/// Searches a gait for the task `env` describes (absolute actions), starting around its
/// start configuration (`task.rotate.start_configuration` for `rotate`, else the open
/// hand), for at most `minutes` of wall time. Returns the best gait of the last
/// iteration's mean (the distribution's mean, scored again on held-out seeds if it
/// beats the best candidate there) as a policy.
///
/// # Errors
///
/// [`Error::InvalidInput`] for bad settings or relative actions; the task's errors.
pub fn search_gait(
    env: &EnvSpec,
    config: &GaitSearchConfig,
    minutes: f64,
    seed: u64,
    on_iteration: &mut dyn FnMut(&GaitIteration),
) -> Result<GaitPolicy> {
    if config.population < 2
        || config.elites == 0
        || config.elites > config.population
        || config.episodes == 0
        || config.threads == 0
    {
        return Err(invalid_setting(
            "gait search",
            "needs population >= 2, 1 <= elites <= population, episodes >= 1, threads >= 1",
        ));
    }
    if !(minutes.is_finite() && minutes > 0.0) {
        return Err(invalid(format!("minutes must be positive, got {minutes}")));
    }
    if env.config.action_mode != ActionMode::Absolute {
        return Err(invalid(
            "a gait acts through absolute actions: set task.action_mode = \"absolute\"",
        ));
    }
    let model = env.model()?;
    let dof = model.dof();
    let limits = model.joint_limits();
    let start = if env.task == "rotate" && !env.config.rotate.start_configuration.is_empty() {
        env.config.rotate.start_configuration.clone()
    } else {
        dex_sim::open_configuration(&model)
    };
    // Parameters: per joint a centre offset and the two quadrature components of the
    // oscillation (amplitude and phase without a wrap-around).
    let n = 3 * dof;
    let mut mean = vec![0.0; n];
    let mut std: Vec<f64> = (0..n)
        .map(|k| {
            if k < dof {
                config.centre_range
            } else {
                config.amplitude_range
            }
        })
        .collect();
    let to_gait = |theta: &[f64]| -> Gait {
        let mut centre = Vec::with_capacity(dof);
        let mut amplitude = Vec::with_capacity(dof);
        let mut phase = Vec::with_capacity(dof);
        for j in 0..dof {
            let c = start[j] + theta[j].clamp(-config.centre_range, config.centre_range);
            centre.push(c.clamp(limits[j].lower, limits[j].upper));
            let (u, v) = (theta[dof + j], theta[2 * dof + j]);
            amplitude.push(u.hypot(v).min(config.amplitude_range));
            phase.push(v.atan2(u));
        }
        Gait {
            frequency_hz: config.frequency_hz,
            centre,
            amplitude,
            phase,
        }
    };
    // The task's shapes, read once: every candidate acts through a copy of it.
    let template = GaitPolicy::new(to_gait(&mean), env, 0, 0.0)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let began = Instant::now();
    let budget = minutes * 60.0;
    let mut env_steps = 0u64;
    let mut best: Option<(f64, Vec<f64>)> = None;
    let mut iteration = 0;
    while began.elapsed().as_secs_f64() < budget
        && (config.max_iterations == 0 || iteration < config.max_iterations)
    {
        iteration += 1;
        let population: Vec<Vec<f64>> = (0..config.population)
            .map(|_| {
                mean.iter()
                    .zip(&std)
                    .map(|(m, s)| m + s * crate::random::standard_normal(&mut rng))
                    .collect()
            })
            .collect();
        let seeds: Vec<u64> = (0..config.episodes)
            .map(|e| seed.wrapping_mul(1_000_003) + (iteration * config.episodes + e) as u64)
            .collect();
        let gaits: Vec<Gait> = population.iter().map(|t| to_gait(t)).collect();
        let (scores, steps) = score_gaits(
            &template,
            env,
            &gaits,
            &seeds,
            &config.score_key,
            config.threads,
        )?;
        env_steps += steps;
        let mut order: Vec<usize> = (0..scores.len()).collect();
        order.sort_by(|a, b| scores[*b].total_cmp(&scores[*a]));
        let elites = &order[..config.elites];
        for k in 0..n {
            let m = elites.iter().map(|&i| population[i][k]).sum::<f64>() / elites.len() as f64;
            let var = elites
                .iter()
                .map(|&i| (population[i][k] - m).powi(2))
                .sum::<f64>()
                / elites.len() as f64;
            mean[k] = m;
            std[k] = var.sqrt() + config.extra_std;
        }
        let top = order[0];
        if best.as_ref().is_none_or(|(s, _)| scores[top] > *s) {
            best = Some((scores[top], population[top].clone()));
        }
        on_iteration(&GaitIteration {
            iteration,
            env_steps,
            best: scores[top],
            elite_mean: elites.iter().map(|&i| scores[i]).sum::<f64>() / elites.len() as f64,
            mean: scores.iter().sum::<f64>() / scores.len() as f64,
        });
    }
    // The distribution's mean against the best single candidate, on fresh seeds: the
    // best candidate's score is biased upwards by the selection.
    let Some((_, best_theta)) = best else {
        return Err(invalid("the time budget ended before the first iteration"));
    };
    let seeds: Vec<u64> = (0..config.episodes.max(4))
        .map(|e| seed.wrapping_mul(7_000_003) + 1_000_000 + e as u64)
        .collect();
    let finalists = [to_gait(&mean), to_gait(&best_theta)];
    let (scores, steps) = score_gaits(
        &template,
        env,
        &finalists,
        &seeds,
        &config.score_key,
        config.threads,
    )?;
    env_steps += steps;
    let pick = usize::from(scores[1] > scores[0]);
    let mut policy = template.with_gait(finalists[pick].clone());
    policy.meta.env_steps = env_steps;
    policy.meta.score = scores[pick];
    Ok(policy)
}

/// Mean final `key` over `seeds` for each gait (acting through copies of `template`),
/// and the environment steps taken.
fn score_gaits(
    template: &GaitPolicy,
    env: &EnvSpec,
    gaits: &[Gait],
    seeds: &[u64],
    key: &str,
    threads: usize,
) -> Result<(Vec<f64>, u64)> {
    let jobs: Vec<(usize, u64)> = (0..gaits.len())
        .flat_map(|g| seeds.iter().map(move |s| (g, *s)))
        .collect();
    let chunk = jobs.len().div_ceil(threads.max(1));
    let results: Vec<Result<Vec<(usize, f64, u64)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .chunks(chunk.max(1))
            .map(|part| {
                scope.spawn(move || -> Result<Vec<(usize, f64, u64)>> {
                    let model = env.model()?;
                    let mut task = dex_sim::make_env(&env.sim_task()?, model, env.config.clone())?;
                    let mut out = Vec::with_capacity(part.len());
                    for &(g, s) in part {
                        let mut policy = template.with_gait(gaits[g].clone());
                        let (obs, _) = task.reset(Some(s))?;
                        let mut obs = obs.state;
                        let mut rng = ChaCha8Rng::seed_from_u64(s);
                        let mut steps = 0u64;
                        loop {
                            let x = ArrayView2::from_shape((1, obs.len()), &obs)
                                .map_err(|e| invalid(e.to_string()))?;
                            let a = policy.act(x, ActMode::Deterministic, &mut rng)?;
                            let step = task.step(a.as_slice().unwrap_or(&[]))?;
                            steps += 1;
                            if step.terminated || step.truncated {
                                out.push((g, step.info.get(key).unwrap_or(0.0), steps));
                                break;
                            }
                            obs = step.obs.state;
                        }
                    }
                    Ok(out)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(invalid("a gait worker panicked")))
            })
            .collect()
    });
    let mut sums = vec![0.0; gaits.len()];
    let mut steps = 0;
    for part in results {
        for (g, v, n) in part? {
            sums[g] += v;
            steps += n;
        }
    }
    let k = seeds.len() as f64;
    Ok((sums.into_iter().map(|s| s / k).collect(), steps))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use dex_sim::TaskConfig;

    fn spec(episode_steps: usize) -> EnvSpec {
        EnvSpec::state(
            "rotate",
            "leap",
            TaskConfig {
                mock_physics: true,
                episode_steps,
                ..TaskConfig::default()
            },
        )
    }

    fn gait() -> Gait {
        Gait {
            frequency_hz: 1.5,
            centre: (0..16).map(|j| 0.05 * j as f64).collect(),
            amplitude: vec![0.2; 16],
            phase: (0..16).map(|j| 0.3 * j as f64).collect(),
        }
    }

    #[test]
    fn the_gait_sets_its_targets_through_the_absolute_mapping_and_restarts_on_reset() {
        let env = spec(10);
        let mut p = GaitPolicy::new(gait(), &env, 0, 0.0).unwrap();
        let limits = env.model().unwrap().joint_limits();
        let period = env.config.dt * env.config.substeps as f64;
        let obs = Array2::zeros((2, p.observation_dim()));
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for step in 0..3 {
            let a = p.act(obs.view(), ActMode::Deterministic, &mut rng).unwrap();
            let want = gait().targets(step as f64 * period);
            for row in a.rows() {
                let got = env
                    .config
                    .action_targets(&limits, row.as_slice().unwrap(), &[0.0; 16], None)
                    .unwrap();
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() < 1e-5, "step {step}: {g} vs {w}");
                }
            }
        }
        p.reset(1);
        let a = p.act(obs.view(), ActMode::Deterministic, &mut rng).unwrap();
        assert_ne!(
            a.row(0),
            a.row(1),
            "environment 0 is at step 3, 1 back at 0"
        );
        let mut fresh = GaitPolicy::new(gait(), &env, 0, 0.0).unwrap();
        let b = fresh
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        assert_eq!(a.row(1), b.row(0));

        // Saved and loaded as any checkpoint, it acts the same.
        let dir = std::env::temp_dir().join(format!("dex-gait-{}", std::process::id()));
        p.save(&dir).unwrap();
        let mut back = crate::load_checkpoint(&dir).unwrap();
        assert_eq!(back.algorithm, "gait");
        let c = back
            .policy
            .act(obs.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        assert_eq!(c, b);

        // Relative actions would integrate the gait: refused.
        let mut relative = spec(10);
        relative.config.action_mode = ActionMode::Relative;
        assert!(GaitPolicy::new(gait(), &relative, 0, 0.0).is_err());
        let mut short = gait();
        short.phase.pop();
        assert!(GaitPolicy::new(short, &env, 0, 0.0).is_err());
    }

    #[test]
    fn the_search_scores_every_candidate_on_the_same_episodes() {
        let env = spec(5);
        let config = GaitSearchConfig {
            population: 4,
            elites: 2,
            episodes: 1,
            max_iterations: 2,
            ..GaitSearchConfig::default()
        };
        let mut seen = Vec::new();
        let p = search_gait(&env, &config, 10.0, 3, &mut |it| seen.push(it.clone())).unwrap();
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].env_steps, 2 * 4 * 5);
        // Then the distribution's mean and the best candidate on 4 fresh episodes each.
        assert_eq!(p.meta().env_steps, 2 * 4 * 5 + 2 * 4 * 5);
        let g = &p.meta().gait;
        assert!(
            g.amplitude
                .iter()
                .all(|a| (0.0..=config.amplitude_range).contains(a))
        );
        assert!(p.meta().score.is_finite());
        let bad = GaitSearchConfig {
            elites: 5,
            ..config
        };
        assert!(search_gait(&env, &bad, 1.0, 0, &mut |_| {}).is_err());
    }
}
