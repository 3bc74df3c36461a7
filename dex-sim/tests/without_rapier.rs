//! A build of dex-sim without its `rapier` feature: tasks on the mock still work, and
//! asking for physics is a typed error naming the feature, never a silent fallback.
//! Run with `cargo test -p dex-sim --no-default-features --test without_rapier`.
#![cfg(not(feature = "rapier"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::{Env, Error, TaskConfig, make_env};

#[test]
fn physics_asked_for_without_the_rapier_feature_is_a_typed_error() {
    for &task in dex_sim::TASK_NAMES {
        if task == "anypose-proxy" {
            // Physics-free: it builds and steps without any backend.
            let mut env = make_env(task, HandModel::leap_right(), TaskConfig::default()).unwrap();
            env.reset(Some(1)).unwrap();
            env.step(&[0.0; 6]).unwrap();
            continue;
        }
        match make_env(task, HandModel::leap_right(), TaskConfig::default()) {
            Err(Error::FeatureDisabled { feature, .. }) => assert_eq!(feature, "rapier"),
            Err(e) => panic!("{task}: expected FeatureDisabled, got {e}"),
            Ok(_) => panic!("{task}: built without physics"),
        }
    }
}

#[test]
fn tasks_on_the_kinematic_mock_still_build_and_step() {
    let config = TaskConfig {
        mock_physics: true,
        ..TaskConfig::default()
    };
    let mut env = make_env("reach", HandModel::leap_right(), config).unwrap();
    env.reset(Some(1)).unwrap();
    let dof = env.action_space().dim();
    env.step(&vec![0.0; dof]).unwrap();
    assert_eq!(env.simulator().unwrap().backend(), "mock");
}
