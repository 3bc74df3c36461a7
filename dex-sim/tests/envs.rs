//! Tasks, rewards, successes, `VecEnv` determinism and configuration errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dex_core::HandModel;
use dex_sim::{
    AnyposeConfig, AnyposeToAnypose, AutoReset, Env, Error, FingertipReach, InHandRotation,
    ObjectSpec, Randomization, ReachConfig, RotateConfig, TaskConfig, VecEnv, make_env,
};
use nalgebra::{UnitQuaternion, Vector3};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn mock_config() -> TaskConfig {
    TaskConfig {
        mock_physics: true,
        ..TaskConfig::default()
    }
}

/// The absolute action that holds the current joint targets.
fn hold_action(env: &dyn Env) -> Vec<f32> {
    let sim = env.simulator().unwrap();
    sim.joint_targets()
        .iter()
        .zip(sim.model().joint_limits())
        .map(|(t, l)| ((t - l.mid()) / ((l.upper - l.lower) / 2.0)) as f32)
        .collect()
}

#[test]
fn reach_succeeds_when_the_fingertips_are_on_their_targets() {
    let mut env = FingertipReach::new(
        HandModel::leap_right(),
        TaskConfig::default(),
        ReachConfig::default(),
    )
    .unwrap();
    env.reset(Some(1)).unwrap();
    // Targets far away: a step is not a success and the reward is the distance penalty.
    let s = env.step(&hold_action(&env)).unwrap();
    assert!(!s.info.success && !s.terminated);
    let mean = s.info.get("mean_distance").unwrap();
    assert!((s.reward + 20.0 * mean).abs() < 1e-12);
    // Targets where the tips are: success, bonus, termination.
    let tips = env.simulator().unwrap().fingertip_positions();
    env.set_goals(tips).unwrap();
    let s = env.step(&hold_action(&env)).unwrap();
    assert!(s.info.success && s.terminated, "{:?}", s.info);
    assert!(s.reward > 9.0, "{}", s.reward);
    // Stepping a finished episode needs a reset.
    assert!(matches!(
        env.step(&hold_action(&env)),
        Err(Error::NeedsReset { .. })
    ));
}

#[test]
fn rotation_reward_follows_the_angular_velocity_about_the_axis() {
    let mut env = InHandRotation::new(
        HandModel::leap_right(),
        mock_config(),
        RotateConfig::default(),
    )
    .unwrap();
    env.reset(Some(3)).unwrap();
    let period = 0.05;
    let spin = |env: &mut InHandRotation, angle: f64| {
        let sim = env.simulator_mut().unwrap();
        let mut pose = sim.object_state(0).unwrap().pose;
        pose.rotation = UnitQuaternion::from_axis_angle(&Vector3::z_axis(), angle) * pose.rotation;
        sim.set_object_pose(0, &pose).unwrap();
        env.step(&hold_action(env)).unwrap()
    };
    let s = spin(&mut env, 0.02);
    assert!((s.reward - 0.02 / period).abs() < 1e-6, "{}", s.reward);
    let s = spin(&mut env, -0.02);
    assert!((s.reward + 0.02 / period).abs() < 1e-6, "{}", s.reward);
    // Clipped at ±0.5 rad/s.
    let s = spin(&mut env, 0.2);
    assert!((s.reward - 0.5).abs() < 1e-6, "{}", s.reward);
    assert!((s.info.get("rotation").unwrap() - 0.2).abs() < 1e-9);
    // Off-axis rotation is penalised.
    let sim = env.simulator_mut().unwrap();
    let mut pose = sim.object_state(0).unwrap().pose;
    pose.rotation = UnitQuaternion::from_axis_angle(&Vector3::x_axis(), 0.02) * pose.rotation;
    sim.set_object_pose(0, &pose).unwrap();
    let s = env.step(&hold_action(&env)).unwrap();
    assert!(
        (s.reward + 0.3 * 0.02 / period).abs() < 1e-6,
        "{}",
        s.reward
    );
    // Moving the object away drops it.
    let sim = env.simulator_mut().unwrap();
    let mut pose = sim.object_state(0).unwrap().pose;
    pose.translation.vector.z -= 0.1;
    sim.set_object_pose(0, &pose).unwrap();
    let s = env.step(&hold_action(&env)).unwrap();
    assert!(s.terminated && s.info.get("dropped") == Some(1.0));
    assert!(s.info.get("time_to_fall").is_some());
}

#[test]
fn anypose_succeeds_after_holding_the_goal() {
    let params = AnyposeConfig {
        hold_steps: 5,
        ..AnyposeConfig::default()
    };
    let mut env = AnyposeToAnypose::new(HandModel::leap_right(), mock_config(), params).unwrap();
    env.reset(Some(9)).unwrap();
    let goal = env.goal_pose();
    let s = env.step(&hold_action(&env)).unwrap();
    assert!(s.info.get("mean_point_distance").unwrap() > 0.0);
    env.simulator_mut()
        .unwrap()
        .set_object_pose(0, &goal)
        .unwrap();
    for k in 1..=5 {
        let s = env.step(&hold_action(&env)).unwrap();
        assert!(s.info.get("mean_point_distance").unwrap() < 1e-9);
        assert!(s.info.get("rotation_error").unwrap() < 1e-6);
        assert!((s.reward - 10.0).abs() < 1e-6, "{}", s.reward);
        assert_eq!(s.info.success, k == 5);
        assert_eq!(s.terminated, k == 5);
    }
}

#[test]
fn episodes_are_truncated_at_the_time_limit() {
    let config = TaskConfig {
        episode_steps: 4,
        ..mock_config()
    };
    let mut env = make_env("reach", HandModel::leap_right(), config).unwrap();
    env.reset(Some(0)).unwrap();
    let a = vec![0.0; 16];
    for k in 1..=4 {
        let s = env.step(&a).unwrap();
        assert_eq!(s.truncated, k == 4);
    }
}

fn run_batch(threads: usize, seed: u64) -> Vec<u64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let config = TaskConfig {
            episode_steps: 5,
            substeps: 5,
            ..TaskConfig::default()
        };
        let mut venv = VecEnv::from_fn(4, |_| {
            make_env("rotate", HandModel::leap_right(), config.clone())
        })
        .unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (obs, _) = venv.reset(seed).unwrap();
        let mut bits: Vec<u64> = obs
            .iter()
            .flat_map(|o| o.state.iter().map(|v| u64::from(v.to_bits())))
            .collect();
        for _ in 0..12 {
            let actions: Vec<f32> = (0..4 * 16).map(|_| rng.random_range(-1.0..=1.0)).collect();
            let s = venv.step(&actions).unwrap();
            bits.extend(s.rewards.iter().map(|r| r.to_bits()));
            bits.extend(s.reset.iter().map(|r| u64::from(*r)));
            bits.extend(
                venv.envs()
                    .iter()
                    .map(|e| e.simulator().unwrap().state_digest()),
            );
        }
        bits
    })
}

#[test]
fn vec_env_is_deterministic_whatever_the_thread_count() {
    let one = run_batch(1, 5);
    let two = run_batch(2, 5);
    assert_eq!(one, two);
    assert_ne!(one, run_batch(2, 6), "the seed matters");
}

#[test]
fn vec_env_auto_resets_on_the_next_step() {
    let config = TaskConfig {
        episode_steps: 2,
        ..mock_config()
    };
    let mut venv = VecEnv::from_fn(2, |_| {
        make_env("reach", HandModel::leap_right(), config.clone())
    })
    .unwrap();
    venv.reset(1).unwrap();
    let a = vec![0.0f32; 32];
    let s1 = venv.step(&a).unwrap();
    assert!(!s1.truncated[0]);
    let s2 = venv.step(&a).unwrap();
    assert!(s2.truncated[0] && s2.truncated[1]);
    let s3 = venv.step(&a).unwrap();
    assert!(s3.reset[0] && s3.reset[1]);
    assert_eq!(s3.rewards, vec![0.0, 0.0]);
    assert!(!s3.truncated[0]);
    // Wrong batch size or an out-of-range action: an error, nothing steps.
    assert!(venv.step(&a[..31]).is_err());
    let mut bad = a.clone();
    bad[3] = 2.0;
    assert!(venv.step(&bad).is_err());
}

#[test]
fn same_step_auto_reset_returns_the_final_observation_and_matches_next_step() {
    let config = TaskConfig {
        episode_steps: 2,
        ..mock_config()
    };
    let make = |_| make_env("reach", HandModel::leap_right(), config.clone());
    let mut next = VecEnv::from_fn(2, make).unwrap();
    let mut same = VecEnv::from_fn(2, make)
        .unwrap()
        .with_autoreset(AutoReset::SameStep);
    assert_eq!(same.autoreset(), AutoReset::SameStep);
    next.reset(1).unwrap();
    same.reset(1).unwrap();
    let a = vec![0.1f32; 32];
    let (n1, s1) = (next.step(&a).unwrap(), same.step(&a).unwrap());
    assert_eq!(n1.obs, s1.obs);
    assert!(s1.final_obs.iter().all(Option::is_none));
    let (n2, s2) = (next.step(&a).unwrap(), same.step(&a).unwrap());
    // The episode ends: same flags and rewards; the ended episode's last observation
    // moves to final_obs and obs is the next episode's first, which next-step
    // auto-reset returns one call later.
    assert!(s2.truncated[0] && s2.truncated[1]);
    assert_eq!(n2.rewards, s2.rewards);
    assert_eq!(Some(&n2.obs[0]), s2.final_obs[0].as_ref());
    assert_eq!(Some(&n2.infos[1]), s2.final_info[1].as_ref());
    assert!(!s2.reset[0]);
    let n3 = next.step(&a).unwrap();
    assert!(n3.reset[0]);
    assert_eq!(n3.obs, s2.obs);
    // Same step keeps stepping: the following step is a real one in both.
    let (n4, s3) = (next.step(&a).unwrap(), same.step(&a).unwrap());
    assert_eq!(n4.obs, s3.obs);
    assert_eq!(n4.rewards, s3.rewards);
}

/// `n` steps of actions drawn from `rng`: the observations and the final digest.
fn replay(env: &mut dyn Env, seed: u64, rng: &mut ChaCha8Rng, n: usize) -> (Vec<Vec<f32>>, u64) {
    let (obs, _) = env.reset(Some(seed)).unwrap();
    let mut seen = vec![obs.state];
    let dim = env.action_space().dim();
    for _ in 0..n {
        let a: Vec<f32> = (0..dim).map(|_| rng.random_range(-1.0..=1.0)).collect();
        seen.push(env.step(&a).unwrap().obs.state);
    }
    (seen, env.simulator().unwrap().state_digest())
}

#[test]
fn a_seeded_reset_replays_the_same_episode_after_any_history() {
    for task in ["reach", "rotate", "anygrasp"] {
        let mut env = make_env(task, HandModel::leap_right(), TaskConfig::default()).unwrap();
        let first = replay(env.as_mut(), 7, &mut ChaCha8Rng::seed_from_u64(1), 6);
        // Another episode with other actions in between.
        replay(env.as_mut(), 8, &mut ChaCha8Rng::seed_from_u64(2), 6);
        let again = replay(env.as_mut(), 7, &mut ChaCha8Rng::seed_from_u64(1), 6);
        assert_eq!(first, again, "{task}: the replayed episode differs");
    }
}

#[test]
fn bad_actions_and_configs_are_errors() {
    let mut env = make_env("anypose", HandModel::leap_right(), mock_config()).unwrap();
    env.reset(Some(0)).unwrap();
    assert!(matches!(
        env.step(&[0.0; 3]),
        Err(Error::LengthMismatch { .. })
    ));
    let mut a = vec![0.0f32; 16];
    a[2] = f32::NAN;
    assert!(matches!(env.step(&a), Err(Error::NotFinite { .. })));
    assert!(matches!(
        make_env("juggle", HandModel::leap_right(), mock_config()),
        Err(Error::UnknownName { .. })
    ));
    let err = Randomization::from_toml("object_mass = [0.8, 1.2]\nmass_of_moon = 3\n").unwrap_err();
    assert!(err.to_string().contains("mass_of_moon"), "{err}");
    assert!(Randomization::from_toml("object_mass = [1.2, 0.8]").is_err());
    let r =
        Randomization::from_toml("object_mass = [0.5, 1.5]\naction_latency = [1, 2]\n").unwrap();
    assert_eq!(r.object_mass, [0.5, 1.5]);
    let hull = ObjectSpec::new(
        "flat",
        dex_sim::ObjectShape::ConvexHull {
            points: vec![[0.0; 3]; 4],
        },
        0.1,
    );
    let params = RotateConfig {
        object: hull,
        ..RotateConfig::default()
    };
    assert!(InHandRotation::new(HandModel::leap_right(), mock_config(), params).is_err());
}

#[test]
fn randomization_and_latency_change_the_episode() {
    let run = |r: Randomization| {
        let config = TaskConfig {
            randomization: r,
            episode_steps: 10,
            ..TaskConfig::default()
        };
        let mut env = make_env("rotate", HandModel::leap_right(), config).unwrap();
        env.reset(Some(4)).unwrap();
        let a = vec![0.3f32; 16];
        let mut q = Vec::new();
        for _ in 0..3 {
            env.step(&a).unwrap();
            q.push(env.simulator().unwrap().joint_targets()[0]);
        }
        q
    };
    let plain = run(Randomization::default());
    let late = run(Randomization {
        action_latency: [2, 2],
        ..Randomization::default()
    });
    // With two steps of latency the first two steps still hold the reset targets.
    assert_ne!(plain[0], late[0]);
    assert_eq!(late[0], late[1]);
    assert_eq!(late[2], plain[0]);
}

#[test]
fn anygrasp_generates_stable_grasps_and_counts_goals() {
    use dex_sim::{AnygraspConfig, AnygraspToAnygrasp};
    let params = AnygraspConfig {
        num_grasps: 4,
        ..AnygraspConfig::default()
    };
    let mut env =
        AnygraspToAnygrasp::new(HandModel::leap_right(), TaskConfig::default(), params).unwrap();
    assert!(env.grasps().len() >= 2);
    env.reset(Some(2)).unwrap();
    // Hold the start grasp with gravity pulling away from the palm: it stays.
    let hold = hold_action(&env);
    env.simulator_mut()
        .unwrap()
        .set_gravity(Vector3::new(0.0, 0.0, 9.81))
        .unwrap();
    let before = env
        .simulator()
        .unwrap()
        .object_state(0)
        .unwrap()
        .pose
        .translation
        .vector;
    for _ in 0..10 {
        let s = env.step(&hold).unwrap();
        assert!(!s.terminated);
    }
    let after = env
        .simulator()
        .unwrap()
        .object_state(0)
        .unwrap()
        .pose
        .translation
        .vector;
    assert!(
        (after - before).norm() < 0.01,
        "{}",
        (after - before).norm()
    );
    // Put the hand and object on the goal grasp: the goal counts as reached.
    env.reset(Some(2)).unwrap();
    let goal = env.goal().clone();
    let hand = env.simulator().unwrap().config().hand_pose;
    let sim = env.simulator_mut().unwrap();
    sim.set_joint_positions(&goal.q).unwrap();
    sim.set_object_pose(0, &(hand * goal.object_in_palm))
        .unwrap();
    let limits = HandModel::leap_right().joint_limits();
    let a: Vec<f32> = goal
        .targets
        .iter()
        .zip(&limits)
        .map(|(t, l)| ((t - l.mid()) / ((l.upper - l.lower) / 2.0)) as f32)
        .collect();
    let s = env.step(&a).unwrap();
    assert_eq!(s.info.get("goals_reached"), Some(1.0), "{:?}", s.info);
    assert!(s.info.success && s.reward > 5.0);
    assert_ne!(env.goal(), &goal, "a new goal is drawn");

    // The open hand under the same gravity lets the object go (the check discriminates).
    let mut open = make_env("rotate", HandModel::leap_right(), TaskConfig::default()).unwrap();
    open.reset(Some(1)).unwrap();
    open.simulator_mut()
        .unwrap()
        .set_gravity(Vector3::new(0.0, 0.0, 9.81))
        .unwrap();
    let zero = vec![-1.0f32; 16];
    let mut dropped = false;
    for _ in 0..20 {
        let s = open.step(&zero).unwrap();
        if s.terminated {
            dropped = true;
            break;
        }
    }
    assert!(dropped);
}

#[test]
fn reach_depth_shows_the_targets_only_in_the_image() {
    let config = TaskConfig::default();
    let side = config.depth_view.side();
    let make = || make_env("reach-depth", HandModel::leap_right(), config.clone()).unwrap();
    let (mut a, mut b) = (make(), make());
    assert_eq!(a.name(), "reach-depth");
    let spec = a.observation_spec().clone();
    assert_eq!(spec.depth, Some((side, side)));
    let (obs, _) = a.reset(Some(4)).unwrap();
    b.reset(Some(4)).unwrap();
    let depth = obs.depth.clone().unwrap();
    assert_eq!(obs.state.len(), spec.state.dim());
    // The state ends with the image, depth / max_depth.
    let tail = &obs.state[obs.state.len() - side * side..];
    for (s, d) in tail.iter().zip(depth.iter()) {
        assert!((s - d / config.depth_view.max_depth as f32).abs() < 1e-6);
        assert!((0.0..=1.0).contains(s));
    }
    // Some pixels see the hand, some nothing.
    assert!(depth.iter().any(|d| *d > 0.0) && depth.iter().any(|d| *d == 0.0));
    // Same physics, targets moved: the state differs only in the image.
    let depth_reach = || {
        let params = ReachConfig {
            depth: true,
            ..ReachConfig::default()
        };
        FingertipReach::new(HandModel::leap_right(), config.clone(), params).unwrap()
    };
    let (mut reach, mut other) = (depth_reach(), depth_reach());
    reach.reset(Some(4)).unwrap();
    other.reset(Some(4)).unwrap();
    let moved: Vec<_> = other
        .goals()
        .iter()
        .map(|g| g + Vector3::new(0.0, 0.04, 0.02))
        .collect();
    other.set_goals(moved).unwrap();
    let action = hold_action(&reach);
    let s1 = reach.step(&action).unwrap();
    let s2 = other.step(&action).unwrap();
    let n = s1.obs.state.len() - side * side;
    assert_eq!(s1.obs.state[..n], s2.obs.state[..n]);
    assert_ne!(s1.obs.state[n..], s2.obs.state[n..]);
    // The state-observing task of the same name has no image.
    assert_eq!(
        make_env("reach", HandModel::leap_right(), config)
            .unwrap()
            .observation_spec()
            .depth,
        None
    );
}

#[test]
fn bad_depth_views_are_refused() {
    let mut config = TaskConfig::default();
    config.depth_view.squint = 3;
    assert!(matches!(
        make_env("reach-depth", HandModel::leap_right(), config),
        Err(Error::InvalidParameter {
            what: "depth_view",
            ..
        })
    ));
    let mut config = TaskConfig::default();
    config.depth_view.max_depth = f64::NAN;
    assert!(make_env("reach-depth", HandModel::leap_right(), config).is_err());
}

#[test]
fn relative_actions_integrate_into_the_limits_and_the_lead_bound_holds() {
    let run = |lead: f64| {
        let config = TaskConfig {
            action_mode: dex_sim::ActionMode::Relative,
            relative_scale: 0.1,
            relative_lead: lead,
            ..mock_config()
        };
        let mut env = make_env("reach", HandModel::leap_right(), config).unwrap();
        env.reset(Some(3)).unwrap();
        let limits = env.simulator().unwrap().model().joint_limits();
        let start = env.simulator().unwrap().joint_targets().to_vec();
        // Two half actions add one scale's worth to every target.
        env.step(&[0.5f32; 16]).unwrap();
        env.step(&[0.5f32; 16]).unwrap();
        if lead == 0.0 {
            let now = env.simulator().unwrap().joint_targets();
            for ((t, s), l) in now.iter().zip(&start).zip(&limits) {
                assert!((t - (s + 0.1).min(l.upper)).abs() < 1e-12, "{t} from {s}");
            }
        }
        // Pushing on: targets stop at the upper limits, and how far a target leads the
        // joint before each step is recorded.
        let mut widest = 0.0f64;
        for _ in 0..40 {
            let q = env.simulator().unwrap().joint_state().q.clone();
            let s = env.step(&[1.0f32; 16]).unwrap();
            for ((t, qi), l) in env
                .simulator()
                .unwrap()
                .joint_targets()
                .iter()
                .zip(&q)
                .zip(&limits)
            {
                assert!(*t <= l.upper && *t >= l.lower);
                widest = widest.max((t - qi).abs());
            }
            if s.terminated || s.truncated {
                break;
            }
        }
        widest
    };
    let free = run(0.0);
    let bounded = run(0.05);
    assert!(free > 0.05, "unbounded targets lead by {free}");
    assert!(bounded <= 0.05 + 1e-12, "bounded targets lead by {bounded}");
    for bad in [-0.1, f64::NAN, f64::INFINITY] {
        let config = TaskConfig {
            relative_lead: bad,
            ..TaskConfig::default()
        };
        assert!(matches!(
            config.validate(),
            Err(Error::InvalidParameter {
                what: "relative_lead",
                ..
            })
        ));
    }
}

#[test]
fn every_task_runs_on_a_simulator_the_caller_gives() {
    use dex_sim::{AnygraspConfig, AnygraspToAnygrasp, MockSimulator, SimConfig, Simulator};
    let model = HandModel::leap_right();
    let sim = || -> Box<dyn Simulator> {
        Box::new(MockSimulator::new(model.clone(), SimConfig::for_hand(&model)).unwrap())
    };
    let mut envs: Vec<Box<dyn Env>> = vec![
        Box::new(
            FingertipReach::with_simulator(sim(), TaskConfig::default(), ReachConfig::default())
                .unwrap(),
        ),
        Box::new(
            InHandRotation::with_simulator(sim(), TaskConfig::default(), RotateConfig::default())
                .unwrap(),
        ),
        Box::new(
            AnyposeToAnypose::with_simulator(
                sim(),
                TaskConfig::default(),
                AnyposeConfig::default(),
            )
            .unwrap(),
        ),
    ];
    // The mock has no gravity and no contacts: grasp generation keeps every attempt.
    let grasps = AnygraspConfig {
        num_grasps: 2,
        max_attempts: 4,
        ..AnygraspConfig::default()
    };
    envs.push(Box::new(
        AnygraspToAnygrasp::with_simulator(sim(), TaskConfig::default(), grasps).unwrap(),
    ));
    for env in &mut envs {
        env.reset(Some(3)).unwrap();
        let dof = env.action_space().dim();
        env.step(&vec![0.0; dof]).unwrap();
        let sim = env.simulator().unwrap();
        assert_eq!(sim.backend(), "mock", "{}", env.name());
        assert!(sim.time() > 0.0, "{}", env.name());
        if env.name() != "reach" {
            assert_eq!(sim.objects().len(), 1, "{}", env.name());
        }
    }
}

#[test]
fn the_mock_env_records_what_it_is_asked_and_refuses_bad_steps() {
    use dex_sim::MockEnv;
    let mut env = MockEnv::new(3, 2, 2);
    assert!(matches!(
        env.step(&[0.0, 0.0]),
        Err(Error::NeedsReset { .. })
    ));
    env.reset(Some(7)).unwrap();
    assert!(matches!(
        env.step(&[0.0]),
        Err(Error::LengthMismatch {
            expected: 2,
            got: 1,
            ..
        })
    ));
    let s1 = env.step(&[0.5, -0.5]).unwrap();
    assert_eq!(s1.obs.state, vec![1.0, 0.5, -0.5]);
    assert!(!s1.terminated && !s1.truncated);
    let s2 = env.step(&[1.0, 0.0]).unwrap();
    assert!(s2.truncated, "two steps is the episode's length");
    assert!(
        env.step(&[0.0, 0.0]).is_err(),
        "a truncated episode needs a reset"
    );
    env.reset(None).unwrap();
    let s3 = env.step(&[0.01, 0.0]).unwrap();
    assert!(s3.terminated && s3.info.success);
    assert_eq!(env.resets, vec![Some(7), None]);
    assert_eq!(
        env.actions,
        vec![vec![0.5, -0.5], vec![1.0, 0.0], vec![0.01, 0.0]]
    );
    assert!(env.simulator().is_none());
}

#[test]
fn anygrasp_options_come_from_the_task_table_and_are_checked() {
    let config: TaskConfig = toml::from_str(
        "substeps = 50\n[anygrasp]\nyaw_range = 0.0\ngoal_timeout_steps = 50\njoint_tolerance = 0.3\n",
    )
    .unwrap();
    assert_eq!(config.substeps, 50);
    assert_eq!(config.anygrasp.yaw_range, 0.0);
    assert_eq!(config.anygrasp.goal_timeout_steps, 50);
    let params = config.anygrasp.apply(dex_sim::AnygraspConfig::default());
    assert_eq!((params.yaw_range, params.joint_tolerance), (0.0, 0.3));
    assert_eq!(
        params.num_grasps,
        dex_sim::AnygraspConfig::default().num_grasps
    );
    config.validate().unwrap();
    assert!(toml::from_str::<TaskConfig>("[anygrasp]\nyaw = 1.0\n").is_err());
    for bad in [
        "[anygrasp]\nyaw_range = 4.0\n",
        "[anygrasp]\nnum_grasps = 1\n",
        "[anygrasp]\nnum_grasps = 20\nmax_attempts = 10\n",
        "[anygrasp]\nrotation_tolerance = 0.0\n",
    ] {
        let config: TaskConfig = toml::from_str(bad).unwrap();
        assert!(
            matches!(config.validate(), Err(Error::Config { .. })),
            "{bad}"
        );
        assert!(make_env("anygrasp", HandModel::leap_right(), config).is_err());
    }
}

#[test]
fn rotate_options_come_from_the_task_table_and_are_checked() {
    let text = r#"
        mock_physics = true
        [rotate]
        palm = "down"
        start_configuration = [0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.5, 0.5, 1.0, 0.4, 0.4, 0.4]
        drop_penalty = 10.0
    "#;
    let config: TaskConfig = toml::from_str(text).unwrap();
    assert_eq!(config.rotate.palm, dex_sim::PalmOrientation::Down);
    let start = config.rotate.start_configuration.clone();
    let mut env = make_env("rotate", HandModel::leap_right(), config.clone()).unwrap();
    env.reset(Some(3)).unwrap();
    let sim = env.simulator().unwrap();
    assert_eq!(
        sim.joint_state().q,
        start,
        "episodes start from the configuration"
    );
    assert_eq!(sim.joint_targets(), start.as_slice());

    let build = |f: &dyn Fn(&mut TaskConfig)| {
        let mut c = config.clone();
        f(&mut c);
        make_env("rotate", HandModel::leap_right(), c).map(|_| ())
    };
    let err = build(&|c| c.rotate.start_configuration.truncate(15)).unwrap_err();
    assert!(err.to_string().contains("15 values"), "{err}");
    let err = build(&|c| c.rotate.start_configuration[1] = 3.0).unwrap_err();
    assert!(err.to_string().contains("if_mcp"), "{err}");
    let err = build(&|c| c.rotate.pose_weight = -1.0).unwrap_err();
    assert!(err.to_string().contains("pose_weight"), "{err}");
    let err = build(&|c| c.rotate.drop_distance = 0.0).unwrap_err();
    assert!(err.to_string().contains("drop_distance"), "{err}");
    assert!(toml::from_str::<TaskConfig>("[rotate]\nspin = 1.0\n").is_err());
}

#[test]
fn the_rotate_drop_penalty_is_paid_once_on_the_drop() {
    // Palm down with the hand open: the cube falls away.
    let run = |penalty: f64| {
        let mut config = TaskConfig {
            episode_steps: 200,
            ..TaskConfig::default()
        };
        config.rotate.palm = dex_sim::PalmOrientation::Down;
        config.rotate.drop_penalty = penalty;
        let mut env = make_env("rotate", HandModel::leap_right(), config).unwrap();
        env.reset(Some(1)).unwrap();
        let hold = hold_action(env.as_ref());
        let mut rewards = Vec::new();
        loop {
            let s = env.step(&hold).unwrap();
            rewards.push(s.reward);
            if s.terminated || s.truncated {
                assert!(s.terminated, "the cube should drop");
                assert_eq!(s.info.get("dropped"), Some(1.0));
                return rewards;
            }
        }
    };
    let (free, paid) = (run(0.0), run(7.5));
    assert_eq!(free.len(), paid.len());
    let last = free.len() - 1;
    assert_eq!(free[..last], paid[..last], "only the last step differs");
    assert!((free[last] - paid[last] - 7.5).abs() < 1e-9);
}
