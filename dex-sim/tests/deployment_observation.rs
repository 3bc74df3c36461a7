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
