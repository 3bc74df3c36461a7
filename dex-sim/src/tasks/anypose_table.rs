//! `AnyposeTabletop`: Dex4D's anypose-to-anypose task as its paper sets it — the hand on
//! a 6-DoF wrist above a table, an object lying on the table, a first goal that lifts
//! it, then random nearby goal poses.

use std::ops::Range;

use dex_core::HandModel;
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::Rng;

use super::config::TaskConfig;
use super::hand_core::{HandCore, make_simulator};
use super::point_mask::{PointMask, plane_mask};
use super::sampling::random_rotation;
use super::task::{Task, env_for_task};
use crate::env::{Info, Observation, Step};
use crate::error::{Error, Result};
use crate::object::{ObjectSpec, RandomObjectParams, random_object};
use crate::simulator::{Table, mount_pose};
use crate::wrist::WristConfig;

/// Settings of [`AnyposeTabletop`]. Constants marked Dex4D are from its released code
/// (the Dex4D fact sheet, §2–§5).
#[derive(Debug, Clone, PartialEq)]
pub struct AnyposeTableConfig {
    /// Keypoints sampled on the object (Dex4D: 128).
    pub keypoints: usize,
    /// Point slots after the plane mask (Dex4D: 64).
    pub slots: usize,
    /// The student block's masking and noise (the privileged block is exact).
    pub mask: PointMask,
    /// Random objects.
    pub objects: RandomObjectParams,
    /// Use this object instead of random ones (Dex4D's curriculum starts with one
    /// object category).
    pub fixed_object: Option<ObjectSpec>,
    /// Height of the table's top (m, world z).
    pub table_height: f64,
    /// Height of the wrist's base (the palm at wrist coordinates 0) above the table (m).
    pub hand_height: f64,
    /// Objects start within this distance (m, per axis) of the point under the hand.
    pub spawn_range: f64,
    /// Mean keypoint distance (m) counted as at the goal (Dex4D: 0.05; 0.02 is dex's
    /// stricter setting).
    pub success_distance: f64,
    /// Consecutive control steps at the goal that complete it (Dex4D: 30).
    pub hold_steps: usize,
    /// The first goal's lift (m) (Dex4D: 0.2).
    pub first_lift: f64,
    /// Largest offset (m, per axis) of a next goal (Dex4D: 0.1).
    pub goal_offset: f64,
    /// Largest rotation (rad) of a next goal (Dex4D: 0.5).
    pub goal_rotation: f64,
    /// The episode ends when the mean keypoint distance exceeds this (m) (Dex4D's
    /// first stage: 0.3; later stages effectively never).
    pub too_far: f64,
    /// Weight of the fingertip–object and palm–object distance terms (Dex4D: 1 in
    /// stages 1–2, 0 in stage 3).
    pub approach_weight: f64,
    /// A multi-waypoint task instead of random goals ([`TableTask`]).
    pub task: Option<TableTask>,
    /// Multi-waypoint tasks: a waypoint counts as reached when the mean distance between
    /// the object's points and the goal in force is at most this (m; Dex4D's Eq. 4
    /// threshold is not published, dex's choice: 0.03, as on the proxy).
    pub advance_distance: f64,
}

/// A multi-waypoint task made from object poses, as Dex4D's simulated tasks are
/// (waypoint 0 is the start pose; the table frame's axes are the world's; `d` is a
/// random horizontal direction drawn per episode).
///
/// - `Carry`: lift 10 cm; carry 8 cm, then 16 cm along `d`; set down on the table.
/// - `Pour`: lift 15 cm; tilt 45°, then 90° about the horizontal axis across `d`
///   (about the object's centre); stand upright again.
/// - `Stack`: a block (8 × 8 × 4 cm, 1 kg) lies 18 cm along `d`; lift 10 cm; carry
///   over the block, 6 cm above its top; set down on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableTask {
    /// Lift, carry, place.
    Carry,
    /// Lift, tilt as if pouring, stand up again.
    Pour,
    /// Lift, carry over a block, place on it.
    Stack,
}

impl TableTask {
    /// The names [`TableTask::from_name`] accepts.
    pub const NAMES: &'static [&'static str] = &["carry", "pour", "stack"];

    /// The task called `name` (`carry`, `pour`, `stack`).
    ///
    /// # Errors
    ///
    /// [`Error::UnknownName`] for another name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "carry" => Ok(Self::Carry),
            "pour" => Ok(Self::Pour),
            "stack" => Ok(Self::Stack),
            other => Err(Error::UnknownName {
                kind: "table task",
                name: other.to_string(),
                known: Self::NAMES.join(", "),
            }),
        }
    }

    /// The task's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Carry => "carry",
            Self::Pour => "pour",
            Self::Stack => "stack",
        }
    }

    /// The block a [`TableTask::Stack`] episode sets the object on: its shape and mass.
    pub fn stack_block() -> ObjectSpec {
        ObjectSpec::new(
            "block",
            crate::object::ObjectShape::Box {
                half_extents: [0.04, 0.04, 0.02],
            },
            1.0,
        )
    }

    /// The waypoints (object poses, world frame) of this task from `start` (the object
    /// at rest on the table, whose top is at height `table_z`), along the horizontal unit
    /// direction `d`; the first is `start`. For `Stack`, the block's centre is at
    /// [`TableTask::block_centre`].
    pub fn waypoints(
        self,
        start: &Isometry3<f64>,
        table_z: f64,
        d: &Vector3<f64>,
    ) -> Vec<Isometry3<f64>> {
        let at = |p: Vector3<f64>, r: UnitQuaternion<f64>| Isometry3::from_parts(p.into(), r);
        let p0 = start.translation.vector;
        let r0 = start.rotation;
        let rest = p0.z - table_z;
        match self {
            Self::Carry => {
                let up = p0 + Vector3::z() * 0.1;
                vec![
                    *start,
                    at(up, r0),
                    at(up + d * 0.08, r0),
                    at(up + d * 0.16, r0),
                    at(p0 + d * 0.16, r0),
                ]
            }
            Self::Pour => {
                let up = p0 + Vector3::z() * 0.15;
                let axis = nalgebra::Unit::new_normalize(Vector3::z().cross(d));
                let tilt = |deg: f64| UnitQuaternion::from_axis_angle(&axis, deg.to_radians()) * r0;
                vec![
                    *start,
                    at(up, r0),
                    at(up, tilt(45.0)),
                    at(up, tilt(90.0)),
                    at(up, r0),
                ]
            }
            Self::Stack => {
                let block = Self::block_centre(start, table_z, d);
                let top = block.z + 0.02;
                let over = Vector3::new(block.x, block.y, top + rest + 0.06);
                vec![
                    *start,
                    at(p0 + Vector3::z() * 0.1, r0),
                    at(over, r0),
                    at(Vector3::new(block.x, block.y, top + rest), r0),
                ]
            }
        }
    }

    /// Where a `Stack` episode's block lies (its centre, world frame).
    pub fn block_centre(start: &Isometry3<f64>, table_z: f64, d: &Vector3<f64>) -> Point3<f64> {
        let p = start.translation.vector + d * 0.18;
        Point3::new(p.x, p.y, table_z + 0.02)
    }
}

impl Default for AnyposeTableConfig {
    fn default() -> Self {
        Self {
            keypoints: 128,
            slots: 64,
            mask: PointMask::default(),
            // Objects the LEAP hand can close on from above.
            objects: RandomObjectParams {
                size: [0.05, 0.08],
                ..RandomObjectParams::default()
            },
            fixed_object: None,
            table_height: 0.4,
            hand_height: 0.2,
            spawn_range: 0.05,
            success_distance: 0.05,
            hold_steps: 30,
            first_lift: 0.2,
            goal_offset: 0.1,
            goal_rotation: 0.5,
            too_far: 0.3,
            approach_weight: 1.0,
            task: None,
            advance_distance: 0.03,
        }
    }
}

/// Where each block sits in an [`AnyposeTabletop`] observation (`state` indices).
/// Positions are in the table frame (origin at the centre of the table's top, axes
/// as the world's), ×10.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnyposeTableLayout {
    /// Proprioception (the hand's history, then the wrist's coordinates and rates).
    pub proprio: Range<usize>,
    /// The last action (6 wrist deltas + the hand's joints).
    pub last_action: Range<usize>,
    /// The student's joint positions, Dex4D's: the hand's joints scaled to `[−1, 1]` by
    /// their limits, then the wrist's coordinates (x, y, z ×10, angles).
    pub joints: Range<usize>,
    /// Their velocities ×0.2 (Dex4D's scale; wrist x, y, z ×10 first).
    pub joint_velocities: Range<usize>,
    /// Student block: masked, noisy current points (zeros where hidden).
    pub current: Range<usize>,
    /// Student block: the goal points, masked as the current ones.
    pub goal: Range<usize>,
    /// Privileged: exact current points, exact goal points, object pose (7), object
    /// linear velocity (3) and angular velocity ×0.2 (3), goal pose (7), fingertips
    /// (3 each), fingertip-to-object vectors (3 each), the palm's position (3), the
    /// object's bounding box in its own frame (lower then upper corner, ×10; a shape
    /// feature, as Dex4D's teacher sees a point-cloud feature of the object).
    pub privileged: Range<usize>,
}

/// Dex4D's anypose-to-anypose on the wrist-mounted hand.
///
/// **Scene:** a table ([`Table`]) at `table_height`; the hand palm down on a 6-DoF
/// wrist ([`crate::wrist`]) whose base is `hand_height` above the table; an object
/// upright on the table within `spawn_range` of the point under the hand, random yaw.
/// **Action:** 6 wrist deltas then the hand's joint targets ([`TaskConfig::wrist`]).
/// **Goals:** the first lifts the object by `first_lift`; a goal held within
/// `success_distance` (mean keypoint distance) for `hold_steps` steps is completed and
/// replaced by the current pose moved by up to `goal_offset` per axis and turned by up
/// to `goal_rotation` about a random axis (clamped to a box over the table).
/// **Reward** (Dex4D's Eq. 2 as coded, `task:1381–1549`; 4 fingertips for LEAP):
/// with `near` = (Σ fingertip–object distances ≤ 0.48 m, each capped at 3) and
/// (palm–object ≤ 0.12 m): `(1.4 − 3d)·near − 0.5·w·Σ‖tip − obj‖ − 0.5·w·‖palm − obj‖
/// + 5/(1 + 10d)·near·[d ≤ 0.05] + 10·[goal completed] − 0.001‖q‖²
/// + 10·min(0, h − table − 0.02) + max(−0.01‖a‖², −0.5)`, `d` the mean keypoint
/// distance, `w` the approach weight, `h` the lowest fingertip or palm height.
/// **Ends:** at the time limit, when `d > too_far`, or when the object falls off the
/// table. **Success:** at least one goal completed. **Info:** `mean_point_distance`,
/// `goals` (completed), `lift` (object height above its start, m), `near` (0/1).
///
/// **Multi-waypoint tasks** ([`AnyposeTableConfig::task`]): the goals are the task's
/// waypoints ([`TableTask::waypoints`]) instead of random poses. A waypoint is reached
/// when the object's true points come within `advance_distance` of the goal in force;
/// the task then moves on to the next one by itself, unless the goal is set from outside
/// ([`AnyposeTabletop::set_goal`], a closed loop on tracked points): from then on only
/// the caller moves it. **Success:** the last waypoint reached (the episode ends there);
/// **info** adds `waypoint` (the one in force) and `progress` (the fraction of waypoints
/// after the start reached).
pub struct AnyposeTabletop {
    core: HandCore,
    params: AnyposeTableConfig,
    layout: AnyposeTableLayout,
    table: Point3<f64>,
    points: Vec<Point3<f64>>,
    goal: Isometry3<f64>,
    start: Isometry3<f64>,
    held: usize,
    goals_done: usize,
    object_box: (Vector3<f64>, Vector3<f64>),
    waypoints: Vec<Isometry3<f64>>,
    waypoint: usize,
    reached: Vec<bool>,
    external_goal: bool,
}

/// The wrist of the tabletop task: down to the table and 35 cm up.
fn tabletop_wrist() -> WristConfig {
    WristConfig {
        lower: [-0.3, -0.3, -0.25, -3.0, -3.0, -3.0],
        upper: [0.3, 0.3, 0.35, 3.0, 3.0, 3.0],
        ..WristConfig::default()
    }
}

impl AnyposeTableConfig {
    /// The palm's pose at wrist coordinates 0 (the wrist's base frame) in the table frame
    /// (origin at the centre of the table's top, axes as the world's): `hand_height`
    /// above the table, palm down.
    pub fn wrist_base(&self, model: &HandModel) -> Isometry3<f64> {
        // Palm down: the palm-up mount turned half a turn about x.
        let down = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), std::f64::consts::PI)
            * mount_pose(model).rotation;
        Isometry3::from_parts(Translation3::new(0.0, 0.0, self.hand_height), down)
    }
}

impl AnyposeTabletop {
    /// Builds the task for `model`. `config.wrist` defaults to a wrist that reaches the
    /// table; the task needs physics (the mock has no wrist).
    ///
    /// # Errors
    ///
    /// Bad settings, or a simulator error.
    pub fn new(model: HandModel, config: TaskConfig, params: AnyposeTableConfig) -> Result<Self> {
        if params.slots < 3 || params.slots > params.keypoints {
            return Err(Error::InvalidParameter {
                what: "anypose slots",
                reason: format!("must lie in 3..={}, got {}", params.keypoints, params.slots),
            });
        }
        params.mask.validate(params.slots)?;
        if !(params.advance_distance.is_finite() && params.advance_distance > 0.0) {
            return Err(Error::InvalidParameter {
                what: "anypose advance_distance",
                reason: format!("must be positive, got {}", params.advance_distance),
            });
        }
        let mut config = config;
        if config.wrist.is_none() {
            config.wrist = Some(tabletop_wrist());
        }
        let table = Point3::new(0.0, 0.0, params.table_height);
        let mut sim_config = config.sim_config(&model);
        sim_config.hand_pose = Translation3::from(table.coords) * params.wrist_base(&model);
        sim_config.table = Some(Table {
            top_center: [table.x, table.y, table.z],
            half_extents: [0.5, 0.5],
            friction: 0.8,
        });
        let first = params
            .fixed_object
            .clone()
            .unwrap_or_else(|| ObjectSpec::cube(0.06, 0.1));
        first.validate()?;
        let pose = Isometry3::translation(table.x, table.y, table.z + first.shape.half_height());
        let sim = make_simulator(model, &[first], &[pose], sim_config, config.mock_physics)?;
        let mut core = HandCore::new(sim, config)?;
        let n = params.slots;
        let tips = core.sim.model().fingertips().len();
        let a = core.action_space.dim();
        let p0 = core.proprio_dim();
        let j0 = p0 + a;
        let c0 = j0 + 2 * a;
        let privileged_len = 6 * n + 7 + 6 + 7 + 6 * tips + 3 + 6;
        let layout = AnyposeTableLayout {
            proprio: 0..p0,
            last_action: p0..j0,
            joints: j0..j0 + a,
            joint_velocities: j0 + a..c0,
            current: c0..c0 + 3 * n,
            goal: c0 + 3 * n..c0 + 6 * n,
            privileged: c0 + 6 * n..c0 + 6 * n + privileged_len,
        };
        core.set_observation(layout.privileged.end, None);
        Ok(Self {
            core,
            params,
            layout,
            table,
            points: Vec::new(),
            goal: Isometry3::identity(),
            start: Isometry3::identity(),
            held: 0,
            goals_done: 0,
            object_box: (Vector3::zeros(), Vector3::zeros()),
            waypoints: Vec::new(),
            waypoint: 0,
            reached: Vec::new(),
            external_goal: false,
        })
    }

    /// The settings.
    pub fn params(&self) -> &AnyposeTableConfig {
        &self.params
    }

    /// The episode's waypoints (object poses, world frame; the first is the start) for
    /// a multi-waypoint task, else empty.
    pub fn waypoints(&self) -> &[Isometry3<f64>] {
        &self.waypoints
    }

    /// The object's true pose (world frame).
    ///
    /// # Errors
    ///
    /// A simulator error.
    pub fn object_pose(&self) -> Result<Isometry3<f64>> {
        Ok(self.core.sim.object_state(0)?.pose)
    }

    /// Renders the scene (depth, segmentation, grey) through `camera`.
    ///
    /// # Errors
    ///
    /// A simulator error (the mock does not render).
    pub fn render(&self, camera: &crate::Camera) -> Result<crate::DepthFrame> {
        self.core.sim.render_depth(camera)
    }

    /// Sets the goal in force (world frame) from outside, standing for `waypoint` of a
    /// multi-waypoint task (for random goals, any `waypoint`; it is not used). From
    /// then on the task no longer moves its waypoint by itself. Takes effect at the next
    /// step (and in [`AnyposeTabletop::observe_estimate`]).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for a waypoint past the task's last, or a goal that is
    /// not finite.
    pub fn set_goal(&mut self, goal: Isometry3<f64>, waypoint: usize) -> Result<()> {
        if self.params.task.is_some() && (waypoint == 0 || waypoint >= self.waypoints.len()) {
            return Err(Error::InvalidParameter {
                what: "waypoint",
                reason: format!(
                    "must lie in 1..{} for this episode, got {waypoint}",
                    self.waypoints.len()
                ),
            });
        }
        if !goal.to_homogeneous().iter().all(|v| v.is_finite()) {
            return Err(Error::InvalidParameter {
                what: "goal",
                reason: "must be finite".into(),
            });
        }
        self.goal = goal;
        self.waypoint = waypoint;
        self.external_goal = true;
        Ok(())
    }

    /// The observation of the current state as if the object were at `estimate` (a
    /// tracker's pose: the student's current points and the privileged block's object
    /// points and pose are taken from it; velocities, the hand and the goal are the
    /// task's). Draws the student block's mask and noise afresh.
    ///
    /// # Errors
    ///
    /// A simulator error.
    pub fn observe_estimate(&mut self, estimate: &Isometry3<f64>) -> Result<Observation> {
        self.observe(estimate)
    }
    /// Where each block sits in the observation.
    pub fn layout(&self) -> &AnyposeTableLayout {
        &self.layout
    }

    /// The current goal pose (world frame).
    pub fn goal_pose(&self) -> Isometry3<f64> {
        self.goal
    }

    /// The tracked points in the object frame (the plane mask's slots).
    pub fn object_points(&self) -> &[Point3<f64>] {
        &self.points
    }

    fn mean_distance(&self, pose: &Isometry3<f64>) -> f64 {
        self.points
            .iter()
            .map(|p| (pose * p - self.goal * p).norm())
            .sum::<f64>()
            / self.points.len() as f64
    }

    fn next_goal(&mut self, pose: &Isometry3<f64>) -> Isometry3<f64> {
        let r = self.params.goal_offset;
        let t = self.table;
        let mut p = pose.translation.vector
            + Vector3::new(
                self.core.rng.random_range(-r..=r),
                self.core.rng.random_range(-r..=r),
                self.core.rng.random_range(-r..=r),
            );
        p.x = p.x.clamp(t.x - 0.2, t.x + 0.2);
        p.y = p.y.clamp(t.y - 0.2, t.y + 0.2);
        p.z = p.z.clamp(t.z + 0.05, t.z + 0.35);
        let axis = random_rotation(&mut self.core.rng) * Vector3::z_axis();
        let angle = self.core.rng.random_range(0.0..=self.params.goal_rotation);
        Isometry3::from_parts(
            p.into(),
            UnitQuaternion::from_axis_angle(&axis, angle) * pose.rotation,
        )
    }

    /// Multi-waypoint tasks: marks the waypoint in force reached when the true mean
    /// distance `d` is within the advance distance, moves on to the next waypoint unless
    /// the goal is set from outside, and says whether the last one is reached.
    fn advance_waypoint(&mut self, d: f64) -> bool {
        let last = self.waypoints.len().saturating_sub(1);
        if d <= self.params.advance_distance && !self.reached[self.waypoint] {
            self.reached[self.waypoint] = true;
            self.goals_done += 1;
            if !self.external_goal && self.waypoint < last {
                self.waypoint += 1;
                self.goal = self.waypoints[self.waypoint];
            }
        }
        self.reached.get(last).copied().unwrap_or(false)
    }

    /// The fraction of a multi-waypoint task's waypoints (after the start) reached.
    pub fn progress(&self) -> f64 {
        let n = self.reached.len().saturating_sub(1);
        if n == 0 {
            return 0.0;
        }
        self.reached[1..].iter().filter(|r| **r).count() as f64 / n as f64
    }

    fn palm(&self) -> Point3<f64> {
        let root = self.core.sim.model().root().0;
        Point3::from(self.core.sim.link_poses()[root].translation.vector)
    }

    fn observe(&mut self, pose: &Isometry3<f64>) -> Result<Observation> {
        let mut state = Vec::with_capacity(self.layout.privileged.end);
        self.core.proprio(&mut state);
        state.extend(&self.core.last_action);
        let js = self.core.sim.joint_state();
        let (wrist, wrist_rate) = self.core.observed_wrist();
        state.extend(
            js.q.iter()
                .zip(&self.core.limits)
                .map(|(q, l)| l.to_unit(*q) as f32),
        );
        state.extend(wrist.iter().map(|v| *v as f32));
        state.extend(js.qdot.iter().chain(&wrist_rate).map(|v| (v * 0.2) as f32));
        let rel = |p: &Point3<f64>| (p - self.table) * 10.0;
        // Points in the table frame (m); the student block ×10 with noise and zeros.
        let current: Vec<Point3<f64>> = self
            .points
            .iter()
            .map(|p| Point3::from(pose * p - self.table))
            .collect();
        let goal: Vec<Point3<f64>> = self
            .points
            .iter()
            .map(|p| Point3::from(self.goal * p - self.table))
            .collect();
        let visible = self.params.mask.visible(&current, &mut self.core.rng);
        self.params.mask.write(
            &current,
            &goal,
            &visible,
            10.0,
            &mut self.core.rng,
            &mut state,
        );
        for p in current.iter().chain(&goal) {
            state.extend(p.iter().map(|v| (v * 10.0) as f32));
        }
        let s = self.core.sim.object_state(0)?;
        let push_pose = |out: &mut Vec<f32>, pose: &Isometry3<f64>| {
            out.extend(
                rel(&Point3::from(pose.translation.vector))
                    .iter()
                    .map(|v| *v as f32),
            );
            out.extend(pose.rotation.coords.iter().map(|v| *v as f32));
        };
        push_pose(&mut state, pose);
        state.extend(s.linear_velocity.iter().map(|v| *v as f32));
        state.extend(s.angular_velocity.iter().map(|v| (v * 0.2) as f32));
        push_pose(&mut state, &self.goal);
        let centre = Point3::from(pose.translation.vector);
        let tips = self.core.sim.fingertip_positions();
        for t in &tips {
            state.extend(rel(t).iter().map(|v| *v as f32));
        }
        for t in &tips {
            state.extend(((centre - t) * 10.0).iter().map(|v| *v as f32));
        }
        state.extend(rel(&self.palm()).iter().map(|v| *v as f32));
        let (lo, hi) = self.object_box;
        state.extend(lo.iter().chain(&hi).map(|v| (v * 10.0) as f32));
        self.core.add_noise(&mut state);
        Ok(Observation { state, depth: None })
    }
}

impl Task for AnyposeTabletop {
    fn core(&self) -> &HandCore {
        &self.core
    }

    fn core_mut(&mut self) -> &mut HandCore {
        &mut self.core
    }

    fn task_name(&self) -> &str {
        "anypose-table"
    }

    fn start_episode(&mut self) -> Result<(Observation, Info)> {
        let base = match &self.params.fixed_object {
            Some(o) => o.clone(),
            None => random_object(&mut self.core.rng, &self.params.objects),
        };
        let object = self.core.randomize_object(&base);
        let all = object
            .shape
            .sample_surface(self.params.keypoints, &mut self.core.rng);
        self.points = plane_mask(&all, self.params.slots, &mut self.core.rng)?
            .into_iter()
            .map(|i| all[i])
            .collect();
        let r = self.params.spawn_range;
        let t = self.table;
        let yaw = self
            .core
            .rng
            .random_range(-std::f64::consts::PI..std::f64::consts::PI);
        let start = Isometry3::from_parts(
            Translation3::new(
                t.x + self.core.rng.random_range(-r..=r),
                t.y + self.core.rng.random_range(-r..=r),
                t.z + object.shape.half_height() + 0.001,
            ),
            UnitQuaternion::from_axis_angle(&Vector3::z_axis(), yaw),
        );
        let open = self.core.open_configuration();
        self.core.sim.set_joint_positions(&open)?;
        self.object_box = object.shape.bounding_box();
        self.waypoints.clear();
        match self.params.task {
            None => self.core.sim.set_objects(&[object], &[start])?,
            Some(task) => {
                let angle = self
                    .core
                    .rng
                    .random_range(-std::f64::consts::PI..std::f64::consts::PI);
                let d = Vector3::new(angle.cos(), angle.sin(), 0.0);
                self.waypoints = task.waypoints(&start, t.z, &d);
                if task == TableTask::Stack {
                    let block = TableTask::block_centre(&start, t.z, &d);
                    let block_pose = Isometry3::from_parts(block.into(), start.rotation);
                    self.core
                        .sim
                        .set_objects(&[object, TableTask::stack_block()], &[start, block_pose])?;
                } else {
                    self.core.sim.set_objects(&[object], &[start])?;
                }
            }
        }
        self.core.begin_episode(None)?;
        self.start = start;
        self.goal = match self.waypoints.get(1) {
            Some(first) => *first,
            None => Isometry3::from_parts(
                Translation3::from(
                    start.translation.vector + Vector3::z() * self.params.first_lift,
                ),
                start.rotation,
            ),
        };
        self.waypoint = usize::from(!self.waypoints.is_empty());
        self.reached = vec![false; self.waypoints.len()];
        self.external_goal = false;
        self.held = 0;
        self.goals_done = 0;
        let obs = self.observe(&start)?;
        let mut info = Info::default();
        info.set("mean_point_distance", self.mean_distance(&start));
        info.set("goals", 0.0);
        info.set("lift", 0.0);
        info.set("near", 0.0);
        if self.params.task.is_some() {
            info.set("waypoint", self.waypoint as f64);
            info.set("progress", 0.0);
        }
        Ok((obs, info))
    }

    fn after_action(&mut self) -> Result<Step> {
        let pose = self.core.sim.object_state(0)?.pose;
        let d = self.mean_distance(&pose);
        let centre = Point3::from(pose.translation.vector);
        let tips = self.core.sim.fingertip_positions();
        let palm = self.palm();
        let tip_sum: f64 = tips.iter().map(|t| (centre - t).norm()).sum();
        let tip_sum_capped: f64 = tips.iter().map(|t| (centre - t).norm().min(3.0)).sum();
        let palm_d = (centre - palm).norm();
        let near = tip_sum_capped <= 0.48 && palm_d.min(0.5) <= 0.12;
        let p = self.params.clone();
        let q = self.core.sim.joint_state().q;
        let lowest = tips.iter().map(|t| t.z).fold(palm.z, f64::min);
        let action_cost: f64 = self
            .core
            .last_action
            .iter()
            .map(|a| f64::from(*a).powi(2))
            .sum();
        let mut reward = if near { 1.4 - 3.0 * d } else { 0.0 }
            - 0.5 * p.approach_weight * tip_sum
            - 0.5 * p.approach_weight * palm_d
            - 0.001 * q.iter().map(|v| v * v).sum::<f64>()
            + 10.0 * (lowest - self.table.z - 0.02).min(0.0)
            + (-0.01 * action_cost).max(-0.5);
        if near && d <= 0.05 {
            reward += 5.0 / (1.0 + 10.0 * d);
        }
        let goals_before = self.goals_done;
        let finished = if p.task.is_some() {
            let finished = self.advance_waypoint(d);
            if self.goals_done > goals_before {
                reward += 10.0;
            }
            finished
        } else {
            self.held = if d <= p.success_distance {
                self.held + 1
            } else {
                0
            };
            if self.held >= p.hold_steps {
                reward += 10.0;
                self.goals_done += 1;
                self.held = 0;
                self.goal = self.next_goal(&pose);
            }
            false
        };
        let fell = centre.z < self.table.z - 0.05;
        let terminated = d > p.too_far || fell || finished;
        let truncated = self.core.end_step(terminated);
        let obs = self.observe(&pose)?;
        let mut info = Info::default();
        info.set("mean_point_distance", d);
        info.set("goals", self.goals_done as f64);
        info.set("lift", centre.z - self.start.translation.vector.z);
        info.set("near", if near { 1.0 } else { 0.0 });
        info.success = self.goals_done > 0;
        if p.task.is_some() {
            info.set("waypoint", self.waypoint as f64);
            info.set("progress", self.progress());
            info.success = finished;
        }
        Ok(Step {
            obs,
            reward,
            terminated,
            truncated,
            info,
        })
    }
}

env_for_task!(AnyposeTabletop);
