//! A scripted privileged teacher for Dex4D's task on the wrist-mounted hand
//! ([`dex_sim::AnyposeTabletop`]).
//!
//! Dex4D's teacher is a PPO policy trained for days on a GPU with thousands of
//! environments; a PPO run of an hour here completes no goal (see `docs/dex4d.md`).
//! This teacher reads the privileged block instead (object and goal poses, the exact
//! points, the object's bounding box) and does what a grasp planner would:
//!
//! 1. **Approach.** Turn the wrist so that the hand closes across the object's narrower
//!    horizontal side, move the grasp point of the palm over the object's centre with
//!    the fingertips above its top, then lower the palm onto it. The hand is shaped
//!    around the object: fingertip inverse kinematics puts the thumb's tip beyond one
//!    side and the fingers' tips beyond the other, level with the object's middle.
//! 2. **Close.** With the object in the palm's pocket, ramp the hand to the closed
//!    shape: the same fingertips aimed `squeeze` inside the object's sides, so that the
//!    joint controllers press on it.
//! 3. **Carry.** Lift straight up off the table, then move the wrist so that the grasp,
//!    held as it is, brings the object to the goal: translation always, a turn about
//!    the object's centre (rate-limited) only while the points' error is mostly
//!    rotation.
//!
//! It is reactive: every decision is a function of the observation and of a little
//! memory per environment (steps in the pocket; once carrying, the grasp), and it lets
//! go and starts again when the object leaves the grasp, so it labels the states a
//! student visits as well as its own (DAgger).

use std::collections::HashMap;

use dex_core::HandModel;
use dex_sim::{AnyposeTableConfig, AnyposeTableLayout, AnyposeTabletop};
use dex_sim::{TaskConfig, mount_pose, open_configuration, rest_pose_on_palm, wrist_pose};
use nalgebra::{Isometry3, Point3, Quaternion, Translation3, UnitQuaternion, Vector3};
use ndarray::{Array2, ArrayView1, ArrayView2};
use rand::RngCore;

use crate::error::{Result, invalid};
use crate::experts::{solve_fingertips, unit_targets};
use crate::policy::{ActMode, Policy, check_observations};

/// Settings of [`TabletopExpert`] (ours; tuned on the LEAP hand).
#[derive(Debug, Clone, PartialEq)]
pub struct TabletopExpertConfig {
    /// Where the object's centre goes under the palm: a point (m) on the palm's
    /// grasping face, in the palm frame's x and y (the closing axis is x).
    pub grasp_point: [f64; 2],
    /// Where the palm stops above the object's top (m).
    pub standoff: f64,
    /// The fingertips grip at this fraction of the object's height below its top.
    pub grip_depth: f64,
    /// Before closing, the fingertips stand this far (m) outside the object's sides.
    pub clearance: f64,
    /// Closed, they aim this far (m) inside them (the joint controllers then squeeze).
    pub squeeze: f64,
    /// The hand moves over the object with its fingertips this high (m) above its top.
    pub hover: f64,
    /// The object is in the pocket when its centre lies within this horizontal distance
    /// (m) of the grasp point…
    pub pocket_radius: f64,
    /// …and its top within this distance (m) of the standoff.
    pub pocket_gap: f64,
    /// Steps in the pocket (closing the fingers) before carrying.
    pub close_steps: usize,
    /// While carrying, the grasp counts as held while the object's centre stays within
    /// this distance (m) of where it was when carrying began, in the palm frame.
    pub hold_radius: f64,
    /// Fraction of the remaining wrist error commanded per step.
    pub gain: f64,
    /// A grasped object is lifted straight up until its lowest point is this high above
    /// the table (m) before it turns toward the goal…
    pub lift_clearance: f64,
    /// …unless its centre is already within this horizontal distance (m) of the goal's
    /// (then it goes straight to the goal: a goal on the table sets it down).
    pub place_radius: f64,
    /// While carrying, the hand turns the object only when the points' mean distance
    /// to their goals, translation removed, exceeds this (m)…
    pub turn_tolerance: f64,
    /// …and then by at most this angle (rad) per step.
    pub turn_step: f64,
    /// Damped least-squares iterations of each hand-shape solve.
    pub ik_iterations: usize,
}

impl Default for TabletopExpertConfig {
    fn default() -> Self {
        Self {
            grasp_point: [0.0, -0.015],
            standoff: 0.0,
            grip_depth: 0.5,
            clearance: 0.02,
            squeeze: 0.03,
            hover: 0.03,
            pocket_radius: 0.015,
            pocket_gap: 0.01,
            close_steps: 8,
            hold_radius: 0.04,
            gain: 0.8,
            lift_clearance: 0.05,
            place_radius: 0.02,
            turn_tolerance: 0.025,
            turn_step: 0.05,
            ik_iterations: 100,
        }
    }
}

/// One environment's memory: steps with the object in the pocket, and, once carrying,
/// the object's pose in the palm frame when carrying began and the closed hand.
#[derive(Debug, Clone, Default)]
struct Memory {
    in_pocket: usize,
    grasp: Option<(Isometry3<f64>, Vec<f32>)>,
}

/// The hand's two shapes for one object size: open around it, and closed on it
/// (normalised joint targets).
#[derive(Debug, Clone)]
struct Shapes {
    open: Vec<f32>,
    closed: Vec<f32>,
}

/// The scripted teacher of `anypose-table` (see the module docs).
#[derive(Debug, Clone)]
pub struct TabletopExpert {
    model: HandModel,
    layout: AnyposeTableLayout,
    base: Isometry3<f64>,
    /// The grasp point on the palm's face (palm frame), the face's outward normal, and
    /// the palm's closing axis and the axis across it.
    point: Point3<f64>,
    normal: Vector3<f64>,
    across: [Vector3<f64>; 2],
    /// Which fingertip is the thumb's (the one farthest back along the closing axis).
    thumb: usize,
    /// The fingertips of the open hand (palm frame).
    open_tips: Vec<Point3<f64>>,
    wrist_step: [f64; 2],
    dof: usize,
    tips: usize,
    config: TabletopExpertConfig,
    shapes: HashMap<[i32; 3], Shapes>,
    memory: Vec<Memory>,
}

/// The pose read from 7 numbers: position ×10, quaternion `i j k w`.
fn read_pose(v: &[f32]) -> Isometry3<f64> {
    let f = |i: usize| f64::from(v[i]);
    Isometry3::from_parts(
        Translation3::new(f(0) * 0.1, f(1) * 0.1, f(2) * 0.1),
        UnitQuaternion::new_normalize(Quaternion::new(f(6), f(3), f(4), f(5))),
    )
}

/// Wrist coordinates `(x, y, z, yaw, pitch, roll)` of a palm pose on a wrist whose
/// base is `base`, the angles unwrapped to lie nearest `near`.
fn wrist_coordinates(base: &Isometry3<f64>, palm: &Isometry3<f64>, near: &[f64; 6]) -> [f64; 6] {
    let local = base.inverse() * palm;
    let (roll, pitch, yaw) = local.rotation.euler_angles();
    let t = local.translation.vector;
    let unwrap = |a: f64, to: f64| {
        let tau = std::f64::consts::TAU;
        a + ((to - a) / tau).round() * tau
    };
    [
        t.x,
        t.y,
        t.z,
        unwrap(yaw, near[3]),
        unwrap(pitch, near[4]),
        unwrap(roll, near[5]),
    ]
}

impl TabletopExpert {
    /// The teacher for `anypose-table` built for `model` with `task` and `params`.
    ///
    /// # Errors
    ///
    /// Bad settings (negative distances, a fraction outside `[0, 1]`, no closing
    /// steps), a hand with fewer than two fingertips, or the task's own errors.
    pub fn new(
        model: &HandModel,
        task: &TaskConfig,
        params: &AnyposeTableConfig,
        config: TabletopExpertConfig,
    ) -> Result<Self> {
        let c = &config;
        let distances = [
            c.standoff,
            c.clearance,
            c.squeeze,
            c.hover,
            c.pocket_radius,
            c.pocket_gap,
            c.hold_radius,
            c.lift_clearance,
            c.place_radius,
            c.turn_tolerance,
            c.turn_step,
        ];
        if distances.iter().any(|d| !(d.is_finite() && *d >= 0.0))
            || !(0.0..=1.0).contains(&c.grip_depth)
            || !(c.gain > 0.0 && c.gain <= 1.0)
            || c.close_steps == 0
            || c.grasp_point.iter().any(|v| !v.is_finite())
        {
            return Err(invalid(format!(
                "tabletop expert settings: distances must be finite and non-negative, \
                 grip_depth in [0, 1], gain in (0, 1], close_steps at least 1; got {c:?}"
            )));
        }
        let tips = model.fingertips().len();
        if tips < 2 {
            return Err(invalid(
                "the tabletop expert needs a hand with a thumb and a finger",
            ));
        }
        // The observation layout of the task built with these settings.
        let layout = AnyposeTabletop::new(model.clone(), task.clone(), params.clone())?
            .layout()
            .clone();
        // The palm's face: where an object resting on the palm-up hand touches it.
        let up = mount_pose(model);
        let rest = rest_pose_on_palm(model, &up, 0.0, 0.0);
        let face = up.inverse() * Point3::from(rest.translation.vector);
        let normal = up.inverse_transform_vector(&Vector3::z());
        let flat = |v: Vector3<f64>| (v - normal * v.dot(&normal)).normalize();
        let across = [flat(Vector3::x()), flat(Vector3::y())];
        let point = face + across[0] * c.grasp_point[0] + across[1] * c.grasp_point[1]
            - across[0] * face.coords.dot(&across[0])
            - across[1] * face.coords.dot(&across[1]);
        let open_tips = model
            .fingertip_positions(&open_configuration(model))
            .map_err(|e| invalid(format!("tabletop expert: {e}")))?;
        let thumb = (0..tips)
            .min_by(|a, b| {
                open_tips[*a]
                    .coords
                    .dot(&across[0])
                    .total_cmp(&open_tips[*b].coords.dot(&across[0]))
            })
            .unwrap_or(0);
        Ok(Self {
            model: model.clone(),
            layout,
            base: params.wrist_base(model),
            point,
            normal,
            across,
            thumb,
            open_tips,
            wrist_step: task.wrist_step,
            dof: model.dof(),
            tips,
            config,
            shapes: HashMap::new(),
            memory: Vec::new(),
        })
    }

    /// The corners of the box `lo`..`hi` placed at `pose`.
    fn corners(
        pose: &Isometry3<f64>,
        lo: &Vector3<f64>,
        hi: &Vector3<f64>,
    ) -> impl Iterator<Item = Point3<f64>> {
        let (pose, lo, hi) = (*pose, *lo, *hi);
        (0..8).map(move |k| {
            pose * Point3::new(
                if k & 1 == 0 { lo.x } else { hi.x },
                if k & 2 == 0 { lo.y } else { hi.y },
                if k & 4 == 0 { lo.z } else { hi.z },
            )
        })
    }

    /// The extent of the points along `axis`: (smallest, largest) coordinate.
    fn extent(points: &[Point3<f64>], axis: &Vector3<f64>) -> (f64, f64) {
        points
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
                let x = p.coords.dot(axis);
                (a.min(x), b.max(x))
            })
    }

    /// The hand's shapes around an object whose box, in the palm frame with its centre
    /// on the grasp point's line, has half widths `half` (closing axis, across) and
    /// height `height`: fingertips level with the grip depth, outside the object's
    /// sides (open) or inside them (closed), solved by fingertip IK.
    fn shapes(&mut self, half: [f64; 2], height: f64) -> Result<Shapes> {
        let key = [half[0], half[1], height].map(|v| (v * 500.0).round() as i32);
        if let Some(s) = self.shapes.get(&key) {
            return Ok(s.clone());
        }
        let c = &self.config;
        let depth = c.standoff + height * c.grip_depth;
        let natural = &self.open_tips;
        let targets = |reach: f64| -> Vec<Point3<f64>> {
            (0..self.tips)
                .map(|k| {
                    let (side, across) = if k == self.thumb {
                        (-1.0, 0.0)
                    } else {
                        let y = natural[k].coords.dot(&self.across[1])
                            - self.point.coords.dot(&self.across[1]);
                        (1.0, y)
                    };
                    self.point
                        + self.across[0] * side * (half[0] + reach)
                        + self.across[1] * across
                        + self.normal * depth
                })
                .collect()
        };
        let mut q = open_configuration(&self.model);
        solve_fingertips(&self.model, &targets(c.clearance), &mut q, c.ik_iterations)?;
        let open = unit_targets(&self.model, &q);
        solve_fingertips(&self.model, &targets(-c.squeeze), &mut q, c.ik_iterations)?;
        let shapes = Shapes {
            open,
            closed: unit_targets(&self.model, &q),
        };
        self.shapes.insert(key, shapes.clone());
        Ok(shapes)
    }

    /// The action for one observation row, updating `memory`.
    fn act_row(&mut self, row: &[f32], memory: &mut Memory) -> Result<Vec<f32>> {
        let l = &self.layout;
        let joints = &row[l.joints.clone()];
        let w: [f64; 6] = std::array::from_fn(|i| {
            let v = f64::from(joints[self.dof + i]);
            if i < 3 { v * 0.1 } else { v }
        });
        let p = l.privileged.start + 2 * l.current.len();
        let object = read_pose(&row[p..p + 7]);
        let goal = read_pose(&row[p + 13..p + 20]);
        let b = p + 20 + 6 * self.tips + 3;
        let lo = Vector3::new(row[b], row[b + 1], row[b + 2]).cast::<f64>() * 0.1;
        let hi = Vector3::new(row[b + 3], row[b + 4], row[b + 5]).cast::<f64>() * 0.1;
        let palm = wrist_pose(&self.base, &w);
        let world: Vec<Point3<f64>> = Self::corners(&object, &lo, &hi).collect();
        // Carrying: hold the grasp while the object stays where it was in the palm.
        let rel = palm.inverse() * object;
        if let Some((g, closed)) = &memory.grasp {
            if (g.translation.vector - rel.translation.vector).norm() <= self.config.hold_radius {
                let bottom = Self::extent(&world, &Vector3::z()).0;
                let to_goal = goal.translation.vector - object.translation.vector;
                let placing = to_goal.xy().norm() <= self.config.place_radius;
                // Off the table first, the palm turned as it is; then to the goal.
                let target = if bottom < self.config.lift_clearance && !placing {
                    Translation3::new(0.0, 0.0, self.config.lift_clearance) * palm
                } else {
                    let c = object.translation.vector;
                    let shift = Translation3::from(goal.translation.vector - c);
                    // Turn only while the points' error is mostly rotation (turning a
                    // pinched object also turns it in the grasp, and the hand would
                    // chase it), no faster than the turn step, about the object's centre.
                    let turn = if self.turn_error(row) < self.config.turn_tolerance {
                        UnitQuaternion::identity()
                    } else {
                        let full = goal.rotation * object.rotation.inverse();
                        let angle = full.angle();
                        full.powf((self.config.turn_step / angle.max(1e-9)).min(1.0))
                    };
                    shift
                        * Translation3::from(c)
                        * Isometry3::from_parts(Translation3::identity(), turn)
                        * Translation3::from(-c)
                        * palm
                };
                let coords = wrist_coordinates(&self.base, &target, &w);
                return Ok(self.action(&w, &coords, closed));
            }
            memory.grasp = None;
        }
        // Approach: the closing axis across the object's narrower horizontal side, the
        // grasp point over the object's centre, then down onto it.
        let mut wanted = w;
        // While closing, the yaw stays (the object may turn in the closing hand).
        if memory.in_pocket == 0 {
            wanted[3] = self.grasp_yaw(&object, &lo, &hi, w[3]);
        }
        wanted[4] = 0.0;
        wanted[5] = 0.0;
        let oriented = wrist_pose(&self.base, &wanted);
        let shapes = self.shapes_in(&oriented, &world)?;
        let here: Vec<Point3<f64>> = world.iter().map(|c| palm.inverse() * c).collect();
        let gap = Self::extent(&here, &self.normal).0 - self.point.coords.dot(&self.normal);
        let centre = rel.translation.vector - self.point.coords;
        let lateral = (centre - self.normal * centre.dot(&self.normal)).norm();
        let in_pocket = lateral <= self.config.pocket_radius
            && gap <= self.config.standoff + self.config.pocket_gap
            && (memory.in_pocket > 0 || (wanted[3] - w[3]).abs() < 0.1);
        if in_pocket {
            memory.in_pocket += 1;
            if memory.in_pocket >= self.config.close_steps {
                memory.grasp = Some((rel, shapes.closed.clone()));
            }
        } else {
            memory.in_pocket = 0;
        }
        let (bottom, top) = Self::extent(&world, &Vector3::z());
        let grip = self.point + self.normal * self.config.standoff;
        let grip_world = oriented * grip;
        let offset = object.translation.vector - grip_world.coords;
        let horizontal = Vector3::new(offset.x, offset.y, 0.0).norm();
        let aligned =
            horizontal <= self.config.pocket_radius * 0.75 && (wanted[3] - w[3]).abs() < 0.1;
        let height = if aligned {
            top
        } else {
            // The open fingertips reach this far below the grip point.
            top + self.config.hover + (top - bottom) * self.config.grip_depth
        };
        let target = Translation3::new(offset.x, offset.y, height - grip_world.z) * oriented;
        let f = (memory.in_pocket as f32 / self.config.close_steps as f32).min(1.0);
        let hand: Vec<f32> = shapes
            .open
            .iter()
            .zip(&shapes.closed)
            .map(|(o, c)| o + (c - o) * f)
            .collect();
        let coords = wrist_coordinates(&self.base, &target, &w);
        Ok(self.action(&w, &coords, &hand))
    }

    /// The mean distance (m) of the exact points to their goals once both sets'
    /// centroids are moved onto each other: the part of the error a turn removes.
    fn turn_error(&self, row: &[f32]) -> f64 {
        let p = self.layout.privileged.start;
        let n = self.layout.current.len() / 3;
        let point = |i: usize| {
            Vector3::new(row[p + 3 * i], row[p + 3 * i + 1], row[p + 3 * i + 2]).cast::<f64>() * 0.1
        };
        let mean =
            |offset: usize| (0..n).map(|i| point(offset + i)).sum::<Vector3<f64>>() / n as f64;
        let (c0, g0) = (mean(0), mean(n));
        (0..n)
            .map(|i| ((point(i) - c0) - (point(n + i) - g0)).norm())
            .sum::<f64>()
            / n as f64
    }

    /// The shapes for the object's corners `world` seen from a palm at `palm`.
    fn shapes_in(&mut self, palm: &Isometry3<f64>, world: &[Point3<f64>]) -> Result<Shapes> {
        let local: Vec<Point3<f64>> = world.iter().map(|c| palm.inverse() * c).collect();
        let (a0, a1) = Self::extent(&local, &self.across[0]);
        let (b0, b1) = Self::extent(&local, &self.across[1]);
        let (n0, n1) = Self::extent(&local, &self.normal);
        self.shapes([(a1 - a0) / 2.0, (b1 - b0) / 2.0], n1 - n0)
    }

    /// The hand yaw that closes across the object's narrower horizontal side, nearest to
    /// `current` (the palm's fingers close along its x axis).
    fn grasp_yaw(
        &self,
        object: &Isometry3<f64>,
        lo: &Vector3<f64>,
        hi: &Vector3<f64>,
        current: f64,
    ) -> f64 {
        let size = hi - lo;
        let base_x = self.base.rotation * Vector3::x();
        let heading = |v: Vector3<f64>| v.y.atan2(v.x) - base_x.y.atan2(base_x.x);
        // The object's axes that lie most horizontal, narrower first; both when their
        // widths are within 15% (a round or square object closes either way).
        let mut axes: Vec<(f64, Vector3<f64>)> = (0..3)
            .map(|k| (size[k], object.rotation * Vector3::ith(k, 1.0)))
            .filter(|(_, v)| v.x.hypot(v.y) > 0.5)
            .collect();
        axes.sort_by(|a, b| a.0.total_cmp(&b.0));
        let candidates: Vec<f64> = match axes.as_slice() {
            [] => return current,
            [only] => vec![heading(only.1)],
            [first, second, ..] if second.0 <= first.0 * 1.15 => {
                vec![heading(first.1), heading(second.1)]
            }
            [first, ..] => vec![heading(first.1)],
        };
        // The grasp is symmetric under a half turn: the nearest of a + kπ, inside the
        // wrist's reach when one is.
        let pi = std::f64::consts::PI;
        candidates
            .iter()
            .flat_map(|a| {
                let k = ((current - a) / pi).round();
                [a + (k - 1.0) * pi, a + k * pi, a + (k + 1.0) * pi]
            })
            .min_by(|a, b| {
                let cost = |y: f64| (y - current).abs() + if y.abs() > 2.8 { 10.0 } else { 0.0 };
                cost(*a).total_cmp(&cost(*b))
            })
            .unwrap_or(current)
    }

    /// Wrist deltas toward `target`, then the hand's targets.
    fn action(&self, w: &[f64; 6], target: &[f64; 6], hand: &[f32]) -> Vec<f32> {
        let mut a = Vec::with_capacity(6 + self.dof);
        for i in 0..6 {
            let step = self.wrist_step[usize::from(i >= 3)];
            a.push(((target[i] - w[i]) * self.config.gain / step).clamp(-1.0, 1.0) as f32);
        }
        a.extend(hand);
        a
    }
}

impl Policy for TabletopExpert {
    fn observation_dim(&self) -> usize {
        self.layout.privileged.end
    }

    fn action_dim(&self) -> usize {
        6 + self.dof
    }

    fn act(
        &mut self,
        observations: ArrayView2<'_, f32>,
        _mode: ActMode,
        _rng: &mut dyn RngCore,
    ) -> Result<Array2<f32>> {
        check_observations(observations, self.observation_dim())?;
        let n = observations.nrows();
        if self.memory.len() != n {
            self.memory = vec![Memory::default(); n];
        }
        let mut out = Array2::zeros((n, self.action_dim()));
        for (i, row) in observations.rows().into_iter().enumerate() {
            let row = row.to_vec();
            let mut m = std::mem::take(&mut self.memory[i]);
            let a = self.act_row(&row, &mut m)?;
            self.memory[i] = m;
            out.row_mut(i).assign(&ArrayView1::from(&a));
        }
        Ok(out)
    }

    fn reset(&mut self, env: usize) {
        if let Some(m) = self.memory.get_mut(env) {
            *m = Memory::default();
        }
    }
}
