//! The `dex hand show` and `dex fk` commands: output a script can rely on, and
//! exit code 2 with a message on stderr for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests and benches may panic on failure

mod common;
use common::dex;

use std::process::Output;

use dex_core::HandModel;
use serde_json::Value;

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON object")
}

#[test]
fn hand_show_json_lists_joints_in_model_order() {
    let v = json_of(&dex(&["hand", "show", "--hand", "leap", "--json"]));
    assert_eq!(v["dof"], 16);
    let joints = v["joints"].as_array().unwrap();
    assert_eq!(joints[0]["name"], "if_rot");
    assert_eq!(joints[0]["motor_id"], 0);
    assert_eq!(joints[1]["name"], "if_mcp");
    assert_eq!(joints[1]["lower"], -0.314);
    assert_eq!(v["keypoints"].as_array().unwrap().len(), 8);
    assert!((v["total_mass"].as_f64().unwrap() - 0.746).abs() < 1e-9);

    let table = dex(&["hand", "show", "--hand", "allegro"]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(
        text.contains("thj0") && text.contains("fingertips:"),
        "{text}"
    );
}

#[test]
fn fk_json_equals_the_library() {
    let model = HandModel::allegro_right();
    let q = model.mid_configuration();
    let list = q
        .iter()
        .map(|v| v.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let v = json_of(&dex(&["fk", "--hand", "allegro", "--q", &list, "--json"]));
    let poses = model.forward_kinematics(&q).unwrap();
    let links = v["links"].as_object().unwrap();
    assert_eq!(links.len(), model.links().len());
    for (link, pose) in model.links().iter().zip(&poses) {
        let entry = &links[&link.name];
        let pos: Vec<f64> = entry["pos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        let quat: Vec<f64> = entry["quat"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(
            pos,
            [pose.translation.x, pose.translation.y, pose.translation.z]
        );
        assert_eq!(
            quat,
            [
                pose.rotation.w,
                pose.rotation.i,
                pose.rotation.j,
                pose.rotation.k
            ]
        );
    }
}

#[test]
fn fk_by_name_leaves_other_joints_at_zero() {
    let v = json_of(&dex(&[
        "fk",
        "--hand",
        "leap",
        "--q-named",
        "if_mcp=1.2,th_cmc=-0.2",
        "--json",
    ]));
    let model = HandModel::leap_right();
    let q = model
        .configuration_from_named([("if_mcp", 1.2), ("th_cmc", -0.2)])
        .unwrap();
    let poses = model.forward_kinematics(&q).unwrap();
    let tip = model.link_id("if_ds").unwrap();
    let x = v["links"]["if_ds"]["pos"][0].as_f64().unwrap();
    assert_eq!(x, poses[tip.0].translation.x);
}

#[test]
fn fk_loads_a_urdf_file() {
    let dir = std::env::temp_dir().join(format!("dex-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("arm.urdf");
    std::fs::write(
        &path,
        r#"<robot name="arm"><link name="base"/><link name="l1"/>
        <joint name="j1" type="revolute"><parent link="base"/><child link="l1"/><origin xyz="0 0 0.1"/><axis xyz="0 0 1"/>
        <limit lower="-1" upper="1" effort="1" velocity="1"/></joint></robot>"#,
    )
    .unwrap();
    let v = json_of(&dex(&[
        "fk",
        "--hand",
        path.to_str().unwrap(),
        "--q",
        "0.5",
        "--json",
    ]));
    assert_eq!(v["links"]["l1"]["pos"][2], 0.1);
    let half = 0.25f64;
    assert!((v["links"]["l1"]["quat"][3].as_f64().unwrap() - half.sin()).abs() < 1e-15);
    std::fs::remove_dir_all(&dir).ok();
}

fn assert_usage_error(args: &[&str], needle: &str) {
    let out = dex(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(needle),
        "{args:?}: stderr `{err}` lacks `{needle}`"
    );
}

#[test]
fn bad_input_exits_2_with_a_message() {
    assert_usage_error(&["fk", "--hand", "leap", "--q", "0,0,0"], "16 joints");
    assert_usage_error(
        &["fk", "--hand", "leap", "--q-named", "if_mcp=3"],
        "outside its limits",
    );
    assert_usage_error(
        &["fk", "--hand", "leap", "--q-named", "knuckle=1"],
        "knuckle",
    );
    assert_usage_error(
        &["fk", "--hand", "leap", "--q-named", "if_mcp"],
        "name=value",
    );
    assert_usage_error(&["fk", "--hand", "leap", "--q", "a,b"], "not a number");
    assert_usage_error(&["fk", "--hand", "gripper9000", "--q", "0"], "gripper9000");
    assert_usage_error(
        &["hand", "show", "--hand", "/no/such/hand.urdf"],
        "hand.urdf",
    );
    // Allegro's thumb joint 0 excludes 0: the all-zero configuration is refused...
    let zeros = vec!["0"; 16].join(",");
    assert_usage_error(&["fk", "--hand", "allegro", "--q", &zeros], "thj0");
    // ...unless clamping was asked for, which says what it changed.
    let out = dex(&["fk", "--hand", "allegro", "--q", &zeros, "--clamp"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("clamped thj0"));
}
