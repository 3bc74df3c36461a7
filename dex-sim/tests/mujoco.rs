//! The MuJoCo backend (feature `mujoco`): kinematics equal to dex-core's, determinism,
//! state round trips, PD tracking, a cube on the palm, errors; the behaviours that are
//! not engine-specific run on both backends through one generic body.
#![cfg(feature = "mujoco")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::camera::{LABEL_HAND, LABEL_NONE, object_label};
use dex_sim::{
    BodyRef, Camera, MjcfHand, MujocoSim, ObjectSpec, RapierSim, SimConfig, Simulator,
    rest_pose_on_palm,
};
use nalgebra::{Isometry3, Point3, Translation3, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random_q(model: &HandModel, rng: &mut ChaCha8Rng) -> Vec<f64> {
    model
        .joint_limits()
        .iter()
        .map(|l| rng.random_range(l.lower..=l.upper))
        .collect()
}

fn cube_scene<S: Simulator>(
    build: impl Fn(HandModel, &[ObjectSpec], &[Isometry3<f64>], SimConfig) -> dex_sim::Result<S>,
) -> S {
    let model = HandModel::leap_right();
    let config = SimConfig::for_hand(&model);
    let cube = ObjectSpec::cube(0.05, 0.1);
    let pose = rest_pose_on_palm(&model, &config.hand_pose, cube.shape.half_height(), 0.001);
    build(model, &[cube], &[pose], config).unwrap()
}

#[test]
fn link_poses_equal_dex_cores_forward_kinematics() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for model in [HandModel::leap_right(), HandModel::allegro_right()] {
        let config = SimConfig {
            hand_pose: Isometry3::translation(0.1, -0.2, 0.3),
            ..SimConfig::default()
        };
        let mut sim = MujocoSim::hand_only(model.clone(), config.clone()).unwrap();
        for _ in 0..10 {
            let q = random_q(&model, &mut rng);
            sim.set_joint_positions(&q).unwrap();
            let fk = model.forward_kinematics(&q).unwrap();
            for (i, (a, b)) in sim.link_poses().iter().zip(&fk).enumerate() {
                let b = config.hand_pose * b;
                let dp = (a.translation.vector - b.translation.vector).norm();
                let dr = a.rotation.angle_to(&b.rotation);
                assert!(
                    dp < 1e-9 && dr < 1e-9,
                    "{} link {i}: {dp} m, {dr} rad",
                    model.name()
                );
            }
        }
    }
}

/// Same actions, same digest; a restored state replays bit for bit.
fn determinism_and_round_trip(sim: &mut dyn Simulator) {
    let model = sim.model().clone();
    let start = sim.save_state();
    let run = |sim: &mut dyn Simulator| {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..20 {
            let q = random_q(&model, &mut rng);
            sim.set_joint_targets(&q).unwrap();
            sim.step().unwrap();
        }
        sim.state_digest()
    };
    let a = run(sim);
    sim.restore_state(&start).unwrap();
    let b = run(sim);
    assert_eq!(a, b, "{}: the replay differs", sim.backend());
    let mid = sim.save_state();
    let c = run(sim);
    sim.restore_state(&mid).unwrap();
    assert_eq!(run(sim), c);
}

/// Targets outside the limits are clamped; wrong lengths are errors that change nothing.
fn targets_and_bad_input(sim: &mut dyn Simulator) {
    let model = sim.model().clone();
    let limits = model.joint_limits();
    let beyond: Vec<f64> = limits.iter().map(|l| l.upper + 1.0).collect();
    sim.set_joint_targets(&beyond).unwrap();
    let upper: Vec<f64> = limits.iter().map(|l| l.upper).collect();
    assert_eq!(sim.joint_targets(), upper.as_slice());
    assert!(sim.set_joint_targets(&[0.0; 3]).is_err());
    assert_eq!(sim.joint_targets(), upper.as_slice());
    assert!(sim.object_state(7).is_err());
    assert!(sim.set_pd_gains(&[1.0; 2], &[0.1; 2]).is_err());
}

/// The PD brings each joint near a mid-range target in a second without gravity.
fn pd_tracks_targets(sim: &mut dyn Simulator) {
    sim.set_gravity(Vector3::zeros()).unwrap();
    let model = sim.model().clone();
    let target: Vec<f64> = model.joint_limits().iter().map(|l| l.mid()).collect();
    sim.set_joint_targets(&target).unwrap();
    let steps = (1.0 / sim.config().control_period()).round() as usize;
    for _ in 0..steps {
        sim.step().unwrap();
    }
    let q = sim.joint_state().q;
    let worst = q
        .iter()
        .zip(&target)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 0.05,
        "{}: {worst} rad from the targets",
        sim.backend()
    );
}

/// A cube on the palm stays on it and touches the hand.
fn cube_rests_on_the_palm(sim: &mut dyn Simulator) {
    let z0 = sim.object_state(0).unwrap().pose.translation.z;
    for _ in 0..50 {
        sim.step().unwrap();
    }
    let s = sim.object_state(0).unwrap();
    assert!(
        (s.pose.translation.z - z0).abs() < 0.01,
        "{}: the cube moved to z {}",
        sim.backend(),
        s.pose.translation.z
    );
    assert!(s.linear_velocity.norm() < 0.05);
    let touching = sim
        .contacts()
        .iter()
        .filter(|c| {
            matches!(
                (c.body1, c.body2),
                (BodyRef::Link(_), BodyRef::Object(0)) | (BodyRef::Object(0), BodyRef::Link(_))
            )
        })
        .count();
    assert!(touching > 0, "{}: no hand–cube contact", sim.backend());
}

macro_rules! on_both_backends {
    ($($name:ident),*) => {
        mod rapier_backend {
            use super::*;
            $(#[test] fn $name() { super::$name(&mut cube_scene(RapierSim::new)); })*
        }
        mod mujoco_backend {
            use super::*;
            $(#[test] fn $name() { super::$name(&mut cube_scene(MujocoSim::new)); })*
        }
        /// MuJoCo with Menagerie's LEAP file in place of dex's model of the hand.
        mod mujoco_menagerie_leap {
            use super::*;
            $(#[test] fn $name() {
                let Some(path) = menagerie("leap_hand") else { return };
                super::$name(&mut cube_scene(|m, o, p, c| {
                    MujocoSim::new(m, o, p, SimConfig { mjcf: Some(MjcfHand::new(&path)), ..c })
                }));
            })*
        }
    };
}

on_both_backends!(
    determinism_and_round_trip,
    targets_and_bad_input,
    pd_tracks_targets,
    cube_rests_on_the_palm,
    rendering_sees_the_cube_and_the_hand
);

#[test]
fn both_backends_render_the_same_scene() {
    let rapier: RapierSim = cube_scene(RapierSim::new);
    let mujoco: MujocoSim = cube_scene(MujocoSim::new);
    // An oblique view of the hand and the cube.
    let cube = rapier.object_state(0).unwrap().pose;
    let target = Point3::from(cube.translation.vector);
    let k = dex_core::CameraIntrinsics::from_fov_y(96, 72, 1.0).unwrap();
    let eye = target + Vector3::new(0.25, -0.2, 0.3);
    let cam = Camera::look_at(k, eye, target, Vector3::z()).unwrap();
    let a = rapier.render_depth(&cam).unwrap();
    let b = mujoco.render_depth(&cam).unwrap();
    let n = a.segmentation.len();
    let agree = a
        .segmentation
        .iter()
        .zip(b.segmentation.iter())
        .filter(|(x, y)| x == y)
        .count();
    assert!(
        agree * 100 >= n * 97,
        "labels agree on {agree} of {n} pixels"
    );
    let (mut close, mut seen) = (0, 0);
    for ((da, db), (la, lb)) in a
        .depth
        .view()
        .iter()
        .zip(b.depth.view().iter())
        .zip(a.segmentation.iter().zip(b.segmentation.iter()))
    {
        if la == lb && *la != LABEL_NONE {
            seen += 1;
            close += usize::from((da - db).abs() < 1e-3);
        }
    }
    assert!(seen > n / 10, "the view sees the scene ({seen} pixels)");
    assert!(
        close * 100 >= seen * 97,
        "depth within 1 mm on {close} of {seen} pixels"
    );
}

#[test]
fn a_state_of_the_other_backend_is_refused() {
    let rapier: RapierSim = cube_scene(RapierSim::new);
    let mut mujoco: MujocoSim = cube_scene(MujocoSim::new);
    assert!(mujoco.restore_state(&rapier.save_state()).is_err());
}

#[test]
fn changing_objects_keeps_the_hand() {
    let mut sim: MujocoSim = cube_scene(MujocoSim::new);
    let model = sim.model().clone();
    let q: Vec<f64> = model.joint_limits().iter().map(|l| l.mid()).collect();
    sim.set_joint_positions(&q).unwrap();
    let ball = ObjectSpec::new("ball", dex_sim::ObjectShape::Sphere { radius: 0.02 }, 0.05);
    sim.set_objects(
        &[ball.clone(), ObjectSpec::cube(0.03, 0.05)],
        &[
            Isometry3::translation(0.0, 0.0, 0.5),
            Isometry3::translation(0.2, 0.0, 0.5),
        ],
    )
    .unwrap();
    assert_eq!(sim.objects().len(), 2);
    assert_eq!(sim.joint_state().q, q);
    assert_eq!(sim.joint_targets(), q.as_slice());
    assert_eq!(sim.object_state(1).unwrap().pose.translation.z, 0.5);
    // The render sees the new objects (its copy of the data is the new scene's).
    let ball_pose = sim.object_state(0).unwrap().pose;
    let eye = Point3::from(ball_pose.translation.vector + Vector3::new(0.0, 0.0, 0.3));
    let k = dex_core::CameraIntrinsics::from_fov_y(17, 17, 0.6).unwrap();
    let cam = Camera::look_at(
        k,
        eye,
        Point3::from(ball_pose.translation.vector),
        Vector3::x(),
    )
    .unwrap();
    let frame = sim.render_depth(&cam).unwrap();
    assert_eq!(frame.segmentation[(8, 8)], object_label(0));
    assert!((f64::from(frame.depth.view()[(8, 8)]) - 0.28).abs() < 1e-3);
}

/// A camera 30 cm above the top face of object 0, looking down.
fn camera_over_object(sim: &dyn Simulator, size: usize) -> (Camera, Isometry3<f64>) {
    let cube = sim.object_state(0).unwrap().pose;
    let top = cube.translation.vector + Vector3::new(0.0, 0.0, 0.025);
    let k = dex_core::CameraIntrinsics::from_fov_y(size, size, 0.6).unwrap();
    let eye = Point3::from(top + Vector3::new(0.0, 0.0, 0.3));
    let cam = Camera::look_at(k, eye, Point3::from(top), Vector3::x()).unwrap();
    (cam, cube)
}

/// Depth, segmentation and texture: the cube's top face at 30 cm, the hand around it;
/// the render follows a teleport at once and the texture moves with the object.
fn rendering_sees_the_cube_and_the_hand(sim: &mut dyn Simulator) {
    let (cam, cube) = camera_over_object(sim, 96);
    let frame = sim.render_depth(&cam).unwrap();
    let centre = frame.depth.view()[(48, 48)];
    assert!(
        (f64::from(centre) - 0.3).abs() < 1e-3,
        "{}: depth {centre}",
        sim.backend()
    );
    assert_eq!(frame.segmentation[(48, 48)], object_label(0));
    assert!(frame.segmentation.iter().any(|l| *l == LABEL_HAND));
    for p in frame.labelled_points_world(object_label(0)) {
        let local = cube.inverse_transform_point(&p);
        assert!(local.z > 0.0249 || local.x.abs() > 0.0249 || local.y.abs() > 0.0249);
    }
    // The grey texture varies over the face (KLT needs corners to follow).
    let grays: std::collections::BTreeSet<u8> = frame
        .segmentation
        .indexed_iter()
        .filter(|(_, l)| **l == object_label(0))
        .map(|(ix, _)| frame.gray[ix])
        .collect();
    assert!(
        grays.len() > 10,
        "{}: {} grey levels",
        sim.backend(),
        grays.len()
    );
    // Teleported along x by 5 px on the face, its pixels and texture move together.
    let step = 5.0 * 0.3 / cam.intrinsics.fx;
    let moved = Isometry3::from_parts(
        Translation3::from(cube.translation.vector + Vector3::new(step, 0.0, 0.0)),
        cube.rotation,
    );
    sim.set_object_pose(0, &moved).unwrap();
    let after = sim.render_depth(&cam).unwrap();
    let shift = cam
        .pose
        .inverse_transform_vector(&Vector3::new(step, 0.0, 0.0));
    let (du, dv) = (
        (shift.x * cam.intrinsics.fx / 0.3).round() as isize,
        (shift.y * cam.intrinsics.fy / 0.3).round() as isize,
    );
    assert!(du != 0 || dv != 0);
    let (mut same, mut n) = (0, 0);
    for v in 40..56isize {
        for u in 40..56isize {
            let (u1, v1) = ((u + du) as usize, (v + dv) as usize);
            n += 1;
            same += usize::from(
                frame.gray[(v as usize, u as usize)].abs_diff(after.gray[(v1, u1)]) <= 2,
            );
        }
    }
    assert!(
        same * 10 >= n * 9,
        "{}: {same}/{n} pixels moved with it",
        sim.backend()
    );
}

/// A hand of MuJoCo Menagerie (`../shared/assets/menagerie` beside the repository, or
/// `DEX_MENAGERIE`), if present.
fn menagerie(hand: &str) -> Option<std::path::PathBuf> {
    let root = std::env::var_os("DEX_MENAGERIE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/assets/menagerie")
        });
    let path = root.join(hand).join("right_hand.xml");
    if path.is_file() {
        Some(path)
    } else {
        eprintln!("skipped: {} is missing", path.display());
        None
    }
}

/// Menagerie's LEAP and Allegro files are the same hands as dex's models: the fitted
/// placement leaves their joints within a micrometre of the models', and the link poses
/// (from the model's kinematics) sit on MuJoCo's bodies of the same joints.
#[test]
fn menagerie_hands_fit_the_models() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (dir, model) in [
        ("leap_hand", HandModel::leap_right()),
        ("wonik_allegro", HandModel::allegro_right()),
    ] {
        let Some(path) = menagerie(dir) else { return };
        let config = SimConfig {
            mjcf: Some(MjcfHand::new(&path)),
            ..SimConfig::for_hand(&model)
        };
        let mut sim = MujocoSim::hand_only(model.clone(), config.clone()).unwrap();
        let residual = sim.mjcf_fit_residual().unwrap();
        assert!(residual < 1e-6, "{dir}: {residual} m");
        let q = random_q(&model, &mut rng);
        sim.set_joint_positions(&q).unwrap();
        assert_eq!(sim.joint_state().q, q);
        let fk = model.forward_kinematics(&q).unwrap();
        for (a, b) in sim.link_poses().iter().zip(&fk) {
            let b = config.hand_pose * b;
            assert!((a.translation.vector - b.translation.vector).norm() < 1e-9);
        }
    }
}

/// A joint map into a file with other joint names; a map naming a missing joint, a
/// wrong map, a malformed file and a missing file are typed errors; rapier refuses.
#[test]
fn joint_maps_and_bad_files() {
    let Some(path) = menagerie("leap_hand") else {
        return;
    };
    let model = HandModel::leap_right();
    let build = |hand: MjcfHand| {
        let config = SimConfig {
            mjcf: Some(hand),
            ..SimConfig::for_hand(&model)
        };
        MujocoSim::hand_only(model.clone(), config)
    };
    // The same file with the index finger's joints renamed, beside its meshes.
    let dir = std::env::temp_dir().join(format!("dex-mjcf-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let assets = dir.join("assets");
    if !assets.exists() {
        std::os::unix::fs::symlink(path.parent().unwrap().join("assets"), &assets).unwrap();
    }
    let text = std::fs::read_to_string(&path).unwrap();
    let renamed = dir.join("renamed.xml");
    let mut out = text.clone();
    for j in ["mcp", "rot", "pip", "dip"] {
        out = out.replace(&format!("\"if_{j}\""), &format!("\"index_{j}\""));
    }
    std::fs::write(&renamed, out).unwrap();
    let err = build(MjcfHand::new(&renamed)).unwrap_err();
    assert!(
        matches!(err, dex_sim::Error::MjcfJoint { .. })
            && err.to_string().contains("the file does not have"),
        "{err}"
    );
    let mut map = MjcfHand::new(&renamed);
    for j in ["mcp", "rot", "pip", "dip"] {
        map = map.with_joint(&format!("if_{j}"), &format!("index_{j}"));
    }
    let mut sim = build(map).unwrap();
    assert!(sim.mjcf_fit_residual().unwrap() < 1e-6);
    pd_tracks_targets(&mut sim);

    let err = build(MjcfHand::new(&path).with_joint("if_mcp", "no_such_joint")).unwrap_err();
    assert!(matches!(err, dex_sim::Error::MjcfJoint { .. }), "{err}");
    let err = build(MjcfHand::new(&path).with_joint("no_such_joint", "if_mcp")).unwrap_err();
    assert!(matches!(err, dex_sim::Error::MjcfJoint { .. }), "{err}");
    // Two joints swapped: the file then turns about other axes than the model.
    let swapped = MjcfHand::new(&path)
        .with_joint("if_mcp", "if_rot")
        .with_joint("if_rot", "if_mcp");
    let err = build(swapped).unwrap_err();
    assert!(
        matches!(err, dex_sim::Error::MjcfKinematics { .. }),
        "{err}"
    );
    let broken = dir.join("broken.xml");
    std::fs::write(&broken, "<mujoco><worldbody><body name=\"palm\">").unwrap();
    let err = build(MjcfHand::new(&broken)).unwrap_err();
    assert!(matches!(err, dex_sim::Error::Mjcf { .. }), "{err}");
    let err = build(MjcfHand::new(dir.join("missing.xml"))).unwrap_err();
    assert!(matches!(err, dex_sim::Error::Mjcf { .. }), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();

    let config = SimConfig {
        mjcf: Some(MjcfHand::new(&path)),
        ..SimConfig::for_hand(&model)
    };
    let err = RapierSim::hand_only(model.clone(), config).unwrap_err();
    assert!(matches!(err, dex_sim::Error::Unsupported { .. }), "{err}");
}

/// Every task with physics runs on MuJoCo (the tabletop one on the wrist), repeats for a
/// seed, and differs from the same run on rapier.
#[test]
fn every_task_runs_on_mujoco_and_repeats_for_a_seed() {
    use dex_sim::{Backend, Env, TASK_NAMES, TaskConfig, make_env};
    let run = |task: &str, backend: Backend| {
        let config = TaskConfig {
            backend,
            ..TaskConfig::default()
        };
        let mut env = make_env(task, HandModel::leap_right(), config).unwrap();
        let dim = env.action_space().dim();
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        env.reset(Some(4)).unwrap();
        for _ in 0..12 {
            let action: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..=1.0)).collect();
            let s = env.step(&action).unwrap();
            if s.terminated || s.truncated {
                env.reset(None).unwrap();
            }
        }
        let sim = env.simulator().unwrap();
        assert_eq!(sim.backend(), backend.name(), "{task}");
        sim.state_digest()
    };
    for task in TASK_NAMES.iter().filter(|t| **t != "anypose-proxy") {
        let a = run(task, Backend::Mujoco);
        assert_eq!(a, run(task, Backend::Mujoco), "{task}: the replay differs");
        assert_ne!(a, run(task, Backend::Rapier), "{task}: the backends agree");
    }
}
