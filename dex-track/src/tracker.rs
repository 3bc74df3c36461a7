//! The `Tracker` trait: online point tracking, one call per frame.

use dex_core::{CameraIntrinsics, DepthImage, PointTracks};
use image::GrayImage;
use nalgebra::{Isometry3, Point3};
use ndarray::{Array2, ArrayView2};

use crate::error::{Error, Result, invalid};

/// What a tracker sees of one frame. Trackers use the parts they need and
/// report a missing one as an error.
#[derive(Debug, Clone, Copy)]
pub struct Observation<'a> {
    /// The camera image, 8-bit grey.
    pub image: Option<&'a GrayImage>,
    /// The depth image aligned with it (metres, z in the camera frame).
    pub depth: Option<&'a DepthImage>,
    /// The camera's intrinsics.
    pub intrinsics: Option<&'a CameraIntrinsics>,
    /// The camera's pose in the world frame (camera → world).
    pub camera_pose: Isometry3<f64>,
    /// Privileged ground truth: the tracked object's pose (object → world), as a
    /// simulator knows it. Only oracle trackers read it.
    pub object_pose: Option<Isometry3<f64>>,
}

impl<'a> Observation<'a> {
    /// An observation made of an image alone.
    pub fn image(image: &'a GrayImage) -> Self {
        Self {
            image: Some(image),
            depth: None,
            intrinsics: None,
            camera_pose: Isometry3::identity(),
            object_pose: None,
        }
    }

    /// An observation carrying only the object's true pose (for oracle trackers).
    pub fn ground_truth(object_pose: Isometry3<f64>) -> Self {
        Self {
            image: None,
            depth: None,
            intrinsics: None,
            camera_pose: Isometry3::identity(),
            object_pose: Some(object_pose),
        }
    }

    /// Adds depth and intrinsics, keeping the camera pose.
    pub fn with_depth_only(
        mut self,
        depth: &'a DepthImage,
        intrinsics: &'a CameraIntrinsics,
    ) -> Self {
        self.depth = Some(depth);
        self.intrinsics = Some(intrinsics);
        self
    }

    /// Adds the object's true pose.
    pub fn with_object_pose(mut self, object_pose: Isometry3<f64>) -> Self {
        self.object_pose = Some(object_pose);
        self
    }

    /// Adds depth, intrinsics and the camera pose.
    pub fn with_depth(
        mut self,
        depth: &'a DepthImage,
        intrinsics: &'a CameraIntrinsics,
        camera_pose: Isometry3<f64>,
    ) -> Self {
        self.depth = Some(depth);
        self.intrinsics = Some(intrinsics);
        self.camera_pose = camera_pose;
        self
    }

    pub(crate) fn require_image(&self) -> Result<&'a GrayImage> {
        self.image
            .ok_or_else(|| invalid("this tracker needs an image in every observation"))
    }
}

/// Where the points are in one frame: `N × D` positions (pixels for `D` = 2,
/// metres in the world frame for `D` = 3) and a visibility flag per point.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackFrame {
    /// Positions, `N × D`. Invisible points keep the tracker's last estimate.
    pub positions: Array2<f32>,
    /// Whether each point is visible (tracked with confidence) in this frame.
    pub visible: Vec<bool>,
}

impl TrackFrame {
    /// Point `i` of a 3D frame as a point in f64 (the first three columns).
    ///
    /// # Panics
    ///
    /// If `i` is out of range or the frame has fewer than 3 columns.
    pub fn point(&self, i: usize) -> Point3<f64> {
        let p = &self.positions;
        Point3::new(
            f64::from(p[(i, 0)]),
            f64::from(p[(i, 1)]),
            f64::from(p[(i, 2)]),
        )
    }
}

/// An online point tracker.
///
/// `init` takes the first observation and the query points (`N × 2` pixels in
/// the first image for image trackers); `track` takes each following
/// observation and returns where the points are now. Causal: a result never
/// depends on later frames.
pub trait Tracker: Send {
    /// Dimension of the positions it reports (2 or 3).
    fn dim(&self) -> usize;

    /// Starts tracking `queries` from `first`; returns the first frame.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] for no queries, queries outside the image, or a
    /// missing part of the observation.
    fn init(&mut self, first: &Observation<'_>, queries: ArrayView2<'_, f32>)
    -> Result<TrackFrame>;

    /// Tracks into the next observation.
    ///
    /// # Errors
    ///
    /// [`Error::NotInitialized`] before `init`, [`Error::FrameSize`] for a frame
    /// of another size, [`Error::InvalidInput`] for a missing part.
    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame>;
}

impl<T: Tracker + ?Sized> Tracker for Box<T> {
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn init(
        &mut self,
        first: &Observation<'_>,
        queries: ArrayView2<'_, f32>,
    ) -> Result<TrackFrame> {
        (**self).init(first, queries)
    }
    fn track(&mut self, next: &Observation<'_>) -> Result<TrackFrame> {
        (**self).track(next)
    }
}

/// Runs a tracker over a whole sequence and collects its tracks.
///
/// # Errors
///
/// [`Error::InvalidInput`] for an empty sequence, else the tracker's errors.
pub fn track_sequence<T: Tracker + ?Sized>(
    tracker: &mut T,
    observations: &[Observation<'_>],
    queries: ArrayView2<'_, f32>,
) -> Result<PointTracks> {
    let (first, rest) = observations
        .split_first()
        .ok_or_else(|| invalid("no frames to track"))?;
    let f0 = tracker.init(first, queries)?;
    let mut tracks = PointTracks::empty(f0.visible.len(), tracker.dim())?;
    tracks.push_frame(f0.positions.view(), &f0.visible)?;
    for obs in rest {
        let f = tracker.track(obs)?;
        tracks.push_frame(f.positions.view(), &f.visible)?;
    }
    Ok(tracks)
}

/// A deterministic tracker for tests: every point moves by a fixed velocity per
/// frame; points listed in `hidden` are reported invisible. Records the number
/// of frames it saw.
#[derive(Debug, Clone, Default)]
pub struct MockTracker {
    /// Displacement per frame, one entry per dimension.
    pub velocity: Vec<f32>,
    /// Indices of points reported invisible.
    pub hidden: Vec<usize>,
    /// Frames seen, `init` included.
    pub frames_seen: usize,
    positions: Option<Array2<f32>>,
}

impl MockTracker {
    /// A mock moving points by `velocity` each frame (its length is the dimension).
    pub fn new(velocity: Vec<f32>) -> Self {
        Self {
            velocity,
            ..Self::default()
        }
    }

    fn frame(&self, positions: &Array2<f32>) -> TrackFrame {
        let visible = (0..positions.nrows())
            .map(|i| !self.hidden.contains(&i))
            .collect();
        TrackFrame {
            positions: positions.clone(),
            visible,
        }
    }
}

impl Tracker for MockTracker {
    fn dim(&self) -> usize {
        self.velocity.len()
    }
    fn init(
        &mut self,
        _first: &Observation<'_>,
        queries: ArrayView2<'_, f32>,
    ) -> Result<TrackFrame> {
        if queries.nrows() == 0 || queries.ncols() != self.dim() {
            return Err(invalid(format!(
                "queries must be N × {} with N > 0",
                self.dim()
            )));
        }
        self.frames_seen = 1;
        let p = queries.to_owned();
        let f = self.frame(&p);
        self.positions = Some(p);
        Ok(f)
    }
    fn track(&mut self, _next: &Observation<'_>) -> Result<TrackFrame> {
        let mut p = self.positions.take().ok_or(Error::NotInitialized)?;
        for mut row in p.rows_mut() {
            for (x, v) in row.iter_mut().zip(&self.velocity) {
                *x += v;
            }
        }
        self.frames_seen += 1;
        let f = self.frame(&p);
        self.positions = Some(p);
        Ok(f)
    }
}
