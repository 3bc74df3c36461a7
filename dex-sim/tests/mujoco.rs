//! The MuJoCo backend (feature `mujoco`): kinematics equal to dex-core's, determinism,
//! state round trips, PD tracking, a cube on the palm, errors; the behaviours that are
//! not engine-specific run on both backends through one generic body.
#![cfg(feature = "mujoco")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::{BodyRef, MujocoSim, ObjectSpec, RapierSim, SimConfig, Simulator, rest_pose_on_palm};
use nalgebra::{Isometry3, Vector3};
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
    };
}

on_both_backends!(
    determinism_and_round_trip,
    targets_and_bad_input,
    pd_tracks_targets,
    cube_rests_on_the_palm
);

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
        &[Isometry3::translation(0.0, 0.0, 0.5); 2],
    )
    .unwrap();
    assert_eq!(sim.objects().len(), 2);
    assert_eq!(sim.joint_state().q, q);
    assert_eq!(sim.joint_targets(), q.as_slice());
    assert_eq!(sim.object_state(1).unwrap().pose.translation.z, 0.5);
    assert!(matches!(
        sim.render_depth(&dex_sim::Camera::overview(8, 8, nalgebra::Point3::origin()).unwrap()),
        Err(dex_sim::Error::Unsupported { .. })
    ));
}
