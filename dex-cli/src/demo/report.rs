//! What the run reports: the per-tick log, `summary.json`'s schema, the printed table, `ticks.csv` and `demo.png`.

use std::path::Path;

use anyhow::{Context, Result};

use dex_core::HandModel;

use dex_sim::TaskConfig;

use serde::Serialize;

use super::track::TrackSummary;
use crate::plot::{Panel, Series, write_png};

use super::plan::*;

/// One control tick as logged.
#[derive(Debug, Clone)]
pub(super) struct TickLog {
    pub(super) t: f64,
    pub(super) q: Vec<f64>,
    pub(super) target: Vec<f64>,
    /// Height of the cube's centre over where it rested on the palm (mm, world z).
    pub(super) object_height_mm: f64,
    /// Cube displacement in the palm frame since the grasp closed (mm).
    pub(super) slip_mm: f64,
    pub(super) tilt_deg: f64,
    pub(super) phase: &'static str,
}

/// What one reach target set gave.
#[derive(Debug, Clone, Serialize)]
pub(super) struct ReachOutcome {
    /// Seconds until every fingertip was within 2 cm, if it happened.
    pub(super) time_to_reach_s: Option<f64>,
    /// Largest fingertip distance at the end of the span (mm).
    pub(super) final_max_distance_mm: f64,
}

/// The demo's result, written to `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct Summary {
    pub(super) seed: u64,
    pub(super) quick: bool,
    pub(super) interrupted: bool,
    pub(super) policy: PolicySummary,
    pub(super) control: ControlSummary,
    pub(super) safety: SafetySummary,
    pub(super) reach: ReachSummary,
    pub(super) grasp: GraspSummary,
    pub(super) tracking: TrackSummary,
    /// Seconds per stage (these vary from run to run).
    pub(super) timing: Timing,
    pub(super) plan: Plan,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct PolicySummary {
    pub(super) source: String,
    /// The task settings the policy was trained with (from its checkpoint): the demo
    /// builds its observations and maps its actions with these.
    pub(super) task: TaskConfig,
    /// Rows the student learnt from.
    pub(super) rows: u64,
    /// Its success on the reach task in simulation (25 episodes), when trained here.
    pub(super) sim_success: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct ControlSummary {
    pub(super) rate_hz: f64,
    pub(super) cycles: usize,
    pub(super) bus_instructions: u64,
    pub(super) bus_crc_errors: u64,
    pub(super) physics_steps: u64,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct SafetySummary {
    pub(super) rejected: u64,
    pub(super) clamped: u64,
    pub(super) step_limited: u64,
    pub(super) max_step_rad: f64,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct ReachSummary {
    pub(super) sets: usize,
    pub(super) reached: usize,
    pub(super) success: f64,
    /// The same target sets reached by the same policy in simulation, without the bus.
    pub(super) reached_in_sim: usize,
    pub(super) outcomes: Vec<ReachOutcome>,
}

#[derive(Debug, Clone, Serialize)]
pub(super) struct GraspSummary {
    /// The cube stayed in the hand through the tilt.
    pub(super) held: bool,
    pub(super) tilt_deg: f64,
    /// Cube height over where it rested on the palm (mm): before closing, closed, at
    /// the end.
    pub(super) height_before_mm: Option<f64>,
    pub(super) height_closed_mm: Option<f64>,
    pub(super) height_end_mm: Option<f64>,
    /// How far the cube moved in the palm frame from closed to the end (mm).
    pub(super) slip_mm: Option<f64>,
}

/// Everything that depends on the wall clock (differs from run to run).
#[derive(Debug, Clone, Default, Serialize)]
pub(super) struct Timing {
    pub(super) achieved_hz: f64,
    pub(super) jitter_p50_us: f64,
    pub(super) jitter_p99_us: f64,
    pub(super) jitter_max_us: f64,
    pub(super) overruns: usize,
    pub(super) cycle_work_p50_us: f64,
    pub(super) cycle_work_p99_us: f64,
    pub(super) tracking_ms_per_frame: f64,
    pub(super) train_s: f64,
    pub(super) bring_up_s: f64,
    pub(super) control_loop_s: f64,
    pub(super) tracking_s: f64,
    pub(super) report_s: f64,
    pub(super) total_s: f64,
}

pub(super) fn table(s: &Summary) -> String {
    let c = &s.control;
    let w = &s.timing;
    let t = &s.tracking;
    let mut rows: Vec<(String, String)> = vec![
        ("policy".into(), s.policy.source.clone()),
        (
            "control rate".into(),
            format!(
                "{:.1} Hz achieved of {:.0} Hz requested, {} cycles, {} overruns",
                w.achieved_hz, c.rate_hz, c.cycles, w.overruns
            ),
        ),
        (
            "period jitter".into(),
            format!(
                "p50 {:.0} us, p99 {:.0} us, max {:.0} us; cycle work p50 {:.0} us, p99 {:.0} us",
                w.jitter_p50_us,
                w.jitter_p99_us,
                w.jitter_max_us,
                w.cycle_work_p50_us,
                w.cycle_work_p99_us
            ),
        ),
        (
            "servo bus".into(),
            format!(
                "{} instructions, {} CRC errors, {} physics steps",
                c.bus_instructions, c.bus_crc_errors, c.physics_steps
            ),
        ),
        (
            "safety events".into(),
            format!(
                "{} step-limited, {} clamped, {} rejected",
                s.safety.step_limited, s.safety.clamped, s.safety.rejected
            ),
        ),
        (
            "reach".into(),
            format!(
                "{}/{} target sets reached (all tips within 2 cm); {}/{} in simulation without the bus{}",
                s.reach.reached,
                s.reach.sets,
                s.reach.reached_in_sim,
                s.reach.sets,
                s.policy
                    .sim_success
                    .map(|v| format!("; trained policy's success in simulation {v:.2}"))
                    .unwrap_or_default()
            ),
        ),
        (
            "grasp".into(),
            format!(
                "{} through a {:.0} deg tilt; slip {}",
                if s.grasp.held { "held" } else { "lost" },
                s.grasp.tilt_deg,
                s.grasp
                    .slip_mm
                    .map_or("n/a".into(), |v| format!("{v:.1} mm"))
            ),
        ),
        (
            "tracking".into(),
            format!(
                "{} points over {} frames ({}x{}): delta_avg {:.3}, 3D error median {:.2} mm, pose {:.2} deg / {:.2} mm at the end ({:.0} ms per frame)",
                t.points,
                t.frames,
                t.width,
                t.height,
                t.delta_avg,
                t.median_3d_mm,
                t.final_pose_deg,
                t.final_pose_mm,
                w.tracking_ms_per_frame
            ),
        ),
        (
            "wall time".into(),
            format!(
                "train {:.1} s, bring-up {:.2} s, control loop {:.1} s, tracking {:.1} s (after the loop), report {:.1} s, total {:.1} s",
                s.timing.train_s,
                s.timing.bring_up_s,
                s.timing.control_loop_s,
                s.timing.tracking_s,
                s.timing.report_s,
                s.timing.total_s
            ),
        ),
    ];
    if s.interrupted {
        rows.insert(0, ("status".into(), "interrupted".into()));
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}  {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(super) fn fmt_time(l: Option<&TickLog>) -> String {
    l.map_or("-".into(), |l| format!("{:.1}", l.t))
}

/// Joints shown in the figure: index MCP flexion, middle PIP, thumb rotation.
pub(super) const SHOWN_JOINTS: [usize; 3] = [1, 6, 13];

/// One row per control tick: time, phase, tilt, cube height, then each joint's target
/// and measured angle.
pub(super) fn write_ticks_csv(path: &Path, log: &[TickLog]) -> Result<()> {
    let model = HandModel::leap_right();
    let names = model.joint_names();
    let mut text = String::from("t_s,phase,tilt_deg,cube_height_mm");
    for n in &names {
        text.push_str(&format!(",{n}_target,{n}_measured"));
    }
    text.push('\n');
    for l in log {
        text.push_str(&format!(
            "{:.3},{},{:.3},{:.3}",
            l.t, l.phase, l.tilt_deg, l.object_height_mm
        ));
        for (t, q) in l.target.iter().zip(&l.q) {
            text.push_str(&format!(",{t:.5},{q:.5}"));
        }
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub(super) fn write_figure(
    path: &Path,
    log: &[TickLog],
    track: &[super::track::FrameError],
    tilt_deg: f64,
) -> Result<()> {
    let names = HandModel::leap_right()
        .joint_names()
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>();
    let mut joint_series = Vec::new();
    for &j in &SHOWN_JOINTS {
        joint_series.push(Series {
            name: format!("{} target", names[j]),
            points: log.iter().map(|l| (l.t, l.target[j])).collect(),
        });
        joint_series.push(Series {
            name: format!("{} measured", names[j]),
            points: log.iter().map(|l| (l.t, l.q[j])).collect(),
        });
    }
    let panels = [
        Panel {
            title: "joint targets sent over the bus vs angles read back".into(),
            x_label: "time (s)".into(),
            y_label: "rad".into(),
            series: joint_series,
        },
        Panel {
            title: "tracking error against the simulator's ground truth".into(),
            x_label: "time (s)".into(),
            y_label: "px / mm".into(),
            series: vec![
                Series {
                    name: "2D median (px)".into(),
                    points: track.iter().map(|f| (f.t, f.median_px)).collect(),
                },
                Series {
                    name: "3D median (mm)".into(),
                    points: track.iter().map(|f| (f.t, f.median_3d_mm)).collect(),
                },
                Series {
                    name: "Kabsch pose (mm)".into(),
                    points: track.iter().map(|f| (f.t, f.pose_mm)).collect(),
                },
            ],
        },
        Panel {
            title: format!(
                "the cube in the grasp; gravity tilts 0 to {tilt_deg:.0} deg from {} s to {} s",
                fmt_time(log.iter().find(|l| l.tilt_deg > 0.0)),
                fmt_time(log.iter().find(|l| l.tilt_deg >= tilt_deg)),
            ),
            x_label: "time (s)".into(),
            y_label: "mm".into(),
            series: vec![
                Series {
                    name: "height over its rest on the palm".into(),
                    points: log.iter().map(|l| (l.t, l.object_height_mm)).collect(),
                },
                Series {
                    name: "displacement in the palm frame since the grasp closed".into(),
                    points: log.iter().map(|l| (l.t, l.slip_mm)).collect(),
                },
            ],
        },
    ];
    write_png(path, &panels, 1000, 300)
}
