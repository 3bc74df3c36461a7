#![allow(clippy::unwrap_used, missing_docs)]
use dex_core::HandModel;
use dex_sim::*;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let selfc = args.get(1).map(|s| s == "1").unwrap_or(true);
    let iters: usize = args.get(2).map(|s| s.parse().unwrap()).unwrap_or(4);
    let model = HandModel::leap_right();
    let config = SimConfig { substeps: 1, hand_self_collision: selfc, solver_iterations: iters, ..SimConfig::default() };
    let cube = ObjectSpec::cube(0.05, 0.1);
    let pose = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.002);
    let mut sim = RapierSim::new(model.clone(), &[cube], &[pose], config.clone()).unwrap();
    for _ in 0..200 { sim.step().unwrap(); }
    let t0 = Instant::now();
    let n = 5000;
    for _ in 0..n { sim.step().unwrap(); }
    println!("steps_per_s {:.0}", n as f64 / t0.elapsed().as_secs_f64());
    let mut sim = RapierSim::hand_only(model.clone(), config.clone()).unwrap();
    let t0 = Instant::now();
    for _ in 0..n { sim.step().unwrap(); }
    println!("hand only steps_per_s {:.0}", n as f64 / t0.elapsed().as_secs_f64());
}
