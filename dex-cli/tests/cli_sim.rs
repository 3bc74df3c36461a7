//! The `dex sim` commands: the output lines scripts rely on, reproducible digests, and
//! exit code 2 with a message for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

mod common;
use common::dex;

use std::process::Output;

fn last_line(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string()
}

#[test]
fn bench_ends_with_steps_per_second() {
    let line = last_line(&dex(&[
        "sim", "bench", "--hand", "leap", "--object", "cube", "--steps", "200", "--dt", "0.002",
    ]));
    let (key, value) = line.split_once(' ').unwrap();
    assert_eq!(key, "steps_per_s");
    assert!(value.parse::<f64>().unwrap() > 0.0);
}

#[test]
fn run_digest_depends_on_the_seed_only() {
    let run = |seed: &str, task: &str| {
        last_line(&dex(&[
            "sim", "run", "--hand", "leap", "--task", task, "--seed", seed, "--steps", "30",
            "--policy", "random",
        ]))
    };
    let a = run("1", "rotate");
    assert!(
        a.starts_with("digest ") && a.len() == "digest ".len() + 16,
        "{a}"
    );
    assert_eq!(a, run("1", "rotate"));
    assert_ne!(a, run("2", "rotate"));
    let zero = last_line(&dex(&[
        "sim", "run", "--task", "reach", "--seed", "1", "--steps", "10", "--policy", "zero",
    ]));
    assert!(zero.starts_with("digest "));
}

#[test]
fn render_writes_a_png() {
    let dir = std::env::temp_dir().join(format!("dex-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("depth.png");
    let line = last_line(&dex(&[
        "sim",
        "render",
        "--hand",
        "leap",
        "--object",
        "cube",
        "--width",
        "64",
        "--height",
        "48",
        "--out",
        path.to_str().unwrap(),
    ]));
    assert!(line.contains("object_pixels"), "{line}");
    let img = image::open(&path).unwrap();
    assert_eq!((img.width(), img.height()), (64, 48));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_input_exits_2_with_a_message() {
    for args in [
        vec!["sim", "bench", "--object", "teapot", "--steps", "10"],
        vec!["sim", "bench", "--hand", "shadow", "--steps", "10"],
        vec!["sim", "run", "--task", "juggle", "--steps", "1"],
        vec!["sim", "bench", "--dt", "-1", "--steps", "10"],
        vec!["sim", "render", "--out", "/nonexistent-dir/x.png"],
    ] {
        let out = dex(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("error"),
            "{args:?}"
        );
    }
}
