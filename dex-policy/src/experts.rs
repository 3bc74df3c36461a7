//! Scripted experts: policies that solve a task without learning, from the privileged
//! state, as teachers for behaviour cloning and DAgger and as reference figures.

use dex_core::{Frame, HandModel};
use nalgebra::{DMatrix, DVector, Point3};
use ndarray::{Array2, ArrayView2};
use rand::RngCore;

use crate::error::{Result, invalid, invalid_setting};
use crate::policy::{ActMode, Policy, check_observations};

/// Damped least-squares inverse kinematics for dex-sim's `FingertipReach`.
///
/// It reads the task's documented state layout: proprioception first (`history`
/// steps of joint positions and targets normalised to `[-1, 1]`, newest first, then
/// velocities), then fingertip positions, targets and their differences (palm frame,
/// ×10). For each new set of targets it solves IK for all fingertips at once from the
/// observed configuration; when that solution misses a target by more than the
/// restart tolerance ([`ReachIkExpert::with_restart_tolerance`], 2 mm by default), it
/// also solves from 8 configurations spread over the joint ranges (damped least
/// squares stalls at joint limits) and keeps the solution with the smallest worst
/// fingertip error. It sends the solution as the absolute joint target (the task's
/// default [`dex_sim::ActionMode::Absolute`]) until the targets change. Keeping the
/// solution nearest the hand's posture when it is good enough matters on `reach`
/// (success 0.91 against 0.88 when the best of all 9 starts is kept), and the joint
/// targets then vary smoothly with the fingertip targets, which a student learns
/// more easily (DAgger recovered 93% of it against 87.5%).
///
/// With feedback ([`ReachIkExpert::with_feedback`], off by default) it also closes the
/// loop: once the hand has come to rest (every joint slower than
/// [`ReachIkExpert::SETTLED_SPEED`]) short of the targets, it moves the joint target by
/// `gain · J⁺ (target − observed fingertip)` (damped least squares at the observed
/// configuration), which removes the PD controller's steady-state error and the offsets
/// of light contacts, step after step, like an integrator. It is off by default
/// because it helps little on `reach` (0.94 against 0.91 success; the failures are
/// mostly fingers blocked by other fingers, not steady-state error) and its
/// corrections, which depend on how the hand came to rest, are harder for a student to
/// imitate (a DAgger student's loss stayed 3× higher).
///
/// What limits it: the solution may cross two fingers where another solution would
/// not (IK ignores collisions), and without feedback, the PD controller's steady-state
/// error.
#[derive(Debug, Clone)]
pub struct ReachIkExpert {
    model: HandModel,
    tips: Vec<Frame>,
    proprio: usize,
    /// Offset of the joint velocities (×0.1) in the state.
    velocities: usize,
    restarts: usize,
    iterations: usize,
    feedback_gain: f64,
    restart_tolerance: f64,
    /// Per environment: the targets solved for and the action sent.
    cache: Vec<Option<(Vec<f32>, Vec<f32>)>>,
}

impl ReachIkExpert {
    /// The expert for `model` with the task's proprioception `history`.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a model without fingertips.
    pub fn new(model: HandModel, history: usize) -> Result<Self> {
        let tips = model.fingertips().to_vec();
        if tips.is_empty() {
            return Err(invalid("the reach expert needs a model with fingertips"));
        }
        let proprio = model.dof() * (2 * history + 1);
        let velocities = model.dof() * 2 * history;
        Ok(Self {
            model,
            tips,
            proprio,
            velocities,
            restarts: 8,
            iterations: 200,
            feedback_gain: 0.0,
            restart_tolerance: Self::RESTART_TOLERANCE,
            cache: Vec::new(),
        })
    }

    /// Joint speed (rad/s) under which every joint must be for the hand to count as at
    /// rest, when feedback corrects the target.
    pub const SETTLED_SPEED: f64 = 0.3;

    /// Default restart tolerance (m) of [`ReachIkExpert::with_restart_tolerance`].
    pub const RESTART_TOLERANCE: f64 = 0.002;

    /// A feedback gain that removes half the remaining error per control step.
    pub const FEEDBACK_GAIN: f64 = 0.5;

    /// The same expert with feedback gain `gain` (0 turns feedback off: the target stays
    /// the open-loop IK solution).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] unless `0 ≤ gain ≤ 1`.
    pub fn with_feedback(mut self, gain: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&gain) {
            return Err(invalid_setting(
                "reach expert feedback gain",
                format!("{gain} lies outside [0, 1]"),
            ));
        }
        self.feedback_gain = gain;
        Ok(self)
    }

    /// The same expert, solving from the other starting configurations only when the
    /// solution from the observed configuration leaves a fingertip farther than
    /// `tolerance` (m) from its target ([`ReachIkExpert::RESTART_TOLERANCE`] by
    /// default). A positive tolerance keeps the solution nearest the hand's current
    /// posture whenever it is good enough, so that nearby targets get nearby joint
    /// targets (no switching between IK branches); with 0 every start is solved and the
    /// best kept.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a negative or non-finite tolerance.
    pub fn with_restart_tolerance(mut self, tolerance: f64) -> Result<Self> {
        if !(tolerance.is_finite() && tolerance >= 0.0) {
            return Err(invalid_setting(
                "reach expert restart tolerance",
                format!("must be finite and ≥ 0, got {tolerance}"),
            ));
        }
        self.restart_tolerance = tolerance;
        Ok(self)
    }

    /// The observed joint positions (rad), read from the newest proprioception entry.
    fn observed_q(&self, obs: &[f32]) -> Vec<f64> {
        self.model
            .joint_limits()
            .iter()
            .enumerate()
            .map(|(i, l)| l.from_unit(f64::from(obs[i])).clamp(l.lower, l.upper))
            .collect()
    }

    /// The fingertip block `block` of the task state (0: fingertips, 1: targets), palm
    /// frame, m.
    fn points(&self, obs: &[f32], block: usize) -> Vec<Point3<f64>> {
        let n = self.tips.len();
        (0..n)
            .map(|k| {
                let o = self.proprio + block * 3 * n + 3 * k;
                let v = |j: usize| f64::from(obs[o + j]) / 10.0;
                Point3::new(v(0), v(1), v(2))
            })
            .collect()
    }

    /// The damped least-squares step `J⁺ e` at `q` for fingertip errors `e` (palm frame).
    fn dls_step(&self, q: &[f64], e: &[nalgebra::Vector3<f64>]) -> Result<Option<DVector<f64>>> {
        dls_step(&self.model, &self.tips, q, e)
    }

    /// Feedback: moves the action `a` (normalised joint targets) by `gain · J⁺ e` once
    /// the hand is at rest.
    fn correct(&self, obs: &[f32], a: &mut Vec<f32>) -> Result<()> {
        let dof = self.model.dof();
        let settled = obs[self.velocities..self.velocities + dof]
            .iter()
            .all(|v| (f64::from(*v) * 10.0).abs() < Self::SETTLED_SPEED);
        if !settled {
            return Ok(());
        }
        let tips = self.points(obs, 0);
        let targets = self.points(obs, 1);
        let e: Vec<_> = targets.iter().zip(&tips).map(|(t, p)| t - p).collect();
        let Some(dq) = self.dls_step(&self.observed_q(obs), &e)? else {
            return Ok(());
        };
        let q: Vec<f64> = self
            .joints_of(a)
            .iter()
            .zip(self.model.joint_limits())
            .zip(dq.iter())
            .map(|((q, l), dq)| (q + self.feedback_gain * dq).clamp(l.lower, l.upper))
            .collect();
        *a = self.action_of(&q);
        Ok(())
    }

    /// Damped least-squares steps from `q` towards `targets` (palm frame); returns the
    /// worst fingertip distance left (m).
    fn solve(&self, targets: &[Point3<f64>], q: &mut [f64]) -> Result<f64> {
        solve_fingertips(&self.model, targets, q, self.iterations)
    }

    fn action_for(&self, obs: &[f32]) -> Result<Vec<f32>> {
        let dof = self.model.dof();
        let limits = self.model.joint_limits();
        let targets = self.points(obs, 1);
        let observed = self.observed_q(obs);
        let mut best = (f64::INFINITY, observed.clone());
        for start in 0..=self.restarts {
            let mut q = if start == 0 {
                observed.clone()
            } else {
                // Spread-out, fixed starting points (a deterministic low-discrepancy mix).
                (0..dof)
                    .map(|i| {
                        let l = &limits[i];
                        let u = ((start * 31 + i * 17) % 97) as f64 / 96.0;
                        l.lower + u * (l.upper - l.lower)
                    })
                    .collect()
            };
            let r = self.solve(&targets, &mut q)?;
            if r < best.0 {
                best = (r, q);
            }
            if start == 0 && r <= self.restart_tolerance {
                break;
            }
        }
        Ok(self.action_of(&best.1))
    }

    /// The action (normalised absolute joint targets) that commands `q`; 0 for a joint
    /// without range.
    fn action_of(&self, q: &[f64]) -> Vec<f32> {
        unit_targets(&self.model, q)
    }

    /// The joint targets (rad) that action `a` commands.
    fn joints_of(&self, a: &[f32]) -> Vec<f64> {
        self.model
            .joint_limits()
            .iter()
            .zip(a)
            .map(|(l, a)| l.from_unit(f64::from(*a)))
            .collect()
    }
}

/// The normalised absolute joint targets (`[-1, 1]` over each joint's limits) that
/// command `q`; 0 for a joint without range.
pub(crate) fn unit_targets(model: &HandModel, q: &[f64]) -> Vec<f32> {
    model
        .joint_limits()
        .iter()
        .zip(q)
        .map(|(l, q)| l.to_unit(*q) as f32)
        .collect()
}

/// The damped least-squares step `J⁺ e` at `q` for the errors `e` of fingertips `tips`
/// (palm frame).
fn dls_step(
    model: &HandModel,
    tips: &[Frame],
    q: &[f64],
    e: &[nalgebra::Vector3<f64>],
) -> Result<Option<DVector<f64>>> {
    let (dof, m) = (model.dof(), 3 * tips.len());
    let fk_err = |e: dex_core::Error| invalid(format!("fingertip IK: {e}"));
    let mut ev = DVector::zeros(m);
    let mut j = DMatrix::zeros(m, dof);
    for (k, tip) in tips.iter().enumerate() {
        ev.rows_mut(3 * k, 3).copy_from(&e[k]);
        let jk = model.frame_jacobian(q, tip).map_err(fk_err)?;
        j.view_mut((3 * k, 0), (3, dof))
            .copy_from(&jk.view((0, 0), (3, dof)));
    }
    let jjt = &j * j.transpose() + DMatrix::identity(m, m) * 1e-4;
    Ok(jjt.lu().solve(&ev).map(|y| j.transpose() * y))
}

/// `iterations` damped least-squares steps from `q` moving every fingertip of `model`
/// towards its target (palm frame), clamped to the joint limits; returns the worst
/// fingertip distance left (m).
pub(crate) fn solve_fingertips(
    model: &HandModel,
    targets: &[Point3<f64>],
    q: &mut [f64],
    iterations: usize,
) -> Result<f64> {
    let limits = model.joint_limits();
    let tips = model.fingertips();
    let fk_err = |e: dex_core::Error| invalid(format!("fingertip IK: {e}"));
    for _ in 0..iterations {
        let pos = model.fingertip_positions(q).map_err(fk_err)?;
        let e: Vec<_> = targets.iter().zip(&pos).map(|(t, p)| t - p).collect();
        let Some(dq) = dls_step(model, tips, q, &e)? else {
            break;
        };
        for (i, l) in limits.iter().enumerate() {
            q[i] = (q[i] + dq[i]).clamp(l.lower, l.upper);
        }
    }
    let pos = model.fingertip_positions(q).map_err(fk_err)?;
    Ok(pos
        .iter()
        .zip(targets)
        .map(|(p, t)| (p - t).norm())
        .fold(0.0, f64::max))
}

impl Policy for ReachIkExpert {
    fn observation_dim(&self) -> usize {
        self.proprio + 9 * self.tips.len()
    }
    fn action_dim(&self) -> usize {
        self.model.dof()
    }
    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let b = observations.nrows();
        if self.cache.len() < b {
            self.cache.resize(b, None);
        }
        let n = self.tips.len();
        let (t0, t1) = (self.proprio + 3 * n, self.proprio + 6 * n);
        let mut out = Array2::<f32>::zeros((b, self.model.dof()));
        for (i, row) in observations.rows().into_iter().enumerate() {
            let obs = row.to_vec();
            let targets = &obs[t0..t1];
            let hit = matches!(&self.cache[i], Some((t, _)) if t.as_slice() == targets);
            if !hit {
                let a = self.action_for(&obs)?;
                self.cache[i] = Some((targets.to_vec(), a));
            } else if self.feedback_gain > 0.0
                && let Some((_, cached)) = &self.cache[i]
            {
                let mut a = cached.clone();
                self.correct(&obs, &mut a)?;
                self.cache[i] = Some((targets.to_vec(), a));
            }
            if let Some((_, a)) = &self.cache[i] {
                out.row_mut(i)
                    .assign(&ndarray::ArrayView1::from(a.as_slice()));
            }
        }
        Ok(out)
    }
    fn reset(&mut self, env: usize) {
        if let Some(c) = self.cache.get_mut(env) {
            *c = None;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use dex_sim::{TaskConfig, VecEnv, make_env};

    use super::*;
    use crate::eval::evaluate;

    #[test]
    fn the_ik_expert_solves_kinematic_reaching() {
        let model = HandModel::leap_right();
        let config = TaskConfig {
            mock_physics: true,
            ..TaskConfig::default()
        };
        let mut expert = ReachIkExpert::new(model.clone(), config.history).unwrap();
        let mut venv =
            VecEnv::from_fn(4, |_| make_env("reach", model.clone(), config.clone())).unwrap();
        let r = evaluate(&mut expert, &mut venv, 20, 3, ActMode::Deterministic).unwrap();
        // Kinematic joints and no collisions: only IK failures (local minima) remain.
        assert!(r.success_rate >= 0.85, "{r:?}");
        // The wrong observation width is an error.
        let bad = Array2::<f32>::zeros((1, 5));
        let mut rng = rand::rng();
        assert!(
            expert
                .act(bad.view(), ActMode::Deterministic, &mut rng)
                .is_err()
        );
    }

    /// A reach state for `q` (at rest unless `speed` > 0) whose observed fingertips are
    /// `tips` and whose targets are `targets` (palm frame, m).
    fn state(
        model: &HandModel,
        history: usize,
        q: &[f64],
        speed: f64,
        tips: &[Point3<f64>],
        targets: &[Point3<f64>],
    ) -> Vec<f32> {
        let dof = model.dof();
        let norm: Vec<f32> = model
            .joint_limits()
            .iter()
            .zip(q)
            .map(|(l, q)| l.to_unit(*q) as f32)
            .collect();
        let mut out = Vec::new();
        for _ in 0..history {
            out.extend(&norm);
            out.extend(&norm);
        }
        out.extend(std::iter::repeat_n((speed * 0.1) as f32, dof));
        for block in [tips, targets] {
            for p in block {
                out.extend(p.iter().map(|v| (v * 10.0) as f32));
            }
        }
        for (t, p) in targets.iter().zip(tips) {
            out.extend((t - p).iter().map(|v| (v * 10.0) as f32));
        }
        out
    }

    /// Every joint at `fraction` of its range.
    fn posture(model: &HandModel, fraction: f64) -> Vec<f64> {
        model
            .joint_limits()
            .iter()
            .map(|l| l.lower + fraction * (l.upper - l.lower))
            .collect()
    }

    #[test]
    fn feedback_moves_the_target_towards_the_fingertip_error_once_at_rest() {
        let model = HandModel::leap_right();
        let history = TaskConfig::default().history;
        let q = posture(&model, 0.4);
        let targets = model.fingertip_positions(&q).unwrap();
        // The first fingertip stopped 1 cm short of its target along x (a steady-state
        // error the open-loop target cannot remove).
        let mut tips = targets.clone();
        tips[0].x -= 0.01;
        let at_rest = state(&model, history, &q, 0.0, &tips, &targets);
        let moving = state(&model, history, &q, 1.0, &tips, &targets);
        let act = |expert: &mut ReachIkExpert, obs: &[f32]| -> Vec<f32> {
            let x = Array2::from_shape_vec((1, obs.len()), obs.to_vec()).unwrap();
            let mut rng = rand::rng();
            let a = expert
                .act(x.view(), ActMode::Deterministic, &mut rng)
                .unwrap();
            a.row(0).to_vec()
        };
        for gain in [0.0, 0.5] {
            let mut expert = ReachIkExpert::new(model.clone(), history)
                .unwrap()
                .with_feedback(gain)
                .unwrap();
            // The first call solves IK for the targets; while the hand still moves,
            // the target is held.
            let solved = act(&mut expert, &at_rest);
            assert_eq!(act(&mut expert, &moving), solved);
            let corrected = act(&mut expert, &at_rest);
            if gain == 0.0 {
                assert_eq!(corrected, solved);
                continue;
            }
            // At rest, the target moves so that the first fingertip goes about
            // gain · 1 cm further along x, and the others stay.
            let before = model
                .fingertip_positions(&expert.joints_of(&solved))
                .unwrap();
            let after = model
                .fingertip_positions(&expert.joints_of(&corrected))
                .unwrap();
            let d0 = after[0] - before[0];
            assert!((d0.x - 0.005).abs() < 0.001, "first fingertip moved {d0:?}");
            assert!(d0.yz().norm() < 0.001, "first fingertip moved {d0:?}");
            for k in 1..after.len() {
                assert!((after[k] - before[k]).norm() < 0.001, "fingertip {k} moved");
            }
        }
        assert!(
            ReachIkExpert::new(model, history)
                .unwrap()
                .with_feedback(1.5)
                .is_err()
        );
    }

    #[test]
    fn with_a_restart_tolerance_the_solution_stays_on_the_observed_branch() {
        let model = HandModel::leap_right();
        let history = TaskConfig::default().history;
        let q = posture(&model, 0.45);
        // Targets a small joint motion away from the observed posture.
        let goal: Vec<f64> = q.iter().map(|v| v + 0.05).collect();
        let targets = model.fingertip_positions(&goal).unwrap();
        let tips = model.fingertip_positions(&q).unwrap();
        let obs = state(&model, history, &q, 0.0, &tips, &targets);
        let x = Array2::from_shape_vec((1, obs.len()), obs).unwrap();
        let mut expert = ReachIkExpert::new(model.clone(), history)
            .unwrap()
            .with_restart_tolerance(0.002)
            .unwrap();
        let mut rng = rand::rng();
        let a = expert
            .act(x.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        let solved = expert.joints_of(&a.row(0).to_vec());
        let reached = model.fingertip_positions(&solved).unwrap();
        for (r, t) in reached.iter().zip(&targets) {
            assert!(
                (r - t).norm() <= 0.002,
                "fingertip {:.4} m off",
                (r - t).norm()
            );
        }
        // It moved the joints by about the small motion, not to another posture.
        let moved = solved
            .iter()
            .zip(&q)
            .map(|(s, q)| (s - q).abs())
            .fold(0.0, f64::max);
        assert!(moved < 0.3, "a joint moved {moved:.2} rad");
        for bad in [-0.001, f64::NAN] {
            assert!(
                ReachIkExpert::new(model.clone(), history)
                    .unwrap()
                    .with_restart_tolerance(bad)
                    .is_err()
            );
        }
    }
}
