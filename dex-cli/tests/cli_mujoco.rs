//! `--backend mujoco`: the same scene and task on MuJoCo with the `mujoco` feature (same
//! seed, same digest), a clear error naming the feature without it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::dex;

#[cfg_attr(not(feature = "mujoco"), allow(dead_code))]
fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

const RUN: &[&str] = &[
    "sim",
    "run",
    "--backend",
    "mujoco",
    "--hand",
    "leap",
    "--task",
    "rotate",
    "--seed",
    "7",
    "--steps",
    "40",
    "--policy",
    "random",
];
const BENCH: &[&str] = &[
    "sim",
    "bench",
    "--backend",
    "mujoco",
    "--hand",
    "leap",
    "--object",
    "cube",
    "--steps",
    "200",
];

#[cfg(not(feature = "mujoco"))]
#[test]
fn without_the_feature_the_backend_is_an_error_that_names_it() {
    for args in [RUN, BENCH] {
        let o = dex(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("mujoco"), "{}", stderr(&o));
        assert!(stderr(&o).contains("feature"), "{}", stderr(&o));
    }
}

#[cfg(feature = "mujoco")]
#[test]
fn the_mujoco_backend_runs_tasks_deterministically_and_benches() {
    let a = dex(RUN);
    let b = dex(RUN);
    assert!(a.status.success(), "{}", stderr(&a));
    let last = |o: &std::process::Output| stdout(o).lines().last().unwrap_or_default().to_string();
    assert!(last(&a).starts_with("digest "), "{}", stdout(&a));
    assert_eq!(last(&a), last(&b));
    let rapier: Vec<&str> = RUN
        .iter()
        .map(|s| if *s == "mujoco" { "rapier" } else { s })
        .collect();
    assert_ne!(
        last(&dex(&rapier)),
        last(&a),
        "the backends gave the same digest"
    );
    let o = dex(BENCH);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(last(&o).starts_with("steps_per_s "), "{}", stdout(&o));
}

#[test]
fn an_unknown_backend_is_an_error() {
    let args: Vec<&str> = RUN
        .iter()
        .map(|s| if *s == "mujoco" { "bullet" } else { s })
        .collect();
    let o = dex(&args);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("bullet"), "{}", stderr(&o));
}
