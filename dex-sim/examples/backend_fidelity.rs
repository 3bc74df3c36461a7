//! The rapier and MuJoCo backends side by side on the same scenes (feature `mujoco`):
//!
//! 1. **PD step responses** — the hand alone, from the open pose to random targets
//!    (half of the sets flexing little, so that no finger meets another or the palm);
//!    fingertip and joint trajectories over 1 s compared between the backends (RMS over
//!    time and tips, mm), each backend's tip error to the targets' forward kinematics at
//!    the end, and the steps in contact; with gravity and without;
//! 2. **a cube on the tilted palm** — fingers open, gravity tilted by θ about the palm's
//!    x axis; where the cube is after 1 s, relative to the palm;
//! 3. **a closed grasp under gravity tilt** — a grasp found by `generate_grasps` on
//!    rapier, set up identically on both, gravity turned to each of the six axis
//!    directions for 2 s: held (the cube within 3 cm of where it was) and slip (mm).
//!
//! ```text
//! eval "$(scripts/mujoco-setup.sh)"
//! cargo run --release -p dex-sim --features mujoco --example backend_fidelity
//! ```

#![allow(missing_docs)]

use dex_core::HandModel;
use dex_sim::tasks::{AnygraspConfig, generate_grasps};
use dex_sim::{
    MujocoSim, ObjectSpec, RapierSim, SimConfig, Simulator, open_configuration, rest_pose_on_palm,
};
use nalgebra::{Isometry3, Point3, Rotation3, Vector3};
use rand::{Rng, SeedableRng};

type Build = fn(
    HandModel,
    &[ObjectSpec],
    &[Isometry3<f64>],
    SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>>;

fn rapier(
    m: HandModel,
    o: &[ObjectSpec],
    p: &[Isometry3<f64>],
    c: SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>> {
    Ok(Box::new(RapierSim::new(m, o, p, c)?))
}

fn mujoco(
    m: HandModel,
    o: &[ObjectSpec],
    p: &[Isometry3<f64>],
    c: SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>> {
    Ok(Box::new(MujocoSim::new(m, o, p, c)?))
}

const BACKENDS: [(&str, Build); 2] = [("rapier", rapier), ("mujoco", mujoco)];

/// Physics steps of 2 ms, one per `step`.
fn config(model: &HandModel) -> SimConfig {
    SimConfig {
        dt: 0.002,
        substeps: 1,
        ..SimConfig::for_hand(model)
    }
}

/// The fingertips and joint positions after each of `steps` steps, and how many steps
/// had a contact.
type Trajectory = (Vec<Vec<Point3<f64>>>, Vec<Vec<f64>>, usize);

fn trajectory(sim: &mut dyn Simulator, steps: usize) -> anyhow::Result<Trajectory> {
    let (mut tips, mut q) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    let mut touching = 0;
    for _ in 0..steps {
        sim.step()?;
        tips.push(sim.fingertip_positions());
        q.push(sim.joint_state().q);
        let c = sim.contacts();
        touching += usize::from(!c.is_empty());
    }
    Ok((tips, q, touching))
}

fn step_responses(model: &HandModel, gravity: bool) -> anyhow::Result<()> {
    println!(
        "## PD step responses (hand alone, 1 s at 2 ms, gravity {})",
        if gravity { "on" } else { "off" }
    );
    println!(
        "target set | tips rapier vs mujoco: RMS mm, max mm | joints: RMS mrad | \
         end error to FK(targets) rapier / mujoco, mm | steps in contact rapier / mujoco"
    );
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let limits = model.joint_limits();
    let open = open_configuration(model);
    let (mut free_sq, mut free_n) = (0.0, 0usize);
    for set in 0..10 {
        let targets: Vec<f64> = limits
            .iter()
            .map(|l| {
                let span = l.upper - l.lower;
                // Half of the sets flex less (10–50% of each range): fewer fingers
                // meet each other or the palm.
                let top = if set % 2 == 0 { 0.5 } else { 0.9 };
                let (lo, hi) = (l.lower + 0.1 * span, l.lower + top * span);
                rng.random_range(lo..=hi)
            })
            .collect();
        let mut runs = Vec::new();
        for (_, build) in BACKENDS {
            let mut cfg = config(model);
            if !gravity {
                cfg.gravity = Vector3::zeros();
            }
            let mut sim = build(model.clone(), &[], &[], cfg)?;
            sim.set_joint_positions(&open)?;
            sim.set_joint_targets(&targets)?;
            runs.push((trajectory(sim.as_mut(), 500)?, sim.config().hand_pose));
        }
        let (mut sq, mut n, mut max) = (0.0, 0usize, 0.0f64);
        for (a, b) in runs[0].0.0.iter().zip(&runs[1].0.0) {
            for (p, q) in a.iter().zip(b) {
                let d = (p - q).norm();
                sq += d * d;
                n += 1;
                max = max.max(d);
            }
        }
        let fk = model.keypoint_positions(&targets)?;
        let tip_idx: Vec<usize> = model
            .keypoints()
            .iter()
            .enumerate()
            .filter(|(_, k)| k.name.ends_with("_tip"))
            .map(|(i, _)| i)
            .collect();
        let (mut jsq, mut jn) = (0.0, 0usize);
        for (a, b) in runs[0].0.1.iter().zip(&runs[1].0.1) {
            for (x, y) in a.iter().zip(b) {
                jsq += (x - y).powi(2);
                jn += 1;
            }
        }
        let end_error = |((tips, _, _), pose): &(Trajectory, Isometry3<f64>)| {
            let last = tips.last().cloned().unwrap_or_default();
            let e: f64 = last
                .iter()
                .zip(&tip_idx)
                .map(|(p, &k)| (p - pose * fk.positions[k]).norm())
                .sum();
            1e3 * e / last.len().max(1) as f64
        };
        let contact = (runs[0].0.2, runs[1].0.2);
        if contact == (0, 0) {
            free_sq += sq;
            free_n += n;
        }
        println!(
            "{set} | {:.2}, {:.2} | {:.1} | {:.2} / {:.2} | {} / {}",
            1e3 * (sq / n.max(1) as f64).sqrt(),
            1e3 * max,
            1e3 * (jsq / jn.max(1) as f64).sqrt(),
            end_error(&runs[0]),
            end_error(&runs[1]),
            contact.0,
            contact.1
        );
    }
    println!(
        "without contact on either backend: tips RMS {:.2} mm",
        1e3 * (free_sq / free_n.max(1) as f64).sqrt()
    );
    Ok(())
}

fn tilted_palm(model: &HandModel) -> anyhow::Result<()> {
    println!("\n## A 5 cm cube on the palm, fingers open, gravity tilted by θ (1 s)");
    println!("θ (deg) | rapier: moved mm | mujoco: moved mm");
    let cube = ObjectSpec::cube(0.05, 0.1);
    for deg in [0.0f64, 10.0, 20.0, 30.0, 35.0, 40.0, 45.0] {
        let mut row = format!("{deg:.0}");
        for (_, build) in BACKENDS {
            let cfg = config(model);
            let hand = cfg.hand_pose;
            let pose = rest_pose_on_palm(model, &hand, cube.shape.half_height(), 0.001);
            let mut sim = build(model.clone(), std::slice::from_ref(&cube), &[pose], cfg)?;
            let open = open_configuration(model);
            sim.set_joint_positions(&open)?;
            sim.set_joint_targets(&open)?;
            // Settle upright, then tilt.
            for _ in 0..100 {
                sim.step()?;
            }
            let start = hand.inverse() * sim.object_state(0)?.pose.translation.vector;
            let tilt =
                Rotation3::from_axis_angle(&(hand.rotation * Vector3::x_axis()), deg.to_radians());
            sim.set_gravity(tilt * sim.config().gravity)?;
            for _ in 0..500 {
                sim.step()?;
            }
            let end = hand.inverse() * sim.object_state(0)?.pose.translation.vector;
            row.push_str(&format!(" | {:.1}", 1e3 * (end - start).norm()));
        }
        println!("{row}");
    }
    Ok(())
}

fn grasp_under_tilt(model: &HandModel) -> anyhow::Result<()> {
    println!("\n## A closed grasp of the 5 cm cube, gravity along each axis (2 s each)");
    let cube = ObjectSpec::cube(0.05, 0.1);
    let cfg = config(model);
    let hand = cfg.hand_pose;
    let rest = rest_pose_on_palm(model, &hand, cube.shape.half_height(), 0.001);
    let mut finder = RapierSim::new(
        model.clone(),
        std::slice::from_ref(&cube),
        &[rest],
        SimConfig {
            substeps: 10,
            ..cfg.clone()
        },
    )?;
    let params = AnygraspConfig {
        object: cube.clone(),
        num_grasps: 3,
        ..AnygraspConfig::default()
    };
    let grasps = generate_grasps(&mut finder, &params)?;
    println!("grasp | gravity | rapier: held, slip mm | mujoco: held, slip mm");
    let g = 9.81;
    let directions = [
        ("−z", Vector3::new(0.0, 0.0, -g)),
        ("+z", Vector3::new(0.0, 0.0, g)),
        ("+x", Vector3::new(g, 0.0, 0.0)),
        ("−x", Vector3::new(-g, 0.0, 0.0)),
        ("+y", Vector3::new(0.0, g, 0.0)),
        ("−y", Vector3::new(0.0, -g, 0.0)),
    ];
    let mut held = [0usize; 2];
    let mut total = 0;
    for (k, grasp) in grasps.iter().enumerate() {
        for (name, gravity) in directions {
            let mut row = format!("{k} | {name}");
            for (b, (_, build)) in BACKENDS.iter().enumerate() {
                let pose = hand * grasp.object_in_palm;
                let mut sim = build(
                    model.clone(),
                    std::slice::from_ref(&cube),
                    &[pose],
                    cfg.clone(),
                )?;
                sim.set_joint_positions(&grasp.q)?;
                sim.set_joint_targets(&grasp.targets)?;
                sim.set_gravity(gravity)?;
                let start = sim.object_state(0)?.pose.translation.vector;
                for _ in 0..1000 {
                    sim.step()?;
                }
                let moved = (sim.object_state(0)?.pose.translation.vector - start).norm();
                let ok = moved < 0.03;
                held[b] += usize::from(ok);
                row.push_str(&format!(
                    " | {} {:.1}",
                    if ok { "yes" } else { "no" },
                    1e3 * moved
                ));
            }
            total += 1;
            println!("{row}");
        }
    }
    println!(
        "held: rapier {}/{total}, mujoco {}/{total}",
        held[0], held[1]
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let model = HandModel::leap_right();
    step_responses(&model, true)?;
    step_responses(&model, false)?;
    tilted_palm(&model)?;
    grasp_under_tilt(&model)?;
    Ok(())
}
