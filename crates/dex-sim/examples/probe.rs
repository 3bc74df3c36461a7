#![allow(clippy::unwrap_used, missing_docs)]
use dex_core::HandModel;
use dex_sim::*;
use std::time::Instant;

fn main() {
    let model = HandModel::leap_right();
    let config = SimConfig { substeps: 1, solver_iterations: 1, ..SimConfig::default() };
    let cube = ObjectSpec::cube(0.05, 0.1);
    let pose = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.002);
    println!("cube start {:?}", pose.translation.vector);
    let mut sim = RapierSim::new(model.clone(), &[cube], &[pose], config.clone()).unwrap();
    println!("warnings {:?}", sim.warnings());
    let tips = sim.fingertip_positions();
    println!("tips {:?}", tips.iter().map(|p| (p.x, p.y, p.z)).collect::<Vec<_>>());
    let t0 = Instant::now();
    let n = 2000;
    for i in 0..n {
        sim.step().unwrap();
        if i % 250 == 0 {
            let s = sim.object_state(0).unwrap();
            println!("t={:.3} cube {:?} v {:.4}", sim.time(), s.pose.translation.vector.as_slice(), s.linear_velocity.norm());
        }
    }
    let el = t0.elapsed().as_secs_f64();
    println!("steps_per_s {:.0}", n as f64 / el);
    println!("contacts {}", sim.contacts().len());
    for c in sim.contacts().iter().take(8) { println!("{:?}", c); }
    // PD tracking of a sine on all joints
    let mut sim = RapierSim::hand_only(model.clone(), config.clone()).unwrap();
    let mid = model.mid_configuration();
    let lim = model.joint_limits();
    let mut se = 0.0; let mut cnt = 0.0;
    for k in 0..2000 {
        let t = k as f64 * 0.002;
        let q: Vec<f64> = (0..16).map(|j| mid[j] + 0.25 * (lim[j].upper - lim[j].lower) * (2.0*std::f64::consts::PI*t).sin()).collect();
        sim.set_joint_targets(&q).unwrap();
        sim.step().unwrap();
        if k > 500 { let js = sim.joint_state(); for j in 0..16 { se += (js.q[j]-q[j]).powi(2); cnt += 1.0; } }
    }
    println!("sine rms {:.4}", (se/cnt).sqrt());
    let t0 = Instant::now();
    for _ in 0..2000 { sim.step().unwrap(); }
    println!("hand only steps_per_s {:.0}", 2000.0 / t0.elapsed().as_secs_f64());
    let names: Vec<String> = model.links().iter().map(|l| l.name.clone()).collect();
    for c in sim.contacts() { if let (BodyRef::Link(a), BodyRef::Link(b)) = (c.body1, c.body2) { println!("{} {} d={:.4} f={:.3}", names[a], names[b], c.distance, c.normal_force); } }
}
#[allow(dead_code)]
fn dump() {}
