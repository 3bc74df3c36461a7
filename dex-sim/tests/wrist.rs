//! The 6-DoF wrist, on each backend (rapier; MuJoCo with the `mujoco` feature) from one
//! generic body per behaviour: it reaches its targets, respects its speed and limits,
//! carries the hand's links, keeps the fingers' control, snapshots, stops on a table.
#![cfg(feature = "rapier")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::needless_range_loop)]

use dex_core::HandModel;
use dex_sim::nalgebra::Isometry3;
use dex_sim::{ObjectSpec, SimConfig, Simulator, WristConfig, wrist_pose};

mod common;
use common::Build;

fn sim_on(build: Build) -> Box<dyn Simulator> {
    let model = HandModel::leap_right();
    let config = SimConfig {
        wrist: Some(WristConfig::default()),
        ..SimConfig::for_hand(&model)
    };
    build(model, &[], &[], config).unwrap()
}

/// Steps for `seconds` of simulated time.
fn run(sim: &mut dyn Simulator, seconds: f64) {
    let periods = (seconds / sim.config().control_period()).round() as usize;
    for _ in 0..periods {
        sim.step().unwrap();
    }
}

fn the_wrist_reaches_its_target_and_carries_the_palm(build: Build) {
    let mut sim = sim_on(build);
    let target = [0.1, -0.05, 0.15, 0.4, -0.3, 0.2];
    sim.set_wrist_target(&target).unwrap();
    run(&mut *sim, 1.5);
    let w = sim.wrist_state().unwrap();
    for i in 0..6 {
        let tol = if i < 3 { 0.003 } else { 0.02 };
        assert!(
            (w.position[i] - target[i]).abs() < tol,
            "coordinate {i}: {} against {}",
            w.position[i],
            target[i]
        );
        assert!(
            w.velocity[i].abs() < 0.05,
            "coordinate {i} still moving: {}",
            w.velocity[i]
        );
    }
    assert_eq!(w.requested, target);
    // The palm link sits where the wrist's coordinates put it.
    let root = sim.model().root().0;
    let palm = sim.link_poses()[root];
    let expected = wrist_pose(&sim.config().hand_pose, &w.position);
    assert!((palm.translation.vector - expected.translation.vector).norm() < 1e-3);
    assert!(palm.rotation.angle_to(&expected.rotation) < 1e-3);
}

fn the_wrist_moves_no_faster_than_its_speed_and_stays_in_its_limits(build: Build) {
    let mut sim = sim_on(build);
    let config = WristConfig::default();
    let period = sim.config().control_period();
    // Far beyond the limits: clamped, then approached at the speed limit.
    sim.set_wrist_target(&[5.0, 0.0, 0.0, 0.0, 0.0, -9.0])
        .unwrap();
    let w = sim.wrist_state().unwrap();
    assert_eq!(w.requested[0], config.upper[0]);
    assert_eq!(w.requested[5], config.lower[5]);
    let mut last = w.position;
    for _ in 0..40 {
        sim.step().unwrap();
        let w = sim.wrist_state().unwrap();
        for i in 0..6 {
            let moved = (w.position[i] - last[i]).abs();
            // The drive lags its rate-limited target by a little; never more than the
            // speed allows over a period, plus a small overshoot.
            let slack = if i < 3 { 0.002 } else { 0.01 };
            assert!(
                moved <= config.max_speed[i] * period + slack,
                "coordinate {i} moved {moved} in one period"
            );
            assert!(
                w.position[i] <= config.upper[i] + slack,
                "coordinate {i} at {} past its limit {}",
                w.position[i],
                config.upper[i]
            );
            assert!(w.position[i] >= config.lower[i] - slack);
        }
        last = w.position;
    }
    // After 2 s it is at the clamped target.
    let w = sim.wrist_state().unwrap();
    assert!(
        (w.position[0] - config.upper[0]).abs() < 0.005,
        "{:?}",
        w.position
    );
}

fn deltas_integrate_into_the_target(build: Build) {
    let mut sim = sim_on(build);
    let mut target = [0.0; 6];
    for _ in 0..10 {
        for (t, d) in target.iter_mut().zip([0.01, 0.0, 0.005, 0.02, 0.0, 0.0]) {
            *t += d;
        }
        sim.set_wrist_target(&target).unwrap();
        sim.step().unwrap();
    }
    run(&mut *sim, 0.5);
    let w = sim.wrist_state().unwrap();
    assert!((w.position[0] - 0.1).abs() < 0.003);
    assert!((w.position[2] - 0.05).abs() < 0.003);
    assert!((w.position[3] - 0.2).abs() < 0.02);
}

fn the_fingers_still_follow_their_targets_on_a_moving_wrist(build: Build) {
    let mut sim = sim_on(build);
    let mut q = sim.joint_state().q;
    let model = sim.model().clone();
    for (i, j) in model
        .joints()
        .iter()
        .filter(|j| j.dof.is_some())
        .enumerate()
    {
        if let Some(l) = j.limits {
            q[i] = (0.3f64).clamp(l.lower, l.upper);
        }
    }
    sim.set_joint_targets(&q).unwrap();
    sim.set_wrist_target(&[0.2, 0.1, 0.3, 1.0, 0.0, 0.0])
        .unwrap();
    run(&mut *sim, 1.5);
    let js = sim.joint_state();
    let err =
        js.q.iter()
            .zip(&q)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
    assert!(err < 0.1, "largest finger tracking error {err} rad");
}

fn a_fixed_hand_has_no_wrist_and_says_so(build: Build) {
    let model = HandModel::leap_right();
    let mut sim = build(model.clone(), &[], &[], SimConfig::for_hand(&model)).unwrap();
    assert!(sim.wrist_state().is_none());
    let err = sim.set_wrist_target(&[0.0; 6]).unwrap_err();
    assert!(err.to_string().contains("wrist"), "{err}");
    let mut on_wrist = sim_on(build);
    assert!(
        on_wrist
            .set_wrist_target(&[f64::NAN, 0.0, 0.0, 0.0, 0.0, 0.0])
            .is_err()
    );
    let bad = SimConfig {
        wrist: Some(WristConfig {
            max_speed: [0.0; 6],
            ..WristConfig::default()
        }),
        ..SimConfig::for_hand(&model)
    };
    assert!(build(model, &[], &[], bad).is_err());
}

fn snapshots_restore_the_wrist_bit_for_bit(build: Build) {
    let mut sim = sim_on(build);
    sim.set_wrist_target(&[0.05, 0.0, 0.1, 0.0, 0.3, 0.0])
        .unwrap();
    run(&mut *sim, 0.2);
    let saved = sim.save_state();
    run(&mut *sim, 0.3);
    let digest = sim.state_digest();
    let w = sim.wrist_state().unwrap();
    sim.restore_state(&saved).unwrap();
    run(&mut *sim, 0.3);
    assert_eq!(sim.state_digest(), digest);
    assert_eq!(sim.wrist_state().unwrap(), w);
}

fn a_teleport_puts_the_wrist_at_rest_where_asked(build: Build) {
    let mut sim = sim_on(build);
    let at = [0.05, 0.1, 0.2, -0.5, 0.2, 0.1];
    sim.set_wrist_position(&at).unwrap();
    let w = sim.wrist_state().unwrap();
    for i in 0..6 {
        assert!((w.position[i] - at[i]).abs() < 1e-5, "{:?}", w.position);
    }
    assert_eq!(w.velocity, [0.0; 6]);
    assert_eq!(w.target, at);
    let palm = sim.link_poses()[sim.model().root().0];
    let expected = wrist_pose(&sim.config().hand_pose, &at);
    assert!((palm.translation.vector - expected.translation.vector).norm() < 1e-5);
    // It stays there (but for the sag under the hand's weight).
    run(&mut *sim, 0.5);
    let w = sim.wrist_state().unwrap();
    for i in 0..6 {
        assert!((w.position[i] - at[i]).abs() < 0.01, "{:?}", w.position);
    }
}

#[test]
fn any_task_runs_on_the_wrist_with_dex4d_shaped_actions() {
    use dex_sim::{Env, TaskConfig, make_env};
    let fixed = make_env("reach", HandModel::leap_right(), TaskConfig::default()).unwrap();
    let config = TaskConfig {
        wrist: Some(WristConfig::default()),
        wrist_start: [0.0, 0.0, 0.05, 0.0, 0.0, 0.0],
        ..TaskConfig::default()
    };
    let mut env = make_env("reach", HandModel::leap_right(), config.clone()).unwrap();
    // Six wrist deltas, then the 16 joints; the wrist's coordinates and rates observed.
    assert_eq!(env.action_space().dim(), 6 + fixed.action_space().dim());
    assert_eq!(
        env.observation_spec().state.dim(),
        fixed.observation_spec().state.dim() + 12
    );
    env.reset(Some(1)).unwrap();
    let w = env.simulator().unwrap().wrist_state().unwrap();
    assert!(
        (w.position[2] - 0.05).abs() < 1e-5,
        "episodes start at wrist_start"
    );
    // Ten steps of +1 on x: the target is the sum of the deltas.
    let mut action = vec![0.0f32; 22];
    action[0] = 1.0;
    for _ in 0..10 {
        env.step(&action).unwrap();
    }
    let w = env.simulator().unwrap().wrist_state().unwrap();
    assert!((w.requested[0] - 10.0 * config.wrist_step[0]).abs() < 1e-9);
    assert!(w.position[0] > 0.15, "the wrist followed: {:?}", w.position);
    // A new episode puts the wrist back.
    env.reset(None).unwrap();
    let w = env.simulator().unwrap().wrist_state().unwrap();
    assert!(w.position[0].abs() < 1e-5);
    // Asking a task for a wrist on a simulator without one is a clear error.
    let mock = TaskConfig {
        mock_physics: true,
        ..config
    };
    let err = make_env("reach", HandModel::leap_right(), mock)
        .err()
        .unwrap();
    assert!(err.to_string().contains("wrist"), "{err}");
}

fn a_table_stops_the_hand_and_holds_objects(build: Build) {
    use dex_sim::nalgebra::Vector3;
    use dex_sim::{BodyRef, Table};
    let model = HandModel::leap_right();
    let base = SimConfig::for_hand(&model);
    // The table's top 5 cm below the lowest link origin of the open hand.
    let probe = build(model.clone(), &[], &[], base.clone()).unwrap();
    let lowest = probe
        .link_poses()
        .iter()
        .map(|p| p.translation.vector.z)
        .fold(f64::INFINITY, f64::min);
    let top = lowest - 0.05;
    let hand = base.hand_pose.translation.vector;
    let config = SimConfig {
        wrist: Some(WristConfig::default()),
        table: Some(Table {
            top_center: [hand.x, hand.y, top],
            half_extents: [0.4, 0.4],
            friction: 0.8,
        }),
        ..base
    };
    let cube = ObjectSpec::cube(0.05, 0.1);
    let beside = Isometry3::translation(hand.x + 0.25, hand.y, top + 0.1);
    let mut sim = build(model, &[cube], &[beside], config).unwrap();
    // The wrist coordinate (and sign) that moves the hand down in the world.
    let (axis, sign) = (0..3)
        .map(|i| {
            let world = sim.config().hand_pose.rotation * Vector3::ith(i, 1.0);
            (i, world.z)
        })
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(i, z)| (i, -z.signum()))
        .unwrap();
    let mut target = [0.0; 6];
    target[axis] = sign * 0.1; // 10 cm down: 5 cm into the table unless it stops the hand
    sim.set_wrist_target(&target).unwrap();
    run(&mut *sim, 1.0);
    let lowest = sim
        .link_poses()
        .iter()
        .map(|p| p.translation.vector.z)
        .fold(f64::INFINITY, f64::min);
    assert!(
        lowest > top - 0.01,
        "a link origin at {lowest}, the table top at {top}"
    );
    let touching = sim.contacts().iter().any(|c| {
        matches!(
            (c.body1, c.body2),
            (BodyRef::Link(_), BodyRef::Static) | (BodyRef::Static, BodyRef::Link(_))
        )
    });
    assert!(touching, "the hand rests on the table");
    // The cube dropped beside the hand lies on the table.
    let z = sim.object_state(0).unwrap().pose.translation.vector.z;
    assert!(
        (z - (top + 0.025)).abs() < 0.005,
        "cube centre at {z}, table top {top}"
    );
}

#[test]
fn the_tabletop_anypose_task_lifts_goals_and_counts_held_ones() {
    use dex_sim::{AnyposeTableConfig, AnyposeTabletop, Env, TaskConfig};
    let params = AnyposeTableConfig::default();
    let config = TaskConfig {
        episode_steps: 200,
        ..TaskConfig::default()
    };
    let mut env = AnyposeTabletop::new(HandModel::leap_right(), config, params.clone()).unwrap();
    let layout = env.layout().clone();
    assert_eq!(env.action_space().dim(), 22);
    assert_eq!(env.observation_spec().state.dim(), layout.privileged.end);
    let (obs, info) = env.reset(Some(2)).unwrap();
    assert_eq!(obs.state.len(), layout.privileged.end);
    // The first goal lifts the object by 20 cm: every point 0.2 m from its goal.
    assert!((info.get("mean_point_distance").unwrap() - params.first_lift).abs() < 0.01);
    // The object rests on the table, under the hand.
    let sim = env.simulator().unwrap();
    let object = sim.object_state(0).unwrap().pose;
    assert!((object.translation.vector.z - params.table_height).abs() < 0.1);
    let palm = sim.link_poses()[sim.model().root().0];
    assert!(palm.translation.vector.z > object.translation.vector.z + 0.1);
    let goal = env.goal_pose();
    assert!(
        (goal.translation.vector.z - object.translation.vector.z - params.first_lift).abs() < 1e-5
    );
    // Lowering the hand onto the object brings it near (the gated reward terms start).
    let far = env.step(&[0.0; 22]).unwrap();
    assert_eq!(far.info.get("near"), Some(0.0));
    let mut down = [0.0f32; 22];
    down[2] = -1.0;
    let mut near = 0.0;
    for _ in 0..8 {
        near = env.step(&down).unwrap().info.get("near").unwrap();
    }
    assert_eq!(near, 1.0, "the hand lowered 16 cm is near the object");
    // Held at the goal for 30 steps (teleported there each step), the goal is completed
    // and replaced.
    let mut last = None;
    for _ in 0..params.hold_steps {
        let g = env.goal_pose();
        env.simulator_mut().unwrap().set_object_pose(0, &g).unwrap();
        last = Some(env.step(&[0.0; 22]).unwrap());
    }
    let last = last.unwrap();
    assert_eq!(last.info.get("goals"), Some(1.0));
    assert!(last.info.success);
    assert!((env.goal_pose().translation.vector - goal.translation.vector).norm() > 1e-6);
    // Observations are finite, and the student's hidden points are zeros in both sets.
    assert!(last.obs.state.iter().all(|v| v.is_finite()));
    let cur = &last.obs.state[layout.current.clone()];
    let gol = &last.obs.state[layout.goal.clone()];
    for i in 0..params.slots {
        let c0 = cur[3 * i..3 * i + 3].iter().all(|v| *v == 0.0);
        let g0 = gol[3 * i..3 * i + 3].iter().all(|v| *v == 0.0);
        assert_eq!(c0, g0);
    }
}

on_backends!(
    the_wrist_reaches_its_target_and_carries_the_palm,
    the_wrist_moves_no_faster_than_its_speed_and_stays_in_its_limits,
    deltas_integrate_into_the_target,
    the_fingers_still_follow_their_targets_on_a_moving_wrist,
    a_fixed_hand_has_no_wrist_and_says_so,
    snapshots_restore_the_wrist_bit_for_bit,
    a_teleport_puts_the_wrist_at_rest_where_asked,
    a_table_stops_the_hand_and_holds_objects
);

#[test]
fn the_tabletop_privileged_block_ends_with_the_object_box_and_the_wrist_base_is_the_palm() {
    use dex_sim::{AnyposeTableConfig, AnyposeTabletop, Env, ObjectSpec, TaskConfig};
    let params = AnyposeTableConfig {
        fixed_object: Some(ObjectSpec::cube(0.06, 0.1)),
        ..AnyposeTableConfig::default()
    };
    let model = HandModel::leap_right();
    let mut env =
        AnyposeTabletop::new(model.clone(), TaskConfig::default(), params.clone()).unwrap();
    let (obs, _) = env.reset(Some(4)).unwrap();
    let end = env.layout().privileged.end;
    let tail = &obs.state[end - 6..end];
    for (k, v) in tail.iter().enumerate() {
        let want = if k < 3 { -0.3 } else { 0.3 };
        assert!((v - want).abs() < 1e-6, "box entry {k}: {v}, want {want}");
    }
    // At wrist coordinates 0 the palm sits at the wrist's base (table frame + table).
    let sim = env.simulator().unwrap();
    let palm = sim.link_poses()[model.root().0];
    let base = params.wrist_base(&model);
    let table = nalgebra::Vector3::new(0.0, 0.0, params.table_height);
    assert!((palm.translation.vector - (base.translation.vector + table)).norm() < 0.005);
    assert!(palm.rotation.angle_to(&base.rotation) < 0.01);
}
