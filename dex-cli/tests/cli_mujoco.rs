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

const RENDER: &[&str] = &[
    "sim",
    "render",
    "--backend",
    "mujoco",
    "--width",
    "48",
    "--height",
    "32",
    "--out",
];

/// `RENDER` writing to a file in a fresh directory named `name`.
fn render_args(name: &str) -> (std::path::PathBuf, Vec<String>) {
    let dir = std::env::temp_dir().join(format!("dex-cli-mujoco-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut args: Vec<String> = RENDER.iter().map(|s| s.to_string()).collect();
    args.push(dir.join("depth.png").display().to_string());
    (dir, args)
}

#[cfg(not(feature = "mujoco"))]
#[test]
fn without_the_feature_the_backend_is_an_error_that_names_it() {
    let (dir, render) = render_args("without");
    let render: Vec<&str> = render.iter().map(String::as_str).collect();
    for args in [RUN, BENCH, &render] {
        let o = dex(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains("mujoco"), "{}", stderr(&o));
        assert!(stderr(&o).contains("feature"), "{}", stderr(&o));
    }
    assert!(!dir.join("depth.png").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "mujoco")]
#[test]
fn the_mujoco_backend_renders_what_rapier_renders() {
    let (dir, mut args) = render_args("render");
    let line = |args: &[String]| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = dex(&a);
        assert!(o.status.success(), "{}", stderr(&o));
        stdout(&o).lines().last().unwrap_or_default().to_string()
    };
    // `wrote PATH (48×32) hit_pixels H object_pixels P render_ms T`
    let field = |l: &str, key: &str| -> f64 {
        let words: Vec<&str> = l.split_whitespace().collect();
        let i = words.iter().position(|w| *w == key).unwrap();
        words[i + 1].parse().unwrap()
    };
    let mujoco = line(&args);
    assert!(dir.join("depth.png").exists());
    args[3] = "rapier".into();
    let rapier = line(&args);
    for key in ["hit_pixels", "object_pixels"] {
        let (m, r) = (field(&mujoco, key), field(&rapier, key));
        assert!(
            m > 0.0 && (m - r).abs() <= 0.05 * r,
            "{key}: mujoco {m}, rapier {r}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
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

/// MuJoCo Menagerie's LEAP file beside the repository (`../shared/assets/menagerie`).
#[cfg_attr(not(feature = "mujoco"), allow(dead_code))]
fn menagerie_leap() -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/assets/menagerie/leap_hand/right_hand.xml");
    if path.is_file() {
        Some(path.display().to_string())
    } else {
        eprintln!("skipped: {} is missing", path.display());
        None
    }
}

#[cfg(feature = "mujoco")]
#[test]
fn a_users_mjcf_hand_runs_tasks_and_bad_maps_are_errors() {
    let Some(path) = menagerie_leap() else { return };
    let mut args: Vec<&str> = RUN.to_vec();
    args.extend(["--mjcf", path.as_str()]);
    let a = dex(&args);
    let b = dex(&args);
    assert!(a.status.success(), "{}", stderr(&a));
    let last = |o: &std::process::Output| stdout(o).lines().last().unwrap_or_default().to_string();
    assert!(last(&a).starts_with("digest "), "{}", stdout(&a));
    assert_eq!(last(&a), last(&b));
    assert_ne!(last(&dex(RUN)), last(&a), "the file's hand is dex's model");
    let mut bad = args.clone();
    bad.extend(["--joint", "if_mcp=no_such_joint"]);
    let o = dex(&bad);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no_such_joint"), "{}", stderr(&o));
    let mut rapier: Vec<&str> = args
        .iter()
        .map(|s| if *s == "mujoco" { "rapier" } else { s })
        .collect();
    let o = dex(&rapier);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--backend mujoco"), "{}", stderr(&o));
    rapier.extend(["--joint", "nonsense"]);
    assert_eq!(dex(&rapier).status.code(), Some(2));
}
