//! Physical behaviour of every backend (rapier; MuJoCo with the `mujoco` feature), one
//! generic body per behaviour: tracking, resting, grasping, contacts, snapshots,
//! determinism, depth rendering, torques, a chaos box.
#![cfg(feature = "rapier")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::Build;

use dex_core::HandModel;
use dex_sim::camera::{LABEL_HAND, object_label};
use dex_sim::{BodyRef, Camera, Error, ObjectSpec, SimConfig, Simulator, rest_pose_on_palm};
use nalgebra::{Isometry3, Point3, Translation3, UnitQuaternion, Vector3};

fn leap() -> HandModel {
    HandModel::leap_right()
}

fn cube_scene(build: Build, friction: f64, config: SimConfig) -> Box<dyn Simulator> {
    let model = leap();
    let cube = ObjectSpec::cube(0.05, 0.1).with_friction(friction);
    let pose = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.01);
    build(model, &[cube], &[pose], config).unwrap()
}

/// `n` control periods (physics steps with [`physics_steps`]' settings).
fn steps(sim: &mut dyn Simulator, n: usize) {
    for _ in 0..n {
        sim.step().unwrap();
    }
}

fn physics_steps(config: SimConfig) -> SimConfig {
    SimConfig {
        substeps: 1,
        ..config
    }
}

fn pd_tracks_a_sinusoid(build: Build) {
    // Every joint follows a 0.5 Hz, 0.2 rad sine about mid range (fingers apart, so that
    // contacts between fingers do not disturb the measurement).
    let model = leap();
    let config = SimConfig {
        hand_self_collision: false,
        ..physics_steps(SimConfig::default())
    };
    let mut sim = build(model.clone(), &[], &[], config).unwrap();
    let mid = model.mid_configuration();
    sim.set_joint_positions(&mid).unwrap();
    let (mut se, mut n) = (0.0, 0.0);
    for k in 0..3000 {
        let t = k as f64 * 0.002;
        let s = (std::f64::consts::TAU * 0.5 * t).sin();
        let q: Vec<f64> = mid.iter().map(|m| m + 0.2 * s).collect();
        sim.set_joint_targets(&q).unwrap();
        sim.step().unwrap();
        if k >= 500 {
            let js = sim.joint_state();
            se +=
                js.q.iter()
                    .zip(&q)
                    .map(|(a, b)| (a - b).powi(2))
                    .sum::<f64>();
            n += q.len() as f64;
        }
    }
    let rms = (se / n).sqrt();
    assert!(rms < 0.02, "tracking RMS {rms} rad");
    // The test discriminates: without the motors (and without gravity, which would
    // move the limp fingers) the hand does not follow.
    sim.set_pd_gains(&[0.0; 16], &[0.0; 16]).unwrap();
    sim.set_gravity(Vector3::zeros()).unwrap();
    let before = sim.joint_state().q;
    // Zero velocities, so the limp fingers do not coast on.
    sim.set_joint_positions(&before).unwrap();
    sim.set_pd_gains(&[0.0; 16], &[0.0; 16]).unwrap();
    for _ in 0..250 {
        sim.set_joint_targets(&model.mid_configuration()).unwrap();
        sim.step().unwrap();
    }
    let after = sim.joint_state().q;
    let moved: f64 = before.iter().zip(&after).map(|(a, b)| (a - b).abs()).sum();
    let target_gap: f64 = before
        .iter()
        .zip(&model.mid_configuration())
        .map(|(a, b)| (a - b).abs())
        .sum();
    assert!(moved < 0.5 * target_gap + 1e-6 || target_gap < 1e-3);
}

fn dropped_cube_comes_to_rest_on_the_palm(build: Build) {
    let mut sim = cube_scene(build, 1.0, physics_steps(SimConfig::default()));
    let start = sim.object_state(0).unwrap().pose.translation.vector;
    steps(&mut *sim, 500);
    let a = sim.object_state(0).unwrap();
    steps(&mut *sim, 250);
    let b = sim.object_state(0).unwrap();
    assert!(
        a.pose.translation.z < start.z,
        "the cube fell onto the palm"
    );
    assert!(
        b.pose.translation.z > 0.1,
        "the cube rests on the palm, not on the ground"
    );
    let drift = (b.pose.translation.vector - a.pose.translation.vector).norm();
    assert!(drift < 2e-4, "drift over 0.5 s at rest: {drift} m");
    assert!(b.linear_velocity.norm() < 1e-3, "{}", b.linear_velocity);
    assert!(b.angular_velocity.norm() < 1e-2, "{}", b.angular_velocity);
    // Contacts: the palm carries the weight.
    let contacts = sim.contacts();
    let support: f64 = contacts
        .iter()
        .filter(|c| {
            matches!((c.body1, c.body2), (BodyRef::Link(0), BodyRef::Object(0)))
                || matches!((c.body1, c.body2), (BodyRef::Object(0), BodyRef::Link(0)))
        })
        .map(|c| c.normal_force * c.normal.z.abs())
        .sum();
    assert!(
        (support - 0.1 * 9.81).abs() < 0.15,
        "normal forces {support} N vs weight 0.98 N"
    );
}

/// Targets that close the LEAP fingers and thumb around a cube on the palm.
fn grasp_targets(model: &HandModel) -> Vec<f64> {
    let mut q = vec![0.0; model.dof()];
    for (name, v) in [
        ("if_mcp", 1.1),
        ("if_pip", 1.0),
        ("if_dip", 0.8),
        ("mf_mcp", 1.1),
        ("mf_pip", 1.0),
        ("mf_dip", 0.8),
        ("rf_mcp", 1.1),
        ("rf_pip", 1.0),
        ("rf_dip", 0.8),
        ("th_cmc", 1.4),
        ("th_axl", 0.3),
        ("th_mcp", 0.6),
        ("th_ipl", 0.6),
    ] {
        q[model.dof_index(name).unwrap()] = v;
    }
    q
}

fn tilt_and_measure(sim: &mut dyn Simulator, angle_deg: f64) -> f64 {
    let g = UnitQuaternion::from_axis_angle(&Vector3::y_axis(), angle_deg.to_radians())
        * Vector3::new(0.0, 0.0, -9.81);
    let before = sim.object_state(0).unwrap().pose.translation.vector;
    sim.set_gravity(g).unwrap();
    steps(sim, 1000);
    (sim.object_state(0).unwrap().pose.translation.vector - before).norm()
}

fn a_closed_grasp_holds_under_tilt_and_the_open_hand_lets_go(build: Build) {
    // Friction low enough (0.5 < tan 30°) that the cube slides off an open palm. (At
    // 0.3 rapier's grasp still holds, creeping 4 mm in 2 s, and MuJoCo's lets go.)
    let config = SimConfig {
        hand_friction: 0.5,
        ..physics_steps(SimConfig::default())
    };
    let mut open = cube_scene(build, 0.5, config.clone());
    steps(&mut *open, 300);
    let slid = tilt_and_measure(&mut *open, 30.0);
    assert!(slid > 0.01, "open hand: cube moved only {slid} m");

    let mut grasp = cube_scene(build, 0.5, config);
    steps(&mut *grasp, 300);
    let model = grasp.model().clone();
    grasp.set_joint_targets(&grasp_targets(&model)).unwrap();
    steps(&mut *grasp, 1000);
    let held = tilt_and_measure(&mut *grasp, 30.0);
    assert!(held < 0.005, "grasp: cube moved {held} m under 30° tilt");
}

fn snapshots_restore_bit_for_bit(build: Build) {
    let mut sim = cube_scene(build, 1.0, SimConfig::default());
    let model = sim.model().clone();
    sim.set_joint_targets(&grasp_targets(&model)).unwrap();
    for _ in 0..5 {
        sim.step().unwrap();
    }
    let saved = sim.save_state();
    let digest0 = sim.state_digest();
    let run = |sim: &mut dyn Simulator| {
        for k in 0..20 {
            let mut q = grasp_targets(&model);
            q[1] -= 0.01 * f64::from(k);
            sim.set_joint_targets(&q).unwrap();
            sim.step().unwrap();
        }
        sim.state_digest()
    };
    let a = run(&mut *sim);
    assert_ne!(a, digest0);
    sim.restore_state(&saved).unwrap();
    assert_eq!(sim.state_digest(), digest0);
    let b = run(&mut *sim);
    assert_eq!(a, b);
    // A fresh simulator built the same way reproduces the same trajectory.
    let mut again = cube_scene(build, 1.0, SimConfig::default());
    again.set_joint_targets(&grasp_targets(&model)).unwrap();
    for _ in 0..5 {
        again.step().unwrap();
    }
    assert_eq!(again.state_digest(), digest0);
    // A mock's state does not fit.
    let mock = dex_sim::MockSimulator::new(model, SimConfig::default()).unwrap();
    assert!(matches!(
        sim.restore_state(&mock.save_state()),
        Err(Error::StateMismatch { .. })
    ));
}

fn depth_sees_the_cube_and_the_hand(build: Build) {
    let mut sim = cube_scene(build, 1.0, SimConfig::default());
    sim.step().unwrap();
    let cube = sim.object_state(0).unwrap().pose;
    let top = cube.translation.vector + Vector3::new(0.0, 0.0, 0.025);
    let k = dex_core::CameraIntrinsics::from_fov_y(65, 65, 1.0).unwrap();
    let eye = Point3::from(top + Vector3::new(0.0, 0.0, 0.3));
    let cam = Camera::look_at(k, eye, Point3::from(top), Vector3::x()).unwrap();
    let frame = sim.render_depth(&cam).unwrap();
    let centre = frame.depth.view()[(32, 32)];
    assert!((f64::from(centre) - 0.3).abs() < 1e-3, "depth {centre}");
    assert_eq!(frame.segmentation[(32, 32)], object_label(0));
    assert!(frame.segmentation.iter().any(|l| *l == LABEL_HAND));
    // The object's pixels back-project onto its top face.
    for p in frame.labelled_points_world(object_label(0)) {
        let local = cube.inverse_transform_point(&p);
        assert!(local.z > 0.0249 || local.x.abs() > 0.0249 || local.y.abs() > 0.0249);
    }
    // Rendering on one thread gives the same image.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    // (The simulator moves into the pool: a `dyn Simulator` is `Send`, not `Sync`.)
    let serial = pool.install(move || sim.render_depth(&cam).unwrap());
    assert_eq!(serial, frame);
}

fn rendering_follows_teleports_and_the_texture_moves_with_the_object(build: Build) {
    let mut sim = cube_scene(build, 1.0, SimConfig::default());
    let cube = sim.object_state(0).unwrap().pose;
    let k = dex_core::CameraIntrinsics::from_fov_y(96, 96, 0.6).unwrap();
    let top = cube.translation.vector + Vector3::new(0.0, 0.0, 0.025);
    let eye = Point3::from(top + Vector3::new(0.0, 0.0, 0.3));
    let cam = Camera::look_at(k, eye, Point3::from(top), Vector3::x()).unwrap();
    let before = sim.render_depth(&cam).unwrap();
    // Teleport along the world x axis by what is 5 px on the top face (about 1 cm), no
    // step: the render must see it at once.
    let step = 5.0 * 0.3 / k.fx;
    let moved = Isometry3::from_parts(
        Translation3::from(cube.translation.vector + Vector3::new(step, 0.0, 0.0)),
        cube.rotation,
    );
    sim.set_object_pose(0, &moved).unwrap();
    let after = sim.render_depth(&cam).unwrap();
    let label = object_label(0);
    let mean_pixel = |f: &dex_sim::DepthFrame| {
        let (mut su, mut sv, mut n) = (0.0, 0.0, 0.0);
        for ((v, u), l) in f.segmentation.indexed_iter() {
            if *l == label {
                su += u as f64;
                sv += v as f64;
                n += 1.0;
            }
        }
        (su / n, sv / n)
    };
    let (u0, v0) = mean_pixel(&before);
    let (u1, v1) = mean_pixel(&after);
    // Where that step lands in this image.
    let shift = cam
        .pose
        .inverse_transform_vector(&Vector3::new(step, 0.0, 0.0));
    let expect_px = shift * k.fx / 0.3;
    assert!(
        (u1 - u0 - expect_px.x).abs() < 1.0 && (v1 - v0 - expect_px.y).abs() < 1.0,
        "moved ({:.2}, {:.2}) px, expected ({:.2}, {:.2})",
        u1 - u0,
        v1 - v0,
        expect_px.x,
        expect_px.y
    );
    // The texture is attached to the cube: the grey level of a top-face point is the
    // same before and after, at the pixel it moved to (up to rounding of the pixel grid).
    let (dx, dy) = (expect_px.x.round() as i64, expect_px.y.round() as i64);
    assert!((expect_px.x - dx as f64).abs() < 0.05 && (expect_px.y - dy as f64).abs() < 0.05);
    let (mut same, mut total) = (0, 0);
    for ((v, u), l) in before.segmentation.indexed_iter() {
        let (u2, v2) = (u as i64 + dx, v as i64 + dy);
        if *l != label || u2 < 0 || v2 < 0 || u2 >= 96 || v2 >= 96 {
            continue;
        }
        if after.segmentation[(v2 as usize, u2 as usize)] == label {
            total += 1;
            let d =
                i32::from(before.gray[(v, u)]) - i32::from(after.gray[(v2 as usize, u2 as usize)]);
            same += i32::from(d.abs() <= 2);
        }
    }
    assert!(
        total > 200 && same * 100 >= total * 95,
        "{same}/{total} pixels kept their grey level"
    );
    // And the texture has contrast to track.
    let grey: Vec<u8> = before
        .segmentation
        .indexed_iter()
        .filter(|(_, l)| **l == label)
        .map(|(i, _)| before.gray[i])
        .collect();
    let (lo, hi) = (grey.iter().min().unwrap(), grey.iter().max().unwrap());
    assert!(hi - lo > 100, "object grey levels {lo}..{hi}");
}

fn bad_input_is_an_error_and_changes_nothing(build: Build) {
    let mut sim = cube_scene(build, 1.0, SimConfig::default());
    let before = sim.joint_targets().to_vec();
    assert!(matches!(
        sim.set_joint_targets(&[0.0; 3]),
        Err(Error::LengthMismatch { .. })
    ));
    let mut nan = before.clone();
    nan[4] = f64::NAN;
    assert!(matches!(
        sim.set_joint_targets(&nan),
        Err(Error::NotFinite { index: 4, .. })
    ));
    assert_eq!(sim.joint_targets(), &before[..]);
    assert!(sim.object_state(3).is_err());
    let mut bad = ObjectSpec::cube(0.05, 0.1);
    bad.mass = 0.0;
    let pose = Isometry3::translation(0.0, 0.0, 0.2);
    assert!(sim.set_objects(&[bad], &[pose]).is_err());
    assert_eq!(sim.objects().len(), 1, "a bad object replaces nothing");
    assert!(matches!(
        ObjectSpec::named("/nonexistent/teapot.obj"),
        Err(Error::Io { .. })
    ));
    let config = SimConfig {
        dt: -1.0,
        ..SimConfig::default()
    };
    assert!(build(leap(), &[], &[], config).is_err());
    assert!(sim.set_gravity(Vector3::new(f64::NAN, 0.0, 0.0)).is_err());
}

fn targets_beyond_the_limits_are_clamped(build: Build) {
    let mut sim = build(leap(), &[], &[], SimConfig::default()).unwrap();
    let limits = sim.model().joint_limits();
    let far: Vec<f64> = limits.iter().map(|l| l.upper + 1.0).collect();
    sim.set_joint_targets(&far).unwrap();
    for (t, l) in sim.joint_targets().iter().zip(&limits) {
        assert_eq!(*t, l.upper);
    }
}

fn allegro_and_convex_hulls_simulate(build: Build) {
    let model = HandModel::allegro_right();
    let config = SimConfig::for_hand(&model);
    let hull = ObjectSpec::new(
        "tetra",
        dex_sim::ObjectShape::ConvexHull {
            points: vec![
                [0.02, 0.02, 0.02],
                [-0.02, -0.02, 0.02],
                [-0.02, 0.02, -0.02],
                [0.02, -0.02, -0.02],
            ],
        },
        0.05,
    );
    let pose = rest_pose_on_palm(&model, &config.hand_pose, hull.shape.half_height(), 0.01);
    let mut sim = build(model, &[hull], &[pose], config).unwrap();
    for _ in 0..50 {
        sim.step().unwrap();
    }
    let s = sim.object_state(0).unwrap();
    assert!(s.pose.translation.z > 0.1, "{}", s.pose.translation.z);
    assert!(s.linear_velocity.norm() < 0.05);
}

/// Joint 2 (index MCP flexion) moved for 0.1 s from the middle of its range, without
/// gravity or PD, under a constant torque; the hand's other settings as given.
fn torque_push(build: Build, tau: f64, armature: f64, friction: f64) -> (f64, f64) {
    let model = leap();
    let config = SimConfig {
        gravity: Vector3::zeros(),
        substeps: 1,
        ..SimConfig::for_hand(&model)
    };
    let mut sim = build(model.clone(), &[], &[], config).unwrap();
    let mid: Vec<f64> = model.joint_limits().iter().map(|l| l.mid()).collect();
    sim.set_joint_positions(&mid).unwrap();
    sim.set_pd_gains(&[0.0; 16], &[0.0; 16]).unwrap();
    sim.set_joint_damping(&[0.0; 16]).unwrap();
    sim.set_joint_armature(&[armature; 16]).unwrap();
    sim.set_joint_friction(&[friction; 16]).unwrap();
    let mut efforts = [0.0; 16];
    efforts[2] = tau;
    sim.set_joint_efforts(&efforts).unwrap();
    for _ in 0..50 {
        sim.step().unwrap();
    }
    let js = sim.joint_state();
    (js.q[2] - mid[2], js.effort[2])
}

fn joints_take_feed_forward_torques_armature_and_dry_friction(build: Build) {
    // Without torque the joint still drifts a little (≈ −5 mrad in 0.1 s: contacts of
    // the limp hand at mid-range); displacements are measured from that.
    let (still, _) = torque_push(build, 0.0, 1e-4, 0.0);
    let push = |tau, armature, friction| torque_push(build, tau, armature, friction).0 - still;
    let (d1, e1) = (
        push(0.002, 1e-4, 0.0),
        torque_push(build, 0.002, 1e-4, 0.0).1,
    );
    let d2 = push(0.004, 1e-4, 0.0);
    let dn = push(-0.002, 1e-4, 0.0);
    assert_eq!(e1, 0.002, "the effort reported is the torque applied");
    assert!(d1 > 0.01 && dn < -0.01, "{d1} {dn}");
    // Twice the torque, twice the displacement (free motion from rest: ½·τ/I·t²).
    assert!((d2 / d1 - 2.0).abs() < 0.2, "{d1} {d2}");
    // A heavier rotor moves less; friction above the torque holds the joint.
    let heavy = torque_push(build, 0.002, 1e-3, 0.0).0 - torque_push(build, 0.0, 1e-3, 0.0).0;
    assert!(heavy < 0.5 * d1, "{heavy} vs {d1}");
    let held = torque_push(build, 0.002, 1e-4, 0.01).0 - torque_push(build, 0.0, 1e-4, 0.01).0;
    assert!(held.abs() < 0.05 * d1, "{held} vs {d1}");
    // The mock has no torque interface: a typed error.
    let mock = dex_sim::MockSimulator::new(leap(), SimConfig::for_hand(&leap()));
    assert!(matches!(
        mock.unwrap().set_joint_efforts(&[0.0; 16]),
        Err(Error::Unsupported { .. })
    ));
}

fn a_chaos_box_settles_its_balls_onto_the_hand_whichever_way_gravity_points(build: Build) {
    let model = leap();
    for gravity in [Vector3::new(0.0, 0.0, -9.81), Vector3::new(0.0, 0.0, 9.81)] {
        let config = SimConfig {
            gravity,
            substeps: 1,
            ..SimConfig::for_hand(&model)
        };
        let scene = dex_sim::chaos_box(&model, &config, &dex_sim::ChaosBox::default()).unwrap();
        assert_eq!(scene.objects.len(), 40);
        let enclosure = scene.config.enclosure.unwrap();
        let mut sim = build(model.clone(), &scene.objects, &scene.poses, scene.config).unwrap();
        let hold = sim.joint_targets().to_vec();
        sim.set_joint_targets(&hold).unwrap();
        for _ in 0..750 {
            sim.step().unwrap();
        }
        // Every ball stays in the box…
        for i in 0..40 {
            let p = sim.object_state(i).unwrap().pose.translation.vector;
            for a in 0..3 {
                assert!(
                    p[a] > enclosure.min[a] - 1e-3 && p[a] < enclosure.max[a] + 1e-3,
                    "ball {i} at {p:?} left {enclosure:?}"
                );
            }
        }
        // …and some press on the hand.
        let touching: std::collections::BTreeSet<usize> =
            sim.contacts()
                .iter()
                .filter(|c| c.normal_force > 0.0)
                .filter_map(|c| match (c.body1, c.body2) {
                    (BodyRef::Object(i), BodyRef::Link(_))
                    | (BodyRef::Link(_), BodyRef::Object(i)) => Some(i),
                    _ => None,
                })
                .collect();
        eprintln!("gravity {gravity:?}: {} balls on the hand", touching.len());
        assert!(
            touching.len() >= 3,
            "{} balls touch the hand",
            touching.len()
        );
    }
}

on_backends!(
    pd_tracks_a_sinusoid,
    dropped_cube_comes_to_rest_on_the_palm,
    a_closed_grasp_holds_under_tilt_and_the_open_hand_lets_go,
    snapshots_restore_bit_for_bit,
    depth_sees_the_cube_and_the_hand,
    rendering_follows_teleports_and_the_texture_moves_with_the_object,
    bad_input_is_an_error_and_changes_nothing,
    targets_beyond_the_limits_are_clamped,
    allegro_and_convex_hulls_simulate,
    joints_take_feed_forward_torques_armature_and_dry_friction,
    a_chaos_box_settles_its_balls_onto_the_hand_whichever_way_gravity_points,
);
