//! A reach policy on a hand over its driver: the reach task's observation built from
//! what the driver measures, episodes paced at the control rate, success counted as the
//! task counts it. How a policy trained in simulation (and its residual) is judged on
//! the hand itself.

use std::time::{Duration, Instant};

use dex_core::{HandModel, JointTargets};
use dex_hw::HandDriver;
use dex_policy::{ActMode, Policy};
use dex_sim::{Proprioception, TaskConfig, reach_state};
use nalgebra::{Isometry3, Point3};
use ndarray::Array2;
use rand::SeedableRng;

use crate::error::{Error, Result};

/// One reach episode on a hand: where the fingertips should go (the hand's root frame)
/// and the joint configuration it starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct ReachEpisode {
    /// One target per fingertip, root (palm) frame (m).
    pub goals: Vec<Point3<f64>>,
    /// The starting joint positions (rad).
    pub start: Vec<f64>,
}

/// What [`reach_over_driver`] measured.
#[derive(Debug, Clone, PartialEq)]
pub struct ReachOutcome {
    /// Episodes run.
    pub episodes: usize,
    /// Episodes in which every fingertip came within the success radius of its target.
    pub successes: usize,
    /// Mean over episodes of the largest fingertip distance at the episode's end (m).
    pub mean_final_distance: f64,
}

impl ReachOutcome {
    /// Fraction of episodes that succeeded.
    pub fn success_rate(&self) -> f64 {
        self.successes as f64 / self.episodes.max(1) as f64
    }
}

/// Runs `policy` (trained on the reach task with settings `task`) on `driver` for each
/// of `episodes`: the hand is first brought to the episode's start over one second of
/// interpolated targets, then for `task.episode_steps` control steps the observation is
/// the task's (proprioception of the measured joints and the targets sent, fingertip and
/// target positions from forward kinematics of the measured joints), the action is
/// clipped to [−1, 1] and mapped to targets as the task maps it. An episode succeeds,
/// and ends, when every fingertip is within `success_radius` of its target (the task's
/// rule). Steps are paced at `rate_hz` (0: as fast as the driver answers). The driver is
/// disabled at the end.
///
/// # Errors
///
/// The driver's and the policy's errors; [`Error::LengthMismatch`] for a policy or an
/// episode that does not fit the hand.
pub fn reach_over_driver(
    driver: &mut dyn HandDriver,
    model: &HandModel,
    task: &TaskConfig,
    policy: &mut dyn Policy,
    episodes: &[ReachEpisode],
    success_radius: f64,
    rate_hz: f64,
) -> Result<ReachOutcome> {
    let dof = model.dof();
    let limits = model.joint_limits();
    let mut proprio = Proprioception::new(model, task.history)
        .map_err(|e| Error::Policy(dex_policy::Error::Sim(e)))?;
    let tips = model.fingertips().len();
    let mut probe = Vec::new();
    reach_state(
        &vec![Point3::origin(); tips],
        &vec![Point3::origin(); tips],
        &mut probe,
    );
    let obs_dim = proprio.dim() + probe.len();
    if policy.observation_dim() != obs_dim || policy.action_dim() != dof || driver.dof() != dof {
        return Err(Error::LengthMismatch {
            what: "reach policy observation width (proprioception and the fingertip block)",
            expected: obs_dim,
            got: policy.observation_dim(),
        });
    }
    crate::collect::enable(driver)?;
    let period = (rate_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_hz));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut out = ReachOutcome {
        episodes: 0,
        successes: 0,
        mean_final_distance: 0.0,
    };
    let sim_error = |e: dex_sim::Error| Error::Policy(dex_policy::Error::Sim(e));
    for episode in episodes {
        if episode.goals.len() != tips || episode.start.len() != dof {
            return Err(Error::LengthMismatch {
                what: "episode goals (one per fingertip) and start (one per joint)",
                expected: tips,
                got: episode.goals.len(),
            });
        }
        // To the start, over a second.
        let from = driver.read_state()?.q;
        let settle = rate_hz.max(20.0).round() as usize;
        let mut last_target = from.clone();
        for k in 1..=settle {
            let s = k as f64 / settle as f64;
            last_target = from
                .iter()
                .zip(&episode.start)
                .map(|(a, b)| a + s * (b - a))
                .collect();
            driver.write_targets(&JointTargets::new(last_target.clone()))?;
            pace(period, &mut Instant::now());
        }
        proprio.reset();
        policy.reset(0);
        let mut distance = f64::INFINITY;
        let mut tick = Instant::now();
        for step in 0..=task.episode_steps {
            let state = driver.read_state()?;
            let tips_now = model.fingertip_positions(&state.q)?;
            distance = tips_now
                .iter()
                .zip(&episode.goals)
                .map(|(t, g)| (t - g).norm())
                .fold(0.0, f64::max);
            if distance <= success_radius {
                out.successes += 1;
                break;
            }
            if step == task.episode_steps {
                break;
            }
            proprio.record(&state.q, &last_target).map_err(sim_error)?;
            let mut obs = Vec::with_capacity(obs_dim);
            proprio.write(&state.qdot, &mut obs).map_err(sim_error)?;
            reach_state(&tips_now, &episode.goals, &mut obs);
            let obs =
                Array2::from_shape_vec((1, obs_dim), obs).map_err(|e| Error::InvalidSetting {
                    what: "observation",
                    reason: e.to_string(),
                })?;
            let action = policy.act(obs.view(), ActMode::Deterministic, &mut rng)?;
            let action: Vec<f32> = action.iter().map(|a| a.clamp(-1.0, 1.0)).collect();
            last_target = task
                .action_targets(&limits, &action, &last_target, Some(&state.q))
                .map_err(sim_error)?;
            driver.write_targets(&JointTargets::new(last_target.clone()))?;
            pace(period, &mut tick);
        }
        out.episodes += 1;
        out.mean_final_distance += distance;
    }
    driver.disable()?;
    out.mean_final_distance /= out.episodes.max(1) as f64;
    Ok(out)
}

/// Sleeps until one `period` after `since`, then moves `since` on by it.
fn pace(period: Option<Duration>, since: &mut Instant) {
    if let Some(p) = period {
        let deadline = *since + p;
        let now = Instant::now();
        if deadline > now {
            std::thread::sleep(deadline - now);
        }
        *since = deadline.max(now);
    }
}

/// `goals` (world frame) in the frame of a hand mounted at `hand_pose`.
pub fn goals_in_hand_frame(goals: &[Point3<f64>], hand_pose: &Isometry3<f64>) -> Vec<Point3<f64>> {
    goals
        .iter()
        .map(|g| hand_pose.inverse_transform_point(g))
        .collect()
}
