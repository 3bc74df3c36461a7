//! Scenes rendered by dex-sim for tracking: an object moving in a LEAP hand whose
//! fingers close around it, seen by a 640 × 480 camera, with exact ground truth.
//!
//! Shared by `tests/sim_scenes.rs` and `examples/sim_scenes.rs`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::camera::object_label;
use dex_sim::{
    Camera, DepthFrame, ObjectSpec, RapierSim, SimConfig, Simulator, open_configuration,
    rest_pose_on_palm,
};
use dex_track::GrayImage;
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};
use rand::SeedableRng;

/// One scene: the frames, the camera, the object's true poses and its model points.
pub struct SimScene {
    /// Object name (`cube`, `mug`).
    pub name: String,
    /// Rendered frames (depth, segmentation, grey).
    pub frames: Vec<DepthFrame>,
    /// The object's pose (object → world) in each frame.
    pub poses: Vec<Isometry3<f64>>,
    /// The camera (the same for every frame).
    pub camera: Camera,
    /// Points sampled on the object's surface, in the object frame.
    pub model: Vec<Point3<f64>>,
}

/// Degrees of rotation and millimetres of translation per frame.
pub const DEG_PER_FRAME: f64 = 1.0;
/// Translation per frame (m).
pub const STEP_PER_FRAME: f64 = 0.0006;

/// Renders `frames` frames of `object` (a name dex-sim knows) turning and sliding in the
/// palm of a LEAP hand whose fingers curl around it, deterministically.
pub fn render_scene(object: &str, frames: usize) -> SimScene {
    let model = HandModel::leap_right();
    let config = SimConfig::for_hand(&model);
    let spec = ObjectSpec::named(object).expect("known object");
    let half_height = spec.shape.bounding_radius().min(0.045);
    let rest = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.01);
    let start = Isometry3::from_parts(
        Translation3::from(rest.translation.vector + Vector3::new(0.0, 0.0, half_height - 0.02)),
        rest.rotation,
    );
    let mut sim =
        RapierSim::new(model.clone(), std::slice::from_ref(&spec), &[start], config).unwrap();
    let open = open_configuration(&model);
    // A loose grasp: every joint 40% of the way to its upper limit.
    let closed: Vec<f64> = model
        .joint_limits()
        .iter()
        .zip(&open)
        .map(|(l, o)| o + 0.4 * (l.upper - o))
        .collect();
    let k = dex_core::CameraIntrinsics::from_fov_y(640, 480, 50f64.to_radians()).unwrap();
    let target = Point3::from(start.translation.vector);
    let eye = target + Vector3::new(0.12, -0.17, 0.2);
    let camera = Camera::look_at(k, eye, target, Vector3::z()).unwrap();
    // Rotation about an axis tilted from the vertical, translation along a fixed direction.
    let axis = nalgebra::Unit::new_normalize(Vector3::new(0.3, 0.2, 1.0));
    let slide = Vector3::new(1.0, 0.5, 0.2).normalize() * STEP_PER_FRAME;
    let mut out = SimScene {
        name: object.to_string(),
        frames: Vec::with_capacity(frames),
        poses: Vec::with_capacity(frames),
        camera,
        model: spec
            .shape
            .sample_surface(5000, &mut rand_chacha::ChaCha8Rng::seed_from_u64(7)),
    };
    for t in 0..frames {
        let s = t as f64 / frames.max(2).saturating_sub(1) as f64;
        let q: Vec<f64> = open
            .iter()
            .zip(&closed)
            .map(|(a, b)| a + s * (b - a))
            .collect();
        sim.set_joint_positions(&q).unwrap();
        let turn = UnitQuaternion::from_axis_angle(&axis, (DEG_PER_FRAME * t as f64).to_radians());
        let pose = Isometry3::from_parts(
            Translation3::from(start.translation.vector + slide * t as f64),
            turn * start.rotation,
        );
        sim.set_object_pose(0, &pose).unwrap();
        out.frames.push(sim.render_depth(&camera).unwrap());
        out.poses.push(pose);
    }
    out
}

impl SimScene {
    /// Frame `t`'s grey image.
    pub fn image(&self, t: usize) -> GrayImage {
        let g = &self.frames[t].gray;
        let (h, w) = g.dim();
        GrayImage::from_raw(w as u32, h as u32, g.iter().copied().collect()).unwrap()
    }

    /// Up to `n` query pixels on the object in the first frame, on a regular grid, each
    /// with a 7 × 7 neighbourhood on the object (no silhouette edges).
    pub fn object_queries(&self, n: usize) -> Vec<[f32; 2]> {
        self.frames[0].interior_pixels(object_label(0), 3, n)
    }

    /// The object-frame point under each query pixel of the first frame.
    pub fn query_points_object(&self, queries: &[[f32; 2]]) -> Vec<Point3<f64>> {
        queries
            .iter()
            .map(|q| {
                let world = self.frames[0]
                    .world_point(q[0] as usize, q[1] as usize)
                    .unwrap();
                self.poses[0].inverse_transform_point(&world)
            })
            .collect()
    }

    /// Ground truth of object point `p` (object frame) in frame `t`: its pixel and
    /// whether it is visible (in the image and the nearest surface there, within 2 mm).
    pub fn truth(&self, t: usize, p: &Point3<f64>) -> ([f64; 2], bool, Point3<f64>) {
        let world = self.poses[t] * p;
        match self.frames[t].project_visible(&world, object_label(0), 0.002) {
            Some((px, visible)) => (px, visible, world),
            None => ([f64::NAN; 2], false, world),
        }
    }
}
