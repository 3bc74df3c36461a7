#![allow(clippy::unwrap_used, missing_docs)]
use dex_core::HandModel;
use dex_sim::*;
fn main() {
    let model = HandModel::leap_right();
    for (amp, f, it) in [(0.2, 1.0, 1), (0.2, 1.0, 4), (0.3, 0.5, 1), (0.1, 1.0, 1)] {
    let config = SimConfig { substeps: 1, solver_iterations: it, ..SimConfig::default() };
    let mut sim = RapierSim::hand_only(model.clone(), config).unwrap();
    let mid = model.mid_configuration();
    let mut se = vec![0.0; 16]; let mut cnt = 0.0;
    for k in 0..3000 {
        let t = k as f64 * 0.002;
        let q: Vec<f64> = (0..16).map(|j| mid[j] + amp * (2.0*std::f64::consts::PI*f*t).sin()).collect();
        sim.set_joint_targets(&q).unwrap();
        sim.step().unwrap();
        if k > 500 { let js = sim.joint_state(); for j in 0..16 { se[j] += (js.q[j]-q[j]).powi(2); } cnt += 1.0; }
    }
    let per: Vec<String> = se.iter().map(|s| format!("{:.3}", (s/cnt).sqrt())).collect();
    println!("amp {amp} f {f} it {it} rms {:.4} per {:?}", (se.iter().sum::<f64>()/cnt/16.0).sqrt(), per);
    }
}
