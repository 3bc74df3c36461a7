//! [`Proprioception`]: the history block that starts every task's state vector.

use std::collections::VecDeque;

use dex_core::{HandModel, JointLimits};

use crate::error::{Error, Result};

/// The proprioception block of every task's state vector, kept outside any simulator:
/// what a policy trained in simulation needs to be fed on a real (or emulated) hand.
///
/// [`Proprioception::record`] once per control step the measured joint positions and
/// the targets in force; [`Proprioception::write`] appends the last `history` records
/// (newest first) of positions and targets normalised to `[-1, 1]` over the joint
/// ranges, then the joint velocities × 0.1 — the layout the tasks use (see the
/// [module docs](crate::tasks)). The first record after [`Proprioception::reset`] fills the
/// whole history.
#[derive(Debug, Clone)]
pub struct Proprioception {
    limits: Vec<JointLimits>,
    history: usize,
    entries: VecDeque<(Vec<f64>, Vec<f64>)>,
}

impl Proprioception {
    /// For `model`, with `history` steps (the task config's `history`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a history of 0.
    pub fn new(model: &HandModel, history: usize) -> Result<Self> {
        if history == 0 {
            return Err(Error::InvalidParameter {
                what: "history",
                reason: "must be at least 1".into(),
            });
        }
        Ok(Self {
            limits: model.joint_limits(),
            history,
            entries: VecDeque::with_capacity(history),
        })
    }

    /// Values [`Proprioception::write`] appends.
    pub fn dim(&self) -> usize {
        self.limits.len() * (2 * self.history + 1)
    }

    /// Forgets the history (at the start of an episode).
    pub fn reset(&mut self) {
        self.entries.clear();
    }

    /// Records one control step: measured positions and the targets in force (rad).
    ///
    /// # Errors
    ///
    /// [`Error::LengthMismatch`] unless both have one value per joint.
    pub fn record(&mut self, q: &[f64], targets: &[f64]) -> Result<()> {
        let dof = self.limits.len();
        for (what, v) in [("joint positions", q), ("joint targets", targets)] {
            if v.len() != dof {
                return Err(Error::LengthMismatch {
                    what,
                    expected: dof,
                    got: v.len(),
                });
            }
        }
        let norm = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .zip(&self.limits)
                .map(|(x, l)| l.to_unit(*x))
                .collect()
        };
        let entry = (norm(q), norm(targets));
        if self.entries.is_empty() {
            self.entries
                .extend(std::iter::repeat_n(entry, self.history));
        } else {
            self.entries.push_front(entry);
            self.entries.truncate(self.history);
        }
        Ok(())
    }

    /// Appends the block for the present velocities `qdot` (rad/s) to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::NeedsReset`] before the first record; [`Error::LengthMismatch`] for
    /// a `qdot` of the wrong length.
    pub fn write(&self, qdot: &[f64], out: &mut Vec<f32>) -> Result<()> {
        if self.entries.is_empty() {
            return Err(Error::NeedsReset {
                reason: "no joint state recorded yet".into(),
            });
        }
        if qdot.len() != self.limits.len() {
            return Err(Error::LengthMismatch {
                what: "joint velocities",
                expected: self.limits.len(),
                got: qdot.len(),
            });
        }
        for (q, t) in &self.entries {
            out.extend(q.iter().map(|v| *v as f32));
            out.extend(t.iter().map(|v| *v as f32));
        }
        out.extend(qdot.iter().map(|v| (v * 0.1) as f32));
        Ok(())
    }
}
