//! Lifting 2D tracks to 3D with depth.

use ndarray::{Array2, ArrayView2};

use crate::error::{Result, invalid};
use crate::tracker::{Observation, TrackFrame, Tracker};

/// Wraps an image tracker: each tracked pixel becomes a 3D point in the world
/// frame, back-projected with the frame's depth and intrinsics and moved by the
/// camera pose. A point whose pixel has no valid depth is reported invisible
/// (its position then keeps the last 3D estimate, or NaN before any), and so is a
/// point on a depth edge: where a 4-neighbour's depth differs from the pixel's by
/// more than [`LiftedTracker::edge_threshold`] (default 5 mm), the pixel may belong
/// to either surface, and a point lifted there can land centimetres away. A point
/// whose lifted position jumps more than [`LiftedTracker::max_jump`] per frame since
/// it was last accepted (default 1 cm) is reported invisible too: surface points move
/// continuously, and a jump means the 2D track slid onto another surface (a finger
/// passing in front).
#[derive(Debug)]
pub struct LiftedTracker<T: Tracker> {
    inner: T,
    edge_threshold: f32,
    max_jump: f32,
    /// Frames since each point's 3D position was last accepted.
    age: Vec<u32>,
    last: Option<Array2<f32>>,
    last_image: Option<TrackFrame>,
}

impl<T: Tracker> LiftedTracker<T> {
    /// Lifts `inner`, which must report 2D pixels.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] if `inner` is not a 2D tracker.
    pub fn new(inner: T) -> Result<Self> {
        if inner.dim() != 2 {
            return Err(invalid("only 2D (image) trackers can be lifted to 3D"));
        }
        Ok(Self {
            inner,
            edge_threshold: 0.005,
            max_jump: 0.01,
            age: Vec::new(),
            last: None,
            last_image: None,
        })
    }

    /// Sets the depth step (m) beyond which a pixel counts as a depth edge; infinity
    /// turns the check off.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a negative or NaN threshold.
    pub fn with_edge_threshold(mut self, metres: f32) -> Result<Self> {
        if metres.is_nan() || metres < 0.0 {
            return Err(invalid(format!(
                "the depth-edge threshold must be non-negative, got {metres}"
            )));
        }
        self.edge_threshold = metres;
        Ok(self)
    }

    /// Sets the largest 3D motion (m per frame since the point was last accepted) of a
    /// visible point; infinity turns the check off.
    ///
    /// # Errors
    ///
    /// [`crate::Error::InvalidInput`] for a negative or NaN distance.
    pub fn with_max_jump(mut self, metres: f32) -> Result<Self> {
        if metres.is_nan() || metres < 0.0 {
            return Err(invalid(format!(
                "the largest jump must be non-negative, got {metres}"
            )));
        }
        self.max_jump = metres;
        Ok(self)
    }

    /// The largest 3D motion (m per frame) of a visible point.
    pub fn max_jump(&self) -> f32 {
        self.max_jump
    }

    /// The depth step (m) beyond which a pixel counts as a depth edge.
    pub fn edge_threshold(&self) -> f32 {
        self.edge_threshold
    }

    /// The wrapped tracker.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The inner tracker's 2D output for the last frame (pixels and its own
    /// visibility, before the depth check); `None` before `init`.
    pub fn image_frame(&self) -> Option<&TrackFrame> {
        self.last_image.as_ref()
    }

    /// Unwraps.
    pub fn into_inner(self) -> T {
        self.inner
    }

    fn lift(&mut self, obs: &Observation<'_>, frame: TrackFrame) -> Result<TrackFrame> {
        let (Some(depth), Some(k)) = (obs.depth, obs.intrinsics) else {
            return Err(invalid(
                "lifting to 3D needs depth and intrinsics in every observation",
            ));
        };
        if (depth.width(), depth.height()) != (k.width, k.height) {
            return Err(invalid(
                "depth image and intrinsics disagree on the image size",
            ));
        }
        let n = frame.visible.len();
        let mut positions = self
            .last
            .take()
            .unwrap_or_else(|| Array2::from_elem((n, 3), f32::NAN));
        let mut visible = vec![false; n];
        if self.age.len() != n {
            self.age = vec![0; n];
        }
        for age in &mut self.age {
            *age = age.saturating_add(1);
        }
        for i in 0..n {
            if !frame.visible[i] {
                continue;
            }
            let (u, v) = (frame.positions[(i, 0)], frame.positions[(i, 1)]);
            let (ui, vi) = (u.round(), v.round());
            if ui < 0.0 || vi < 0.0 {
                continue;
            }
            let (ui, vi) = (ui as usize, vi as usize);
            let Some(d) = depth.get(ui, vi) else {
                continue;
            };
            let neighbours = [
                (ui.wrapping_sub(1), vi),
                (ui + 1, vi),
                (ui, vi.wrapping_sub(1)),
                (ui, vi + 1),
            ];
            let on_edge = neighbours.iter().any(|&(x, y)| {
                x < depth.width()
                    && y < depth.height()
                    && depth
                        .get(x, y)
                        .is_none_or(|n| (n - d).abs() > self.edge_threshold)
            });
            if on_edge {
                continue;
            }
            let p = obs.camera_pose * k.back_project(f64::from(u), f64::from(v), f64::from(d));
            let (x, y, z) = (p.x as f32, p.y as f32, p.z as f32);
            let (px, py, pz) = (positions[(i, 0)], positions[(i, 1)], positions[(i, 2)]);
            if px.is_finite() {
                let jump = ((x - px).powi(2) + (y - py).powi(2) + (z - pz).powi(2)).sqrt();
                if jump > self.max_jump * self.age[i] as f32 {
                    continue;
                }
            }
            self.age[i] = 0;
            positions[(i, 0)] = p.x as f32;
            positions[(i, 1)] = p.y as f32;
            positions[(i, 2)] = p.z as f32;
            visible[i] = true;
        }
        self.last = Some(positions.clone());
        self.last_image = Some(frame);
        Ok(TrackFrame { positions, visible })
    }
}

impl<T: Tracker> Tracker for LiftedTracker<T> {
    fn dim(&self) -> usize {
        3
    }

    fn init(
        &mut self,
        first: &Observation<'_>,
        queries: ArrayView2<'_, f32>,
    ) -> Result<TrackFrame> {
        self.last = None;
        self.age.clear();
        let f = self.inner.init(first, queries)?;
        self.lift(first, f)
    }

    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame> {
        let f = self.inner.track(next)?;
        self.lift(next, f)
    }
}
