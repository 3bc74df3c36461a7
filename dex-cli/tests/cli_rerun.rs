//! `--rerun FILE.rrd` on `dex demo` and `dex eval`: a recording with the `rerun`
//! feature, a clear error naming the build command without it, and a bad path refused
//! before any work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::dex;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn student() -> String {
    format!("{}/assets/reach-student", env!("CARGO_MANIFEST_DIR"))
}

#[cfg(not(feature = "rerun"))]
#[test]
fn without_the_feature_rerun_is_an_error_that_names_the_build() {
    let dir = std::env::temp_dir().join(format!("dex-cli-rerun-off-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("x.rrd");
    let f = file.to_str().unwrap();
    for args in [
        vec![
            "eval",
            "--checkpoint",
            &student(),
            "--episodes",
            "1",
            "--rerun",
            f,
        ],
        vec![
            "demo",
            "--quick",
            "--out",
            dir.to_str().unwrap(),
            "--rerun",
            f,
        ],
    ] {
        let o = dex(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("cargo build --release -p dex-cli --features rerun"),
            "{}",
            stderr(&o)
        );
        assert!(!file.exists());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[cfg(feature = "rerun")]
#[test]
fn eval_records_one_episode_and_a_missing_directory_is_refused() {
    let dir = std::env::temp_dir().join(format!("dex-cli-rerun-on-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("eval.rrd");
    let o = dex(&[
        "eval",
        "--checkpoint",
        &student(),
        "--episodes",
        "2",
        "--envs",
        "1",
        "--rerun",
        file.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("one episode"), "{}", stderr(&o));
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..4], b"RRF2");
    let missing = dir.join("no/such/dir/x.rrd");
    let o = dex(&[
        "eval",
        "--checkpoint",
        &student(),
        "--episodes",
        "1",
        "--rerun",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"), "{}", stderr(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn rerun_is_for_simulated_evaluations() {
    let o = dex(&[
        "eval",
        "--checkpoint",
        &student(),
        "--emulated",
        "--rerun",
        "x.rrd",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("--rerun"), "{}", stderr(&o));
}
