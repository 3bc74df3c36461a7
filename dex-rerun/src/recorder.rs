//! [`Recorder`]: a dex scene logged through a [`SceneSink`] under fixed entity paths.

use dex_core::HandModel;
use dex_sim::{Camera, DepthFrame, ObjectSpec, Simulator};
use nalgebra::Point3;

use crate::error::{Error, Result};
use crate::shapes::{geometry_primitives, object_primitive};
use crate::sink::{Rgba, SceneSink};

/// The hand's links: `world/hand/<link>` (pose), its collision shapes below it.
pub const HAND: &str = "world/hand";
/// Objects: `world/objects/<i>` (pose), the shape below it.
pub const OBJECTS: &str = "world/objects";
/// Joint series: `joints/<name>/target` and `joints/<name>/measured` (rad).
pub const JOINTS: &str = "joints";

const HAND_COLOR: Rgba = [200, 200, 210, 255];
const OBJECT_COLOR: Rgba = [230, 140, 40, 255];
const TABLE_COLOR: Rgba = [120, 100, 80, 255];
const TRACK_COLOR: Rgba = [40, 220, 80, 255];

/// Logs a hand, its objects, cameras and joint series at fixed entity paths:
///
/// - `world/hand/<link>`: each link's world pose per tick, its collision shapes (static)
///   at `world/hand/<link>/collision`;
/// - `world/objects/<i>`: each object's pose, its shape at `world/objects/<i>/shape`;
/// - `world/table`: the table, when the scene has one;
/// - `world/<camera>`: a camera's pose, `world/<camera>/image` its pinhole, grey image
///   and tracked points (`world/<camera>/image/tracked`);
/// - `joints/<name>/target`, `joints/<name>/measured`: targets against measured angles.
///
/// Times come from [`Recorder::set_time`]: a `tick` sequence and `sim_time` seconds.
///
/// ```
/// use dex_core::HandModel;
/// use dex_rerun::{MemorySink, Recorder};
///
/// let model = HandModel::leap_right();
/// let sink = MemorySink::new();
/// let mut rec = Recorder::new(Box::new(sink.clone()), &model)?;
/// rec.set_time(0, 0.0);
/// let q = vec![0.0; model.dof()];
/// rec.log_joints(&q, &q)?;
/// let first = model.joint_names()[0];
/// assert_eq!(sink.at(&format!("joints/{first}/target")).len(), 1);
/// # Ok::<(), dex_rerun::Error>(())
/// ```
pub struct Recorder {
    sink: Box<dyn SceneSink>,
    links: Vec<String>,
    joints: Vec<String>,
    objects: Vec<ObjectSpec>,
    table_logged: bool,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("links", &self.links.len())
            .field("joints", &self.joints.len())
            .field("objects", &self.objects.len())
            .finish_non_exhaustive()
    }
}

/// An entity path segment from a name: `/` and spaces become `_`.
fn segment(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c == '/' || c.is_whitespace() {
                '_'
            } else {
                c
            }
        })
        .collect()
}

impl Recorder {
    /// A recorder for `model`'s hand; logs the links' collision shapes once (mesh
    /// references, which dex does not load, are left out).
    pub fn new(mut sink: Box<dyn SceneSink>, model: &HandModel) -> Result<Self> {
        let links: Vec<String> = model
            .links()
            .iter()
            .map(|l| format!("{HAND}/{}", segment(&l.name)))
            .collect();
        for (path, link) in links.iter().zip(model.links()) {
            let (shapes, _meshes) = geometry_primitives(&link.collisions);
            if !shapes.is_empty() {
                sink.log_static_shapes(&format!("{path}/collision"), &shapes, HAND_COLOR)?;
            }
        }
        Ok(Self {
            sink,
            links,
            joints: model.joint_names().iter().map(|n| segment(n)).collect(),
            objects: Vec::new(),
            table_logged: false,
        })
    }

    /// Another recorder on the same recording, for another thread (it keeps its own
    /// time; objects already logged are not logged again).
    pub fn fork(&self) -> Self {
        Self {
            sink: self.sink.fork(),
            links: self.links.clone(),
            joints: self.joints.clone(),
            objects: self.objects.clone(),
            table_logged: self.table_logged,
        }
    }

    /// The time of what follows: control tick `tick`, `seconds` of simulated time.
    pub fn set_time(&mut self, tick: i64, seconds: f64) {
        self.sink.set_time(tick, seconds);
    }

    /// The simulator's links and objects at the current time, and its joint targets
    /// against its measured angles. An object is drawn from its spec the first time it
    /// is seen, and again when its spec changes (a task that draws a new object).
    pub fn log_simulator(&mut self, sim: &dyn Simulator) -> Result<()> {
        self.log_bodies(sim)?;
        let measured = sim.joint_state().q;
        self.log_joints(&measured, sim.joint_targets())
    }

    /// The simulator's links, objects and table at the current time, without the joint
    /// series (for a hand whose angles are read through its driver: [`Recorder::log_joints`]).
    pub fn log_bodies(&mut self, sim: &dyn Simulator) -> Result<()> {
        let poses = sim.link_poses();
        if poses.len() != self.links.len() {
            return Err(Error::Mismatch {
                what: "link poses",
                expected: self.links.len(),
                got: poses.len(),
            });
        }
        for (path, pose) in self.links.iter().zip(&poses) {
            self.sink.log_pose(path, pose)?;
        }
        if !self.table_logged
            && let Some(table) = sim.config().table
        {
            let [x, y, z] = table.top_center;
            let [hx, hy] = table.half_extents;
            let top = crate::Primitive::Box {
                center: [x as f32, y as f32, (z - 0.01) as f32],
                rotation: [0.0, 0.0, 0.0, 1.0],
                half_size: [hx as f32, hy as f32, 0.01],
            };
            self.sink
                .log_static_shapes("world/table", &[top], TABLE_COLOR)?;
            self.table_logged = true;
        }
        for (i, spec) in sim.objects().iter().enumerate() {
            let path = format!("{OBJECTS}/{i}");
            if self.objects.get(i) != Some(spec) {
                self.sink.log_static_shapes(
                    &format!("{path}/shape"),
                    &[object_primitive(&spec.shape)],
                    OBJECT_COLOR,
                )?;
                if i < self.objects.len() {
                    self.objects[i] = spec.clone();
                } else {
                    self.objects.push(spec.clone());
                }
            }
            let state = sim.object_state(i)?;
            self.sink.log_pose(&path, &state.pose)?;
        }
        Ok(())
    }

    /// Joint targets against measured angles (rad), in the model's `q` order: for a
    /// hand read through its driver rather than a simulator.
    pub fn log_joints(&mut self, measured: &[f64], targets: &[f64]) -> Result<()> {
        for (what, values) in [("measured angles", measured), ("joint targets", targets)] {
            if values.len() != self.joints.len() {
                return Err(Error::Mismatch {
                    what,
                    expected: self.joints.len(),
                    got: values.len(),
                });
            }
        }
        for ((name, m), t) in self.joints.iter().zip(measured).zip(targets) {
            self.sink
                .log_scalar(&format!("{JOINTS}/{name}/measured"), *m)?;
            self.sink
                .log_scalar(&format!("{JOINTS}/{name}/target"), *t)?;
        }
        Ok(())
    }

    /// A camera named `name` (`world/<name>`) and its grey image, with `tracked` pixel
    /// positions over it when given (a tracker's visible points).
    pub fn log_camera(
        &mut self,
        name: &str,
        frame: &DepthFrame,
        tracked: Option<&[[f32; 2]]>,
    ) -> Result<()> {
        let camera: &Camera = &frame.camera;
        let path = format!("world/{}", segment(name));
        let k = camera.intrinsics;
        let (h, w) = frame.gray.dim();
        if (w, h) != (k.width, k.height) {
            return Err(Error::Mismatch {
                what: "image width × height",
                expected: k.width * k.height,
                got: w * h,
            });
        }
        self.sink.log_pose(&path, &camera.pose)?;
        let image = format!("{path}/image");
        self.sink.log_pinhole(&image, &k)?;
        let pixels: Vec<u8> = frame.gray.iter().copied().collect();
        self.sink.log_gray_image(&image, w, h, &pixels)?;
        if let Some(points) = tracked {
            self.sink
                .log_points2d(&format!("{image}/tracked"), points, 1.5, TRACK_COLOR)?;
        }
        Ok(())
    }

    /// Points in the world frame at `world/<name>` (goals, tracked points lifted to 3D).
    pub fn log_world_points(
        &mut self,
        name: &str,
        points: &[Point3<f64>],
        radius: f32,
        color: Rgba,
    ) -> Result<()> {
        self.sink
            .log_points3d(&format!("world/{}", segment(name)), points, radius, color)
    }

    /// Writes out what is buffered (also done when the last handle is dropped).
    pub fn flush(&mut self) -> Result<()> {
        self.sink.flush()
    }
}
