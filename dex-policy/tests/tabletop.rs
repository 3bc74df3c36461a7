//! The scripted teacher of `anypose-table`: it grasps, lifts and carries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_policy::{ActMode, Policy, TabletopExpert, TabletopExpertConfig};
use dex_sim::{AnyposeTableConfig, AnyposeTabletop, Env, ObjectSpec, TaskConfig};
use ndarray::Array2;
use rand::SeedableRng;

fn task() -> TaskConfig {
    TaskConfig {
        episode_steps: 200,
        ..TaskConfig::default()
    }
}

/// Runs the expert for `steps` steps from `seed`; returns the largest lift (m), the
/// goals completed, and every action.
fn run(params: &AnyposeTableConfig, seed: u64, steps: usize) -> (f64, f64, Vec<Vec<f32>>) {
    let model = HandModel::leap_right();
    let mut expert =
        TabletopExpert::new(&model, &task(), params, TabletopExpertConfig::default()).unwrap();
    let mut env = AnyposeTabletop::new(model, task(), params.clone()).unwrap();
    let (obs, _) = env.reset(Some(seed)).unwrap();
    let mut state = obs.state;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let (mut lift, mut goals, mut actions) = (0.0f64, 0.0, Vec::new());
    for _ in 0..steps {
        let o = Array2::from_shape_vec((1, state.len()), state).unwrap();
        let a = expert
            .act(o.view(), ActMode::Deterministic, &mut rng)
            .unwrap();
        let a = a.row(0).to_vec();
        let step = env.step(&a).unwrap();
        actions.push(a);
        lift = lift.max(step.info.get("lift").unwrap());
        goals = step.info.get("goals").unwrap();
        state = step.obs.state;
        if step.terminated || step.truncated {
            break;
        }
    }
    (lift, goals, actions)
}

#[test]
fn the_expert_grasps_a_cube_lifts_it_and_completes_goals() {
    let params = AnyposeTableConfig {
        fixed_object: Some(ObjectSpec::cube(0.05, 0.1)),
        ..AnyposeTableConfig::default()
    };
    for seed in [3, 5] {
        let (lift, goals, actions) = run(&params, seed, 120);
        assert!(lift > 0.15, "seed {seed}: lifted only {lift} m");
        assert!(goals >= 1.0, "seed {seed}: no goal completed");
        // Dex4D's action: six wrist deltas and the hand's targets, all in [-1, 1].
        assert!(actions.iter().all(|a| a.len() == 22));
        assert!(actions.iter().flatten().all(|v| (-1.0..=1.0).contains(v)));
    }
}

#[test]
fn the_expert_is_deterministic_for_a_seed() {
    let params = AnyposeTableConfig::default();
    let (l1, g1, a1) = run(&params, 7, 40);
    let (l2, g2, a2) = run(&params, 7, 40);
    assert_eq!((l1, g1), (l2, g2));
    assert_eq!(a1, a2);
}

#[test]
fn bad_settings_are_clear_errors() {
    let model = HandModel::leap_right();
    let params = AnyposeTableConfig::default();
    for bad in [
        TabletopExpertConfig {
            squeeze: -0.01,
            ..TabletopExpertConfig::default()
        },
        TabletopExpertConfig {
            grip_depth: 1.5,
            ..TabletopExpertConfig::default()
        },
        TabletopExpertConfig {
            close_steps: 0,
            ..TabletopExpertConfig::default()
        },
        TabletopExpertConfig {
            gain: 0.0,
            ..TabletopExpertConfig::default()
        },
    ] {
        let err = TabletopExpert::new(&model, &task(), &params, bad).unwrap_err();
        assert!(err.to_string().contains("tabletop expert"), "{err}");
    }
    // A batch of the wrong width is refused, not read past its end.
    let mut expert =
        TabletopExpert::new(&model, &task(), &params, TabletopExpertConfig::default()).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let wrong = Array2::<f32>::zeros((1, 10));
    assert!(
        expert
            .act(wrong.view(), ActMode::Deterministic, &mut rng)
            .is_err()
    );
}
