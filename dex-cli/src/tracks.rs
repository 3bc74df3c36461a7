//! `dex eval --task carry|pour|stack --tracks oracle|klt|open-loop`: Dex4D's
//! multi-waypoint tasks on the wrist-mounted hand, driven by goal point tracks.
//!
//! Each episode's plan (the object's poses, [`dex_sim::TableTask::waypoints`]) becomes
//! goal tracks ([`dex_track::goal_tracks`]) over the task's point slots. Every control
//! step the object's current points come from a tracker, a [`GoalFollower`] turns them
//! into the goal of the moment (moving on when the tracked points reach it), and the
//! policy sees both as its paired point block. The task judges on the true object
//! points whether the goal in force was reached (`advance_distance`), so a tracker that
//! believes a waypoint reached when it is not gains nothing.

use std::time::Instant;

use anyhow::{Context, Result, anyhow, bail};
use clap::ValueEnum;
use dex_core::geometry::kabsch;
use dex_policy::{ActMode, Policy};
use dex_sim::camera::{LABEL_HAND, object_label};
use dex_sim::{AnyposeTableConfig, AnyposeTabletop, Camera, Env, EnvSpec, TableTask};
use dex_track::{
    GoalCorrection, GoalFollower, GoalFollowerConfig, KltConfig, KltTracker, LiftedTracker,
    Observation, RigidObjectTracker, RobustFitConfig, Tracker, goal_tracks,
};
use nalgebra::{Isometry3, Point3, Vector3};
use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;

use crate::demo::gray_image;

/// Where the policy's current object points come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TrackSource {
    /// The simulator's object pose (a perfect tracker); closed loop.
    Oracle,
    /// KLT on the rendered grey image, lifted to 3D with the rendered depth, a robust
    /// rigid fit on top ([`RigidObjectTracker`]); closed loop.
    Klt,
    /// No tracking of the goal: the plan's waypoints replayed in time
    /// (`open_loop_steps` each); the policy still sees the object (oracle points).
    OpenLoop,
}

/// How a goal is handed to the policy (`--correction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Correction {
    /// The plan's own points at the current waypoint.
    Absolute,
    /// The fitted current points moved by the plan's step (dex's own design).
    Relative,
}

/// One multi-waypoint evaluation.
#[derive(Debug, Clone)]
pub(crate) struct TrackEval {
    /// The task.
    pub task: TableTask,
    /// The tracker.
    pub source: TrackSource,
    /// Goal correction of the follower.
    pub correction: Correction,
    /// Episodes (seeds `seed`, `seed + 1`, ...).
    pub episodes: usize,
    /// First episode's seed.
    pub seed: u64,
    /// Control steps per episode.
    pub steps: usize,
    /// Open loop: steps spent on each waypoint.
    pub open_loop_steps: usize,
    /// Waypoint threshold (m): the follower's and the task's.
    pub advance_distance: f64,
    /// Rendered image width for KLT (height ¾ of it).
    pub image_width: usize,
    /// Cameras KLT tracks in.
    pub cameras: usize,
}

/// What [`evaluate_tracks`] measured.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrackResult {
    /// Fraction of episodes whose last waypoint was reached.
    pub success: f64,
    /// Mean fraction of waypoints reached.
    pub progress: f64,
    /// Mean control steps per episode.
    pub mean_steps: f64,
    /// Median wall time (ms) of one tracking update (render excluded), KLT only.
    pub track_ms: Option<f64>,
    /// Median wall time (ms) of one render, KLT only.
    pub render_ms: Option<f64>,
    /// Mean distance (m) between the tracked and the true object points, KLT only.
    pub track_error: Option<f64>,
    /// Mean over the episodes that reached their last waypoint of the mean distance (m)
    /// between the object's true points and the plan's last pose there (a relative goal
    /// carries earlier deviations along, so it can end off the plan); `None` if none did.
    pub plan_error: Option<f64>,
}

/// The cameras KLT sees the table through: `count` of them on a circle 42 cm from the
/// table's centre, evenly spaced in azimuth (the first in front, to the right), 10 cm
/// above the point they look at, 5 cm over the table (lower than the hand, which comes
/// from above, so that its fingers hide as little as they can).
fn table_cameras(params: &AnyposeTableConfig, width: usize, count: usize) -> Result<Vec<Camera>> {
    let k = dex_core::CameraIntrinsics::from_fov_y(width, width * 3 / 4, 55f64.to_radians())?;
    let target = Point3::new(0.0, 0.0, params.table_height + 0.05);
    (0..count)
        .map(|i| {
            let azimuth =
                -std::f64::consts::FRAC_PI_4 + std::f64::consts::TAU * i as f64 / count as f64;
            let eye = target + Vector3::new(0.42 * azimuth.cos(), 0.42 * azimuth.sin(), 0.1);
            Ok(Camera::look_at(k, eye, target, Vector3::z())?)
        })
        .collect()
}

/// One camera's KLT, lifted to 3D with its depth, with the rigid fit.
struct CameraTrack {
    camera: Camera,
    tracker: RigidObjectTracker<LiftedTracker<KltTracker>>,
}

/// Object tracking by KLT from one or more cameras. Each camera's tracks are lifted to
/// 3D with its rendered depth (the hand's own pixels filtered out,
/// [`self_filtered_depth`]) and fitted rigidly ([`RigidObjectTracker`]); the pose of
/// the step is the fit that kept the most tracks among those that kept at least
/// [`REACQUIRE_BELOW`] and agree with every camera's depth ([`consistent`]), else the
/// last pose is held. A camera whose fit is lost or strays from that pose (the hand
/// closing over the object hides most tracks, and KLT never finds a lost point again)
/// starts again from its current frame: the object's known points (the first frame's
/// query points and the task's point slots, object frame) are projected with the
/// estimated pose, and those whose rendered depth agrees with the projection (not
/// hidden) become new queries. The object's segmentation is used only to pick the first
/// frame's queries.
struct KltLoop {
    cameras: Vec<CameraTrack>,
    /// Points known on the object (object frame), candidates for new queries.
    known: Vec<Point3<f64>>,
    pose: Isometry3<f64>,
}

/// Query pixels KLT starts from on the first frame.
const KLT_QUERIES: usize = 128;
/// Fewer tracks than this kept by the rigid fit start the camera's tracker again.
const REACQUIRE_BELOW: usize = 16;
/// A known point is taken as seen when the rendered depth is within this of its
/// projection's (m).
const DEPTH_AGREEMENT: f64 = 0.005;

fn klt_tracker(
    obs: &Observation<'_>,
    queries: &[[f32; 2]],
    pose: Isometry3<f64>,
) -> Result<RigidObjectTracker<LiftedTracker<KltTracker>>> {
    let q = Array2::from_shape_fn((queries.len(), 2), |(i, c)| queries[i][c]);
    let lifted = LiftedTracker::new(KltTracker::new(KltConfig::default())?)?;
    let mut tracker =
        RigidObjectTracker::new(lifted, RobustFitConfig::default())?.with_initial_pose(pose);
    tracker.init(obs, q.view())?;
    Ok(tracker)
}

/// `frame`'s depth with the hand's own pixels removed (depth 0, "nothing seen"): a
/// robot knows where its own body is (forward kinematics and its model, rendered), so
/// tracks that slide onto a finger passing in front of the object are not lifted and
/// do not drag the fit. The simulator's hand label stands for that self-filter.
fn self_filtered_depth(frame: &dex_sim::DepthFrame) -> dex_core::DepthImage {
    let mut depth = frame.depth.view().to_owned();
    ndarray::Zip::from(&mut depth)
        .and(&frame.segmentation)
        .for_each(|d, l| {
            if *l == LABEL_HAND {
                *d = 0.0;
            }
        });
    dex_core::DepthImage::new(depth)
}

/// How `frame` sees the object-frame `points` of an object at `pose`: per point
/// projected inside the image (3 or more pixels from the border), whether the rendered
/// depth agrees with the projection's (seen), or is farther (the pose puts object where
/// the camera sees past it: a contradiction); a nearer depth or the hand's own pixels
/// are an occlusion, neither.
fn depth_check(
    frame: &dex_sim::DepthFrame,
    points: &[Point3<f64>],
    pose: &Isometry3<f64>,
) -> (Vec<[f32; 2]>, usize) {
    let k = &frame.camera.intrinsics;
    let mut seen = Vec::new();
    let mut contradicted = 0;
    for p in points {
        let cam = frame.camera.pose.inverse_transform_point(&(pose * p));
        let Some((u, v)) = k.project(&cam) else {
            continue;
        };
        let (ui, vi) = (u.round(), v.round());
        if !(ui >= 3.0 && vi >= 3.0 && ui + 3.0 < k.width as f64 && vi + 3.0 < k.height as f64) {
            continue;
        }
        if frame.segmentation[(vi as usize, ui as usize)] == LABEL_HAND {
            continue;
        }
        let depth = frame.depth.get(ui as usize, vi as usize).map(f64::from);
        match depth {
            Some(d) if (d - cam.z).abs() < DEPTH_AGREEMENT => seen.push([ui as f32, vi as f32]),
            Some(d) if d < cam.z => {}
            _ => contradicted += 1,
        }
    }
    (seen, contradicted)
}

/// Whether the object at `pose` is consistent with every camera's depth: at least
/// [`REACQUIRE_BELOW`] known points seen in all, and at most [`MAX_CONTRADICTED`] of the
/// points seen or contradicted contradicted.
fn consistent(
    frames: &[dex_sim::DepthFrame],
    points: &[Point3<f64>],
    pose: &Isometry3<f64>,
) -> bool {
    let (mut seen, mut contradicted) = (0, 0);
    for f in frames {
        let (s, c) = depth_check(f, points, pose);
        seen += s.len();
        contradicted += c;
    }
    seen >= REACQUIRE_BELOW
        && contradicted as f64 <= MAX_CONTRADICTED * (seen + contradicted) as f64
}

/// Largest fraction of contradicted points for a pose to be taken ([`consistent`]).
const MAX_CONTRADICTED: f64 = 0.2;

impl KltLoop {
    fn start(
        task: &AnyposeTabletop,
        cameras: &[Camera],
        pose: Isometry3<f64>,
        slots: &[Point3<f64>],
    ) -> Result<Self> {
        let mut known = slots.to_vec();
        let mut tracks = Vec::with_capacity(cameras.len());
        for camera in cameras {
            let frame = task.render(camera)?;
            let queries = frame.interior_pixels(object_label(0), 3, KLT_QUERIES);
            if queries.len() < 3 {
                bail!(
                    "the object shows {} pixels away from its edges to a tracking camera",
                    queries.len()
                );
            }
            let image = gray_image(&frame)?;
            let depth = self_filtered_depth(&frame);
            let k = camera.intrinsics;
            let obs = Observation::image(&image).with_depth(&depth, &k, camera.pose);
            tracks.push(CameraTrack {
                camera: *camera,
                tracker: klt_tracker(&obs, &queries, pose)?,
            });
            known.extend(
                queries
                    .iter()
                    .filter_map(|q| frame.world_point(q[0] as usize, q[1] as usize))
                    .map(|p| pose.inverse_transform_point(&p)),
            );
        }
        Ok(Self {
            cameras: tracks,
            known,
            pose,
        })
    }

    /// Renders and tracks in every camera; the estimated object pose and the times
    /// (ms) of rendering and of tracking.
    fn step(&mut self, task: &AnyposeTabletop) -> Result<(Isometry3<f64>, f64, f64)> {
        let (mut render_ms, mut track_ms) = (0.0, 0.0);
        let mut frames = Vec::with_capacity(self.cameras.len());
        let mut images = Vec::with_capacity(self.cameras.len());
        let mut candidates: Vec<(usize, Isometry3<f64>)> = Vec::new();
        for c in &mut self.cameras {
            let t0 = Instant::now();
            let frame = task.render(&c.camera)?;
            let image = gray_image(&frame)?;
            let t1 = Instant::now();
            let depth = self_filtered_depth(&frame);
            let k = c.camera.intrinsics;
            let obs = Observation::image(&image).with_depth(&depth, &k, c.camera.pose);
            let kept = c
                .tracker
                .track(&obs)?
                .visible
                .iter()
                .filter(|v| **v)
                .count();
            if !c.tracker.lost() && kept >= REACQUIRE_BELOW {
                candidates.push((kept, c.tracker.pose()));
            }
            render_ms += (t1 - t0).as_secs_f64() * 1e3;
            track_ms += t1.elapsed().as_secs_f64() * 1e3;
            frames.push(frame);
            images.push((image, depth));
        }
        let t2 = Instant::now();
        // The fit that kept the most tracks and agrees with the depth images.
        candidates.sort_by_key(|c| std::cmp::Reverse(c.0));
        let chosen = candidates
            .iter()
            .find(|(_, pose)| consistent(&frames, &self.known, pose));
        if let Some((_, pose)) = chosen {
            self.pose = *pose;
        }
        for ((c, frame), (image, depth)) in self.cameras.iter_mut().zip(&frames).zip(&images) {
            let agrees = |pose: &Isometry3<f64>| {
                (pose.translation.vector - self.pose.translation.vector).norm() < 0.005
                    && pose.rotation.angle_to(&self.pose.rotation) < 0.05
            };
            if c.tracker.lost() || !agrees(&c.tracker.pose()) {
                let (queries, _) = depth_check(frame, &self.known, &self.pose);
                if queries.len() >= REACQUIRE_BELOW {
                    let k = c.camera.intrinsics;
                    let obs = Observation::image(image).with_depth(depth, &k, c.camera.pose);
                    c.tracker = klt_tracker(&obs, &queries, self.pose)?;
                }
            }
        }
        track_ms += t2.elapsed().as_secs_f64() * 1e3;
        Ok((self.pose, render_ms, track_ms))
    }
}

fn points_array(points: &[Point3<f64>]) -> Array2<f32> {
    Array2::from_shape_fn((points.len(), 3), |(i, c)| points[i][c] as f32)
}

/// The pose that carries the object-frame `model` points onto `goal` (`N × 3`).
fn goal_pose(model: &[Point3<f64>], goal: ArrayView2<'_, f32>) -> Result<Isometry3<f64>> {
    let target: Vec<Point3<f64>> = goal
        .rows()
        .into_iter()
        .map(|r| Point3::new(f64::from(r[0]), f64::from(r[1]), f64::from(r[2])))
        .collect();
    Ok(kabsch(model, &target)?)
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(v[v.len() / 2])
}

/// Builds the task of `eval` on the checkpoint's environment (`anypose-table`).
fn build_task(env: &EnvSpec, eval: &TrackEval) -> Result<AnyposeTabletop> {
    if env.task != "anypose-table" {
        bail!(
            "--task {} needs a policy for `anypose-table` (the hand on a wrist over a \
             table); the checkpoint is for `{}`",
            eval.task.name(),
            env.task
        );
    }
    let mut config = env.config.clone();
    config.episode_steps = eval.steps;
    let params = AnyposeTableConfig {
        task: Some(eval.task),
        advance_distance: eval.advance_distance,
        ..AnyposeTableConfig::default()
    };
    Ok(AnyposeTabletop::new(env.model()?, config, params)?)
}

/// Runs `policy` on `eval.episodes` episodes of the multi-waypoint task, one at a time.
///
/// # Errors
///
/// A checkpoint for another task, a policy whose widths do not match the task, a goal
/// track whose point count differs from the policy's point slots, simulator or tracker
/// errors.
pub(crate) fn evaluate_tracks(
    policy: &mut dyn Policy,
    env: &EnvSpec,
    eval: &TrackEval,
) -> Result<TrackResult> {
    if eval.episodes == 0 || eval.steps == 0 || eval.open_loop_steps == 0 || eval.cameras == 0 {
        bail!("episodes, steps, open-loop steps and cameras must be positive");
    }
    let mut task = build_task(env, eval)?;
    let slots = task.layout().current.len() / 3;
    let width = task.observation_spec().state.dim();
    if policy.observation_dim() != width || policy.action_dim() != task.action_space().dim() {
        bail!(
            "the policy maps {} numbers to {}, the task observes {} and acts with {}",
            policy.observation_dim(),
            policy.action_dim(),
            width,
            task.action_space().dim()
        );
    }
    let cameras = table_cameras(task.params(), eval.image_width, eval.cameras)?;
    let correction = match eval.correction {
        Correction::Absolute => GoalCorrection::Absolute,
        Correction::Relative => GoalCorrection::Relative,
    };
    let (mut successes, mut progress, mut steps_total) = (0usize, 0.0, 0usize);
    let (mut render_ms, mut track_ms, mut errors) = (Vec::new(), Vec::new(), Vec::new());
    let mut plan_errors = Vec::new();
    for episode in 0..eval.episodes {
        let seed = eval.seed + episode as u64;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        task.reset(Some(seed))?;
        policy.reset(0);
        let model = task.object_points().to_vec();
        let plan = task.waypoints().to_vec();
        let tracks = goal_tracks(&model, &plan)?;
        if tracks.num_points() != slots {
            bail!(
                "the goal tracks have {} points, the policy's point block {slots}",
                tracks.num_points()
            );
        }
        let mut follower = GoalFollower::new(
            &tracks,
            GoalFollowerConfig {
                correction,
                advance_distance: eval.advance_distance,
                patience: usize::MAX,
            },
        )?;
        let mut klt = match eval.source {
            TrackSource::Klt => Some(KltLoop::start(&task, &cameras, plan[0], &model)?),
            _ => None,
        };
        let visible = vec![true; model.len()];
        let mut last_info = None;
        for t in 0..eval.steps {
            let estimate = match &mut klt {
                Some(k) => {
                    let (pose, render, track) = k.step(&task)?;
                    render_ms.push(render);
                    track_ms.push(track);
                    let truth = task.object_pose()?;
                    let err = model
                        .iter()
                        .map(|p| (pose * p - truth * p).norm())
                        .sum::<f64>()
                        / model.len() as f64;
                    errors.push(err);
                    pose
                }
                None => task.object_pose()?,
            };
            let (goal, waypoint) = match eval.source {
                TrackSource::OpenLoop => {
                    let k = (1 + t / eval.open_loop_steps).min(plan.len() - 1);
                    (plan[k], k)
                }
                _ => {
                    let current: Vec<Point3<f64>> = model.iter().map(|p| estimate * p).collect();
                    let update = follower.update(points_array(&current).view(), &visible)?;
                    (goal_pose(&model, update.goal.view())?, update.waypoint)
                }
            };
            task.set_goal(goal, waypoint)?;
            let obs = task.observe_estimate(&estimate)?;
            let batch = ArrayView2::from_shape((1, obs.state.len()), &obs.state)?;
            let action = policy.act(batch, ActMode::Deterministic, &mut rng)?;
            let step = task.step(
                action
                    .as_slice()
                    .ok_or_else(|| anyhow!("the policy's actions are not contiguous"))?,
            )?;
            steps_total += 1;
            let done = step.terminated || step.truncated;
            last_info = Some(step.info);
            if done {
                break;
            }
        }
        let info = last_info.context("an episode of no steps")?;
        if info.success {
            let pose = task.object_pose()?;
            let end = plan[plan.len() - 1];
            let d = model
                .iter()
                .map(|p| (pose * p - end * p).norm())
                .sum::<f64>();
            plan_errors.push(d / model.len() as f64);
        }
        successes += usize::from(info.success);
        progress += info.get("progress").unwrap_or(0.0);
    }
    let n = eval.episodes as f64;
    Ok(TrackResult {
        success: successes as f64 / n,
        progress: progress / n,
        mean_steps: steps_total as f64 / n,
        track_ms: median(track_ms),
        render_ms: median(render_ms),
        track_error: mean(&errors),
        plan_error: mean(&plan_errors),
    })
}
