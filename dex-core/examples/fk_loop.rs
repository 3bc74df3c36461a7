//! Evaluates forward kinematics of the LEAP hand in a loop: a steady workload
//! for profilers (`perf record`, `valgrind --tool=callgrind`).
//!
//! `cargo run --release -p dex-core --example fk_loop -- 1000000`

use dex_core::HandModel;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(1_000_000);
    let hand = HandModel::leap_right();
    let limits = hand.joint_limits();
    let mut out = hand.forward_kinematics(&hand.mid_configuration())?;
    let mut q = hand.mid_configuration();
    let mut checksum = 0.0;
    let start = std::time::Instant::now();
    for i in 0..n {
        // Sweep every joint through its range, differently per joint.
        for (d, l) in limits.iter().enumerate() {
            let u = ((i * (d + 3)) % 1000) as f64 / 1000.0;
            q[d] = l.lower + u * (l.upper - l.lower);
        }
        hand.forward_kinematics_into(&q, &mut out)?;
        checksum += out[4].translation.x;
    }
    let per = start.elapsed().as_secs_f64() / n as f64;
    println!(
        "{n} evaluations, {:.0} ns each (checksum {checksum:.6})",
        per * 1e9
    );
    Ok(())
}
