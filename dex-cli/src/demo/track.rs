//! The demo's tracking stage: a camera on the simulated scene, KLT on its grey
//! images lifted to 3D with its depth, the cube's pose by robust Kabsch, and the
//! errors against the simulator's ground truth. Runs on its own thread, fed with
//! snapshots of the simulation taken at fixed control ticks, so its results do not
//! depend on how fast it runs.

use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use dex_core::geometry::rotation_distance;
use dex_sim::camera::object_label;
use dex_sim::{Camera, SimState, Simulator};

use super::frames::TrackedStill;
use dex_track::metrics::{QueryMode, TapVidInput, tapvid_metrics};
use dex_track::{
    GrayImage, KltConfig, KltTracker, LiftedTracker, Observation, RigidObjectTracker,
    RobustFitConfig, Tracker,
};
use nalgebra::{Isometry3, Point3, Vector3};
use ndarray::{Array2, Array3};
use serde::Serialize;

/// Query points asked of the tracker on the first frame.
const QUERIES: usize = 128;

/// One snapshot for the tracker.
pub struct TrackingFrame {
    /// The control tick.
    pub tick: usize,
    /// Time of the control tick (s).
    pub t: f64,
    /// The simulation's state at that tick.
    pub state: SimState,
    /// The cube's true pose (object → world).
    pub object_pose: Isometry3<f64>,
}

/// Errors of one frame.
#[derive(Debug, Clone, Copy)]
pub struct FrameError {
    /// Time (s).
    pub t: f64,
    /// Median 2D error of the points visible in truth and to the tracker (px).
    pub median_px: f64,
    /// Median 3D error of those points (mm).
    pub median_3d_mm: f64,
    /// Error of the Kabsch pose (mm, translation).
    pub pose_mm: f64,
    /// Error of the Kabsch pose (degrees).
    pub pose_deg: f64,
}

/// The tracking figures of a run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrackSummary {
    /// Frames tracked.
    pub frames: usize,
    /// Query points.
    pub points: usize,
    /// Image size.
    pub width: usize,
    /// Image size.
    pub height: usize,
    /// TAP-Vid δ_avg over the frames after the first (raw pixels).
    pub delta_avg: f64,
    /// TAP-Vid occlusion accuracy.
    pub occlusion_accuracy: f64,
    /// Median 3D error over every frame's points visible in truth and to the tracker (mm).
    pub median_3d_mm: f64,
    /// Pose error at the last frame.
    pub final_pose_deg: f64,
    /// Pose error at the last frame (mm).
    pub final_pose_mm: f64,
    /// Largest pose error over the frames.
    pub max_pose_deg: f64,
    /// Largest pose error over the frames (mm).
    pub max_pose_mm: f64,
}

/// Per-frame errors, the summary, and the median milliseconds of render + track per
/// frame (which varies from run to run).
pub type TrackResult = (Vec<FrameError>, TrackSummary, f64, Vec<TrackedStill>);

/// The tracker's thread and the channel to it.
pub struct Tracking {
    tx: Option<mpsc::Sender<TrackingFrame>>,
    thread: Option<std::thread::JoinHandle<Result<TrackResult>>>,
}

impl Tracking {
    /// Starts the thread with its own copy of the scene (the LEAP Hand and `object`,
    /// simulated with `config`) to render snapshots into, and a `width × height` camera
    /// looking down at the palm.
    pub fn start(
        object: &str,
        config: dex_sim::SimConfig,
        width: usize,
        height: usize,
        recorder: Option<dex_rerun::Recorder>,
    ) -> Result<Self> {
        let scene = crate::hw::leap_sim_scene(object, config, None)?;
        let target = scene.object_state(0)?.pose.translation.vector;
        let k = dex_core::CameraIntrinsics::from_fov_y(width, height, 50f64.to_radians())?;
        let target = Point3::from(target);
        // From the wrist side, 26° above the palm: the closing fingers cover the cube's
        // top and far faces, this view keeps its near face (a probe of ten viewpoints
        // kept 97% of the cube's pixels in the closed grasp here, under 20% from above
        // the fingers).
        let eye = target + Vector3::new(-0.25, 0.0, 0.12);
        let camera = Camera::look_at(k, eye, target, Vector3::z())?;
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("dex-demo-tracker".into())
            .spawn(move || track_frames(scene, camera, rx, recorder))
            .context("cannot start the tracker thread")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a frame.
    pub fn push(&self, frame: TrackingFrame) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("the tracker has finished"))?
            .send(frame)
            .map_err(|_| anyhow!("the tracker thread stopped early"))
    }

    /// Waits for the queued frames; returns the per-frame errors, the summary and the
    /// milliseconds per frame.
    pub fn finish(mut self) -> Result<TrackResult> {
        drop(self.tx.take());
        let thread = self
            .thread
            .take()
            .ok_or_else(|| anyhow!("the tracker has finished"))?;
        thread
            .join()
            .map_err(|_| anyhow!("the tracker thread panicked"))?
    }
}

impl Drop for Tracking {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) fn gray_image(frame: &dex_sim::DepthFrame) -> Result<GrayImage> {
    let (h, w) = frame.gray.dim();
    GrayImage::from_raw(w as u32, h as u32, frame.gray.iter().copied().collect())
        .ok_or_else(|| anyhow!("the rendered image has the wrong size"))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn track_frames(
    mut scene: Box<dyn Simulator>,
    camera: Camera,
    rx: mpsc::Receiver<TrackingFrame>,
    mut recorder: Option<dex_rerun::Recorder>,
) -> Result<TrackResult> {
    let label = object_label(0);
    let k = camera.intrinsics;
    let mut errors = Vec::new();
    let mut tracker: Option<RigidObjectTracker<LiftedTracker<KltTracker>>> = None;
    let mut model_points: Vec<Point3<f64>> = Vec::new();
    // Per frame: truth pixels and visibility, predicted pixels and visibility.
    let mut gt: Vec<Vec<([f64; 2], bool)>> = Vec::new();
    let mut pred: Vec<Vec<([f32; 2], bool)>> = Vec::new();
    let mut all_3d = Vec::new();
    let mut ms = Vec::new();
    // The query frame and the latest one, for the pictures.
    let mut shown: Vec<TrackedStill> = Vec::new();
    for frame in rx {
        let start = Instant::now();
        scene.restore_state(&frame.state)?;
        let rendered = scene.render_depth(&camera)?;
        let image = gray_image(&rendered)?;
        let obs = Observation::image(&image).with_depth(&rendered.depth, &k, camera.pose);
        let result = match &mut tracker {
            None => {
                let queries = rendered.interior_pixels(label, 3, QUERIES);
                model_points = queries
                    .iter()
                    .filter_map(|q| rendered.world_point(q[0] as usize, q[1] as usize))
                    .map(|p| frame.object_pose.inverse_transform_point(&p))
                    .collect();
                if queries.is_empty() || model_points.len() != queries.len() {
                    // Nothing of the cube in view: no tracking this run.
                    continue;
                }
                let q = Array2::from_shape_fn((queries.len(), 2), |(i, c)| queries[i][c]);
                let lifted = LiftedTracker::new(KltTracker::new(KltConfig::default())?)?;
                let mut t = RigidObjectTracker::new(lifted, RobustFitConfig::default())?
                    .with_initial_pose(frame.object_pose);
                let r = t.init(&obs, q.view())?;
                tracker = Some(t);
                r
            }
            Some(t) => t.track(&obs)?,
        };
        let Some(t) = &tracker else { continue };
        let pixels = &t
            .get_ref()
            .image_frame()
            .ok_or_else(|| anyhow!("the tracker kept no image frame"))?
            .positions;
        let mut frame_gt = Vec::with_capacity(model_points.len());
        let mut frame_pred = Vec::with_capacity(model_points.len());
        let (mut px, mut mm) = (Vec::new(), Vec::new());
        for (i, p) in model_points.iter().enumerate() {
            let world = frame.object_pose * p;
            let (truth_px, visible) = rendered
                .project_visible(&world, label, 0.002)
                .unwrap_or(([f64::NAN; 2], false));
            let predicted = [pixels[(i, 0)], pixels[(i, 1)]];
            let seen = result.visible[i];
            // The query frame itself is exact by construction: not counted.
            if visible && seen && !gt.is_empty() {
                let dx = f64::from(predicted[0]) - truth_px[0];
                let dy = f64::from(predicted[1]) - truth_px[1];
                px.push(dx.hypot(dy));
                let e = (result.point(i) - world).norm() * 1e3;
                mm.push(e);
                all_3d.push(e);
            }
            frame_gt.push((truth_px, visible));
            frame_pred.push((predicted, seen));
        }
        if let Some(rec) = &mut recorder {
            rec.set_time(frame.tick as i64, frame.t);
            let seen: Vec<[f32; 2]> = frame_pred.iter().filter(|p| p.1).map(|p| p.0).collect();
            rec.log_camera("camera", &rendered, Some(&seen))?;
            let lifted: Vec<Point3<f64>> = (0..model_points.len())
                .filter(|&i| result.visible[i])
                .map(|i| result.point(i))
                .collect();
            rec.log_world_points("tracked", &lifted, 0.002, [40, 220, 80, 255])?;
        }
        let first = gt.is_empty();
        let still = TrackedStill {
            t: frame.t,
            image: image.clone(),
            points: frame_pred.clone(),
        };
        if shown.len() == 2 {
            shown.pop();
        }
        shown.push(still);
        gt.push(frame_gt);
        pred.push(frame_pred);
        if first {
            continue;
        }
        let est = t.pose();
        errors.push(FrameError {
            t: frame.t,
            median_px: median(px),
            median_3d_mm: median(mm),
            pose_mm: (est.translation.vector - frame.object_pose.translation.vector).norm() * 1e3,
            pose_deg: rotation_distance(&est.rotation, &frame.object_pose.rotation).to_degrees(),
        });
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let n = model_points.len();
    let frames = gt.len();
    let mut summary = TrackSummary {
        frames,
        points: if frames > 0 { n } else { 0 },
        width: k.width,
        height: k.height,
        median_3d_mm: median(all_3d),
        ..TrackSummary::default()
    };
    if frames >= 2 && n > 0 {
        let mut gt_tracks = Array3::<f32>::zeros((n, frames, 2));
        let mut pred_tracks = Array3::<f32>::zeros((n, frames, 2));
        let mut gt_occluded = Array2::from_elem((n, frames), true);
        let mut pred_occluded = Array2::from_elem((n, frames), true);
        for t in 0..frames {
            for i in 0..n {
                let (g, gv) = gt[t][i];
                let (p, pv) = pred[t][i];
                // An unprojectable truth is occluded; its position is never compared.
                gt_tracks[(i, t, 0)] = if g[0].is_finite() { g[0] as f32 } else { 0.0 };
                gt_tracks[(i, t, 1)] = if g[1].is_finite() { g[1] as f32 } else { 0.0 };
                gt_occluded[(i, t)] = !gv;
                pred_tracks[(i, t, 0)] = p[0];
                pred_tracks[(i, t, 1)] = p[1];
                pred_occluded[(i, t)] = !pv;
            }
        }
        let input = TapVidInput {
            query_frames: vec![0; n],
            gt_tracks,
            gt_occluded,
            pred_tracks,
            pred_occluded,
        };
        let m = tapvid_metrics(&input, QueryMode::First)?;
        summary.delta_avg = m.delta_avg;
        summary.occlusion_accuracy = m.occlusion_accuracy;
    }
    if let Some(last) = errors.last() {
        summary.final_pose_deg = last.pose_deg;
        summary.final_pose_mm = last.pose_mm;
        summary.max_pose_deg = errors.iter().map(|e| e.pose_deg).fold(0.0, f64::max);
        summary.max_pose_mm = errors.iter().map(|e| e.pose_mm).fold(0.0, f64::max);
    }
    Ok((errors, summary, median(ms), shown))
}
