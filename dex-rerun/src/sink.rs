//! Where a recording goes: the [`SceneSink`] trait, and [`MemorySink`], which keeps
//! every entry in memory (for tests, and for callers that forward them elsewhere).

use std::sync::{Arc, Mutex};

use dex_core::CameraIntrinsics;
use nalgebra::{Isometry3, Point3};

use crate::error::Result;
use crate::shapes::Primitive;

/// A colour, red, green, blue, alpha.
pub type Rgba = [u8; 4];

/// A recording's destination. Entity paths are `/`-separated; a pose logged at a path
/// places everything logged below it. Times are set per sink handle (and so per
/// thread when each thread has its own [`SceneSink::fork`]).
pub trait SceneSink: Send {
    /// The time of what follows: the control tick and the simulated seconds.
    fn set_time(&mut self, tick: i64, seconds: f64);
    /// Shapes that do not change over the recording (drawn at every time).
    fn log_static_shapes(&mut self, path: &str, shapes: &[Primitive], color: Rgba) -> Result<()>;
    /// The pose of the entity at `path` in its parent's frame.
    fn log_pose(&mut self, path: &str, pose: &Isometry3<f64>) -> Result<()>;
    /// Points in the frame of `path`'s parent pose.
    fn log_points3d(
        &mut self,
        path: &str,
        points: &[Point3<f64>],
        radius: f32,
        color: Rgba,
    ) -> Result<()>;
    /// One value of a time series.
    fn log_scalar(&mut self, path: &str, value: f64) -> Result<()>;
    /// A pinhole camera (x right, y down, z forward) whose image is logged at `path`.
    fn log_pinhole(&mut self, path: &str, intrinsics: &CameraIntrinsics) -> Result<()>;
    /// A grey image, `width × height` bytes, row after row.
    fn log_gray_image(
        &mut self,
        path: &str,
        width: usize,
        height: usize,
        pixels: &[u8],
    ) -> Result<()>;
    /// Points in an image, pixels `[x, y]`.
    fn log_points2d(
        &mut self,
        path: &str,
        points: &[[f32; 2]],
        radius: f32,
        color: Rgba,
    ) -> Result<()>;
    /// Another handle on the same recording, for another thread (its own time).
    fn fork(&self) -> Box<dyn SceneSink>;
    /// Writes out what is buffered.
    fn flush(&mut self) -> Result<()>;
}

/// What one entry carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Logged {
    /// [`SceneSink::log_static_shapes`].
    StaticShapes(Vec<Primitive>, Rgba),
    /// [`SceneSink::log_pose`].
    Pose(Isometry3<f64>),
    /// [`SceneSink::log_points3d`].
    Points3d(Vec<Point3<f64>>),
    /// [`SceneSink::log_scalar`].
    Scalar(f64),
    /// [`SceneSink::log_pinhole`].
    Pinhole(CameraIntrinsics),
    /// [`SceneSink::log_gray_image`]: width, height, pixels.
    GrayImage(usize, usize, Vec<u8>),
    /// [`SceneSink::log_points2d`].
    Points2d(Vec<[f32; 2]>),
}

/// One logged entry with the time it was logged at.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The control tick.
    pub tick: i64,
    /// Simulated seconds.
    pub seconds: f64,
    /// The entity path.
    pub path: String,
    /// The data.
    pub data: Logged,
}

/// A sink that keeps every entry in memory; its forks share the entries.
#[derive(Debug, Clone, Default)]
pub struct MemorySink {
    entries: Arc<Mutex<Vec<Entry>>>,
    tick: i64,
    seconds: f64,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of the entries so far, in the order they were logged.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The entries logged at `path`.
    pub fn at(&self, path: &str) -> Vec<Entry> {
        self.entries()
            .into_iter()
            .filter(|e| e.path == path)
            .collect()
    }

    fn push(&mut self, path: &str, data: Logged) -> Result<()> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Entry {
                tick: self.tick,
                seconds: self.seconds,
                path: path.to_string(),
                data,
            });
        Ok(())
    }
}

impl SceneSink for MemorySink {
    fn set_time(&mut self, tick: i64, seconds: f64) {
        self.tick = tick;
        self.seconds = seconds;
    }

    fn log_static_shapes(&mut self, path: &str, shapes: &[Primitive], color: Rgba) -> Result<()> {
        self.push(path, Logged::StaticShapes(shapes.to_vec(), color))
    }

    fn log_pose(&mut self, path: &str, pose: &Isometry3<f64>) -> Result<()> {
        self.push(path, Logged::Pose(*pose))
    }

    fn log_points3d(
        &mut self,
        path: &str,
        points: &[Point3<f64>],
        _radius: f32,
        _color: Rgba,
    ) -> Result<()> {
        self.push(path, Logged::Points3d(points.to_vec()))
    }

    fn log_scalar(&mut self, path: &str, value: f64) -> Result<()> {
        self.push(path, Logged::Scalar(value))
    }

    fn log_pinhole(&mut self, path: &str, intrinsics: &CameraIntrinsics) -> Result<()> {
        self.push(path, Logged::Pinhole(*intrinsics))
    }

    fn log_gray_image(
        &mut self,
        path: &str,
        width: usize,
        height: usize,
        pixels: &[u8],
    ) -> Result<()> {
        self.push(path, Logged::GrayImage(width, height, pixels.to_vec()))
    }

    fn log_points2d(
        &mut self,
        path: &str,
        points: &[[f32; 2]],
        _radius: f32,
        _color: Rgba,
    ) -> Result<()> {
        self.push(path, Logged::Points2d(points.to_vec()))
    }

    fn fork(&self) -> Box<dyn SceneSink> {
        Box::new(self.clone())
    }

    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
}
