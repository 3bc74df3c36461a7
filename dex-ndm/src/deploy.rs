//! Reach and rotation policies on a hand over its driver: the task's observation built
//! from what the driver measures (and, for rotation, what tracks the object), episodes
//! paced at the control rate, success and rotation counted as the task counts them. How a policy trained in simulation (and its residual) is judged on
//! the hand itself.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dex_core::{HandModel, JointTargets};
use dex_hw::HandDriver;
use dex_policy::{ActMode, Policy};
use dex_sim::{ObjectState, Proprioception, Simulator, TaskConfig, reach_state, rotate_state};
use nalgebra::{Isometry3, Point3, Vector3};
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
    check_fit(
        policy,
        driver,
        obs_dim,
        dof,
        "reach policy observation width (proprioception and the fingertip block)",
    )?;
    let period = (rate_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_hz));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut out = ReachOutcome {
        episodes: 0,
        successes: 0,
        mean_final_distance: 0.0,
    };
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
        let mut last_target = move_to(driver, &from, &episode.start, settle, period)?;
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
            last_target = act_and_send(
                policy,
                driver,
                task,
                &limits,
                obs,
                (&last_target, &state.q),
                &mut rng,
            )?;
            pace(period, &mut tick);
        }
        out.episodes += 1;
        out.mean_final_distance += distance;
    }
    driver.disable()?;
    out.mean_final_distance /= out.episodes.max(1) as f64;
    Ok(out)
}

/// One control step: `policy` acts (deterministically) on `obs`, its action is clipped
/// to [−1, 1] and mapped to targets as `task` maps it from `(the last targets, the
/// measured positions)`, and the targets are sent. Returns them.
fn act_and_send(
    policy: &mut dyn Policy,
    driver: &mut dyn HandDriver,
    task: &TaskConfig,
    limits: &[dex_core::JointLimits],
    obs: Vec<f32>,
    (last_target, q): (&[f64], &[f64]),
    rng: &mut rand_chacha::ChaCha8Rng,
) -> Result<Vec<f64>> {
    let obs = Array2::from_shape_vec((1, obs.len()), obs).map_err(|e| Error::InvalidSetting {
        what: "observation",
        reason: e.to_string(),
    })?;
    let action = policy.act(obs.view(), ActMode::Deterministic, rng)?;
    let action: Vec<f32> = action.iter().map(|a| a.clamp(-1.0, 1.0)).collect();
    let targets = task
        .action_targets(limits, &action, last_target, Some(q))
        .map_err(sim_error)?;
    driver.write_targets(&JointTargets::new(targets.clone()))?;
    Ok(targets)
}

/// Checks that `policy` and `driver` fit a hand of `dof` joints and an observation of
/// `obs_dim` values, then brings the driver to torque on.
fn check_fit(
    policy: &dyn Policy,
    driver: &mut dyn HandDriver,
    obs_dim: usize,
    dof: usize,
    what: &'static str,
) -> Result<()> {
    if policy.observation_dim() != obs_dim || policy.action_dim() != dof || driver.dof() != dof {
        return Err(Error::LengthMismatch {
            what,
            expected: obs_dim,
            got: policy.observation_dim(),
        });
    }
    crate::collect::enable(driver)
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

/// The object in the hand as a rotation evaluation needs it: tracked (its pose and
/// angular velocity) and put back between episodes. On a real hand a motion-capture
/// system and a person; on the emulated gap hand the simulation behind the bus
/// (`dex_hw::emulator::gap_hand_shared`'s handle implements it).
pub trait ObjectScene {
    /// The pose of the hand's root (palm) frame in the scene's world frame.
    fn hand_pose(&self) -> Result<Isometry3<f64>>;
    /// Puts the object at `pose` (world frame), at rest.
    fn place_object(&mut self, pose: &Isometry3<f64>) -> Result<()>;
    /// The object's pose and velocities (world frame).
    fn object_state(&self) -> Result<ObjectState>;
}

fn sim_error(e: dex_sim::Error) -> Error {
    Error::Policy(dex_policy::Error::Sim(e))
}

impl ObjectScene for Arc<Mutex<Box<dyn Simulator>>> {
    fn hand_pose(&self) -> Result<Isometry3<f64>> {
        Ok(self
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .config()
            .hand_pose)
    }

    fn place_object(&mut self, pose: &Isometry3<f64>) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .set_object_pose(0, pose)
            .map_err(sim_error)
    }

    fn object_state(&self) -> Result<ObjectState> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .object_state(0)
            .map_err(sim_error)
    }
}

/// One rotation episode on a hand: where the object is put (world frame, at rest) and
/// the joint configuration the hand takes around it before the policy starts.
#[derive(Debug, Clone, PartialEq)]
pub struct RotateEpisode {
    /// The object's starting pose (world frame).
    pub object: Isometry3<f64>,
    /// The starting joint positions (rad).
    pub start: Vec<f64>,
}

/// What [`rotate_over_driver`] measured, DexNDM's two figures per episode.
#[derive(Debug, Clone, PartialEq)]
pub struct RotateOutcome {
    /// Episodes run.
    pub episodes: usize,
    /// Mean over episodes of the rotation about the axis, `∫ ω·k dt` (rad), up to the
    /// drop or the episode's end.
    pub mean_rotation: f64,
    /// Mean over episodes of the time to fall (s): the episode's length when the
    /// object was not dropped.
    pub mean_time_to_fall: f64,
    /// Episodes that ended in a drop.
    pub drops: usize,
}

/// Runs `policy` (trained on the rotate task with settings `task` and `rotate`, about
/// `axis`) on `driver` for each of `episodes`, the object tracked and placed through
/// `scene`: the hand opens over a second, the object is put at the episode's pose, the
/// hand closes to the episode's start over half a second; then for `task.episode_steps`
/// control steps the observation is the task's (proprioception of the measured joints
/// and the targets sent, the tracked object, fingertips from forward kinematics of the
/// measured joints), the action is clipped to [−1, 1] and mapped to targets as the task
/// maps it. Rotation is integrated as the task integrates it (ω·k once per control
/// period); an episode ends early when the object moves `rotate.drop_distance` from
/// where it started. Steps are paced at `rate_hz` (0: as fast as the driver answers).
/// The driver is disabled at the end.
///
/// # Errors
///
/// The driver's, the scene's and the policy's errors; [`Error::LengthMismatch`] for a
/// policy or an episode that does not fit the hand.
#[allow(clippy::too_many_arguments)]
pub fn rotate_over_driver(
    driver: &mut dyn HandDriver,
    scene: &mut dyn ObjectScene,
    model: &HandModel,
    task: &TaskConfig,
    axis: &Vector3<f64>,
    policy: &mut dyn Policy,
    episodes: &[RotateEpisode],
    rate_hz: f64,
) -> Result<RotateOutcome> {
    let dof = model.dof();
    let limits = model.joint_limits();
    let axis = axis.try_normalize(1e-9).ok_or(Error::InvalidSetting {
        what: "rotation axis",
        reason: "must be non-zero".into(),
    })?;
    let mut proprio = Proprioception::new(model, task.history).map_err(sim_error)?;
    let tips = model.fingertips().len();
    let mut probe = Vec::new();
    rotate_state(
        &Isometry3::identity(),
        &Vector3::zeros(),
        &vec![Point3::origin(); tips],
        &axis,
        &mut probe,
    );
    let obs_dim = proprio.dim() + probe.len();
    check_fit(
        policy,
        driver,
        obs_dim,
        dof,
        "rotate policy observation width (proprioception and the object block)",
    )?;
    let period = (rate_hz > 0.0).then(|| Duration::from_secs_f64(1.0 / rate_hz));
    let control_period = task.dt * task.substeps as f64;
    let hand = scene.hand_pose()?;
    let open = dex_sim::open_configuration(model);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let mut out = RotateOutcome {
        episodes: 0,
        mean_rotation: 0.0,
        mean_time_to_fall: 0.0,
        drops: 0,
    };
    for episode in episodes {
        if episode.start.len() != dof {
            return Err(Error::LengthMismatch {
                what: "episode start (one value per joint)",
                expected: dof,
                got: episode.start.len(),
            });
        }
        let from = driver.read_state()?.q;
        let second = rate_hz.max(20.0).round() as usize;
        move_to(driver, &from, &open, second, period)?;
        scene.place_object(&episode.object)?;
        let mut last_target = move_to(driver, &open, &episode.start, second.div_ceil(2), period)?;
        let start = Point3::from(scene.object_state()?.pose.translation.vector);
        proprio.reset();
        policy.reset(0);
        let mut rotation = 0.0;
        let mut steps = 0;
        let mut dropped = false;
        let mut tick = Instant::now();
        while steps < task.episode_steps {
            let state = driver.read_state()?;
            let object = scene.object_state()?;
            if (Point3::from(object.pose.translation.vector) - start).norm()
                > task.rotate.drop_distance
            {
                dropped = true;
                break;
            }
            let tips_palm = model.fingertip_positions(&state.q)?;
            proprio.record(&state.q, &last_target).map_err(sim_error)?;
            let mut obs = Vec::with_capacity(obs_dim);
            proprio.write(&state.qdot, &mut obs).map_err(sim_error)?;
            rotate_state(
                &(hand.inverse() * object.pose),
                &object.angular_velocity,
                &tips_palm,
                &axis,
                &mut obs,
            );
            last_target = act_and_send(
                policy,
                driver,
                task,
                &limits,
                obs,
                (&last_target, &state.q),
                &mut rng,
            )?;
            pace(period, &mut tick);
            steps += 1;
            rotation += scene.object_state()?.angular_velocity.dot(&axis) * control_period;
        }
        out.episodes += 1;
        out.mean_rotation += rotation;
        out.mean_time_to_fall += steps as f64 * control_period;
        out.drops += usize::from(dropped);
    }
    driver.disable()?;
    let n = out.episodes.max(1) as f64;
    out.mean_rotation /= n;
    out.mean_time_to_fall /= n;
    Ok(out)
}

/// Interpolates the targets from `from` to `to` over `ticks` writes; returns `to`.
fn move_to(
    driver: &mut dyn HandDriver,
    from: &[f64],
    to: &[f64],
    ticks: usize,
    period: Option<Duration>,
) -> Result<Vec<f64>> {
    let ticks = ticks.max(1);
    let mut tick = Instant::now();
    for k in 1..=ticks {
        let s = k as f64 / ticks as f64;
        let t: Vec<f64> = from.iter().zip(to).map(|(a, b)| a + s * (b - a)).collect();
        driver.write_targets(&JointTargets::new(t))?;
        pace(period, &mut tick);
    }
    Ok(to.to_vec())
}
