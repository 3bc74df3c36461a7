//! The recorder against the mock simulator: what is logged, where, and when.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

use dex_core::{CameraIntrinsics, HandModel};
use dex_rerun::{Error, HAND, JOINTS, Logged, MemorySink, OBJECTS, Primitive, Recorder};
use dex_sim::{Camera, MockSimulator, ObjectSpec, SimConfig, Simulator};
use nalgebra::{Isometry3, Point3, Vector3};

fn setup() -> (HandModel, MockSimulator, MemorySink, Recorder) {
    let model = HandModel::leap_right();
    let sim = MockSimulator::new(model.clone(), SimConfig::default()).unwrap();
    let sink = MemorySink::new();
    let rec = Recorder::new(Box::new(sink.clone()), &model).unwrap();
    (model, sim, sink, rec)
}

#[test]
fn every_link_gets_its_pose_each_tick_and_its_shapes_once() {
    let (model, mut sim, sink, mut rec) = setup();
    let static_before = sink.entries().len();
    assert!(static_before > 0, "no collision shapes logged");
    let target: Vec<f64> = model
        .joint_limits()
        .iter()
        .map(|l| 0.5 * (l.lower + l.upper))
        .collect();
    sim.set_joint_targets(&target).unwrap();
    for tick in 0..3 {
        sim.step().unwrap();
        rec.set_time(tick, sim.time());
        rec.log_simulator(&sim).unwrap();
    }
    let poses = sim.link_poses();
    for (link, pose) in model.links().iter().zip(&poses) {
        let path = format!("{HAND}/{}", link.name);
        let logged = sink.at(&path);
        assert_eq!(logged.len(), 3, "{path}");
        let last = logged.last().unwrap();
        assert_eq!(last.tick, 2);
        assert_eq!(last.data, Logged::Pose(*pose), "{path}");
        // Shapes only at the collision child, logged before any tick.
        let shapes = sink.at(&format!("{path}/collision"));
        assert!(
            shapes.len() <= 1,
            "{path}: shapes logged {} times",
            shapes.len()
        );
        if let [entry] = shapes.as_slice() {
            assert!(matches!(entry.data, Logged::StaticShapes(ref s, _) if !s.is_empty()));
        }
    }
    let with_shapes = model
        .links()
        .iter()
        .filter(|l| !l.collisions.is_empty())
        .count();
    assert_eq!(static_before, with_shapes);
}

#[test]
fn joint_series_hold_targets_and_measured_angles_by_name() {
    let (model, mut sim, sink, mut rec) = setup();
    let limits = model.joint_limits();
    let target: Vec<f64> = limits.iter().map(|l| l.upper).collect();
    sim.set_joint_targets(&target).unwrap();
    sim.step().unwrap();
    rec.set_time(1, sim.time());
    rec.log_simulator(&sim).unwrap();
    let q = sim.joint_state().q;
    for (i, name) in model.joint_names().iter().enumerate() {
        let t = sink.at(&format!("{JOINTS}/{name}/target"));
        let m = sink.at(&format!("{JOINTS}/{name}/measured"));
        assert_eq!(t[0].data, Logged::Scalar(target[i]), "{name}");
        assert_eq!(m[0].data, Logged::Scalar(q[i]), "{name}");
        assert!((m[0].seconds - sim.time()).abs() < 1e-12);
        // The mock's joints lag their targets: the two series differ.
        assert_ne!(target[i], q[i], "{name}");
    }
}

#[test]
fn wrong_joint_counts_are_errors_that_log_nothing() {
    let (model, _sim, sink, mut rec) = setup();
    let before = sink.entries().len();
    let q = vec![0.0; model.dof()];
    let err = rec.log_joints(&q[..3], &q).unwrap_err();
    assert!(
        matches!(err, Error::Mismatch { expected, got: 3, .. } if expected == model.dof()),
        "{err}"
    );
    let err = rec.log_joints(&q, &q[..5]).unwrap_err();
    assert!(err.to_string().contains("joint targets"), "{err}");
    assert_eq!(sink.entries().len(), before);
}

#[test]
fn an_object_is_drawn_once_and_again_when_it_changes() {
    let (_model, mut sim, sink, mut rec) = setup();
    let pose = Isometry3::translation(0.0, 0.0, 0.1);
    sim.set_objects(&[ObjectSpec::cube(0.04, 0.05)], &[pose])
        .unwrap();
    for tick in 0..3 {
        rec.set_time(tick, tick as f64 * 0.02);
        rec.log_simulator(&sim).unwrap();
    }
    let shape = format!("{OBJECTS}/0/shape");
    assert_eq!(sink.at(&shape).len(), 1);
    let Logged::StaticShapes(s, _) = &sink.at(&shape)[0].data else {
        panic!("not shapes");
    };
    assert_eq!(
        s[0],
        Primitive::Box {
            center: [0.0; 3],
            rotation: [0.0, 0.0, 0.0, 1.0],
            half_size: [0.02; 3],
        }
    );
    assert_eq!(sink.at(&format!("{OBJECTS}/0")).len(), 3);
    let sphere = ObjectSpec::new("ball", dex_sim::ObjectShape::Sphere { radius: 0.03 }, 0.05);
    sim.set_objects(&[sphere], &[pose]).unwrap();
    rec.log_simulator(&sim).unwrap();
    let logged = sink.at(&shape);
    assert_eq!(logged.len(), 2);
    assert!(matches!(&logged[1].data, Logged::StaticShapes(s, _) if s[0].kind() == "sphere"));
}

fn mock_camera_frame(sim: &MockSimulator) -> dex_sim::DepthFrame {
    let k = CameraIntrinsics::from_fov_y(64, 48, 50f64.to_radians()).unwrap();
    let camera = Camera::look_at(
        k,
        Point3::new(-0.3, 0.0, 0.2),
        Point3::origin(),
        Vector3::z(),
    )
    .unwrap();
    sim.render_depth(&camera).unwrap()
}

#[test]
fn a_camera_logs_its_pose_pinhole_image_and_tracked_points() {
    let (_model, sim, sink, mut rec) = setup();
    let frame = mock_camera_frame(&sim);
    let tracked = [[10.0f32, 12.5], [30.0, 20.0]];
    rec.log_camera("front", &frame, Some(&tracked)).unwrap();
    assert_eq!(
        sink.at("world/front")[0].data,
        Logged::Pose(frame.camera.pose)
    );
    let image = sink.at("world/front/image");
    assert_eq!(image.len(), 2);
    assert_eq!(image[0].data, Logged::Pinhole(frame.camera.intrinsics));
    let Logged::GrayImage(w, h, pixels) = &image[1].data else {
        panic!("not an image");
    };
    assert_eq!((*w, *h), (64, 48));
    assert_eq!(pixels.as_slice(), frame.gray.as_slice().unwrap());
    assert_eq!(
        sink.at("world/front/image/tracked")[0].data,
        Logged::Points2d(tracked.to_vec())
    );
}

#[test]
fn an_image_that_is_not_its_cameras_size_is_an_error() {
    let (_model, sim, _sink, mut rec) = setup();
    let mut frame = mock_camera_frame(&sim);
    frame.camera.intrinsics.width = 65;
    assert!(matches!(
        rec.log_camera("front", &frame, None),
        Err(Error::Mismatch { .. })
    ));
}

#[test]
fn a_fork_keeps_its_own_time_and_shares_the_recording() {
    let (_model, _sim, sink, mut rec) = setup();
    let mut other = rec.fork();
    rec.set_time(5, 0.1);
    other.set_time(9, 0.5);
    rec.log_world_points("goals", &[Point3::origin()], 0.005, [255, 0, 0, 255])
        .unwrap();
    other
        .log_world_points("tracked", &[Point3::new(0.0, 0.0, 1.0)], 0.002, [0; 4])
        .unwrap();
    assert_eq!(sink.at("world/goals")[0].tick, 5);
    assert_eq!(sink.at("world/tracked")[0].tick, 9);
    assert_eq!(sink.at("world/tracked")[0].seconds, 0.5);
}

#[cfg(feature = "rerun")]
#[test]
fn the_rerun_sink_writes_an_rrd_file() {
    use dex_rerun::RerunSink;
    let dir = std::env::temp_dir().join(format!("dex-rerun-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("scene.rrd");
    let model = HandModel::leap_right();
    let mut sim = MockSimulator::new(model.clone(), SimConfig::default()).unwrap();
    sim.set_objects(
        &[ObjectSpec::cube(0.04, 0.05)],
        &[Isometry3::translation(0.0, 0.0, 0.1)],
    )
    .unwrap();
    let frame = mock_camera_frame(&sim);
    {
        let sink = RerunSink::create("dex-test", &path).unwrap();
        let mut rec = Recorder::new(Box::new(sink), &model).unwrap();
        for tick in 0..5 {
            sim.step().unwrap();
            rec.set_time(tick, sim.time());
            rec.log_simulator(&sim).unwrap();
        }
        rec.log_camera("front", &frame, Some(&[[1.0, 2.0]]))
            .unwrap();
        rec.flush().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..4], b"RRF2", "not an rrd file");
    assert!(bytes.len() > 4096, "{} bytes", bytes.len());
    // A directory that does not exist is a clear error, not a panic.
    let err = RerunSink::create("dex-test", &dir.join("missing/scene.rrd")).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
