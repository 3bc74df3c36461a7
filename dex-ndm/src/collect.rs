//! Chaos-box style collection: action sequences replayed open-loop on any
//! [`HandDriver`], with noise on a random half of the steps, written as they come.

use std::time::{Duration, Instant};

use dex_core::{JointLimits, JointTargets};
use dex_hw::{DriverState, HandDriver};
use dex_policy::random::standard_normal;
use dex_policy::{ActMode, Policy};
use dex_sim::Env;
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::dataset::{DataWriter, Segment};
use crate::error::{Error, Result};

/// Where replayed action sequences come from: each call gives the joint targets (rad)
/// of one sequence, one row per control step.
pub trait SequenceSource: Send {
    /// The next sequence.
    ///
    /// # Errors
    ///
    /// The source's own (a policy or simulator failing).
    fn next_sequence(&mut self) -> Result<Vec<Vec<f64>>>;
}

/// Smoothed random targets: each joint walks towards a random goal in the middle 80% of
/// its range at up to `max_step` rad a step, with a new goal every 5–25 steps.
#[derive(Debug, Clone)]
pub struct RandomTargets {
    limits: Vec<JointLimits>,
    len: usize,
    max_step: f64,
    rng: rand_chacha::ChaCha8Rng,
    current: Vec<f64>,
}

impl RandomTargets {
    /// Sequences of `len` steps for joints with `limits`, starting at mid-range.
    pub fn new(limits: Vec<JointLimits>, len: usize, seed: u64) -> Self {
        let current = limits.iter().map(JointLimits::mid).collect();
        Self {
            limits,
            len,
            max_step: 0.05,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
            current,
        }
    }
}

impl SequenceSource for RandomTargets {
    fn next_sequence(&mut self) -> Result<Vec<Vec<f64>>> {
        let d = self.limits.len();
        let mut goal = self.current.clone();
        let mut hold = vec![0usize; d];
        let mut out = Vec::with_capacity(self.len);
        for _ in 0..self.len {
            for i in 0..d {
                if hold[i] == 0 {
                    goal[i] = self.limits[i].from_unit(self.rng.random_range(-0.8..0.8));
                    hold[i] = self.rng.random_range(5..25);
                }
                hold[i] -= 1;
                self.current[i] += (goal[i] - self.current[i]).clamp(-self.max_step, self.max_step);
            }
            out.push(self.current.clone());
        }
        Ok(out)
    }
}

/// A policy rolled out in simulation: each sequence is one episode (up to `len`
/// steps, shorter if it ends) of the joint targets the task sent, read back from its
/// simulator after every step. Episodes are reset with successive seeds.
pub struct PolicyRollouts {
    env: Box<dyn Env>,
    policy: Box<dyn Policy>,
    len: usize,
    seed: u64,
    rng: rand_chacha::ChaCha8Rng,
}

impl std::fmt::Debug for PolicyRollouts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyRollouts")
            .field("env", &self.env.name())
            .field("len", &self.len)
            .finish()
    }
}

impl PolicyRollouts {
    /// Rolls `policy` out on `env` (which must have a simulator), `len` steps at most
    /// per sequence, the first episode reset with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] when `env` has no simulator or the policy's widths are
    /// not the env's.
    pub fn new(env: Box<dyn Env>, policy: Box<dyn Policy>, len: usize, seed: u64) -> Result<Self> {
        if env.simulator().is_none() {
            return Err(Error::InvalidSetting {
                what: "rollout environment",
                reason: format!("`{}` has no simulator to read targets from", env.name()),
            });
        }
        let (obs, act) = (
            env.observation_spec().state.dim(),
            env.action_space().low.len(),
        );
        if policy.observation_dim() != obs || policy.action_dim() != act {
            return Err(Error::InvalidSetting {
                what: "rollout policy",
                reason: format!(
                    "takes {} observations and gives {} actions; `{}` has {obs} and {act}",
                    policy.observation_dim(),
                    policy.action_dim(),
                    env.name()
                ),
            });
        }
        Ok(Self {
            env,
            policy,
            len,
            seed,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        })
    }
}

impl SequenceSource for PolicyRollouts {
    fn next_sequence(&mut self) -> Result<Vec<Vec<f64>>> {
        let sim_error = |e: dex_sim::Error| Error::Policy(dex_policy::Error::Sim(e));
        let (mut obs, _) = self.env.reset(Some(self.seed)).map_err(sim_error)?;
        self.seed += 1;
        self.policy.reset(0);
        let mut out = Vec::with_capacity(self.len);
        for _ in 0..self.len {
            let action = clipped_action(
                self.env.as_ref(),
                self.policy.as_mut(),
                &obs.state,
                &mut self.rng,
            )?;
            let step = self.env.step(&action).map_err(sim_error)?;
            let sim = self.env.simulator().ok_or_else(|| Error::InvalidSetting {
                what: "rollout environment",
                reason: "lost its simulator".into(),
            })?;
            out.push(sim.joint_targets().to_vec());
            if step.terminated || step.truncated {
                break;
            }
            obs = step.obs;
        }
        Ok(out)
    }
}

/// `policy`'s deterministic action for one observation, clipped to `env`'s action space
/// (as evaluation clips it).
pub(crate) fn clipped_action(
    env: &dyn Env,
    policy: &mut dyn Policy,
    observation: &[f32],
    rng: &mut dyn rand::RngCore,
) -> Result<Vec<f32>> {
    let row =
        Array2::from_shape_vec((1, observation.len()), observation.to_vec()).map_err(|e| {
            Error::InvalidSetting {
                what: "observation",
                reason: e.to_string(),
            }
        })?;
    let action = policy.act(row.view(), ActMode::Deterministic, rng)?;
    let space = env.action_space();
    Ok(action
        .iter()
        .zip(space.low.iter().zip(&space.high))
        .map(|(v, (l, h))| v.clamp(*l, *h))
        .collect())
}

/// Brings `driver` to torque on: configured first if it is new or faulted, enabled
/// unless it already is.
///
/// # Errors
///
/// The driver's.
pub(crate) fn enable(driver: &mut dyn HandDriver) -> Result<()> {
    if matches!(driver.state(), DriverState::Opened | DriverState::Faulted) {
        driver.configure()?;
    }
    if driver.state() != DriverState::Enabled {
        driver.enable()?;
    }
    Ok(())
}

/// How sequences are replayed. DexNDM App. C: noise N(0, 0.01) on an action with
/// probability 0.5; its actions are normalised targets, so dex draws the noise in
/// units of half each joint's range (σ = 0.01 is 0.015 rad on a joint of 3 rad range).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplayConfig {
    /// Noise standard deviation, in half joint ranges.
    pub noise_std: f64,
    /// Fraction of steps whose targets get noise (each joint its own draw).
    pub noise_fraction: f64,
    /// Control rate to pace the replay at (Hz); 0 runs as fast as the driver answers
    /// (a simulated hand that steps per command).
    pub rate_hz: f64,
    /// Steps at the start of each sequence that blend from the last target sent to the
    /// sequence's first, so the hand is never commanded a jump.
    pub blend_steps: usize,
    /// Rows per chunk written.
    pub chunk_rows: usize,
    /// Seed of the noise.
    pub seed: u64,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            noise_std: 0.01,
            noise_fraction: 0.5,
            rate_hz: 20.0,
            blend_steps: 10,
            chunk_rows: 8000,
            seed: 0,
        }
    }
}

impl ReplayConfig {
    /// Checks the fields.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidSetting`] for negative or non-finite values or a fraction above
    /// 1.
    pub fn validate(&self) -> Result<()> {
        if !(self.noise_std.is_finite()
            && self.noise_std >= 0.0
            && (0.0..=1.0).contains(&self.noise_fraction)
            && self.rate_hz.is_finite()
            && self.rate_hz >= 0.0)
        {
            return Err(Error::InvalidSetting {
                what: "replay config",
                reason: format!(
                    "noise_std ≥ 0, noise_fraction in [0, 1] and rate_hz ≥ 0 needed, got {}, {}, {}",
                    self.noise_std, self.noise_fraction, self.rate_hz
                ),
            });
        }
        Ok(())
    }
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayReport {
    /// Segments written.
    pub segments: usize,
    /// Control steps recorded.
    pub steps: usize,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Control steps per wall-clock second.
    pub achieved_hz: f64,
    /// Steps whose read + write took longer than the control period (paced runs).
    pub overruns: usize,
    /// Median time of one bus cycle (read the joints, write the targets), ms.
    pub cycle_p50_ms: f64,
    /// 99th percentile of the bus cycle, ms.
    pub cycle_p99_ms: f64,
}

/// Replays sequences from `source` on `driver` until `max_steps` control steps are
/// recorded, one segment per sequence, into `writer`. Each step reads the joints
/// (`q_t`), then writes the sequence's targets, with noise on a random
/// `config.noise_fraction` of the steps and clamped into `limits` (`a_t`). The driver
/// is configured and enabled if it is not yet, and disabled (torque off) at the end.
///
/// On a driver error the driver has already turned torque off (the [`HandDriver`]
/// contract; `disable` is tried again), the segments completed so far are written,
/// and the error is returned: every chunk written stays readable.
///
/// # Errors
///
/// The driver's errors ([`Error::Hardware`]); the source's; [`Error::LengthMismatch`]
/// for limits or sequences of another joint count; [`Error::Data`] when writing fails.
pub fn replay(
    driver: &mut dyn HandDriver,
    limits: &[JointLimits],
    source: &mut dyn SequenceSource,
    max_steps: usize,
    config: &ReplayConfig,
    writer: &mut DataWriter,
    progress: &mut dyn FnMut(usize),
) -> Result<ReplayReport> {
    config.validate()?;
    let dof = driver.dof();
    if limits.len() != dof || writer.manifest().joint_names.len() != dof {
        return Err(Error::LengthMismatch {
            what: "joint limits and dataset joints (the driver's joints)",
            expected: dof,
            got: limits.len(),
        });
    }
    enable(driver)?;
    let start = Instant::now();
    let mut run = Run {
        config,
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(config.seed ^ 0x00ca_05b0_7e5e_ed00),
        schedule: start,
        period: (config.rate_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / config.rate_hz)),
        ticks: 0,
        cycles: Vec::new(),
        overruns: 0,
        steps: 0,
        segments: 0,
    };
    let result = run.replay(driver, limits, source, max_steps, writer, progress);
    if result.is_err() {
        let _ = driver.disable();
        writer.flush()?;
        result?;
    }
    driver.disable()?;
    writer.flush()?;
    let seconds = start.elapsed().as_secs_f64();
    run.cycles.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        run.cycles
            .get(((run.cycles.len() as f64 - 1.0) * p).round().max(0.0) as usize)
            .map_or(0.0, |s| s * 1e3)
    };
    Ok(ReplayReport {
        segments: run.segments,
        steps: run.steps,
        seconds,
        achieved_hz: run.steps as f64 / seconds.max(1e-9),
        overruns: run.overruns,
        cycle_p50_ms: pct(0.5),
        cycle_p99_ms: pct(0.99),
    })
}

struct Run<'a> {
    config: &'a ReplayConfig,
    rng: rand_chacha::ChaCha8Rng,
    schedule: Instant,
    period: Option<Duration>,
    ticks: u32,
    cycles: Vec<f64>,
    overruns: usize,
    steps: usize,
    segments: usize,
}

impl Run<'_> {
    fn replay(
        &mut self,
        driver: &mut dyn HandDriver,
        limits: &[JointLimits],
        source: &mut dyn SequenceSource,
        max_steps: usize,
        writer: &mut DataWriter,
        progress: &mut dyn FnMut(usize),
    ) -> Result<()> {
        let config = self.config;
        let dof = limits.len();
        let mut last: Option<Vec<f64>> = None;
        while self.steps < max_steps {
            let sequence = source.next_sequence()?;
            if sequence.is_empty() {
                return Err(Error::InvalidSetting {
                    what: "action sequence",
                    reason: "the source gave an empty sequence".into(),
                });
            }
            let mut segment = Segment::new(dof);
            for (k, row) in sequence.iter().enumerate() {
                if self.steps + segment.len() >= max_steps {
                    break;
                }
                if row.len() != dof {
                    return Err(Error::LengthMismatch {
                        what: "action sequence row",
                        expected: dof,
                        got: row.len(),
                    });
                }
                let mut target = row.clone();
                if let (Some(prev), true) = (&last, k < config.blend_steps) {
                    let w = (k + 1) as f64 / (config.blend_steps + 1) as f64;
                    for (t, p) in target.iter_mut().zip(prev) {
                        *t = p + w * (*t - p);
                    }
                }
                if self.rng.random::<f64>() < config.noise_fraction {
                    for (t, l) in target.iter_mut().zip(limits) {
                        *t += config.noise_std * (l.upper - l.lower) / 2.0
                            * standard_normal(&mut self.rng);
                    }
                }
                for (t, l) in target.iter_mut().zip(limits) {
                    *t = t.clamp(l.lower, l.upper);
                }
                let tick = Instant::now();
                let q = driver.read_state()?.q;
                driver.write_targets(&JointTargets::new(target.clone()))?;
                self.cycles.push(tick.elapsed().as_secs_f64());
                segment.push(&q, &target)?;
                self.pace();
                last = Some(target);
            }
            self.steps += segment.len();
            self.segments += usize::from(!segment.is_empty());
            writer.push_segment(&segment)?;
            progress(self.steps);
        }
        Ok(())
    }

    fn pace(&mut self) {
        let Some(period) = self.period else {
            return;
        };
        self.ticks += 1;
        let deadline = self.schedule + period * self.ticks;
        let now = Instant::now();
        if now > deadline {
            self.overruns += 1;
            // Start the schedule again from now rather than rushing to catch up.
            self.schedule = now;
            self.ticks = 0;
            return;
        }
        std::thread::sleep(deadline - now);
    }
}

/// How closely a hand follows targets, and how far two hands are apart on the same
/// targets (see [`tracking_gap`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrackingGap {
    /// Control steps compared.
    pub steps: usize,
    /// RMS of `a_t − q_{t+1}` on the first hand (rad): how well it tracks.
    pub first_tracking_rad: f64,
    /// The same on the second hand (rad).
    pub second_tracking_rad: f64,
    /// RMS of the difference of the two hands' joint positions (rad).
    pub between_rad: f64,
    /// That difference per joint (rad).
    pub between_joint_rad: Vec<f64>,
}

/// Sends the same `steps` targets from `source` (no noise) to `first` and `second`,
/// each from its own present pose, and compares where the joints went: the distance
/// between an ideal and a real hand on the same commands.
///
/// # Errors
///
/// The drivers' and the source's errors; [`Error::LengthMismatch`] for drivers of
/// different joint counts.
pub fn tracking_gap(
    first: &mut dyn HandDriver,
    second: &mut dyn HandDriver,
    limits: &[JointLimits],
    source: &mut dyn SequenceSource,
    steps: usize,
) -> Result<TrackingGap> {
    let dof = limits.len();
    for d in [first.dof(), second.dof()] {
        if d != dof {
            return Err(Error::LengthMismatch {
                what: "driver joints",
                expected: dof,
                got: d,
            });
        }
    }
    let mut targets = Vec::with_capacity(steps);
    while targets.len() < steps {
        let seq = source.next_sequence()?;
        if seq.is_empty() {
            break;
        }
        targets.extend(seq.into_iter().take(steps - targets.len()));
    }
    let run = |driver: &mut dyn HandDriver| -> Result<Vec<Vec<f64>>> {
        enable(driver)?;
        let mut q = Vec::with_capacity(targets.len() + 1);
        for t in &targets {
            q.push(driver.read_state()?.q);
            let clamped: Vec<f64> = t
                .iter()
                .zip(limits)
                .map(|(v, l)| v.clamp(l.lower, l.upper))
                .collect();
            driver.write_targets(&JointTargets::new(clamped))?;
        }
        q.push(driver.read_state()?.q);
        driver.disable()?;
        Ok(q)
    };
    let qa = run(first)?;
    let qb = run(second)?;
    let n = targets.len().max(1) as f64;
    let tracking = |q: &[Vec<f64>]| {
        let se: f64 = targets
            .iter()
            .zip(&q[1..])
            .flat_map(|(t, q)| t.iter().zip(q).map(|(a, b)| (a - b).powi(2)))
            .sum();
        (se / (n * dof as f64)).sqrt()
    };
    let mut joint = vec![0.0; dof];
    for (a, b) in qa[1..].iter().zip(&qb[1..]) {
        for i in 0..dof {
            joint[i] += (a[i] - b[i]).powi(2);
        }
    }
    let total: f64 = joint.iter().sum();
    Ok(TrackingGap {
        steps: targets.len(),
        first_tracking_rad: tracking(&qa),
        second_tracking_rad: tracking(&qb),
        between_rad: (total / (n * dof as f64)).sqrt(),
        between_joint_rad: joint.iter().map(|s| (s / n).sqrt()).collect(),
    })
}
