//! A fixed-rate control loop with period statistics.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use dex_core::{JointState, JointTargets};

use crate::driver::HandDriver;
use crate::error::{Error, Result};

/// Timing of a control loop run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoopReport {
    /// Ticks run.
    pub cycles: usize,
    /// Requested rate (Hz).
    pub rate_hz: f64,
    /// Achieved rate (Hz): ticks over wall time.
    pub achieved_hz: f64,
    /// Median |period − nominal| (s).
    pub jitter_p50: f64,
    /// 99th percentile |period − nominal| (s).
    pub jitter_p99: f64,
    /// Largest |period − nominal| (s).
    pub jitter_max: f64,
    /// Ticks whose work ended after their deadline.
    pub overruns: usize,
    /// Median time spent in read + policy + write (s).
    pub busy_p50: f64,
    /// 99th percentile of that time (s).
    pub busy_p99: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs `cycles` ticks at `rate_hz`: each tick reads the state, asks `policy`
/// for targets (given the tick index and the state), writes them, then sleeps
/// until the next tick of a fixed schedule (late ticks do not shift it).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a non-positive rate; the first error of the
/// driver, which has then turned torque off.
pub fn run_control_loop<D: HandDriver + ?Sized>(
    driver: &mut D,
    rate_hz: f64,
    cycles: usize,
    mut policy: impl FnMut(usize, &JointState) -> JointTargets,
) -> Result<LoopReport> {
    run_control_loop_while(driver, rate_hz, cycles, |k, state| {
        ControlFlow::Continue(policy(k, state))
    })
}

/// As [`run_control_loop`], for at most `max_cycles` ticks: `policy` may end the
/// loop by returning [`ControlFlow::Break`] (that tick writes nothing). The report
/// counts the ticks that wrote targets.
///
/// # Errors
///
/// As [`run_control_loop`].
pub fn run_control_loop_while<D: HandDriver + ?Sized>(
    driver: &mut D,
    rate_hz: f64,
    max_cycles: usize,
    mut policy: impl FnMut(usize, &JointState) -> ControlFlow<(), JointTargets>,
) -> Result<LoopReport> {
    if !(rate_hz > 0.0 && rate_hz.is_finite()) {
        return Err(Error::InvalidArgument {
            message: format!("control rate must be positive, got {rate_hz}"),
        });
    }
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let start = Instant::now();
    let mut starts = Vec::with_capacity(max_cycles.min(1 << 20));
    let mut busy = Vec::with_capacity(max_cycles.min(1 << 20));
    let mut overruns = 0;
    let mut cycles = 0;
    for k in 0..max_cycles {
        let tick = Instant::now();
        let state = driver.read_state()?;
        let ControlFlow::Continue(targets) = policy(k, &state) else {
            break;
        };
        starts.push(tick);
        driver.write_targets(&targets)?;
        cycles += 1;
        let done = Instant::now();
        busy.push(done.duration_since(tick).as_secs_f64());
        let deadline = start + period * (k as u32 + 1);
        if done > deadline {
            overruns += 1;
            continue;
        }
        // Sleep most of the way, spin the last 200 µs for a sharp edge.
        let margin = Duration::from_micros(200);
        if deadline - done > margin {
            std::thread::sleep(deadline - done - margin);
        }
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let nominal = period.as_secs_f64();
    let mut jitter: Vec<f64> = starts
        .windows(2)
        .map(|w| (w[1].duration_since(w[0]).as_secs_f64() - nominal).abs())
        .collect();
    jitter.sort_by(f64::total_cmp);
    busy.sort_by(f64::total_cmp);
    Ok(LoopReport {
        cycles,
        rate_hz,
        achieved_hz: if wall > 0.0 {
            cycles as f64 / wall
        } else {
            0.0
        },
        jitter_p50: percentile(&jitter, 0.5),
        jitter_p99: percentile(&jitter, 0.99),
        jitter_max: jitter.last().copied().unwrap_or(0.0),
        overruns,
        busy_p50: percentile(&busy, 0.5),
        busy_p99: percentile(&busy, 0.99),
    })
}
