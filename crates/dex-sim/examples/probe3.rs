#![allow(clippy::unwrap_used, missing_docs)]
use dex_core::HandModel;
use dex_sim::*;
use std::collections::BTreeMap;
fn main() {
    let model = HandModel::leap_right();
    for sc in [true, false] {
    let config = SimConfig { substeps: 1, solver_iterations: 1, hand_self_collision: sc, ..SimConfig::default() };
    let mut sim = RapierSim::hand_only(model.clone(), config).unwrap();
    for _ in 0..10 { sim.step().unwrap(); }
    let names: Vec<String> = model.links().iter().map(|l| l.name.clone()).collect();
    let mut m: BTreeMap<String, usize> = BTreeMap::new();
    for (a, b) in sim.contact_pair_names() { let k = format!("{:?}-{:?}", a, b); let k = match (a,b) { (BodyRef::Link(a), BodyRef::Link(b)) => format!("{}-{}", names[a], names[b]), _ => k}; *m.entry(k).or_default() += 1; }
    println!("{sc} {:?} pairs {:?}", sim.contact_pair_counts(), m.iter().take(30).collect::<Vec<_>>());
    }
}
