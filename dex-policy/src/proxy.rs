//! The pose proxy's analytic teacher and its track evaluation (closed loop, open loop).

use dex_sim::tasks::{is_symmetric, plan_actions};
use dex_sim::{Env, PoseProxy, PoseProxyConfig, ProxyGoals, ProxyLayout, env_seed};
use nalgebra::{Quaternion, UnitQuaternion, Vector3};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{Result, invalid};
use crate::policy::{ActMode, Policy, check_observations};

/// A privileged controller for the pose proxy: it reads the object and goal poses from
/// the observation's privileged block and commands the twist `gain · log(T_goal ·
/// T_object⁻¹)` (translation and rotation vector about the object's centre), each part
/// scaled down as a whole when a component would leave `[−1, 1]`, so the direction is
/// kept. With the default gain 1 it closes the whole error in one step when the limits
/// allow (the Dex4D fact sheet's §12 proposal for the proxy's teacher).
#[derive(Debug, Clone)]
pub struct PoseProxyExpert {
    layout: ProxyLayout,
    max_translation: f64,
    max_rotation: f64,
    gain: f64,
}

impl PoseProxyExpert {
    /// The teacher for proxies built with `config`.
    pub fn new(config: &PoseProxyConfig) -> Self {
        Self {
            layout: ProxyLayout::new(config.slots),
            max_translation: config.max_translation,
            max_rotation: config.max_rotation,
            gain: 1.0,
        }
    }

    /// The same with another gain.
    pub fn with_gain(mut self, gain: f64) -> Self {
        self.gain = gain;
        self
    }

    fn twist(&self, row: ArrayView1<'_, f32>) -> [f32; 6] {
        let p = self.layout.privileged.start;
        let v = |i: usize| f64::from(row[p + i]);
        let pos = |o: usize| Vector3::new(v(o), v(o + 1), v(o + 2)) / 10.0;
        let quat = |o: usize| {
            UnitQuaternion::new_normalize(Quaternion::new(v(o + 3), v(o), v(o + 1), v(o + 2)))
        };
        let dp = (pos(7) - pos(0)) * self.gain / self.max_translation;
        let dr = (quat(10) * quat(3).inverse()).scaled_axis() * self.gain / self.max_rotation;
        let fit = |x: Vector3<f64>| {
            let m = x.amax();
            if m > 1.0 { x / m } else { x }
        };
        let (dp, dr) = (fit(dp), fit(dr));
        [dp.x, dp.y, dp.z, dr.x, dr.y, dr.z].map(|x| x as f32)
    }
}

impl Policy for PoseProxyExpert {
    fn observation_dim(&self) -> usize {
        self.layout.dim()
    }

    fn action_dim(&self) -> usize {
        6
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.layout.dim())?;
        let mut out = Array2::zeros((observations.nrows(), 6));
        for (i, row) in observations.rows().into_iter().enumerate() {
            let a = self.twist(row);
            out.row_mut(i).assign(&ArrayView1::from(&a));
        }
        Ok(out)
    }
}

/// Who acts in [`evaluate_track`].
pub enum TrackController<'a> {
    /// A policy, closed loop: it sees every step's observation.
    Policy(&'a mut dyn Policy),
    /// The open-loop baseline: each episode's plan (start pose and waypoints, exact)
    /// turned into twists by [`dex_sim::tasks::plan_actions`] and replayed in time
    /// without looking (`settle` zero steps after each waypoint).
    OpenLoop {
        /// Zero actions after each waypoint.
        settle: usize,
    },
}

/// The figures of [`evaluate_track`] (Dex4D's metrics, §V-B3).
#[derive(Debug, Clone, PartialEq)]
pub struct TrackEval {
    /// Episodes run.
    pub episodes: usize,
    /// Fraction that reached the last waypoint (SR).
    pub success: f64,
    /// Mean fraction of waypoints reached (TP).
    pub progress: f64,
    /// Success over the episodes with symmetric objects (primitives), and their count.
    pub success_symmetric: (f64, usize),
    /// Success over the episodes with asymmetric objects (random hulls), and their count.
    pub success_asymmetric: (f64, usize),
    /// Mean control steps per waypoint reached.
    pub steps_per_waypoint: f64,
}

/// Runs `episodes` track episodes of the pose proxy (`config.goals` must be
/// [`ProxyGoals::Track`]), episode `i` seeded with `env_seed(seed, i)`, all in one
/// batch, and reports success and progress. Deterministic for a seed.
///
/// # Errors
///
/// A config that is not a track, a policy of the wrong widths, environment errors.
pub fn evaluate_track(
    controller: TrackController<'_>,
    config: &PoseProxyConfig,
    episodes: usize,
    seed: u64,
) -> Result<TrackEval> {
    if config.goals != ProxyGoals::Track || episodes == 0 {
        return Err(invalid(
            "evaluate_track needs a track config (goals = track) and at least one episode",
        ));
    }
    let mut envs = (0..episodes)
        .map(|_| PoseProxy::new(config.clone()))
        .collect::<dex_sim::Result<Vec<_>>>()?;
    let dim = envs[0].layout().dim();
    let mut obs = Array2::zeros((episodes, dim));
    let mut plans = Vec::with_capacity(episodes);
    let mut symmetric = Vec::with_capacity(episodes);
    for (i, e) in envs.iter_mut().enumerate() {
        let (o, _) = e.reset(Some(env_seed(seed, i)))?;
        obs.row_mut(i).assign(&ArrayView1::from(&o.state));
        let (start, waypoints) = e.plan();
        plans.push(plan_actions(
            &start,
            waypoints,
            config.max_translation,
            config.max_rotation,
            match controller {
                TrackController::OpenLoop { settle } => settle,
                TrackController::Policy(_) => 0,
            },
        ));
        symmetric.push(is_symmetric(&e.object().shape));
    }
    let mut controller = controller;
    let mut done = vec![false; episodes];
    let mut reached = vec![0.0f64; episodes];
    let mut succeeded = vec![false; episodes];
    let mut steps = vec![0usize; episodes];
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7AC4);
    let mut t = 0;
    while done.iter().any(|d| !d) {
        let actions = match &mut controller {
            TrackController::Policy(p) => p.act(obs.view(), ActMode::Deterministic, &mut rng)?,
            TrackController::OpenLoop { .. } => Array2::from_shape_fn((episodes, 6), |(i, c)| {
                plans[i].get(t).map_or(0.0, |a| a[c])
            }),
        };
        for i in 0..episodes {
            if done[i] {
                continue;
            }
            let a: Vec<f32> = actions.row(i).iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            let step = envs[i].step(&a)?;
            obs.row_mut(i).assign(&ArrayView1::from(&step.obs.state));
            steps[i] += 1;
            if step.terminated || step.truncated {
                done[i] = true;
                reached[i] = step.info.get("goals").unwrap_or(0.0);
                succeeded[i] = step.info.success;
            }
        }
        t += 1;
    }
    let waypoints = envs[0].plan().1.len().max(1) as f64;
    let rate = |keep: &dyn Fn(usize) -> bool| {
        let idx: Vec<usize> = (0..episodes).filter(|&i| keep(i)).collect();
        let s = idx.iter().filter(|&&i| succeeded[i]).count();
        (
            if idx.is_empty() {
                f64::NAN
            } else {
                s as f64 / idx.len() as f64
            },
            idx.len(),
        )
    };
    let total_reached: f64 = reached.iter().sum();
    Ok(TrackEval {
        episodes,
        success: rate(&|_| true).0,
        progress: total_reached / waypoints / episodes as f64,
        success_symmetric: rate(&|i| symmetric[i]),
        success_asymmetric: rate(&|i| !symmetric[i]),
        steps_per_waypoint: if total_reached > 0.0 {
            steps.iter().sum::<usize>() as f64 / total_reached
        } else {
            f64::NAN
        },
    })
}
