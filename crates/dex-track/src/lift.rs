//! Lifting 2D tracks to 3D with depth.

use ndarray::{Array2, ArrayView2};

use crate::error::{Result, invalid};
use crate::tracker::{Observation, TrackFrame, Tracker};

/// Wraps an image tracker: each tracked pixel becomes a 3D point in the world
/// frame, back-projected with the frame's depth and intrinsics and moved by the
/// camera pose. A point whose pixel has no valid depth is reported invisible
/// (its position then keeps the last 3D estimate, or NaN before any).
#[derive(Debug)]
pub struct LiftedTracker<T: Tracker> {
    inner: T,
    last: Option<Array2<f32>>,
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
        Ok(Self { inner, last: None })
    }

    /// The wrapped tracker.
    pub fn get_ref(&self) -> &T {
        &self.inner
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
        for i in 0..n {
            if !frame.visible[i] {
                continue;
            }
            let (u, v) = (frame.positions[(i, 0)], frame.positions[(i, 1)]);
            let (ui, vi) = (u.round(), v.round());
            if ui < 0.0 || vi < 0.0 {
                continue;
            }
            let Some(d) = depth.get(ui as usize, vi as usize) else {
                continue;
            };
            let p = obs.camera_pose * k.back_project(f64::from(u), f64::from(v), f64::from(d));
            positions[(i, 0)] = p.x as f32;
            positions[(i, 1)] = p.y as f32;
            positions[(i, 2)] = p.z as f32;
            visible[i] = true;
        }
        self.last = Some(positions.clone());
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
        let f = self.inner.init(first, queries)?;
        self.lift(first, f)
    }

    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame> {
        let f = self.inner.track(next)?;
        self.lift(next, f)
    }
}
