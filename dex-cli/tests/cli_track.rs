//! `dex track synth`, `klt` and `icp` on the command line: the file formats a
//! script relies on, the figures they print, and clear errors for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests may panic on failure

mod common;
use common::dex;

use std::path::{Path, PathBuf};
use std::process::Output;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dex-cli-track-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn read_csv(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("frame,point,x,y,visible"));
    lines
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect()
}

#[test]
fn klt_tracks_a_synthetic_sequence_close_to_the_truth() {
    let dir = tmp("klt");
    let d = dir.to_str().unwrap();
    ok(&dex(&[
        "track",
        "synth",
        "--case",
        "translation",
        "--out",
        d,
    ]));
    let out = dir.join("tracks.csv");
    let stdout = ok(&dex(&[
        "track",
        "klt",
        "--frames",
        &format!("{d}/frames"),
        "--queries",
        &format!("{d}/queries.csv"),
        "--out",
        out.to_str().unwrap(),
    ]));
    let last = stdout.lines().last().unwrap();
    let ms: f64 = last
        .strip_prefix("ms_per_frame ")
        .expect("last line is ms_per_frame")
        .parse()
        .unwrap();
    assert!(ms > 0.0);
    let tracks = read_csv(&out);
    let truth = read_csv(&dir.join("truth.csv"));
    assert_eq!(tracks.len(), 30 * 256);
    // Rows line up (frame, point); at the last frame the median error is small.
    let mut errs: Vec<f64> = tracks
        .iter()
        .zip(&truth)
        .filter(|(t, g)| t[0] == 29.0 && g[4] == 1.0)
        .map(|(t, g)| ((t[2] - g[2]).powi(2) + (t[3] - g[3]).powi(2)).sqrt())
        .collect();
    errs.sort_by(f64::total_cmp);
    assert!(
        errs[errs.len() / 2] < 0.1,
        "median error {}",
        errs[errs.len() / 2]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn icp_prints_one_json_object_with_the_transform() {
    let dir = tmp("icp");
    let d = dir.to_str().unwrap();
    ok(&dex(&[
        "track", "synth", "--case", "box", "--out", d, "--seed", "3",
    ]));
    let stdout = ok(&dex(&[
        "track",
        "icp",
        "--source",
        &format!("{d}/source.xyz"),
        "--target",
        &format!("{d}/target.xyz"),
    ]));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("truth.json")).unwrap()).unwrap();
    for k in 0..3 {
        let got = v["translation"][k].as_f64().unwrap();
        let want = truth["translation"][k].as_f64().unwrap();
        assert!(
            (got - want).abs() < 0.002,
            "translation {k}: {got} vs {want}"
        );
    }
    assert_eq!(v["rotation"].as_array().unwrap().len(), 9);
    assert!(
        v["iterations"].as_u64().unwrap() >= 1
            && v["rmse"].as_f64().is_some()
            && v["ms"].as_f64().is_some()
    );
    assert_eq!(v["converged"], true);
    std::fs::remove_dir_all(&dir).ok();
}

fn assert_fails(args: &[&str], needle: &str) {
    let out = dex(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr `{err}` lacks `{needle}`"
    );
}

#[test]
fn bad_track_input_is_a_clear_error() {
    let dir = tmp("bad");
    let d = dir.to_str().unwrap();
    ok(&dex(&["track", "synth", "--case", "rotation", "--out", d]));
    let frames = format!("{d}/frames");
    let out = format!("{d}/out.csv");
    // A frame of another size in the sequence.
    image::GrayImage::new(10, 10)
        .save(format!("{frames}/0099.png"))
        .unwrap();
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &frames,
            "--queries",
            &format!("{d}/queries.csv"),
            "--out",
            &out,
        ],
        "frame is 10×10",
    );
    std::fs::remove_file(format!("{frames}/0099.png")).unwrap();
    // Empty query list; a query outside the image; a non-number.
    std::fs::write(format!("{d}/empty.csv"), "").unwrap();
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &frames,
            "--queries",
            &format!("{d}/empty.csv"),
            "--out",
            &out,
        ],
        "no queries",
    );
    std::fs::write(format!("{d}/outside.csv"), "700,10\n").unwrap();
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &frames,
            "--queries",
            &format!("{d}/outside.csv"),
            "--out",
            &out,
        ],
        "outside",
    );
    std::fs::write(format!("{d}/nan.csv"), "x,y\n1,two\n").unwrap();
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &frames,
            "--queries",
            &format!("{d}/nan.csv"),
            "--out",
            &out,
        ],
        "not a number",
    );
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &frames,
            "--queries",
            &format!("{d}/queries.csv"),
            "--out",
            &out,
            "--win",
            "20",
        ],
        "odd",
    );
    assert_fails(
        &[
            "track",
            "klt",
            "--frames",
            &format!("{d}/nowhere"),
            "--queries",
            &format!("{d}/queries.csv"),
            "--out",
            &out,
        ],
        "cannot read folder",
    );
    // ICP on two points; on a malformed file.
    std::fs::write(format!("{d}/two.xyz"), "0 0 0\n1 0 0\n").unwrap();
    assert_fails(
        &[
            "track",
            "icp",
            "--source",
            &format!("{d}/two.xyz"),
            "--target",
            &format!("{d}/two.xyz"),
        ],
        "at least 3 points",
    );
    std::fs::write(format!("{d}/bad.xyz"), "0 0\n").unwrap();
    assert_fails(
        &[
            "track",
            "icp",
            "--source",
            &format!("{d}/bad.xyz"),
            "--target",
            &format!("{d}/two.xyz"),
        ],
        "x y z",
    );
    std::fs::remove_dir_all(&dir).ok();
}
