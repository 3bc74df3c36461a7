//! Synthetic joint data with known dynamics, for tests, examples and benches.

use rand::{Rng, SeedableRng};

use crate::dataset::{Dataset, Segment};
use crate::error::Result;

/// How a synthetic joint answers its targets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Plant {
    /// `q_{t+1} = q_t + gain·(a_t − q_t)`: exactly what [`crate::FirstOrderPd`] can
    /// express.
    FirstOrder {
        /// Fraction of the error closed per step.
        gain: f64,
    },
    /// What a geared servo does and a first-order lag cannot: one step of dead time, a
    /// velocity limit, static friction that holds the joint until the error exceeds
    /// `deadband`, and inertia that carries motion on.
    Servo {
        /// Fraction of the error turned into velocity per step.
        gain: f64,
        /// Fastest motion per step (rad).
        max_step: f64,
        /// Error (rad) below which friction holds the joint still.
        deadband: f64,
        /// Fraction of the last step's motion carried on.
        inertia: f64,
    },
}

impl Plant {
    /// The servo-like plant the tests use: gain 0.35, 0.04 rad/step, 0.02 rad
    /// deadband, 0.5 inertia.
    pub fn servo() -> Self {
        Self::Servo {
            gain: 0.35,
            max_step: 0.04,
            deadband: 0.02,
            inertia: 0.5,
        }
    }
}

/// `segments` runs of `len` steps of `dof` independent joints following `plant`, driven
/// by smoothed random targets in `[−1, 1]` (a new random goal every 5–25 steps,
/// approached at up to 0.08 rad/step).
///
/// # Errors
///
/// Only if a value were not finite (cannot happen for finite plant parameters).
pub fn joint_data(
    dof: usize,
    segments: usize,
    len: usize,
    plant: Plant,
    seed: u64,
) -> Result<Dataset> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let names = (0..dof).map(|i| format!("j{i}")).collect();
    let mut data = Dataset::new("synthetic", names, 20.0);
    let mut q = vec![0.0f64; dof];
    let mut v = vec![0.0f64; dof];
    let mut a = vec![0.0f64; dof];
    let mut prev_a = vec![0.0f64; dof];
    let mut goal = vec![0.0f64; dof];
    let mut hold = vec![0usize; dof];
    for _ in 0..segments {
        let mut seg = Segment::new(dof);
        for _ in 0..len {
            for i in 0..dof {
                if hold[i] == 0 {
                    goal[i] = rng.random_range(-1.0..1.0);
                    hold[i] = rng.random_range(5..25);
                }
                hold[i] -= 1;
                a[i] += (goal[i] - a[i]).clamp(-0.08, 0.08);
            }
            seg.push(&q, &a)?;
            for i in 0..dof {
                match plant {
                    Plant::FirstOrder { gain } => q[i] += gain * (a[i] - q[i]),
                    Plant::Servo {
                        gain,
                        max_step,
                        deadband,
                        inertia,
                    } => {
                        let e = prev_a[i] - q[i];
                        let drive = if e.abs() < deadband { 0.0 } else { gain * e };
                        v[i] = (inertia * v[i] + drive).clamp(-max_step, max_step);
                        if e.abs() < deadband && v[i].abs() < 0.005 {
                            v[i] = 0.0;
                        }
                        q[i] += v[i];
                    }
                }
            }
            prev_a.clone_from(&a);
        }
        data.segments.push(seg);
    }
    Ok(data)
}
