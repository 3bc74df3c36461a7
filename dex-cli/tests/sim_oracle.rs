//! dex-sim feeds dex-track: the oracle tracker follows object points from the
//! simulator's ground-truth poses, and the simulator's depth camera decides which of
//! them are occluded.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

use dex_core::HandModel;
use dex_sim::{Camera, Env, TaskConfig, make_env};
use dex_track::{Observation, OracleConfig, OracleTracker, Tracker};
use nalgebra::{Point3, Vector3};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn oracle_tracks_a_simulated_cube_with_depth_occlusion() {
    let mut env = make_env("rotate", HandModel::leap_right(), TaskConfig::default()).unwrap();
    env.reset(Some(11)).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let sim = env.simulator().unwrap();
    let cube = sim.object_state(0).unwrap().pose;
    let k = dex_core::CameraIntrinsics::from_fov_y(96, 96, 0.9).unwrap();
    // A camera straight above the cube: its bottom face (on the palm) is hidden.
    let above = cube.translation.vector + Vector3::new(0.0, 0.0, 0.3);
    let camera = Camera::look_at(
        k,
        Point3::from(above),
        Point3::from(cube.translation.vector),
        Vector3::x(),
    )
    .unwrap();
    let local = sim.objects()[0].shape.sample_surface(200, &mut rng);
    let queries: Vec<Point3<f64>> = local.iter().map(|p| cube * p).collect();
    let q = Array2::from_shape_fn((queries.len(), 3), |(i, j)| queries[i][j] as f32);

    let mut oracle = OracleTracker::new(OracleConfig::default()).unwrap();
    let frame = env.simulator().unwrap().render_depth(&camera).unwrap();
    let obs = Observation::ground_truth(cube).with_depth_only(&frame.depth, &k);
    let obs = Observation {
        camera_pose: camera.pose,
        ..obs
    };
    oracle.init(&obs, q.view()).unwrap();

    for _ in 0..15 {
        let action: Vec<f32> = (0..16).map(|_| rng.random_range(-0.5..=0.5)).collect();
        env.step(&action).unwrap();
        let pose = env.simulator().unwrap().object_state(0).unwrap().pose;
        let frame = env.simulator().unwrap().render_depth(&camera).unwrap();
        let obs = Observation {
            camera_pose: camera.pose,
            ..Observation::ground_truth(pose).with_depth_only(&frame.depth, &k)
        };
        let out = oracle.track(&obs).unwrap();
        let mut top_visible = 0;
        let mut bottom_visible = 0;
        for (i, p) in local.iter().enumerate() {
            let truth = pose * p;
            if out.visible[i] {
                for j in 0..3 {
                    assert!((f64::from(out.positions[(i, j)]) - truth[j]).abs() < 1e-5);
                }
            }
            // Faces are told apart in the cube's own frame; the cube stays near upright.
            let up = pose.rotation.inverse() * Vector3::z();
            let height = p.coords.dot(&up);
            if height > 0.024 && out.visible[i] {
                top_visible += 1;
            }
            if height < -0.024 && out.visible[i] {
                bottom_visible += 1;
            }
        }
        assert!(top_visible > 0, "the top face is seen");
        assert_eq!(
            bottom_visible, 0,
            "the bottom face is hidden by the cube itself"
        );
    }
}
