//! Dex4D's multi-waypoint tasks on the wrist-mounted hand (`AnyposeTableConfig::task`):
//! the waypoints each task is made of, the task moving through them when the object
//! reaches them, and a goal set from outside (a closed loop on tracked points).
#![cfg(feature = "rapier")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::nalgebra::{Isometry3, Translation3, UnitQuaternion, Vector3};
use dex_sim::{AnyposeTableConfig, AnyposeTabletop, Env, TableTask, TaskConfig};

fn task(kind: TableTask) -> AnyposeTabletop {
    let params = AnyposeTableConfig {
        task: Some(kind),
        ..AnyposeTableConfig::default()
    };
    // The hand parked 30 cm higher, out of the way of objects teleported to their goals.
    let config = TaskConfig {
        episode_steps: 100,
        wrist_start: [0.0, 0.0, 0.3, 0.0, 0.0, 0.0],
        ..TaskConfig::default()
    };
    AnyposeTabletop::new(HandModel::leap_right(), config, params).unwrap()
}

#[test]
fn each_task_is_made_of_the_poses_it_names() {
    let start = Isometry3::from_parts(
        Translation3::new(0.02, -0.01, 0.43),
        UnitQuaternion::from_axis_angle(&Vector3::z_axis(), 0.4),
    );
    let d = Vector3::new(0.6, 0.8, 0.0);
    let table = 0.4;
    let carry = TableTask::Carry.waypoints(&start, table, &d);
    assert_eq!(carry.len(), 5);
    assert_eq!(carry[0], start);
    assert!(
        (carry[1].translation.vector.z - 0.53).abs() < 1e-12,
        "lifted 10 cm"
    );
    let moved = carry[4].translation.vector - start.translation.vector;
    assert!((moved - d * 0.16).norm() < 1e-12, "set down 16 cm along d");
    assert!(carry.iter().all(|w| w.rotation == start.rotation));

    let pour = TableTask::Pour.waypoints(&start, table, &d);
    assert_eq!(pour.len(), 5);
    let tilt = |w: &Isometry3<f64>| (w.rotation * start.rotation.inverse()).angle().to_degrees();
    assert!((tilt(&pour[2]) - 45.0).abs() < 1e-9);
    assert!((tilt(&pour[3]) - 90.0).abs() < 1e-9);
    assert!(tilt(&pour[4]) < 1e-9, "stands upright again");
    // Tilted about a horizontal axis across d: the object's up axis leans along d.
    let up = pour[3].rotation * (start.rotation.inverse() * Vector3::z());
    assert!(up.z.abs() < 1e-9 && (up - d).norm() < 1e-9);

    let stack = TableTask::Stack.waypoints(&start, table, &d);
    assert_eq!(stack.len(), 4);
    let block = TableTask::block_centre(&start, table, &d);
    let last = stack[3].translation.vector;
    assert!(
        (last.xy() - block.coords.xy()).norm() < 1e-12,
        "set down over the block"
    );
    // Resting on the block's top as it rested on the table.
    assert!((last.z - (block.z + 0.02) - (start.translation.vector.z - table)).abs() < 1e-12);

    assert_eq!(TableTask::from_name("pour").unwrap(), TableTask::Pour);
    let err = TableTask::from_name("juggle").unwrap_err().to_string();
    assert!(err.contains("carry, pour, stack"), "{err}");
}

#[test]
fn the_task_moves_through_its_waypoints_as_the_object_reaches_them() {
    for kind in [TableTask::Carry, TableTask::Pour, TableTask::Stack] {
        let mut env = task(kind);
        let (_, info) = env.reset(Some(5)).unwrap();
        let plan = env.waypoints().to_vec();
        let at = env.object_pose().unwrap();
        assert!(
            (plan[0].translation.vector - at.translation.vector).norm() < 1e-6
                && plan[0].rotation.angle_to(&at.rotation) < 1e-6,
            "{kind:?} starts where the object is"
        );
        assert_eq!(env.goal_pose(), plan[1]);
        assert_eq!(info.get("waypoint"), Some(1.0));
        assert_eq!(info.get("progress"), Some(0.0));
        let objects = env.simulator().unwrap().objects().len();
        assert_eq!(objects, if kind == TableTask::Stack { 2 } else { 1 });
        // Not reached: nothing moves on.
        let step = env.step(&[0.0; 22]).unwrap();
        assert_eq!(step.info.get("waypoint"), Some(1.0));
        assert!(!step.terminated);
        // Put on each goal in turn (teleported), the object reaches it.
        let n = plan.len() - 1;
        for (k, planned) in plan.iter().enumerate().skip(1) {
            let goal = env.goal_pose();
            assert_eq!(&goal, planned);
            env.simulator_mut()
                .unwrap()
                .set_object_pose(0, &goal)
                .unwrap();
            let step = env.step(&[0.0; 22]).unwrap();
            assert!((step.info.get("progress").unwrap() - k as f64 / n as f64).abs() < 1e-12);
            assert_eq!(step.info.success, k == n, "{kind:?} waypoint {k}");
            assert_eq!(
                step.terminated,
                k == n,
                "the episode ends at the last waypoint"
            );
        }
    }
}

#[test]
fn a_goal_set_from_outside_holds_until_the_caller_moves_it() {
    let mut env = task(TableTask::Carry);
    env.reset(Some(1)).unwrap();
    let plan = env.waypoints().to_vec();
    // A goal off the plan for waypoint 1 (a relative correction would hand one over).
    let goal = Translation3::new(0.01, 0.0, 0.0) * plan[1];
    env.set_goal(goal, 1).unwrap();
    assert_eq!(env.goal_pose(), goal);
    env.simulator_mut()
        .unwrap()
        .set_object_pose(0, &goal)
        .unwrap();
    let step = env.step(&[0.0; 22]).unwrap();
    // Reached (judged on the true points against the goal in force), but the task does
    // not move on by itself.
    assert_eq!(step.info.get("progress"), Some(0.25));
    assert_eq!(step.info.get("waypoint"), Some(1.0));
    assert_eq!(env.goal_pose(), goal);
    // The observation as a tracker sees it: the privileged current points are the
    // estimate's.
    let estimate = Translation3::new(0.0, 0.0, 0.05) * goal;
    let obs = env.observe_estimate(&estimate).unwrap();
    let l = env.layout().clone();
    let table = Vector3::new(0.0, 0.0, env.params().table_height);
    let p0 = env.object_points()[0];
    let seen = &obs.state[l.privileged.start..l.privileged.start + 3];
    let want = (estimate * p0).coords - table;
    for c in 0..3 {
        assert!((f64::from(seen[c]) - want[c] * 10.0).abs() < 1e-4);
    }
    // Bad goals are clear errors and change nothing.
    for bad in [0, plan.len()] {
        let err = env.set_goal(plan[1], bad).unwrap_err().to_string();
        assert!(err.contains("waypoint"), "{err}");
    }
    let nan = Isometry3::translation(f64::NAN, 0.0, 0.0);
    assert!(env.set_goal(nan, 2).is_err());
    assert_eq!(env.goal_pose(), goal);
}

#[test]
fn a_non_positive_advance_distance_is_refused() {
    for advance_distance in [0.0, -0.01, f64::NAN] {
        let params = AnyposeTableConfig {
            task: Some(TableTask::Carry),
            advance_distance,
            ..AnyposeTableConfig::default()
        };
        let r = AnyposeTabletop::new(HandModel::leap_right(), TaskConfig::default(), params);
        let err = r.err().expect("refused").to_string();
        assert!(err.contains("advance_distance"), "{err}");
    }
}
