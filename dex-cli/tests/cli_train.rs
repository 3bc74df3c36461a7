//! `dex train` and `dex eval`: outputs, determinism, resuming, config handling, errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::dex;

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Fast settings: mock physics, few environments, a fixed number of iterations.
const FAST_PPO: &[&str] = &[
    "--set",
    "task.mock_physics=true",
    "--set",
    "ppo.num_envs=4",
    "--set",
    "ppo.horizon=8",
    "--set",
    "ppo.hidden=[16]",
    "--set",
    "run.max_iterations=3",
    "--set",
    "run.eval_episodes=4",
    "--set",
    "run.eval_envs=2",
];

fn train_ppo(out: &std::path::Path, seed: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "train",
        "ppo",
        "--task",
        "reach",
        "--hand",
        "leap",
        "--seed",
        seed,
        "--minutes",
        "5",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(FAST_PPO);
    args.extend_from_slice(extra);
    dex(&args)
}

#[test]
fn ppo_training_writes_its_outputs_and_evaluates_reproducibly() {
    let dir = std::env::temp_dir().join(format!("dex-cli-train-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (a, b) = (dir.join("a"), dir.join("b"));
    let oa = train_ppo(&a, "3", &[]);
    assert!(oa.status.success(), "{}", stderr(&oa));
    let last = stdout(&oa).lines().last().unwrap().to_string();
    assert!(last.starts_with("success "), "{last}");
    for f in [
        "policy.safetensors",
        "checkpoint.toml",
        "config.toml",
        "metrics.csv",
        "curve.png",
    ] {
        assert!(a.join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "a header and 3 iterations:\n{csv}");
    // The same seed and iterations give the same checkpoint bytes.
    let ob = train_ppo(&b, "3", &[]);
    assert!(ob.status.success(), "{}", stderr(&ob));
    assert_eq!(
        std::fs::read(a.join("policy.safetensors")).unwrap(),
        std::fs::read(b.join("policy.safetensors")).unwrap()
    );
    // dex eval gives the figure training printed, twice.
    let eval = |seed: &str| {
        let o = dex(&[
            "eval",
            "--checkpoint",
            a.to_str().unwrap(),
            "--episodes",
            "4",
            "--seed",
            seed,
            "--envs",
            "2",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().last().unwrap().to_string()
    };
    assert_eq!(eval("4"), last);
    assert_eq!(eval("4"), eval("4"));
    // --set evaluates under changed task settings, and says so; keys outside the
    // task's settings are refused.
    let with = |set: &str| {
        dex(&[
            "eval",
            "--checkpoint",
            a.to_str().unwrap(),
            "--episodes",
            "4",
            "--envs",
            "2",
            "--set",
            set,
        ])
    };
    let o = with("task.episode_steps=1");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("evaluated with task.episode_steps=1") && text.contains("mean_length 1.0"),
        "{text}"
    );
    for (set, needle) in [
        ("task.no_such_key=1", "unknown key"),
        ("ppo.gamma=0.5", "unknown key"),
        ("task.substeps=0", "substeps"),
    ] {
        let o = with(set);
        assert_eq!(o.status.code(), Some(2), "{set}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{set}: {}", stderr(&o));
    }
    // Training into a directory with a checkpoint needs --resume; resuming continues.
    let again = train_ppo(&a, "3", &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("--resume"), "{}", stderr(&again));
    let resumed = train_ppo(&a, "3", &["--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let csv = std::fs::read_to_string(a.join("metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7, "resumed rows are appended:\n{csv}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn configs_print_and_bad_settings_are_clear_errors() {
    let o = dex(&["train", "sac", "--print-config", "--set", "sac.atoms=51"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("atoms = 51") && text.contains("[sac]"),
        "{text}"
    );
    let dir = std::env::temp_dir().join(format!("dex-cli-train-bad-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    for (args, needle) in [
        (
            vec!["train", "ppo", "--out", out, "--set", "ppo.no_such_key=1"],
            "unknown key",
        ),
        (
            vec!["train", "ppo", "--out", out, "--set", "ppo.num_envs=many"],
            "takes an integer, got a string",
        ),
        (
            vec!["train", "ppo", "--out", out, "--task", "juggle"],
            "task",
        ),
        (
            vec!["train", "ppo", "--out", out, "--hand", "octopus"],
            "hand",
        ),
        (
            vec!["train", "ppo", "--out", out, "--minutes", "0"],
            "--minutes",
        ),
        (
            vec!["eval", "--checkpoint", "/nonexistent/dex-checkpoint"],
            "checkpoint",
        ),
        (
            vec![
                "train",
                "dagger",
                "--teacher",
                "reach-ik",
                "--keep",
                "5..2",
                "--out",
                out,
            ],
            "5..2",
        ),
    ] {
        let o = dex(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains(needle),
            "{args:?}: expected `{needle}` in {}",
            stderr(&o)
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn sac_from_depth_trains_evaluates_reproducibly_and_refuses_tasks_without_depth() {
    let dir = std::env::temp_dir().join(format!("dex-cli-train-depth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = dir.join("sac");
    let mut args = vec![
        "train",
        "sac",
        "--task",
        "reach",
        "--hand",
        "leap",
        "--obs",
        "depth",
        "--seed",
        "2",
        "--minutes",
        "5",
        "--out",
    ];
    let out_str = out.to_str().unwrap().to_string();
    args.push(&out_str);
    for set in [
        "task.mock_physics=true",
        "task.episode_steps=4",
        "task.depth_view.render=32",
        "task.depth_view.squint=2",
        "sac.num_envs=2",
        "sac.batch_size=16",
        "sac.learning_starts=8",
        "sac.buffer_size=400",
        "sac.hidden=[16]",
        "run.max_iterations=6",
        "run.eval_episodes=2",
        "run.eval_envs=2",
    ] {
        args.extend(["--set", set]);
    }
    let o = dex(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let last = stdout(&o).lines().last().unwrap().to_string();
    assert!(last.starts_with("success "), "{last}");
    let meta = std::fs::read_to_string(out.join("checkpoint.toml")).unwrap();
    assert!(
        meta.contains("obs = \"depth\"") && meta.contains("image = [16, 16]"),
        "{meta}"
    );
    let eval = || {
        let args = ["--episodes", "2", "--seed", "4", "--envs", "2"];
        let mut all = vec!["eval", "--checkpoint", &out_str];
        all.extend(args);
        let o = dex(&all);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().last().unwrap().to_string()
    };
    let eval_line = eval();
    assert!(eval_line.starts_with("success "), "{eval_line}");
    assert_eq!(eval(), eval_line);
    let o = dex(&[
        "train",
        "sac",
        "--task",
        "rotate",
        "--obs",
        "depth",
        "--out",
        dir.join("rotate").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("has no depth observations (tasks with depth: reach)"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn ppo_defaults_follow_the_task_and_a_config_file_overrides_only_its_keys() {
    let config = |extra: &[&str]| {
        let mut args = vec!["train", "ppo", "--print-config"];
        args.extend_from_slice(extra);
        let o = dex(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    // reach has its own settings; other tasks keep the plain defaults.
    let reach = config(&["--task", "reach"]);
    assert!(
        reach.contains("gamma = 0.9\n")
            && reach.contains("epochs = 10\n")
            && reach.contains("num_envs = 64\n")
            && reach.contains("action_mode = \"relative\"\n")
            && reach.contains("relative_scale = 0.25\n")
            && reach.contains("dt = 0.005\n")
            && reach.contains("substeps = 10\n"),
        "{reach}"
    );
    let rotate = config(&["--task", "rotate"]);
    assert!(
        rotate.contains("gamma = 0.99\n")
            && rotate.contains("epochs = 5\n")
            && rotate.contains("action_mode = \"absolute\"\n"),
        "{rotate}"
    );
    // SAC shares reach's task settings from state, not from depth.
    let sac = |extra: &[&str]| {
        let mut args = vec!["train", "sac", "--print-config", "--task", "reach"];
        args.extend_from_slice(extra);
        let o = dex(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o)
    };
    let state = sac(&[]);
    assert!(
        state.contains("action_mode = \"relative\"\n") && state.contains("dt = 0.005\n"),
        "{state}"
    );
    let depth = sac(&["--obs", "depth"]);
    assert!(
        depth.contains("action_mode = \"absolute\"\n") && depth.contains("dt = 0.002\n"),
        "{depth}"
    );
    // A file that sets one key leaves the task's other settings in place, and
    // --set still comes last.
    let dir = std::env::temp_dir().join(format!("dex-cli-train-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ppo.toml");
    std::fs::write(&file, "[ppo]\nepochs = 3\nlearning_rate = 0.001\n").unwrap();
    let f = file.to_str().unwrap();
    let merged = config(&[
        "--task",
        "reach",
        "--config",
        f,
        "--set",
        "ppo.learning_rate=0.002",
    ]);
    assert!(
        merged.contains("epochs = 3\n")
            && merged.contains("gamma = 0.9\n")
            && merged.contains("learning_rate = 0.002\n"),
        "{merged}"
    );
    // An unknown key in the file is an error that names the file.
    std::fs::write(&file, "[ppo]\nepochz = 3\n").unwrap();
    let o = dex(&["train", "ppo", "--print-config", "--config", f]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("ppo.toml") && stderr(&o).contains("epochz"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The last line of a command's stdout.
fn last_line(o: &std::process::Output) -> String {
    stdout(o).lines().last().unwrap_or_default().to_string()
}

#[test]
fn dagger_distils_the_proxy_expert_into_a_dex4d_student() {
    let dir = std::env::temp_dir().join(format!("dex-cli-dex4d-{}", std::process::id()));
    let out = dir.to_str().unwrap();
    let o = dex(&[
        "train",
        "dagger",
        "--teacher",
        "proxy-expert",
        "--student",
        "dex4d",
        "--encoder",
        "decoupled",
        "--seed",
        "3",
        "--minutes",
        "0.05",
        "--out",
        out,
        "--set",
        "num_envs=8",
        "--set",
        "student.attention=false",
        "--set",
        "run.eval_episodes=4",
        "--set",
        "run.eval_envs=4",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("teacher (pose-proxy expert"), "{text}");
    assert!(last_line(&o).starts_with("success "), "{text}");
    // The checkpoint records the ablation settings and evaluates from the CLI.
    let meta = std::fs::read_to_string(dir.join("checkpoint.toml")).unwrap();
    assert!(meta.contains("encoder = \"decoupled\""), "{meta}");
    assert!(meta.contains("attention = false"), "{meta}");
    let eval = |seed: &str| {
        dex(&[
            "eval",
            "--checkpoint",
            out,
            "--episodes",
            "4",
            "--seed",
            seed,
        ])
    };
    let (a, b) = (eval("1"), eval("1"));
    assert!(a.status.success(), "{}", stderr(&a));
    assert_eq!(last_line(&a), last_line(&b), "same seed, same line");
    // Bad combinations are refused before anything runs.
    for (args, needle) in [
        (vec!["--student", "dex4d", "--keep", "0..4"], "drop --keep"),
        (vec!["--student", "mlp"], "--keep"),
        (
            vec!["--student", "dex4d", "--encoder", "pointnet"],
            "pointnet",
        ),
    ] {
        let mut all = vec!["train", "dagger", "--teacher", "proxy-expert", "--out", out];
        all.extend(args.iter().copied());
        let o = dex(&all);
        assert!(!o.status.success());
        assert!(stderr(&o).contains(needle), "{all:?}: {}", stderr(&o));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bc_learns_from_a_dataset_that_names_its_environment_and_refuses_bad_input() {
    let dir = std::env::temp_dir().join(format!("dex-cli-bc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A dataset of reach observations (mock physics) labelled by the IK expert's actions.
    let env = dex_sim::EnvSpec::state(
        "reach",
        "leap",
        dex_sim::TaskConfig {
            mock_physics: true,
            ..dex_sim::TaskConfig::default()
        },
    );
    let mut venv = env.build(1).unwrap();
    let (obs, _) = venv.reset(3).unwrap();
    let od = obs[0].state.len();
    let mut meta = toml::Table::new();
    meta.insert("env".into(), toml::Value::Table(env.to_table().unwrap()));
    let data = dir.join("data");
    let mut w = dex_policy::DatasetWriter::create(&data, od, 16, 64, meta).unwrap();
    let x = ndarray::Array2::from_shape_fn((100, od), |(i, j)| ((i * 7 + j) % 13) as f32 / 13.0);
    let y = ndarray::Array2::from_shape_fn((100, 16), |(i, j)| ((i + j) % 5) as f32 / 5.0 - 0.4);
    w.push(x.view(), y.view()).unwrap();
    w.finish().unwrap();
    let out = dir.join("student");
    let o = dex(&[
        "train",
        "bc",
        "--data",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--seed",
        "2",
        "--set",
        "bc.hidden=[16]",
        "--set",
        "run.eval_episodes=2",
        "--set",
        "run.eval_envs=2",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("trained on 100 rows"), "{}", stdout(&o));
    assert!(last_line(&o).starts_with("success "), "{}", stdout(&o));
    let e = dex(&[
        "eval",
        "--checkpoint",
        out.to_str().unwrap(),
        "--episodes",
        "2",
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    // A missing dataset, an existing checkpoint: exit code 2 and why.
    for (args, needle) in [
        (
            vec!["--data", "/no/such/dataset", "--out", "/tmp/x"],
            "dataset",
        ),
        (
            vec![
                "--data",
                data.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            "already holds a checkpoint",
        ),
    ] {
        let mut full = vec!["train", "bc"];
        full.extend(args);
        let o = dex(&full);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{}", stderr(&o));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_builtin_dex4d_teacher_and_student_evaluate_on_the_tabletop_task() {
    let student = dex(&[
        "eval",
        "--checkpoint",
        "builtin:dex4d-student",
        "--episodes",
        "2",
        "--envs",
        "2",
        "--set",
        "task.episode_steps=20",
    ]);
    assert!(student.status.success(), "{}", stderr(&student));
    let text = stdout(&student);
    assert!(text.contains("dagger policy on anypose-table"), "{text}");
    assert!(
        last_line(&student).starts_with("goals_per_episode "),
        "{text}"
    );
    let eval = || {
        dex(&[
            "eval",
            "--checkpoint",
            "builtin:dex4d-teacher",
            "--episodes",
            "2",
            "--envs",
            "2",
            "--seed",
            "1",
            "--set",
            "task.episode_steps=40",
        ])
    };
    let (a, b) = (eval(), eval());
    assert!(a.status.success(), "{}", stderr(&a));
    let text = stdout(&a);
    assert!(
        text.contains("tabletop expert policy on anypose-table"),
        "{text}"
    );
    assert!(text.contains("success "), "{text}");
    assert!(last_line(&a).starts_with("goals_per_episode "), "{text}");
    assert_eq!(stdout(&a), stdout(&b), "same seed, same lines");
}

/// The `success <f> progress <f>` line of a multi-waypoint evaluation, parsed.
fn success_progress(o: &std::process::Output) -> (f64, f64) {
    let line = last_line(o);
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.len(), 4, "{line}");
    assert_eq!((words[0], words[2]), ("success", "progress"), "{line}");
    let (s, p): (f64, f64) = (words[1].parse().unwrap(), words[3].parse().unwrap());
    assert!(
        (0.0..=1.0).contains(&s) && (0.0..=1.0).contains(&p),
        "{line}"
    );
    (s, p)
}

#[test]
fn multi_waypoint_tasks_end_with_success_and_progress_and_repeat_for_a_seed() {
    let eval = |checkpoint: &str, task: &str, tracks: &str, episodes: &str, steps: &str| {
        dex(&[
            "eval",
            "--checkpoint",
            checkpoint,
            "--task",
            task,
            "--tracks",
            tracks,
            "--episodes",
            episodes,
            "--seed",
            "3",
            "--steps",
            steps,
        ])
    };
    let teacher = "builtin:dex4d-teacher";
    // Closed loop on oracle tracks: the follower hands over each waypoint as the object
    // reaches it, and the teacher stacks both objects of seeds 3 and 4.
    let stacked = eval(teacher, "stack", "oracle", "2", "200");
    assert!(stacked.status.success(), "{}", stderr(&stacked));
    assert_eq!(
        success_progress(&stacked),
        (1.0, 1.0),
        "{}",
        stdout(&stacked)
    );
    for (task, tracks) in [("stack", "oracle"), ("carry", "open-loop")] {
        let (a, b) = (
            eval(teacher, task, tracks, "2", "60"),
            eval(teacher, task, tracks, "2", "60"),
        );
        assert!(a.status.success(), "{}", stderr(&a));
        let text = stdout(&a);
        assert!(text.contains(&format!("policy on {task}")), "{text}");
        success_progress(&a);
        assert_eq!(last_line(&a), last_line(&b), "same seed, same line");
    }
    // The student on a task, and KLT tracking (with its timings).
    let student = eval("builtin:dex4d-student", "pour", "oracle", "1", "20");
    assert!(student.status.success(), "{}", stderr(&student));
    success_progress(&student);
    let klt = eval(teacher, "carry", "klt", "1", "5");
    assert!(klt.status.success(), "{}", stderr(&klt));
    assert!(stdout(&klt).contains("render_ms "), "{}", stdout(&klt));
    success_progress(&klt);
    // A policy for another task is a clear error.
    let bad = eval("reach-ik", "carry", "oracle", "1", "5");
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("anypose-table"), "{}", stderr(&bad));
}
