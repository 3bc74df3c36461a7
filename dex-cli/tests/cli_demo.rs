//! `dex demo` and `dex hw emulate --physics sim`, end to end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::dex;
use dex_hw::{HandDriver, JointTargets, LeapConfig, LeapHand, SerialTransport};

fn summary(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_settings_are_clear_errors() {
    let tmp = std::env::temp_dir().join(format!("dex-demo-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let out = tmp.join("out");
    let out_s = out.to_str().unwrap();

    let r = dex(&["demo", "--quick", "--hand", "allegro", "--out", out_s]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("only the LEAP Hand"), "{}", stderr(&r));

    let missing = tmp.join("no-such-checkpoint");
    let r = dex(&[
        "demo",
        "--quick",
        "--checkpoint",
        missing.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("loading the policy"), "{}", stderr(&r));

    let corrupt = tmp.join("corrupt");
    std::fs::create_dir_all(&corrupt).unwrap();
    std::fs::write(corrupt.join("checkpoint.toml"), "not = [toml").unwrap();
    let r = dex(&[
        "demo",
        "--quick",
        "--checkpoint",
        corrupt.to_str().unwrap(),
        "--out",
        out_s,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("loading the policy"), "{}", stderr(&r));

    // An output "directory" that is a file.
    let file = tmp.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let r = dex(&[
        "demo",
        "--quick",
        "--out",
        file.join("sub").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        stderr(&r).contains("cannot create the directory"),
        "{}",
        stderr(&r)
    );

    let r = dex(&[
        "demo",
        "--quick",
        "--train",
        "--checkpoint",
        out_s,
        "--out",
        out_s,
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("exclude each other"), "{}", stderr(&r));

    let r = dex(&["demo", "--quick", "--max-step=-1", "--out", out_s]);
    assert_eq!(r.status.code(), Some(2));
    assert!(stderr(&r).contains("--max-step"), "{}", stderr(&r));
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn the_same_seed_gives_the_same_summary() {
    let tmp = std::env::temp_dir().join(format!("dex-demo-det-{}", std::process::id()));
    let mut summaries = Vec::new();
    for run in ["a", "b"] {
        let dir = tmp.join(run);
        let r = dex(&[
            "demo",
            "--quick",
            "--seed",
            "3",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(r.status.success(), "{}", stderr(&r));
        let stdout = String::from_utf8_lossy(&r.stdout);
        assert!(stdout.contains("control rate"), "{stdout}");
        assert!(stdout.contains(&format!("figure {}", dir.join("demo.png").display())));
        for picture in ["demo.png", "frames.png"] {
            let png = std::fs::read(dir.join(picture)).unwrap();
            assert_eq!(&png[1..4], b"PNG", "{picture}");
        }
        let frames = image::open(dir.join("frames.png")).unwrap();
        // Four stills of the run over the tracker's two views.
        assert_eq!((frames.width(), frames.height()), (4 * 320, 2 * 240));
        let mut s = summary(&dir);
        assert_eq!(s["interrupted"], false);
        // Every planned tick ran, each stepping the simulated hand once.
        let cycles = s["control"]["cycles"].as_u64().unwrap();
        assert!(cycles > 100);
        assert!(s["control"]["physics_steps"].as_u64().unwrap() >= cycles);
        assert_eq!(s["control"]["bus_crc_errors"], 0);
        assert!(s["tracking"]["points"].as_u64().unwrap() > 0);
        s.as_object_mut().unwrap().remove("timing");
        summaries.push(s);
    }
    assert_eq!(summaries[0], summaries[1]);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn ctrl_c_stops_the_demo_and_keeps_what_ran() {
    let dir = std::env::temp_dir().join(format!("dex-demo-int-{}", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_dex"))
        .args(["demo", "--quick", "--out", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the control loop runs (the emulator line), then a little more.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("emulated LEAP Hand") {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "dex demo ended early"
        );
    }
    std::thread::sleep(Duration::from_secs(3));
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = child.wait().unwrap();
    assert_eq!(code.code(), Some(2));
    let s = summary(&dir);
    assert_eq!(s["interrupted"], true);
    let planned: u64 = ["reach_ticks", "return_ticks"]
        .iter()
        .map(|k| s["plan"][k].as_u64().unwrap() * s["plan"]["reach_sets"].as_u64().unwrap())
        .sum();
    assert!(s["control"]["cycles"].as_u64().unwrap() < planned + 100);
    assert!(dir.join("demo.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn emulate_with_sim_physics_serves_a_simulated_hand() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dex"))
        .args(["hw", "emulate", "--pty", "--physics", "sim"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let path = line
        .trim()
        .strip_prefix("pty ")
        .expect("pty line")
        .to_string();
    let port = SerialTransport::open(&path, 4_000_000).unwrap();
    let mut hand = LeapHand::open(port, LeapConfig::default()).unwrap();
    hand.configure().unwrap();
    hand.enable().unwrap();
    let mut goal = hand.read_state().unwrap().q;
    goal[1] = 0.8;
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        hand.write_targets(&JointTargets::new(goal.clone()))
            .unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    let q = hand.read_state().unwrap().q;
    assert!((q[1] - 0.8).abs() < 0.1, "joint 1 at {} after 1.5 s", q[1]);
    assert!(q[5].abs() < 0.1, "joint 5 moved to {}", q[5]);
    hand.disable().unwrap();
    drop(hand);
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// A checkpoint is driven on the hand with its own task settings: a PPO reach policy
/// trained with relative actions moves each target by at most `relative_scale` per tick
/// (an absolute mapping would jump to mid-range on the first reach tick).
#[test]
fn a_checkpoint_is_driven_with_its_own_action_mode() {
    let tmp = std::env::temp_dir().join(format!("dex-demo-relative-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let ck = tmp.join("ppo");
    let scale = 0.02;
    let set_scale = format!("task.relative_scale={scale}");
    let r = dex(&[
        "train",
        "ppo",
        "--task",
        "reach",
        "--hand",
        "leap",
        "--minutes",
        "5",
        "--out",
        ck.to_str().unwrap(),
        "--set",
        "task.mock_physics=true",
        "--set",
        "task.action_mode=\"relative\"",
        "--set",
        &set_scale,
        "--set",
        "ppo.num_envs=4",
        "--set",
        "ppo.horizon=8",
        "--set",
        "ppo.hidden=[16]",
        "--set",
        "run.max_iterations=1",
        "--set",
        "run.eval_episodes=2",
        "--set",
        "run.eval_envs=2",
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let out = tmp.join("demo");
    let r = dex(&[
        "demo",
        "--quick",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", stderr(&r));
    let s = summary(&out);
    assert_eq!(s["policy"]["task"]["action_mode"], "relative");
    let csv = std::fs::read_to_string(out.join("ticks.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let target_cols: Vec<usize> = (0..header.len())
        .filter(|&i| header[i].ends_with("_target"))
        .collect();
    assert_eq!(target_cols.len(), 16);
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let mut reach_ticks = 0;
    for pair in rows.windows(2) {
        if pair[1][1] != "reach" {
            continue;
        }
        reach_ticks += 1;
        for &c in &target_cols {
            let a: f64 = pair[0][c].parse().unwrap();
            let b: f64 = pair[1][c].parse().unwrap();
            // The CSV rounds to 1e-5.
            assert!(
                (b - a).abs() <= scale + 2e-5,
                "{}: target moved {} in one reach tick (relative scale {scale})",
                header[c],
                b - a
            );
        }
    }
    assert!(reach_ticks > 10, "{reach_ticks} reach ticks");
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_student_trained_in_the_run_drives_the_hand() {
    let dir = std::env::temp_dir().join(format!("dex-demo-train-{}", std::process::id()));
    let r = dex(&["demo", "--quick", "--train", "--out", dir.to_str().unwrap()]);
    assert!(r.status.success(), "{}", stderr(&r));
    let s = summary(&dir);
    let source = s["policy"]["source"].as_str().unwrap();
    assert!(source.starts_with("trained here"), "{source}");
    let sim_success = s["policy"]["sim_success"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&sim_success));
    assert!(dir.join("trained-policy").join("checkpoint.toml").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
