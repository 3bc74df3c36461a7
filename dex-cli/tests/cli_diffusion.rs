//! `dex diffusion`: collect, train, eval and sweep end to end, and their bad inputs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::dex;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn last_line(out: &std::process::Output) -> String {
    text(&out.stdout).lines().last().unwrap_or("").to_string()
}

#[test]
fn bad_inputs_exit_with_code_2_and_say_why() {
    let tmp = std::env::temp_dir().join(format!("dex-diffusion-cli-bad-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let r = dex(&[
        "diffusion",
        "eval",
        "--command",
        "wobbly:1",
        "--episodes",
        "1",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(text(&r.stderr).contains("wobbly:1"), "{}", text(&r.stderr));
    let r = dex(&[
        "diffusion",
        "eval",
        "--command",
        "noisy:-1",
        "--episodes",
        "1",
    ]);
    assert_eq!(r.status.code(), Some(2));
    for bad in [
        ["--action-scale", "0"],
        ["--action-scale", "nan"],
        ["--command-steps", "sometimes"],
        ["--precision", "f8"],
    ] {
        let mut args = vec![
            "diffusion",
            "eval",
            "--command",
            "expert",
            "--episodes",
            "1",
        ];
        args.extend(bad);
        let r = dex(&args);
        assert_eq!(r.status.code(), Some(2), "{bad:?}");
        assert!(!text(&r.stderr).is_empty());
    }
    let missing = tmp.join("no-checkpoint");
    let r = dex(&[
        "diffusion",
        "eval",
        "--checkpoint",
        missing.to_str().unwrap(),
        "--command",
        "expert",
        "--guidance",
        "1",
        "--episodes",
        "1",
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("dexgen-model.toml"),
        "{}",
        text(&r.stderr)
    );
    let r = dex(&[
        "diffusion",
        "sweep",
        "--command",
        "noisy:1.5",
        "--guidance",
        "0,-3",
        "--episodes",
        "1",
        "--out",
        tmp.join("sweep").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    let r = dex(&[
        "diffusion",
        "train",
        "--data",
        missing.to_str().unwrap(),
        "--minutes",
        "0.01",
        "--out",
        tmp.join("ck").to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("dexgen.toml"),
        "{}",
        text(&r.stderr)
    );
}

#[test]
fn collect_train_and_evaluate_end_to_end() {
    let tmp = std::env::temp_dir().join(format!("dex-diffusion-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let data = tmp.join("data");
    let ck = tmp.join("ck");
    let r = dex(&[
        "diffusion",
        "collect",
        "--hand",
        "leap",
        "--episodes",
        "2",
        "--seed",
        "3",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(data.join("dexgen.toml").exists());
    // Collecting into an existing dataset is refused.
    let again = dex(&[
        "diffusion",
        "collect",
        "--episodes",
        "1",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
    let r = dex(&[
        "diffusion",
        "train",
        "--data",
        data.to_str().unwrap(),
        "--minutes",
        "0.05",
        "--seed",
        "1",
        "--out",
        ck.to_str().unwrap(),
        "--set",
        "model.denoiser.hidden=32",
        "--set",
        "model.denoiser.state_hidden=32",
        "--set",
        "log_every=5",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    for f in [
        "dexgen-model.toml",
        "denoiser.safetensors",
        "idm.safetensors",
        "metrics.csv",
        "curve.png",
        "config.toml",
    ] {
        assert!(ck.join(f).exists(), "{f}");
    }
    // Without --guidance a fresh checkpoint recommends none: an error.
    let base = [
        "diffusion",
        "eval",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--command",
        "noisy:1.5",
        "--episodes",
        "2",
        "--envs",
        "2",
        "--seed",
        "4",
    ];
    let r = dex(&base);
    assert_eq!(r.status.code(), Some(2));
    assert!(
        text(&r.stderr).contains("--guidance"),
        "{}",
        text(&r.stderr)
    );
    let mut guided = base.to_vec();
    guided.extend(["--guidance", "10"]);
    let a = dex(&guided);
    assert!(a.status.success(), "{}", text(&a.stderr));
    let b = dex(&guided);
    let line = last_line(&a);
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields.len(), 6, "{line}");
    assert_eq!(
        (fields[0], fields[2], fields[4]),
        ("hold_s", "goals", "drops")
    );
    assert_eq!(line, last_line(&b), "same seed, same line");
    // A sweep writes its CSV and picture and can store its choice.
    let out = tmp.join("sweep");
    let r = dex(&[
        "diffusion",
        "sweep",
        "--checkpoint",
        ck.to_str().unwrap(),
        "--command",
        "noisy:1.5",
        "--guidance",
        "0,100",
        "--episodes",
        "2",
        "--envs",
        "2",
        "--seed",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--recommend",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("noisy:1.5,raw,"));
    assert!(out.join("sweep.png").exists());
    let r = dex(&base);
    assert!(
        r.status.success(),
        "the recommended α is used: {}",
        text(&r.stderr)
    );
}

#[test]
fn the_raw_source_and_the_shipped_checkpoint_run() {
    let r = dex(&[
        "diffusion",
        "eval",
        "--command",
        "noisy:1.5",
        "--no-controller",
        "--episodes",
        "2",
        "--envs",
        "2",
        "--seed",
        "9",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(last_line(&r).starts_with("hold_s "), "{}", last_line(&r));
    let r = dex(&[
        "diffusion",
        "eval",
        "--checkpoint",
        "builtin:dexgen-leap",
        "--command",
        "slow:0.5",
        "--guidance",
        "3",
        "--episodes",
        "1",
        "--envs",
        "1",
        "--seed",
        "9",
    ]);
    assert!(r.status.success(), "{}", text(&r.stderr));
    assert!(last_line(&r).starts_with("hold_s "), "{}", last_line(&r));
}
