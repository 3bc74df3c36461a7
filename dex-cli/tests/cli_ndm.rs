//! `dex ndm train` and `dex ndm eval` end to end on synthetic joint data, and their bad
//! inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::dex;
use dex_ndm::synthetic::{Plant, joint_data};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn last_line(out: &std::process::Output) -> String {
    text(&out.stdout).lines().last().unwrap_or("").to_string()
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("dex-ndm-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The two figures of a last line `<first> <x> <second> <y>`.
fn parse_pair(line: &str, first: &str, second: &str) -> (f64, f64) {
    let parts: Vec<&str> = line.split(' ').collect();
    assert_eq!(parts.len(), 4, "{line}");
    assert_eq!((parts[0], parts[2]), (first, second), "{line}");
    (parts[1].parse().unwrap(), parts[3].parse().unwrap())
}

fn parse_eval(line: &str) -> (f64, f64) {
    parse_pair(line, "rmse_rad", "p95_rad")
}

#[test]
fn train_then_eval_ends_with_the_error_line_and_learning_beats_first_order_on_a_servo() {
    let dir = tmp("train");
    let (data, test, sim) = (dir.join("data"), dir.join("test"), dir.join("sim"));
    joint_data(3, 24, 100, Plant::servo(), 1)
        .unwrap()
        .save(&data, 500)
        .unwrap();
    joint_data(3, 6, 100, Plant::servo(), 2)
        .unwrap()
        .save(&test, 500)
        .unwrap();
    joint_data(3, 12, 100, Plant::FirstOrder { gain: 0.4 }, 3)
        .unwrap()
        .save(&sim, 500)
        .unwrap();
    let mut scores = Vec::new();
    for model in ["pd", "joint"] {
        let out = dir.join(model);
        let r = dex(&[
            "ndm",
            "train",
            "--data",
            data.to_str().unwrap(),
            "--pretrain",
            sim.to_str().unwrap(),
            "--model",
            model,
            "--seed",
            "0",
            "--out",
            out.to_str().unwrap(),
            "--set",
            "joint.hidden=[32,32]",
            // ~1,900 training samples: 10 epochs would be 80 steps.
            "--set",
            "fit.epochs=40",
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        assert!(out.join("metrics.csv").exists() && out.join("config.toml").exists());
        let r = dex(&[
            "ndm",
            "eval",
            "--model",
            out.to_str().unwrap(),
            "--data",
            test.to_str().unwrap(),
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        let (rmse, p95) = parse_eval(&last_line(&r));
        assert!(rmse > 0.0 && p95 > 0.0);
        scores.push(rmse);
    }
    assert!(
        scores[1] < scores[0],
        "joint {} vs pd {}",
        scores[1],
        scores[0]
    );
}

#[test]
fn bad_inputs_exit_with_code_2_and_say_why() {
    let dir = tmp("bad");
    let data = dir.join("data");
    joint_data(3, 4, 50, Plant::servo(), 1)
        .unwrap()
        .save(&data, 100)
        .unwrap();
    let out = dir.join("out");
    let (d, o) = (data.to_str().unwrap(), out.to_str().unwrap());
    let r = dex(&["ndm", "train", "--data", d, "--model", "linear", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("linear"), "{}", text(&r.stderr));
    let r = dex(&[
        "ndm",
        "train",
        "--data",
        d,
        "--out",
        o,
        "--set",
        "holdout=1.5",
    ]);
    assert_eq!(r.status.code(), Some(2));
    let r = dex(&[
        "ndm",
        "eval",
        "--model",
        dir.join("nothing").to_str().unwrap(),
        "--data",
        d,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("model.toml"),
        "{}",
        text(&r.stderr)
    );
    // A truncated chunk is named.
    let chunk = data.join("steps-000000.npy");
    let bytes = std::fs::read(&chunk).unwrap();
    std::fs::write(&chunk, &bytes[..bytes.len() - 40]).unwrap();
    let r = dex(&["ndm", "train", "--data", d, "--model", "pd", "--out", o]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("steps-000000.npy"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn collect_in_simulation_writes_a_dataset_the_trainer_reads() {
    let dir = tmp("collect");
    let data = dir.join("data");
    let r = dex(&[
        "ndm",
        "collect",
        "--sim",
        "--policy",
        "random",
        "--minutes",
        "0.1",
        "--sequence-steps",
        "40",
        "--seed",
        "3",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let set = dex_ndm::Dataset::load(&data).unwrap();
    // 0.1 min at 20 Hz, in sequences of 40.
    assert_eq!((set.steps(), set.segments.len(), set.dof()), (120, 3, 16));
    assert_eq!(set.meta["source"].as_str(), Some("sim"));
    // The joints answered the targets: the hand moved.
    let first = set.segments[0].q(0).to_vec();
    let last = set.segments[2].q(39).to_vec();
    assert!(first.iter().zip(&last).any(|(a, b)| (a - b).abs() > 0.05));
    // Same seed, same bytes.
    let again = dir.join("again");
    let r = dex(&[
        "ndm",
        "collect",
        "--sim",
        "--minutes",
        "0.1",
        "--sequence-steps",
        "40",
        "--seed",
        "3",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert_eq!(
        std::fs::read(data.join("steps-000000.npy")).unwrap(),
        std::fs::read(again.join("steps-000000.npy")).unwrap()
    );
    // Bad input.
    let out = dir.join("bad");
    let o = out.to_str().unwrap();
    let r = dex(&["ndm", "collect", "--minutes", "0.1", "--out", o]);
    assert_eq!(r.status.code(), Some(2), "needs --port or --sim");
    let r = dex(&[
        "ndm",
        "collect",
        "--sim",
        "--policy",
        dir.join("none").to_str().unwrap(),
        "--minutes",
        "0.1",
        "--out",
        o,
    ]);
    assert_eq!(r.status.code(), Some(2));
    let r = dex(&[
        "ndm",
        "collect",
        "--sim",
        "--minutes",
        "0.1",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(
        r.status.code(),
        Some(2),
        "the directory already holds a dataset"
    );
    assert!(
        text(&r.stderr).contains("already holds a dataset"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn a_residual_trains_through_a_model_of_the_hand_for_a_shipped_policy() {
    let dir = tmp("residual");
    let (data, model, out) = (dir.join("data"), dir.join("model"), dir.join("residual"));
    let r = dex(&[
        "ndm",
        "collect",
        "--sim",
        "--minutes",
        "0.2",
        "--sequence-steps",
        "60",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let r = dex(&[
        "ndm",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "pd",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/reach-student");
    let r = dex(&[
        "ndm",
        "residual",
        "train",
        "--base",
        base,
        "--model",
        model.to_str().unwrap(),
        "--episodes",
        "3",
        "--set",
        "epochs=2",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert!(
        last_line(&r).contains("with the residual"),
        "{}",
        last_line(&r)
    );
    let residual = dex_ndm::ResidualPolicy::load(&out).unwrap();
    use dex_policy::Policy;
    assert_eq!(residual.action_dim(), 16);
    // Bad input: no base checkpoint, or a model of another hand.
    let r = dex(&[
        "ndm",
        "residual",
        "train",
        "--base",
        dir.join("none").to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let small = dir.join("small");
    joint_data(3, 4, 50, Plant::servo(), 1)
        .unwrap()
        .save(&dir.join("d3"), 100)
        .unwrap();
    let r = dex(&[
        "ndm",
        "train",
        "--data",
        dir.join("d3").to_str().unwrap(),
        "--model",
        "pd",
        "--out",
        small.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let r = dex(&[
        "ndm",
        "residual",
        "train",
        "--base",
        base,
        "--model",
        small.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("joints"), "{}", text(&r.stderr));
}

/// The reach student over a driver on the ideal simulation succeeds about as often as in
/// the task itself: the observation built from the driver's measurements is the task's.
#[test]
fn a_reach_policy_over_a_driver_on_the_ideal_simulation_matches_the_task() {
    use dex_sim::Env;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/reach-student");
    let mut ck = dex_policy::load_checkpoint(std::path::Path::new(dir)).unwrap();
    let spec = dex_sim::EnvSpec::from_table(&ck.env).unwrap();
    let model = spec.model().unwrap();
    let task = spec.config.clone();
    let params = dex_sim::ReachConfig::default();
    let mut env = dex_sim::FingertipReach::new(model.clone(), task.clone(), params).unwrap();
    let mut episodes = Vec::new();
    for e in 0..10 {
        env.reset(Some(e)).unwrap();
        let sim = env.simulator().unwrap();
        episodes.push(dex_ndm::ReachEpisode {
            goals: dex_ndm::goals_in_hand_frame(env.goals(), &sim.config().hand_pose),
            start: sim.joint_state().q,
        });
    }
    let sim = dex_sim::RapierSim::hand_only(model.clone(), task.sim_config(&model)).unwrap();
    let mut driver = dex_hw::SimDriver::new(Box::new(sim)).unwrap();
    let r = dex_ndm::reach_over_driver(
        &mut driver,
        &model,
        &task,
        ck.policy.as_mut(),
        &episodes,
        params.success_radius,
        0.0,
    )
    .unwrap();
    // The task itself on the same episodes.
    let mut in_task = 0;
    let mut rng = rand::SeedableRng::seed_from_u64(0);
    let rng: &mut rand_chacha::ChaCha8Rng = &mut rng;
    for e in 0..10 {
        let (mut obs, _) = env.reset(Some(e)).unwrap();
        loop {
            let o =
                ndarray::Array2::from_shape_vec((1, obs.state.len()), obs.state.clone()).unwrap();
            let a = ck
                .policy
                .act(o.view(), dex_policy::ActMode::Deterministic, rng)
                .unwrap();
            let a: Vec<f32> = a.iter().map(|v| v.clamp(-1.0, 1.0)).collect();
            let step = env.step(&a).unwrap();
            if step.info.success {
                in_task += 1;
            }
            if step.terminated || step.truncated {
                break;
            }
            obs = step.obs;
        }
    }
    eprintln!("{r:?}, in the task {in_task}/10");
    assert!(
        (r.successes as i64 - in_task).abs() <= 1 && in_task >= 5,
        "{r:?} against {in_task}/10 in the task"
    );
    use dex_hw::HandDriver;
    assert_eq!(driver.state(), dex_hw::DriverState::Disabled);
}

#[test]
fn eval_runs_a_reach_policy_on_the_gap_hand_over_its_bus() {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/reach-student");
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "3",
        "--seed",
        "5",
        "--emulated",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let line = last_line(&r);
    let rate: f64 = line.strip_prefix("success ").unwrap().parse().unwrap();
    assert!((0.0..=1.0).contains(&rate), "{line}");
    assert!(text(&r.stdout).contains("gap hand"), "{}", text(&r.stdout));
    // The same seed, the same line.
    let again = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "3",
        "--seed",
        "5",
        "--emulated",
    ]);
    assert_eq!(last_line(&again), line);
    // The wrong task, a missing residual, a bad gap file.
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--task",
        "rotate",
        "--episodes",
        "1",
        "--emulated",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("reach"), "{}", text(&r.stderr));
    let dir = tmp("eval");
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "1",
        "--emulated",
        "--residual",
        dir.join("none").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let gap = dir.join("gap.toml");
    std::fs::write(&gap, "latency = 3\n").unwrap();
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "1",
        "--emulated",
        "--gap",
        gap.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("gap.toml"), "{}", text(&r.stderr));
}

fn parse_rotation(line: &str) -> (f64, f64) {
    parse_pair(line, "rotation_rad", "ttf_s")
}

/// The shipped rotation gait turns the cube in simulation and on the hands behind the
/// in-process bus; over a port the rotation cannot be measured and is refused.
#[test]
fn the_shipped_rotation_gait_turns_the_cube_in_simulation_and_over_the_bus() {
    let base = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/rotate-gait");
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "4",
        "--envs",
        "2",
        "--seed",
        "1",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let (sim, ttf) = parse_rotation(&last_line(&r));
    // 5 s episodes; holding still turns the cube by less than 0.1 rad.
    assert!(sim > 0.5, "rotation {sim} rad in simulation");
    assert!((0.0..=5.0).contains(&ttf), "{ttf}");
    let over = |actuator: &str| {
        let r = dex(&[
            "eval",
            "--checkpoint",
            base,
            "--task",
            "rotate",
            "--episodes",
            "2",
            "--seed",
            "1",
            "--emulated",
            "--actuator",
            actuator,
        ]);
        assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
        parse_rotation(&last_line(&r)).0
    };
    // The ideal hand behind the bus: the same policy, the same kind of rotation.
    assert!(over("pd") > 0.5, "over the bus on the ideal hand");
    let gap = over("servo");
    assert!(gap.is_finite());
    // The shipped PPO policy acts with relative targets and sees the tracked cube.
    let ppo = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/rotate-ppo");
    let r = dex(&[
        "eval",
        "--checkpoint",
        ppo,
        "--episodes",
        "1",
        "--seed",
        "2",
        "--emulated",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    let (rotation, ttf) = parse_rotation(&last_line(&r));
    assert!(rotation.is_finite() && (0.0..=5.0).contains(&ttf));
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "1",
        "--port",
        "/dev/null",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("--emulated"),
        "{}",
        text(&r.stderr)
    );
    let r = dex(&[
        "eval",
        "--checkpoint",
        base,
        "--episodes",
        "1",
        "--emulated",
        "--actuator",
        "hydraulic",
    ]);
    assert_eq!(r.status.code(), Some(2));
}

/// `dex train gait` writes a checkpoint `dex eval` loads, and refuses relative actions.
#[test]
fn a_gait_search_writes_a_checkpoint_eval_loads() {
    let dir = tmp("gait");
    let out = dir.join("gait");
    let common = [
        "train",
        "gait",
        "--task",
        "rotate",
        "--minutes",
        "1",
        "--set",
        "task.mock_physics=true",
        "--set",
        "task.episode_steps=5",
        "--set",
        "gait.population=4",
        "--set",
        "gait.elites=2",
        "--set",
        "gait.max_iterations=2",
    ];
    let mut args = common.to_vec();
    args.extend(["--out", out.to_str().unwrap()]);
    let r = dex(&args);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    assert!(last_line(&r).starts_with("score "), "{}", last_line(&r));
    let metrics = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "a header and two iterations");
    let r = dex(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--episodes",
        "2",
    ]);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r.stderr));
    parse_rotation(&last_line(&r));
    let mut args = common.to_vec();
    args.extend(["--set", "task.action_mode=\"relative\"", "--out"]);
    let rel = dir.join("rel");
    args.push(rel.to_str().unwrap());
    let r = dex(&args);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("absolute"), "{}", text(&r.stderr));
}
