//! Object-centric goal tracks: where an object's points should be over time, and
//! how a closed loop walks through them.

use dex_core::PointTracks;
use dex_core::geometry::kabsch;
use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, Array3, ArrayView2};

use crate::error::{Result, invalid};

/// The goal tracks of `model_points` (in the object frame) carried through a
/// sequence of desired object poses (object → world): `T × N × 3`, every point
/// visible. Dex4D conditions its policy on such tracks, extracted from a video
/// of the task.
///
/// # Errors
///
/// [`crate::Error::InvalidInput`] for no poses or no points.
pub fn goal_tracks(model_points: &[Point3<f64>], poses: &[Isometry3<f64>]) -> Result<PointTracks> {
    if model_points.is_empty() || poses.is_empty() {
        return Err(invalid(
            "goal tracks need at least one model point and one pose",
        ));
    }
    let (t, n) = (poses.len(), model_points.len());
    let positions = Array3::from_shape_fn((t, n, 3), |(k, i, c)| {
        (poses[k] * model_points[i])[c] as f32
    });
    Ok(PointTracks::try_new(
        positions,
        Array2::from_elem((t, n), true),
    )?)
}

/// How [`GoalFollower`] turns the planned tracks into the goal it hands the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GoalCorrection {
    /// The planned points of the current waypoint, as they are.
    Absolute,
    /// Relative-deviation correction (default): when the follower moves on to
    /// waypoint `k`, the goal becomes the object's current points (the rigid fit of
    /// waypoint `k − 1` onto the tracked points) moved by the planned step from
    /// waypoint `k − 1` to `k`. The object's deviation from the plan is carried
    /// along instead of being corrected in one jump, so every goal is one planned step
    /// away, whatever tracking drift or execution error came before.
    #[default]
    Relative,
}

/// Settings of [`GoalFollower`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GoalFollowerConfig {
    /// Absolute or relative goals.
    pub correction: GoalCorrection,
    /// The follower moves to the next waypoint when the mean distance between the
    /// tracked points and the goal is at most this (m).
    pub advance_distance: f64,
    /// ... or after this many updates on one waypoint, reached or not.
    pub patience: usize,
}

impl Default for GoalFollowerConfig {
    fn default() -> Self {
        Self {
            correction: GoalCorrection::Relative,
            advance_distance: 0.01,
            patience: 50,
        }
    }
}

/// What [`GoalFollower::update`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct GoalUpdate {
    /// The goal points, `N × 3` (m, world frame).
    pub goal: Array2<f32>,
    /// The waypoint (frame of the goal tracks) being pursued.
    pub waypoint: usize,
    /// Mean distance (m) between the visible tracked points and the goal.
    pub distance: f64,
    /// Mean distance (m) between the visible tracked points and the plan's own
    /// points at this waypoint: how far execution has drifted from the plan.
    pub deviation: f64,
    /// Whether the last waypoint has been reached.
    pub finished: bool,
}

/// Walks a closed loop through goal tracks (`T × N × 3`, e.g. from
/// [`goal_tracks`]): fed the tracked object points every control step, it says which
/// goal to pursue, moving on when the current one is reached (or after
/// [`GoalFollowerConfig::patience`] steps). Waypoint 0 is where the plan starts; the
/// first goal pursued is waypoint 1.
#[derive(Debug, Clone)]
pub struct GoalFollower {
    plan: Vec<Vec<Point3<f64>>>,
    config: GoalFollowerConfig,
    waypoint: usize,
    steps_here: usize,
    goal: Vec<Point3<f64>>,
    finished: bool,
}

fn rows(a: ArrayView2<'_, f32>) -> Vec<Point3<f64>> {
    a.rows()
        .into_iter()
        .map(|r| Point3::new(f64::from(r[0]), f64::from(r[1]), f64::from(r[2])))
        .collect()
}

fn mean_distance(a: &[Point3<f64>], b: &[Point3<f64>], visible: &[bool]) -> f64 {
    let (mut sum, mut n) = (0.0, 0.0);
    for ((p, q), v) in a.iter().zip(b).zip(visible) {
        if *v {
            sum += (p - q).norm();
            n += 1.0;
        }
    }
    if n > 0.0 { sum / n } else { f64::INFINITY }
}

impl GoalFollower {
    /// A follower of `tracks` (`T × N × 3`, at least 2 frames and 3 points).
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for 2D tracks, fewer than 2 frames or 3 points,
    /// non-finite positions, or a non-positive advance distance.
    pub fn new(tracks: &PointTracks, config: GoalFollowerConfig) -> Result<Self> {
        if tracks.dim() != 3 || tracks.num_frames() < 2 || tracks.num_points() < 3 {
            return Err(invalid(format!(
                "goal tracks must be T × N × 3 with T ≥ 2 and N ≥ 3, got {} × {} × {}",
                tracks.num_frames(),
                tracks.num_points(),
                tracks.dim()
            )));
        }
        if tracks.positions().iter().any(|v| !v.is_finite()) {
            return Err(invalid("goal tracks must be finite"));
        }
        if !(config.advance_distance.is_finite() && config.advance_distance > 0.0) {
            return Err(invalid(format!(
                "the advance distance must be positive, got {}",
                config.advance_distance
            )));
        }
        let p = tracks.positions();
        let plan: Vec<Vec<Point3<f64>>> = p.outer_iter().map(|frame| rows(frame.view())).collect();
        let goal = plan[1].clone();
        Ok(Self {
            plan,
            config,
            waypoint: 1,
            steps_here: 0,
            goal,
            finished: false,
        })
    }

    /// The waypoint being pursued.
    pub fn waypoint(&self) -> usize {
        self.waypoint
    }

    /// Feeds the tracked points of this step (`N × 3`, world frame) with their
    /// visibility; returns the goal to pursue now. Invisible points are ignored; with
    /// fewer than 3 visible, the goal and waypoint are kept.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a shape that does not match the tracks.
    pub fn update(&mut self, points: ArrayView2<'_, f32>, visible: &[bool]) -> Result<GoalUpdate> {
        let n = self.plan[0].len();
        if points.dim() != (n, 3) || visible.len() != n {
            return Err(invalid(format!(
                "expected {n} × 3 tracked points and {n} flags, got {:?} and {}",
                points.dim(),
                visible.len()
            )));
        }
        let current = rows(points);
        let seen: Vec<bool> = visible
            .iter()
            .zip(&current)
            .map(|(v, p)| *v && p.coords.iter().all(|c| c.is_finite()))
            .collect();
        let enough = seen.iter().filter(|v| **v).count() >= 3;
        self.steps_here += 1;
        let last = self.plan.len() - 1;
        if enough && !self.finished {
            let reached =
                mean_distance(&current, &self.goal, &seen) <= self.config.advance_distance;
            if reached || self.steps_here >= self.config.patience {
                if self.waypoint == last {
                    self.finished = reached;
                    self.steps_here = 0;
                } else {
                    self.waypoint += 1;
                    self.steps_here = 0;
                    self.goal = self.next_goal(&current, &seen);
                }
            }
        }
        Ok(GoalUpdate {
            goal: Array2::from_shape_fn((n, 3), |(i, c)| self.goal[i][c] as f32),
            waypoint: self.waypoint,
            distance: mean_distance(&current, &self.goal, &seen),
            deviation: mean_distance(&current, &self.plan[self.waypoint], &seen),
            finished: self.finished,
        })
    }

    /// The goal for the waypoint just entered.
    fn next_goal(&self, current: &[Point3<f64>], seen: &[bool]) -> Vec<Point3<f64>> {
        let k = self.waypoint;
        match self.config.correction {
            GoalCorrection::Absolute => self.plan[k].clone(),
            GoalCorrection::Relative => {
                // Where the object is: the previous waypoint fitted onto the visible points.
                let (src, dst): (Vec<_>, Vec<_>) = self.plan[k - 1]
                    .iter()
                    .zip(current)
                    .zip(seen)
                    .filter(|(_, v)| **v)
                    .map(|((a, b), _)| (*a, *b))
                    .unzip();
                // The planned step from k − 1 to k (the plan is rigid and complete).
                let (Ok(here), Ok(step)) =
                    (kabsch(&src, &dst), kabsch(&self.plan[k - 1], &self.plan[k]))
                else {
                    return self.plan[k].clone();
                };
                self.plan[k - 1].iter().map(|p| step * (here * p)).collect()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nalgebra::Vector3;

    #[test]
    fn tracks_follow_the_poses() {
        let pts = [Point3::new(0.1, 0.0, 0.0), Point3::new(0.0, 0.2, 0.0)];
        let poses = [
            Isometry3::identity(),
            Isometry3::new(
                Vector3::new(0.0, 0.0, 1.0),
                Vector3::new(0.0, 0.0, std::f64::consts::FRAC_PI_2),
            ),
        ];
        let g = goal_tracks(&pts, &poses).unwrap();
        assert_eq!((g.num_frames(), g.num_points(), g.dim()), (2, 2, 3));
        let p = g.positions();
        assert!((p[(1, 0, 1)] - 0.1).abs() < 1e-6 && (p[(1, 0, 2)] - 1.0).abs() < 1e-6);
        assert!((p[(1, 1, 0)] + 0.2).abs() < 1e-6);
        assert!(goal_tracks(&[], &poses).is_err());
    }

    fn cloud() -> Vec<Point3<f64>> {
        (0..8)
            .map(|i| {
                let i = f64::from(i);
                Point3::new(
                    0.02 * (i * 0.9).cos(),
                    0.02 * (i * 0.9).sin(),
                    0.005 * (i % 3.0),
                )
            })
            .collect()
    }

    fn as_array(points: &[Point3<f64>]) -> Array2<f32> {
        Array2::from_shape_fn((points.len(), 3), |(i, c)| points[i][c] as f32)
    }

    /// A plan that lifts the object 1 cm per waypoint, 4 waypoints.
    fn lift_plan() -> (Vec<Point3<f64>>, PointTracks) {
        let pts = cloud();
        let poses: Vec<_> = (0..4)
            .map(|k| Isometry3::translation(0.0, 0.0, 0.01 * f64::from(k)))
            .collect();
        (pts.clone(), goal_tracks(&pts, &poses).unwrap())
    }

    #[test]
    fn the_follower_advances_when_goals_are_reached_and_finishes() {
        let (pts, plan) = lift_plan();
        let config = GoalFollowerConfig {
            advance_distance: 0.005,
            ..GoalFollowerConfig::default()
        };
        let mut f = GoalFollower::new(&plan, config).unwrap();
        let vis = vec![true; pts.len()];
        // At the start: pursue waypoint 1, 1 cm away.
        let u = f.update(as_array(&pts).view(), &vis).unwrap();
        assert_eq!(u.waypoint, 1);
        assert!((u.distance - 0.01).abs() < 1e-6 && !u.finished);
        // The object follows the plan exactly: one waypoint per update.
        for k in 1..4 {
            let at: Vec<_> = pts
                .iter()
                .map(|p| p + nalgebra::Vector3::z() * (0.01 * f64::from(k)))
                .collect();
            let u = f.update(as_array(&at).view(), &vis).unwrap();
            assert_eq!(u.waypoint, (k + 1).min(3) as usize);
            let expected = if k < 3 { 0.01 } else { 0.0 };
            assert!((u.deviation - expected).abs() < 1e-6, "{}", u.deviation);
            assert_eq!(u.finished, k == 3);
        }
    }

    #[test]
    fn relative_goals_carry_the_deviation_and_absolute_goals_do_not() {
        let (pts, plan) = lift_plan();
        let vis = vec![true; pts.len()];
        // The object reached waypoint 1's height but slid 5 mm sideways (within the
        // advance distance of 1 cm).
        let off = nalgebra::Vector3::new(0.005, 0.0, 0.01);
        let at: Vec<_> = pts.iter().map(|p| p + off).collect();
        for (correction, expect_x) in [
            (GoalCorrection::Relative, 0.005),
            (GoalCorrection::Absolute, 0.0),
        ] {
            let config = GoalFollowerConfig {
                correction,
                ..GoalFollowerConfig::default()
            };
            let mut f = GoalFollower::new(&plan, config).unwrap();
            let u = f.update(as_array(&at).view(), &vis).unwrap();
            assert_eq!(u.waypoint, 2);
            // Next goal: 1 cm higher; relative keeps the 5 mm, absolute snaps back.
            for (i, p) in pts.iter().enumerate() {
                assert!(
                    (f64::from(u.goal[(i, 0)]) - (p.x + expect_x)).abs() < 1e-6,
                    "{correction:?}"
                );
                assert!((f64::from(u.goal[(i, 2)]) - (p.z + 0.02)).abs() < 1e-6);
            }
            assert!((u.deviation - (0.005f64.powi(2) + 0.01f64.powi(2)).sqrt()).abs() < 1e-6);
        }
    }

    #[test]
    fn too_few_visible_points_keep_the_goal_and_bad_input_is_an_error() {
        let (pts, plan) = lift_plan();
        let mut f = GoalFollower::new(&plan, GoalFollowerConfig::default()).unwrap();
        let mut vis = vec![false; pts.len()];
        vis[0] = true;
        let at: Vec<_> = pts
            .iter()
            .map(|p| p + nalgebra::Vector3::z() * 0.01)
            .collect();
        let u = f.update(as_array(&at).view(), &vis).unwrap();
        assert_eq!(u.waypoint, 1);
        assert!(f.update(Array2::<f32>::zeros((3, 3)).view(), &vis).is_err());
        let flat = PointTracks::try_new(Array3::zeros((2, 4, 2)), Array2::from_elem((2, 4), true))
            .unwrap();
        assert!(GoalFollower::new(&flat, GoalFollowerConfig::default()).is_err());
        let bad = GoalFollowerConfig {
            advance_distance: 0.0,
            ..GoalFollowerConfig::default()
        };
        assert!(GoalFollower::new(&plan, bad).is_err());
    }
}
