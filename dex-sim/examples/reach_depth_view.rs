//! What a `reach-depth` policy sees: resets the task and prints the squinted depth
//! image as text (darker characters nearer; `.` where nothing is seen), then the
//! targets' pixels.
//!
//! ```text
//! cargo run --release -p dex-sim --example reach_depth_view -- [seed]
//! ```

use dex_core::HandModel;
use dex_sim::{Env, FingertipReach, ReachConfig, TaskConfig};

fn main() -> anyhow::Result<()> {
    let seed: u64 = std::env::args().nth(1).map_or(Ok(0), |s| s.parse())?;
    let config = TaskConfig::default();
    let params = ReachConfig {
        depth: true,
        ..ReachConfig::default()
    };
    let mut env = FingertipReach::new(HandModel::leap_right(), config.clone(), params)?;
    let (obs, _) = env.reset(Some(seed))?;
    let show = |p: &nalgebra::Point3<f64>| format!("({:+.3}, {:+.3}, {:+.3})", p.x, p.y, p.z);
    let goals: Vec<String> = env.goals().iter().map(show).collect();
    let sim = env
        .simulator()
        .ok_or_else(|| anyhow::anyhow!("reach has a simulator"))?;
    let tips: Vec<String> = sim.fingertip_positions().iter().map(show).collect();
    println!("targets (world, m): {}", goals.join(" "));
    println!("fingertips (world, m): {}", tips.join(" "));
    let Some(depth) = obs.depth else {
        anyhow::bail!("reach-depth observed no depth image");
    };
    let ramp = ['@', '%', '#', '*', '+', '=', '-', ':'];
    let valid: Vec<f32> = depth.iter().copied().filter(|d| *d > 0.0).collect();
    let lo = valid.iter().copied().fold(f32::INFINITY, f32::min);
    let hi = valid.iter().copied().fold(0.0, f32::max);
    println!(
        "{}×{} depth, {:.3}–{:.3} m (rendered {}², squint {})",
        depth.nrows(),
        depth.ncols(),
        lo,
        hi,
        config.depth_view.render,
        config.depth_view.squint
    );
    for row in depth.rows() {
        let line: String = row
            .iter()
            .map(|d| {
                if *d <= 0.0 {
                    '.'
                } else {
                    let t = ((d - lo) / (hi - lo).max(1e-6) * (ramp.len() - 1) as f32).round();
                    ramp[t as usize]
                }
            })
            .flat_map(|c| [c, c])
            .collect();
        println!("{line}");
    }
    Ok(())
}
