//! Tracking on scenes rendered by dex-sim, against the simulator's ground truth: KLT on
//! the textured grey images, lifting with the rendered depth, the object pose from the
//! lifted tracks, and ICP on the segmented depth points.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::sim_scene::{SimScene, render_scene};
use dex_core::geometry::rotation_distance;
use dex_sim::camera::object_label;
use dex_track::{
    IcpConfig, IcpTarget, KltConfig, KltTracker, LiftedTracker, Observation, RigidObjectTracker,
    RobustFitConfig, Tracker,
};
use nalgebra::{Isometry3, Vector3};
use ndarray::Array2;

const FRAMES: usize = 30;

#[test]
fn klt_follows_a_cube_turning_in_the_hand_and_flags_hidden_points() {
    let scene: SimScene = render_scene("cube", FRAMES);
    let queries = scene.object_queries(256);
    assert!(queries.len() >= 200, "{} queries", queries.len());
    let model = scene.query_points_object(&queries);
    let n = queries.len();
    let k = scene.camera.intrinsics;
    let images: Vec<_> = (0..FRAMES).map(|t| scene.image(t)).collect();
    let lifted = LiftedTracker::new(KltTracker::new(KltConfig::default()).unwrap()).unwrap();
    let mut tracker = RigidObjectTracker::new(lifted, RobustFitConfig::default())
        .unwrap()
        .with_initial_pose(scene.poses[0]);
    let q = Array2::from_shape_fn((n, 2), |(i, c)| queries[i][c]);
    // Hidden point-frames, and how many of them the lifted KLT tracks and the rigid
    // tracker report invisible.
    let (mut hidden, mut lifted_flagged, mut rigid_flagged) = (0, 0, 0);
    let (mut epe, mut err3) = (Vec::new(), Vec::new());
    for (t, image) in images.iter().enumerate() {
        let obs =
            Observation::image(image).with_depth(&scene.frames[t].depth, &k, scene.camera.pose);
        let f = if t == 0 {
            tracker.init(&obs, q.view()).unwrap()
        } else {
            tracker.track(&obs).unwrap()
        };
        assert!(!tracker.lost(), "lost at frame {t}");
        let lifted = tracker.get_ref();
        let (pixels, lifted_visible) = {
            let img = lifted.image_frame().unwrap();
            (img.positions.clone(), img.visible.clone())
        };
        for (i, p) in model.iter().enumerate() {
            let (px, visible, world) = scene.truth(t, p);
            if !visible {
                hidden += 1;
                lifted_flagged += usize::from(!lifted_visible[i]);
                rigid_flagged += usize::from(!f.visible[i]);
            } else if t == FRAMES - 1 && f.visible[i] {
                epe.push(
                    (f64::from(pixels[(i, 0)]) - px[0]).hypot(f64::from(pixels[(i, 1)]) - px[1]),
                );
            }
            // Every point, hidden or not, is placed by the fitted object pose.
            if t == FRAMES - 1 {
                err3.push((f.point(i) - world).norm());
            }
        }
    }
    epe.sort_by(f64::total_cmp);
    err3.sort_by(f64::total_cmp);
    // The cube turned 29° and slid 17 mm: the visible points are tracked to within a
    // couple of pixels; every point, hidden ones included, placed within a few mm.
    assert!(epe.len() > 80, "{} points tracked to the end", epe.len());
    assert!(
        epe[epe.len() / 2] < 3.0,
        "median end-point error {:.2} px",
        epe[epe.len() / 2]
    );
    let worst = err3[err3.len() - 1];
    assert!(worst < 0.005, "worst 3D error {:.1} mm", worst * 1e3);
    // Fingers and the cube's own turning hide points; the rigid check reports nearly all
    // of them invisible, many more than the forward-backward check alone.
    assert!(hidden > 100, "the scene hides {hidden} point-frames");
    assert!(
        rigid_flagged * 10 >= hidden * 9 && rigid_flagged > lifted_flagged,
        "{rigid_flagged} of {hidden} hidden point-frames flagged ({lifted_flagged} by the 2D tracker)"
    );
    // The object pose.
    let truth = scene.poses[FRAMES - 1];
    let pose = tracker.pose();
    let deg = rotation_distance(&pose.rotation, &truth.rotation).to_degrees();
    let m = (pose.translation.vector - truth.translation.vector).norm();
    assert!(
        deg < 3.0 && m < 0.002,
        "pose off by {deg:.2}° and {:.1} mm",
        m * 1e3
    );
}

#[test]
fn icp_tracks_the_cube_and_the_mug_axis_from_depth() {
    for object in ["cube", "mug"] {
        let scene = render_scene(object, 10);
        let config = IcpConfig::default();
        let target = IcpTarget::new(&scene.model, config.normal_neighbours).unwrap();
        // Start 8° and 8 mm off, then follow frame to frame.
        let offset = Isometry3::new(
            Vector3::new(0.005, -0.004, 0.005),
            Vector3::new(0.1, -0.06, 0.05),
        );
        let mut estimate = offset * scene.poses[0].inverse();
        for t in 0..10 {
            let cloud = scene.frames[t].labelled_points_world(object_label(0));
            assert!(cloud.len() > 500, "{object}: {} points seen", cloud.len());
            let r = target.register(&cloud, &estimate, &config).unwrap();
            assert!(r.converged, "{object} frame {t}: not converged");
            estimate = r.transform;
            let pose = estimate.inverse();
            let truth = scene.poses[t];
            let deg = if object == "mug" {
                (pose.rotation * Vector3::z())
                    .angle(&(truth.rotation * Vector3::z()))
                    .to_degrees()
            } else {
                rotation_distance(&pose.rotation, &truth.rotation).to_degrees()
            };
            let m = (pose.translation.vector - truth.translation.vector).norm();
            assert!(
                deg < 1.0 && m < 0.002,
                "{object} frame {t}: off by {deg:.2}° and {:.1} mm",
                m * 1e3
            );
        }
    }
}
