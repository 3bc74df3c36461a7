//! Scripted experts: policies that solve a task without learning, from the privileged
//! state, as teachers for behaviour cloning and DAgger and as reference figures.

use dex_core::{Frame, HandModel};
use nalgebra::{DMatrix, DVector, Point3};
use ndarray::{Array2, ArrayView2};
use rand::RngCore;

use crate::error::{Result, invalid};
use crate::policy::{ActMode, Policy, check_observations};

/// Damped least-squares inverse kinematics for dex-sim's `FingertipReach`.
///
/// It reads the task's documented state layout: proprioception first (`history`
/// steps of joint positions and targets normalised to `[-1, 1]`, newest first, then
/// velocities), then fingertip positions, targets and their differences (palm frame,
/// ×10). For each new set of targets it solves IK for all fingertips at once from the
/// observed configuration and from `restarts` configurations spread over the joint
/// ranges (damped least squares stalls at joint limits), keeps the solution with the
/// smallest worst fingertip error, and sends it as the absolute joint target (the
/// task's default [`dex_sim::ActionMode::Absolute`]) until the targets change.
///
/// What limits it: the solution may cross two fingers where another solution would
/// not (IK ignores collisions), and the PD controller's steady-state error.
#[derive(Debug, Clone)]
pub struct ReachIkExpert {
    model: HandModel,
    tips: Vec<Frame>,
    proprio: usize,
    restarts: usize,
    iterations: usize,
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
        Ok(Self {
            model,
            tips,
            proprio,
            restarts: 8,
            iterations: 200,
            cache: Vec::new(),
        })
    }

    /// 200 damped least-squares steps from `q` towards `targets` (palm frame), clamped
    /// to the limits; returns the worst fingertip distance left (m).
    fn solve(&self, targets: &[Point3<f64>], q: &mut [f64]) -> Result<f64> {
        let (dof, m) = (self.model.dof(), 3 * self.tips.len());
        let limits = self.model.joint_limits();
        let fk_err = |e: dex_core::Error| invalid(format!("reach expert: {e}"));
        for _ in 0..self.iterations {
            let pos = self.model.fingertip_positions(q).map_err(fk_err)?;
            let mut e = DVector::zeros(m);
            let mut j = DMatrix::zeros(m, dof);
            for (k, tip) in self.tips.iter().enumerate() {
                e.rows_mut(3 * k, 3).copy_from(&(targets[k] - pos[k]));
                let jk = self.model.frame_jacobian(q, tip).map_err(fk_err)?;
                j.view_mut((3 * k, 0), (3, dof))
                    .copy_from(&jk.view((0, 0), (3, dof)));
            }
            let jjt = &j * j.transpose() + DMatrix::identity(m, m) * 1e-4;
            let Some(y) = jjt.lu().solve(&e) else {
                break;
            };
            let dq = j.transpose() * y;
            for i in 0..dof {
                q[i] = (q[i] + dq[i]).clamp(limits[i].lower, limits[i].upper);
            }
        }
        let pos = self.model.fingertip_positions(q).map_err(fk_err)?;
        Ok(pos
            .iter()
            .zip(targets)
            .map(|(p, t)| (p - t).norm())
            .fold(0.0, f64::max))
    }

    fn action_for(&self, obs: &[f32]) -> Result<Vec<f32>> {
        let dof = self.model.dof();
        let limits = self.model.joint_limits();
        let n = self.tips.len();
        let targets: Vec<Point3<f64>> = (0..n)
            .map(|k| {
                let o = self.proprio + 3 * n + 3 * k;
                let v = |j: usize| f64::from(obs[o + j]) / 10.0;
                Point3::new(v(0), v(1), v(2))
            })
            .collect();
        let observed: Vec<f64> = (0..dof)
            .map(|i| {
                let l = &limits[i];
                (l.mid() + f64::from(obs[i]) * (l.upper - l.lower) / 2.0).clamp(l.lower, l.upper)
            })
            .collect();
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
        }
        Ok((0..dof)
            .map(|i| {
                let l = &limits[i];
                let span = l.upper - l.lower;
                if span > 0.0 {
                    (2.0 * (best.1[i] - l.mid()) / span) as f32
                } else {
                    0.0
                }
            })
            .collect())
    }
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
}
