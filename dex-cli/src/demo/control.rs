//! The control loop's state and one tick: the reach policy on what the driver measures, the scripted grasp, snapshots for the tracker and the pictures.

use std::ops::ControlFlow;

use std::sync::{Arc, Mutex};

use anyhow::{Result, bail};

use dex_core::{HandModel, JointLimits, JointTargets};

use dex_policy::{ActMode, Policy};
use dex_sim::{Proprioception, SimState, Simulator, TaskConfig, reach_state};
use nalgebra::{Isometry3, Point3, UnitQuaternion, Vector3};
use ndarray::Array2;
use rand::SeedableRng;

use super::track::{Tracking, TrackingFrame};

use super::plan::*;

use super::report::*;

type SharedSim = Arc<Mutex<Box<dyn Simulator>>>;

pub(super) fn lock(sim: &SharedSim) -> std::sync::MutexGuard<'_, Box<dyn Simulator>> {
    sim.lock().unwrap_or_else(|e| e.into_inner())
}

/// Half a metre below the palm, where it falls freely out of the way.
pub(super) fn park_cube(sim: &SharedSim, hand_pose: &Isometry3<f64>) -> Result<()> {
    let pose = Isometry3::translation(0.0, 0.0, -0.5) * hand_pose;
    lock(sim).set_object_pose(0, &pose)?;
    Ok(())
}

/// Everything the control-loop closure keeps.
pub(super) struct LoopState<'a> {
    pub(super) model: &'a HandModel,
    /// The policy's task settings (action mode above all).
    pub(super) task: TaskConfig,
    /// Moments to picture after the run.
    pub(super) stills: Vec<super::frames::Still>,
    pub(super) limits: Vec<JointLimits>,
    pub(super) open: Vec<f64>,
    pub(super) hand_pose: Isometry3<f64>,
    pub(super) proprio: Proprioception,
    pub(super) policy: &'a mut dyn Policy,
    pub(super) goals: &'a [Vec<Point3<f64>>],
    pub(super) sim: SharedSim,
    pub(super) plan: Plan,
    pub(super) rate_hz: f64,
    pub(super) spans: &'a [(Phase, usize, usize)],
    pub(super) last_target: Vec<f64>,
    pub(super) log: Vec<TickLog>,
    pub(super) reach: Vec<Option<f64>>,
    pub(super) final_distance: Vec<f64>,
    pub(super) tracker: Option<Tracking>,
    /// Heights before closing, closed, at the end (mm).
    pub(super) grasp_heights: [Option<f64>; 3],
    pub(super) closed_position: Option<Vector3<f64>>,
    /// Where the cube was put on the palm (world).
    pub(super) rest: Option<Vector3<f64>>,
    pub(super) end_position: Option<Vector3<f64>>,
    pub(super) error: Option<anyhow::Error>,
    /// `--rerun`: the scene, goals and joint series of every tick.
    pub(super) recorder: Option<dex_rerun::Recorder>,
}

impl LoopState<'_> {
    pub(super) fn tick(
        &mut self,
        k: usize,
        state: &dex_core::JointState,
    ) -> ControlFlow<(), JointTargets> {
        match self.try_tick(k, state) {
            Ok(t) => ControlFlow::Continue(t),
            Err(e) => {
                self.error = Some(e);
                ControlFlow::Break(())
            }
        }
    }

    pub(super) fn try_tick(
        &mut self,
        k: usize,
        state: &dex_core::JointState,
    ) -> Result<JointTargets> {
        let Some(&(phase, start, len)) = self.spans.iter().find(|s| (s.1..s.1 + s.2).contains(&k))
        else {
            bail!("tick {k} is past the plan");
        };
        let i = k - start;
        let s = (i + 1) as f64 / len as f64;
        let tilt = match phase {
            Phase::Tilt => self.plan.tilt_deg * s,
            Phase::Tilted => self.plan.tilt_deg,
            _ => 0.0,
        };
        let grasp: Vec<f64> = self
            .open
            .iter()
            .zip(&self.limits)
            .zip(grasp_fraction())
            .map(|((o, l), f)| o + f * (l.upper - o))
            .collect();
        let target = match phase {
            Phase::Reach(set) => {
                if i == 0 {
                    self.proprio.reset();
                    self.policy.reset(0);
                }
                self.reach_step(set, i, len, state)?
            }
            Phase::Return => {
                let from = &self.last_target;
                from.iter()
                    .zip(&self.open)
                    .map(|(a, b)| a + (b - a) / (len - i) as f64)
                    .collect()
            }
            Phase::Settle => {
                if i == 0 {
                    let palm = self.hand_pose;
                    let model = self.model;
                    let spec_half = lock(&self.sim).objects()[0].shape.half_height();
                    let pose = dex_sim::rest_pose_on_palm(model, &palm, spec_half, 0.003);
                    lock(&self.sim).set_object_pose(0, &pose)?;
                    self.rest = Some(pose.translation.vector);
                }
                self.open.clone()
            }
            Phase::Close => self
                .open
                .iter()
                .zip(&grasp)
                .map(|(o, g)| o + s * (g - o))
                .collect(),
            Phase::Hold | Phase::Tilt | Phase::Tilted => grasp.clone(),
        };
        if matches!(phase, Phase::Tilt | Phase::Tilted) {
            let g = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), tilt.to_radians())
                * Vector3::new(0.0, 0.0, -9.81);
            lock(&self.sim).set_gravity(g)?;
        }
        let caption = match phase {
            Phase::Reach(0) if i == 2 => Some("reach starts, targets red"),
            Phase::Reach(0) if i + 1 == len => Some("reach, end of set 1"),
            Phase::Close if i + 1 == len => Some("grasp closed"),
            Phase::Tilted if i + 1 == len => Some("held, gravity tilted"),
            _ => None,
        };
        if let Some(caption) = caption {
            let goals = match phase {
                Phase::Reach(set) => self.goals[set].clone(),
                _ => Vec::new(),
            };
            self.stills.push(super::frames::Still {
                t: k as f64 / self.rate_hz,
                caption: caption.to_string(),
                state: lock(&self.sim).save_state(),
                goals,
            });
        }
        // The cube in the palm frame; tracking frames every few ticks of the grasp.
        let in_grasp = !matches!(phase, Phase::Reach(_) | Phase::Return);
        let (height, position) = if in_grasp {
            let sim = lock(&self.sim);
            let pose = sim.object_state(0)?.pose;
            let local = self.hand_pose.inverse() * pose;
            let rest_z = self.rest.map_or(f64::NAN, |r| r.z);
            let tracked = k - self.grasp_start();
            if tracked >= self.plan.settle_ticks / 2
                && tracked.is_multiple_of(self.plan.track_every)
            {
                let snapshot: SimState = sim.save_state();
                let tracker = self
                    .tracker
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the tracker has finished"))?;
                tracker.push(TrackingFrame {
                    tick: k,
                    t: k as f64 / self.rate_hz,
                    state: snapshot,
                    object_pose: pose,
                })?;
            }
            (
                (pose.translation.z - rest_z) * 1e3,
                Some(local.translation.vector),
            )
        } else {
            (f64::NAN, None)
        };
        match (phase, i + 1 == len) {
            (Phase::Settle, true) => self.grasp_heights[0] = Some(height),
            (Phase::Hold, true) => {
                self.grasp_heights[1] = Some(height);
                self.closed_position = position;
            }
            (Phase::Tilted, true) => {
                self.grasp_heights[2] = Some(height);
                self.end_position = position;
            }
            _ => {}
        }
        let slip_mm = match (self.closed_position, position) {
            (Some(a), Some(b)) => (b - a).norm() * 1e3,
            _ => f64::NAN,
        };
        self.log.push(TickLog {
            t: k as f64 / self.rate_hz,
            q: state.q.clone(),
            target: target.clone(),
            object_height_mm: height,
            slip_mm,
            tilt_deg: tilt,
            phase: phase.name(),
        });
        if let Some(rec) = &mut self.recorder {
            rec.set_time(k as i64, k as f64 / self.rate_hz);
            rec.log_bodies(lock(&self.sim).as_ref())?;
            rec.log_joints(&state.q, &target)?;
            let goals = match phase {
                Phase::Reach(set) => self.goals[set].as_slice(),
                _ => &[],
            };
            rec.log_world_points("goals", goals, 0.006, [230, 40, 40, 255])?;
        }
        self.last_target = target.clone();
        Ok(JointTargets::new(target))
    }

    pub(super) fn grasp_start(&self) -> usize {
        self.spans
            .iter()
            .find(|s| s.0 == Phase::Settle)
            .map_or(0, |s| s.1)
    }

    /// One policy step toward target set `set`: the reach task's observation built from
    /// what the driver measured, the policy's action mapped onto the joint ranges.
    pub(super) fn reach_step(
        &mut self,
        set: usize,
        i: usize,
        len: usize,
        state: &dex_core::JointState,
    ) -> Result<Vec<f64>> {
        let goals_world = &self.goals[set];
        let palm = self.hand_pose.inverse();
        let tips = self.model.fingertip_positions(&state.q)?;
        let goals: Vec<Point3<f64>> = goals_world.iter().map(|g| palm * g).collect();
        let distance = tips
            .iter()
            .zip(&goals)
            .map(|(t, g)| (t - g).norm())
            .fold(0.0, f64::max);
        if distance <= REACH_RADIUS && self.reach[set].is_none() {
            self.reach[set] = Some(i as f64 / self.rate_hz);
        }
        if i + 1 == len {
            self.final_distance[set] = distance;
        }
        self.proprio.record(&state.q, &self.last_target)?;
        let mut obs = Vec::with_capacity(self.policy.observation_dim());
        self.proprio.write(&state.qdot, &mut obs)?;
        reach_state(&tips, &goals, &mut obs);
        let obs = Array2::from_shape_vec((1, obs.len()), obs)?;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let action = self
            .policy
            .act(obs.view(), ActMode::Deterministic, &mut rng)?;
        // The reach task's action space is [-1, 1]: the student's output is clipped to
        // it, then mapped as in the task the policy was trained on.
        let action: Vec<f32> = action.row(0).iter().map(|a| a.clamp(-1.0, 1.0)).collect();
        Ok(self
            .task
            .action_targets(&self.limits, &action, &self.last_target, Some(&state.q))?)
    }

    pub(super) fn grasp_summary(&self) -> GraspSummary {
        let slip_mm = match (self.closed_position, self.end_position) {
            (Some(a), Some(b)) => Some((b - a).norm() * 1e3),
            _ => None,
        };
        GraspSummary {
            held: slip_mm.is_some_and(|s| s < HELD_SLIP_MM),
            tilt_deg: self.plan.tilt_deg,
            height_before_mm: self.grasp_heights[0],
            height_closed_mm: self.grasp_heights[1],
            height_end_mm: self.grasp_heights[2],
            slip_mm,
        }
    }
}
