//! `PoseProxy`: a physics-free stand-in for Dex4D's anypose-to-anypose task, on which
//! point-track policies can be trained and compared in minutes.
//!
//! What it keeps of the real task: a random object (boxes, cylinders, spheres, capsules,
//! random convex hulls) known to the policy only through masked, noisy keypoints paired
//! with the same keypoints at the goal pose; Dex4D's goal logic (a lift first, then random
//! nearby poses, each held 30 steps within 5 cm); its masking (see
//! [`super::point_mask`]). What it drops: contact. The object is held rigidly by a
//! 6-DoF "wrist" that moves by a commanded twist, and slips in the grasp a little every
//! step (and sometimes a lot), so proprioception alone does not say where the object is.
//! The design follows the CPU-scale proposal of the Dex4D fact sheet (§12); it is a
//! proxy, and figures measured on it are reported as the proxy's.

use std::ops::Range;

use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::point_mask::{PointMask, plane_mask};
use super::sampling::{gaussian, random_rotation};
use crate::env::{BoxSpace, Env, Info, Observation, ObservationSpec, Step};
use crate::error::{Error, Result};
use crate::object::{ObjectShape, ObjectSpec, RandomObjectParams, random_object};

/// Positions in observations are in decimetres (×10), as dex's other tasks.
const SCALE: f64 = 10.0;

/// How [`PoseProxy`] sets its goals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyGoals {
    /// Training (Dex4D's code): the first goal lifts the object by `first_lift`; once a
    /// goal is held (`success_distance`, `hold_steps`), the next is a random nearby pose.
    #[default]
    Random,
    /// Evaluation: a five-waypoint track (lift, a 90° turn about a random axis, a
    /// horizontal carry, the turn undone, a place back at the start height). The goal
    /// moves to the next waypoint when the mean distance between the observed visible
    /// points and their goals is below `advance_distance` (Dex4D's Eq. 4).
    Track,
}

/// Settings of [`PoseProxy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoseProxyConfig {
    /// Keypoints sampled on the object's surface (Dex4D: 128).
    pub keypoints: usize,
    /// Point slots the policy sees after the plane mask (Dex4D: 64).
    pub slots: usize,
    /// Apply the per-episode plane mask (off: the first `slots` keypoints).
    pub plane_mask: bool,
    /// Per-step masking and noise.
    pub mask: PointMask,
    /// Random objects (characteristic size and mass; mass is unused here).
    pub objects: RandomObjectParams,
    /// Use this object instead of random ones.
    pub fixed_object: Option<ObjectSpec>,
    /// Translation (m) per unit action component per step (facts §12: 2 cm).
    pub max_translation: f64,
    /// Rotation (rad) per unit action component per step (facts §12: 0.1 rad).
    pub max_rotation: f64,
    /// Standard deviation of the grasp's slip per step: translation (m, per axis).
    pub slip_translation: f64,
    /// ... and rotation (rad, per axis).
    pub slip_rotation: f64,
    /// Probability per step of a large slip event.
    pub slip_event_probability: f64,
    /// Standard deviation of a slip event: translation (m, per axis) (ours).
    pub slip_event_translation: f64,
    /// ... and rotation (rad, per axis) (ours).
    pub slip_event_rotation: f64,
    /// Goal logic.
    pub goals: ProxyGoals,
    /// Mean keypoint distance (m) counted as at the goal (Dex4D: 0.05; dex's hand task
    /// uses 0.02).
    pub success_distance: f64,
    /// Consecutive steps at the goal that complete it (Dex4D: 30).
    pub hold_steps: usize,
    /// The first goal's lift (m) (Dex4D: 0.2).
    pub first_lift: f64,
    /// Largest offset (m, per axis) of the next goal (Dex4D: 0.1).
    pub goal_offset: f64,
    /// Largest rotation (rad) of the next goal (Dex4D: 0.5).
    pub goal_rotation: f64,
    /// Track mode: the waypoint advance distance (m) over the observed visible points
    /// (ours; Dex4D's threshold is not published).
    pub advance_distance: f64,
    /// Steps per episode.
    pub max_steps: usize,
}

impl Default for PoseProxyConfig {
    fn default() -> Self {
        Self {
            keypoints: 128,
            slots: 64,
            plane_mask: true,
            mask: PointMask::default(),
            // Objects of the size Dex4D's arm-mounted hand picks up (8–20 cm).
            objects: RandomObjectParams {
                size: [0.08, 0.2],
                ..RandomObjectParams::default()
            },
            fixed_object: None,
            max_translation: 0.02,
            max_rotation: 0.1,
            slip_translation: 0.002,
            slip_rotation: 1f64.to_radians(),
            slip_event_probability: 0.02,
            slip_event_translation: 0.01,
            slip_event_rotation: 0.1,
            goals: ProxyGoals::Random,
            success_distance: 0.05,
            hold_steps: 30,
            first_lift: 0.2,
            goal_offset: 0.1,
            goal_rotation: 0.5,
            advance_distance: 0.03,
            max_steps: 200,
        }
    }
}

impl PoseProxyConfig {
    /// The evaluation settings: the five-waypoint track, 250 steps.
    pub fn track() -> Self {
        Self {
            goals: ProxyGoals::Track,
            max_steps: 250,
            ..Self::default()
        }
    }

    /// No slip at all (the grasp is rigid).
    pub fn without_slip(mut self) -> Self {
        self.slip_translation = 0.0;
        self.slip_rotation = 0.0;
        self.slip_event_probability = 0.0;
        self
    }

    /// Checks every field.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the bad field.
    pub fn validate(&self) -> Result<()> {
        let bad =
            |what: &'static str, reason: String| Err(Error::InvalidParameter { what, reason });
        if self.slots < 3 || self.slots > self.keypoints {
            return bad(
                "proxy.slots",
                format!(
                    "must lie in 3..={} (the keypoints), got {}",
                    self.keypoints, self.slots
                ),
            );
        }
        self.mask.validate(self.slots)?;
        for (what, v) in [
            ("proxy.max_translation", self.max_translation),
            ("proxy.max_rotation", self.max_rotation),
            ("proxy.success_distance", self.success_distance),
            ("proxy.advance_distance", self.advance_distance),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return bad(what, format!("must be positive, got {v}"));
            }
        }
        for (what, v) in [
            ("proxy.slip_translation", self.slip_translation),
            ("proxy.slip_rotation", self.slip_rotation),
            ("proxy.slip_event_translation", self.slip_event_translation),
            ("proxy.slip_event_rotation", self.slip_event_rotation),
            ("proxy.first_lift", self.first_lift),
            ("proxy.goal_offset", self.goal_offset),
            ("proxy.goal_rotation", self.goal_rotation),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(what, format!("must be finite and ≥ 0, got {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.slip_event_probability) {
            return bad(
                "proxy.slip_event_probability",
                format!("must lie in [0, 1], got {}", self.slip_event_probability),
            );
        }
        if self.max_steps == 0 || self.hold_steps == 0 {
            return bad(
                "proxy.max_steps",
                "max_steps and hold_steps must be positive".into(),
            );
        }
        if let Some(o) = &self.fixed_object {
            o.validate()?;
        }
        Ok(())
    }
}

/// Where each block sits in a [`PoseProxy`] observation (`state` indices).
///
/// The student blocks first: the wrist pose (position ×10, rotation vector; Dex4D's
/// "joint positions"), the wrist's last displacement (per unit of the action scale;
/// "joint velocities"), the last action, the current points (`3 × slots`, ×10, world
/// frame, zeros where hidden) and the goal points (same). Then the privileged block a
/// teacher reads: the object pose and the goal pose (position ×10, quaternion i j k w).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyLayout {
    /// Wrist pose (6).
    pub qpos: Range<usize>,
    /// Wrist displacement over the last step (6).
    pub qvel: Range<usize>,
    /// Last action (6).
    pub last_action: Range<usize>,
    /// Current points.
    pub current: Range<usize>,
    /// Goal points.
    pub goal: Range<usize>,
    /// Object pose then goal pose (14).
    pub privileged: Range<usize>,
}

impl ProxyLayout {
    /// The layout for `slots` points.
    pub fn new(slots: usize) -> Self {
        let p = 18 + 3 * slots;
        Self {
            qpos: 0..6,
            qvel: 6..12,
            last_action: 12..18,
            current: 18..p,
            goal: p..p + 3 * slots,
            privileged: p + 3 * slots..p + 3 * slots + 14,
        }
    }

    /// The observation width.
    pub fn dim(&self) -> usize {
        self.privileged.end
    }
}

/// Whether an object's pose can be told from its shape alone: the primitives (box,
/// cylinder, sphere, capsule) have symmetries, so only the points' correspondence
/// tells some of their poses apart; random convex hulls have none.
pub fn is_symmetric(shape: &ObjectShape) -> bool {
    !matches!(shape, ObjectShape::ConvexHull { .. })
}

/// The evaluation track from `start`: lift by `lift`; turn 90° about `axis` (a unit
/// vector); carry horizontally by `carry`; turn back; place at the start height. Five
/// object poses (world frame), the start not included.
pub fn proxy_track(
    start: &Isometry3<f64>,
    lift: f64,
    axis: &nalgebra::Unit<Vector3<f64>>,
    carry: Vector3<f64>,
) -> Vec<Isometry3<f64>> {
    let up = Vector3::new(0.0, 0.0, lift);
    let carry = Vector3::new(carry.x, carry.y, 0.0);
    let turn = UnitQuaternion::from_axis_angle(axis, std::f64::consts::FRAC_PI_2);
    let p0 = start.translation.vector;
    let r0 = start.rotation;
    let pose = |p: Vector3<f64>, r: UnitQuaternion<f64>| Isometry3::from_parts(p.into(), r);
    vec![
        pose(p0 + up, r0),
        pose(p0 + up, turn * r0),
        pose(p0 + up + carry, turn * r0),
        pose(p0 + up + carry, r0),
        pose(p0 + carry, r0),
    ]
}

/// The actions that carry the object from `from` through `waypoints` in as few steps as
/// the action limits allow, each segment split into equal twists about the object's
/// centre, with `settle` zero actions after each waypoint. Replayed without looking,
/// this is the open-loop baseline.
pub fn plan_actions(
    from: &Isometry3<f64>,
    waypoints: &[Isometry3<f64>],
    max_translation: f64,
    max_rotation: f64,
    settle: usize,
) -> Vec<[f32; 6]> {
    let mut out = Vec::new();
    let mut at = *from;
    for w in waypoints {
        let dp = w.translation.vector - at.translation.vector;
        let dr = (w.rotation * at.rotation.inverse()).scaled_axis();
        let steps_p = (dp.amax() / max_translation).ceil();
        let steps_r = (dr.amax() / max_rotation).ceil();
        let n = steps_p.max(steps_r).max(1.0);
        let a = [
            dp.x / n / max_translation,
            dp.y / n / max_translation,
            dp.z / n / max_translation,
            dr.x / n / max_rotation,
            dr.y / n / max_rotation,
            dr.z / n / max_rotation,
        ]
        .map(|v| v as f32);
        for _ in 0..n as usize {
            out.push(a);
        }
        out.extend(std::iter::repeat_n([0.0; 6], settle));
        at = *w;
    }
    out
}

/// The physics-free anypose-to-anypose proxy (see the module docs).
///
/// **Action:** a 6-D twist in `[−1, 1]⁶`: translation `a[0..3] · max_translation`
/// (m, world frame) and rotation vector `a[3..6] · max_rotation` (rad, world frame,
/// about the object's centre), applied to the wrist.
///
/// **Reward** (Dex4D's shape, code `task:1381–1549`, without the hand terms):
/// `1.4 − 3 d + 5 / (1 + 10 d)·1[d ≤ success_distance] + 10·1[goal completed]`, `d` the
/// mean keypoint distance (m) over all keypoints.
///
/// **Info:** `mean_point_distance` (m, all keypoints, exact), `goals` (goals completed;
/// track mode: waypoints reached), `progress` (track mode: the fraction of the five
/// waypoints reached), `visible_points`, `symmetric` (0/1). **Success:** a goal held
/// (random goals) or the last waypoint reached (track); the track ends there.
pub struct PoseProxy {
    config: PoseProxyConfig,
    layout: ProxyLayout,
    action_space: BoxSpace,
    obs_spec: ObservationSpec,
    rng: ChaCha8Rng,
    object: ObjectSpec,
    /// Keypoints in the object frame (the slots only).
    points: Vec<Point3<f64>>,
    wrist: Isometry3<f64>,
    /// The object's pose in the wrist frame.
    grasp: Isometry3<f64>,
    goal: Isometry3<f64>,
    track: Vec<Isometry3<f64>>,
    start: Isometry3<f64>,
    waypoint: usize,
    goals_done: usize,
    held: usize,
    steps: usize,
    last_action: [f32; 6],
    last_motion: [f32; 6],
    fixed_visible: Option<Vec<bool>>,
    success: bool,
}

impl std::fmt::Debug for PoseProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoseProxy")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl PoseProxy {
    /// A proxy with `config`, seeded with 0 until the first [`Env::reset`].
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for bad settings.
    pub fn new(config: PoseProxyConfig) -> Result<Self> {
        config.validate()?;
        let layout = ProxyLayout::new(config.slots);
        let dim = layout.dim();
        Ok(Self {
            action_space: BoxSpace::uniform(6, -1.0, 1.0),
            obs_spec: ObservationSpec {
                state: BoxSpace::uniform(dim, f32::NEG_INFINITY, f32::INFINITY),
                depth: None,
            },
            layout,
            rng: ChaCha8Rng::seed_from_u64(0),
            object: ObjectSpec::cube(0.1, 0.1),
            points: Vec::new(),
            wrist: Isometry3::identity(),
            grasp: Isometry3::identity(),
            goal: Isometry3::identity(),
            track: Vec::new(),
            start: Isometry3::identity(),
            waypoint: 0,
            goals_done: 0,
            held: 0,
            steps: 0,
            last_action: [0.0; 6],
            last_motion: [0.0; 6],
            fixed_visible: None,
            success: false,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &PoseProxyConfig {
        &self.config
    }

    /// Where each block sits in the observation.
    pub fn layout(&self) -> &ProxyLayout {
        &self.layout
    }

    /// The object's pose (world frame).
    pub fn object_pose(&self) -> Isometry3<f64> {
        self.wrist * self.grasp
    }

    /// The current goal pose (world frame).
    pub fn goal_pose(&self) -> Isometry3<f64> {
        self.goal
    }

    /// The episode's start pose and, in track mode, its five waypoints.
    pub fn plan(&self) -> (Isometry3<f64>, &[Isometry3<f64>]) {
        (self.start, &self.track)
    }

    /// The episode's object.
    pub fn object(&self) -> &ObjectSpec {
        &self.object
    }

    fn mean_distance(&self) -> f64 {
        let (o, g) = (self.object_pose(), self.goal);
        self.points
            .iter()
            .map(|p| (o * p - g * p).norm())
            .sum::<f64>()
            / self.points.len() as f64
    }

    fn random_goal(&mut self) -> Isometry3<f64> {
        let o = self.object_pose();
        let c = &self.config;
        let r = c.goal_offset;
        let mut p = o.translation.vector
            + Vector3::new(
                self.rng.random_range(-r..=r),
                self.rng.random_range(-r..=r),
                self.rng.random_range(-r..=r),
            );
        // Dex4D clamps goals to its workspace box; ours is centred on the start area with
        // the table at z = 0.
        p.x = p.x.clamp(-0.3, 0.3);
        p.y = p.y.clamp(-0.3, 0.3);
        p.z = p.z.clamp(0.05, 0.5);
        let axis = random_rotation(&mut self.rng) * Vector3::z_axis();
        let angle = self.rng.random_range(0.0..=c.goal_rotation);
        let q = UnitQuaternion::from_axis_angle(&axis, angle) * o.rotation;
        Isometry3::from_parts(p.into(), q)
    }

    fn slip(&mut self, translation: f64, rotation: f64) -> Isometry3<f64> {
        let t = Vector3::new(
            gaussian(&mut self.rng),
            gaussian(&mut self.rng),
            gaussian(&mut self.rng),
        ) * translation;
        let r = Vector3::new(
            gaussian(&mut self.rng),
            gaussian(&mut self.rng),
            gaussian(&mut self.rng),
        ) * rotation;
        Isometry3::from_parts(Translation3::from(t), UnitQuaternion::from_scaled_axis(r))
    }

    /// Builds the observation; returns it with the observed mean distance between the
    /// visible current and goal points (m) and the number of visible points.
    fn observe(&mut self) -> (Observation, f64, usize) {
        let mut state = Vec::with_capacity(self.layout.dim());
        let w = self.wrist;
        state.extend(w.translation.vector.iter().map(|v| (v * SCALE) as f32));
        state.extend(w.rotation.scaled_axis().iter().map(|v| *v as f32));
        state.extend(self.last_motion);
        state.extend(self.last_action);
        let o = self.object_pose();
        let current: Vec<Point3<f64>> = self.points.iter().map(|p| o * p).collect();
        let goal: Vec<Point3<f64>> = self.points.iter().map(|p| self.goal * p).collect();
        let visible = match &self.fixed_visible {
            Some(v) => v.clone(),
            None => self.config.mask.visible(&current, &mut self.rng),
        };
        let start = state.len();
        self.config
            .mask
            .write(&current, &goal, &visible, SCALE, &mut self.rng, &mut state);
        let n = self.points.len();
        let (cur, gol) = state[start..].split_at(3 * n);
        let (mut sum, mut shown) = (0.0, 0usize);
        for i in 0..n {
            if visible[i] {
                let d: f64 = (0..3)
                    .map(|c| f64::from(cur[3 * i + c] - gol[3 * i + c]).powi(2))
                    .sum();
                sum += d.sqrt() / SCALE;
                shown += 1;
            }
        }
        for pose in [o, self.goal] {
            state.extend(pose.translation.vector.iter().map(|v| (v * SCALE) as f32));
            state.extend(pose.rotation.coords.iter().map(|v| *v as f32));
        }
        let observed = if shown > 0 {
            sum / shown as f64
        } else {
            f64::INFINITY
        };
        (Observation { state, depth: None }, observed, shown)
    }

    fn info(&self, shown: usize) -> Info {
        let mut info = Info::default();
        info.set("mean_point_distance", self.mean_distance());
        info.set("goals", self.goals_done as f64);
        if self.config.goals == ProxyGoals::Track {
            info.set(
                "progress",
                self.goals_done as f64 / self.track.len().max(1) as f64,
            );
        }
        info.set("visible_points", shown as f64);
        info.set(
            "symmetric",
            if is_symmetric(&self.object.shape) {
                1.0
            } else {
                0.0
            },
        );
        info.success = self.success;
        info
    }
}

impl Env for PoseProxy {
    fn name(&self) -> &str {
        "anypose-proxy"
    }

    fn action_space(&self) -> &BoxSpace {
        &self.action_space
    }

    fn observation_spec(&self) -> &ObservationSpec {
        &self.obs_spec
    }

    fn reset(&mut self, seed: Option<u64>) -> Result<(Observation, Info)> {
        if let Some(s) = seed {
            self.rng = ChaCha8Rng::seed_from_u64(s);
        }
        let c = self.config.clone();
        self.object = match &c.fixed_object {
            Some(o) => o.clone(),
            None => random_object(&mut self.rng, &c.objects),
        };
        let all = self.object.shape.sample_surface(c.keypoints, &mut self.rng);
        self.points = if c.plane_mask {
            plane_mask(&all, c.slots, &mut self.rng)?
                .into_iter()
                .map(|i| all[i])
                .collect()
        } else {
            all[..c.slots].to_vec()
        };
        self.fixed_visible = c.mask.episode_subset(c.slots, &mut self.rng);
        // The object rests on the table (z = 0) near the origin, in a random orientation.
        let lift = self.object.shape.bounding_radius();
        let p = Vector3::new(
            self.rng.random_range(-0.1..=0.1),
            self.rng.random_range(-0.1..=0.1),
            lift,
        );
        self.start = Isometry3::from_parts(p.into(), random_rotation(&mut self.rng));
        // The wrist holds the object 10 cm below it.
        self.grasp = Isometry3::translation(0.0, 0.0, -0.1);
        self.wrist = self.start * self.grasp.inverse();
        self.track = match c.goals {
            ProxyGoals::Random => Vec::new(),
            ProxyGoals::Track => {
                let axis = random_rotation(&mut self.rng) * Vector3::z_axis();
                let heading = self
                    .rng
                    .random_range(-std::f64::consts::PI..std::f64::consts::PI);
                let carry = Vector3::new(heading.cos(), heading.sin(), 0.0) * 0.15;
                proxy_track(&self.start, c.first_lift, &axis, carry)
            }
        };
        self.goal = match self.track.first() {
            Some(w) => *w,
            // The first goal lifts the object, same orientation.
            None => Isometry3::from_parts(
                (self.start.translation.vector + Vector3::new(0.0, 0.0, c.first_lift)).into(),
                self.start.rotation,
            ),
        };
        self.waypoint = 0;
        self.goals_done = 0;
        self.held = 0;
        self.steps = 0;
        self.last_action = [0.0; 6];
        self.last_motion = [0.0; 6];
        self.success = false;
        let (obs, _, shown) = self.observe();
        Ok((obs, self.info(shown)))
    }

    fn step(&mut self, action: &[f32]) -> Result<Step> {
        self.action_space.check("action", action)?;
        if self.points.is_empty() {
            return Err(Error::InvalidParameter {
                what: "PoseProxy::step",
                reason: "reset the environment before stepping it".into(),
            });
        }
        let c = self.config.clone();
        let v = Vector3::new(action[0], action[1], action[2]).map(f64::from) * c.max_translation;
        let w = Vector3::new(action[3], action[4], action[5]).map(f64::from) * c.max_rotation;
        let before = self.wrist;
        // The twist turns the wrist about the object's centre, then translates it.
        let centre = self.object_pose().translation.vector;
        let turn = UnitQuaternion::from_scaled_axis(w);
        let t = turn * (self.wrist.translation.vector - centre) + centre + v;
        self.wrist = Isometry3::from_parts(t.into(), turn * self.wrist.rotation);
        let mut slip = self.slip(c.slip_translation, c.slip_rotation);
        if c.slip_event_probability > 0.0 && self.rng.random::<f64>() < c.slip_event_probability {
            slip *= self.slip(c.slip_event_translation, c.slip_event_rotation);
        }
        self.grasp *= slip;
        let dp = (self.wrist.translation.vector - before.translation.vector) / c.max_translation;
        let dr = (self.wrist.rotation * before.rotation.inverse()).scaled_axis() / c.max_rotation;
        self.last_motion = [dp.x, dp.y, dp.z, dr.x, dr.y, dr.z].map(|x| x as f32);
        self.last_action.copy_from_slice(action);
        self.steps += 1;

        let d = self.mean_distance();
        let mut reward = 1.4 - 3.0 * d;
        if d <= c.success_distance {
            reward += 5.0 / (1.0 + 10.0 * d);
        }
        let mut terminated = false;
        let (mut obs, observed, mut shown) = self.observe();
        match c.goals {
            ProxyGoals::Random => {
                self.held = if d <= c.success_distance {
                    self.held + 1
                } else {
                    0
                };
                if self.held >= c.hold_steps {
                    reward += 10.0;
                    self.goals_done += 1;
                    self.success = true;
                    self.held = 0;
                    self.goal = self.random_goal();
                    (obs, _, shown) = self.observe();
                }
            }
            ProxyGoals::Track => {
                if observed < c.advance_distance {
                    self.goals_done += 1;
                    reward += 10.0;
                    self.waypoint += 1;
                    match self.track.get(self.waypoint) {
                        Some(next) => {
                            self.goal = *next;
                            (obs, _, shown) = self.observe();
                        }
                        None => {
                            self.success = true;
                            terminated = true;
                        }
                    }
                }
            }
        }
        let truncated = !terminated && self.steps >= c.max_steps;
        Ok(Step {
            obs,
            reward,
            terminated,
            truncated,
            info: self.info(shown),
        })
    }
}
