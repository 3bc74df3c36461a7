//! The reach task's observation rebuilt outside the task, from what a driver measures
//! (joint state) and what the controller sent (targets): the path a policy trained in
//! simulation takes on a real hand.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::{Env, FingertipReach, Proprioception, ReachConfig, TaskConfig, reach_state};
use nalgebra::Point3;

#[test]
fn proprioception_and_reach_state_rebuild_the_tasks_observation_exactly() {
    let model = HandModel::leap_right();
    let task = TaskConfig::default();
    let mut env = FingertipReach::new(model.clone(), task.clone(), ReachConfig::default()).unwrap();
    let (obs, _) = env.reset(Some(11)).unwrap();
    let mut proprio = Proprioception::new(&model, task.history).unwrap();
    let palm = env.simulator().unwrap().config().hand_pose.inverse();
    let goals: Vec<Point3<f64>> = env.goals().iter().map(|g| palm * g).collect();
    let rebuild = |env: &FingertipReach, proprio: &mut Proprioception| {
        let sim = env.simulator().unwrap();
        let js = sim.joint_state();
        proprio.record(&js.q, sim.joint_targets()).unwrap();
        let mut out = Vec::new();
        proprio.write(&js.qdot, &mut out).unwrap();
        // Fingertips by forward kinematics of the measured angles, as on hardware.
        let tips = model.fingertip_positions(&js.q).unwrap();
        reach_state(&tips, &goals, &mut out);
        out
    };
    let close = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!((x - y).abs() < 1e-5, "value {i}: task {x}, rebuilt {y}");
        }
    };
    close(&obs.state, &rebuild(&env, &mut proprio));
    let dof = model.dof();
    for k in 0..8 {
        let action: Vec<f32> = (0..dof)
            .map(|i| (((i + k) % 5) as f32 - 2.0) * 0.3)
            .collect();
        let step = env.step(&action).unwrap();
        close(&step.obs.state, &rebuild(&env, &mut proprio));
        if step.terminated || step.truncated {
            break;
        }
    }
}

#[test]
fn proprioception_refuses_bad_lengths_and_an_empty_history() {
    let model = HandModel::leap_right();
    assert!(Proprioception::new(&model, 0).is_err());
    let mut p = Proprioception::new(&model, 2).unwrap();
    assert_eq!(p.dim(), 16 * 5);
    let mut out = Vec::new();
    assert!(
        p.write(&[0.0; 16], &mut out).is_err(),
        "nothing recorded yet"
    );
    assert!(p.record(&[0.0; 3], &[0.0; 16]).is_err());
    p.record(&[0.0; 16], &[0.0; 16]).unwrap();
    assert!(p.write(&[0.0; 15], &mut out).is_err());
    p.write(&[0.0; 16], &mut out).unwrap();
    assert_eq!(out.len(), p.dim());
}

#[test]
fn action_targets_outside_the_task_give_the_targets_the_task_sends() {
    use dex_sim::ActionMode;
    let model = HandModel::leap_right();
    let limits = model.joint_limits();
    for (mode, lead) in [
        (ActionMode::Absolute, 0.0),
        (ActionMode::Relative, 0.0),
        (ActionMode::Relative, 0.1),
    ] {
        let task = TaskConfig {
            mock_physics: true,
            action_mode: mode,
            relative_scale: 0.25,
            relative_lead: lead,
            ..TaskConfig::default()
        };
        let mut env =
            FingertipReach::new(model.clone(), task.clone(), ReachConfig::default()).unwrap();
        env.reset(Some(5)).unwrap();
        let mut previous = env.simulator().unwrap().joint_targets().to_vec();
        for k in 0..6 {
            let action: Vec<f32> = (0..model.dof())
                .map(|i| (((i * 3 + k) % 7) as f32 - 3.0) / 3.0)
                .collect();
            let q = env.simulator().unwrap().joint_state().q;
            let want = task
                .action_targets(&limits, &action, &previous, Some(&q))
                .unwrap();
            let step = env.step(&action).unwrap();
            let sent = env.simulator().unwrap().joint_targets().to_vec();
            for (i, (w, s)) in want.iter().zip(&sent).enumerate() {
                assert!(
                    (w - s).abs() < 1e-12,
                    "{mode:?} lead {lead}: joint {i}: {w} vs {s}"
                );
            }
            previous = want;
            if step.terminated || step.truncated {
                break;
            }
        }
    }
}

#[test]
fn action_targets_refuse_bad_lengths_and_nan() {
    let model = HandModel::leap_right();
    let limits = model.joint_limits();
    let task = TaskConfig::default();
    let prev = vec![0.0; 16];
    assert!(
        task.action_targets(&limits, &[0.0; 15], &prev, None)
            .is_err()
    );
    assert!(
        task.action_targets(&limits, &[0.0; 16], &prev[..3], None)
            .is_err()
    );
    assert!(
        task.action_targets(&limits, &[0.0; 16], &prev, Some(&[0.0; 2]))
            .is_err()
    );
    let mut a = vec![0.0f32; 16];
    a[4] = f32::NAN;
    assert!(task.action_targets(&limits, &a, &prev, None).is_err());
    // Far outside [-1, 1] the targets still stay within the limits.
    let t = task
        .action_targets(&limits, &[50.0; 16], &prev, None)
        .unwrap();
    for (v, l) in t.iter().zip(&limits) {
        assert!(*v <= l.upper && *v >= l.lower);
    }
}
