//! Point-to-plane ICP on the synthetic box and mug (5,000 points, 20° + 2 cm
//! offsets): success rate, iterations and time per trial.
//!
//! `cargo run --release -p dex-track --example icp_trials -- 20`

use dex_core::geometry::rotation_distance;
use dex_track::synthetic::{box_surface, mug_surface, random_transform};
use dex_track::{IcpConfig, IcpTarget};
use nalgebra::{Isometry3, Vector3};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let trials: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    for (name, model, scan) in [
        (
            "box",
            box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, 1),
            box_surface(Vector3::new(0.04, 0.03, 0.02), 5000, 10),
        ),
        (
            "mug",
            mug_surface(0.04, 0.1, 5000, 2),
            mug_surface(0.04, 0.1, 5000, 20),
        ),
    ] {
        let config = IcpConfig::default();
        let target = IcpTarget::new(&scan, config.normal_neighbours)?;
        let (mut ok, mut iters, mut ms) = (0, 0, Vec::new());
        for t in 0..trials {
            let truth = random_transform(20f64.to_radians(), 0.02, 1000 + t);
            let source: Vec<_> = model.iter().map(|p| truth.inverse() * p).collect();
            let start = std::time::Instant::now();
            let r = target.register(&source, &Isometry3::identity(), &config)?;
            ms.push(start.elapsed().as_secs_f64() * 1e3);
            let deg = rotation_distance(&r.transform.rotation, &truth.rotation).to_degrees();
            let m = (r.transform.translation.vector - truth.translation.vector).norm();
            if r.converged && deg < 1.0 && m < 0.002 {
                ok += 1;
            }
            iters += r.iterations;
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "{name}: {ok}/{trials} recovered (< 1°, < 2 mm), mean {:.1} iterations, median {:.2} ms per registration",
            iters as f64 / trials as f64,
            ms[ms.len() / 2]
        );
    }
    Ok(())
}
