//! How long each part of the run lasts ([`Plan`]), its phases and timeline, and the grasp's fixed settings.

use serde::Serialize;

/// How long each part runs, in control ticks. The control rate is the reach task's
/// (20 Hz: 25 physics steps of 2 ms), so the policy runs at the rate it was trained
/// at; the LEAP Hand's own software runs at about 30 Hz, and the bus at 4 Mbit/s
/// allows several hundred cycles per second (`dex hw bench`).
#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct Plan {
    pub(super) train_iterations: usize,
    pub(super) reach_sets: usize,
    pub(super) reach_ticks: usize,
    pub(super) return_ticks: usize,
    pub(super) settle_ticks: usize,
    pub(super) close_ticks: usize,
    pub(super) hold_ticks: usize,
    pub(super) tilt_ticks: usize,
    pub(super) tilted_ticks: usize,
    pub(super) tilt_deg: f64,
    pub(super) track_every: usize,
    pub(super) image_width: usize,
    pub(super) image_height: usize,
}

impl Plan {
    pub(super) fn new(quick: bool) -> Self {
        if quick {
            Self {
                train_iterations: 2,
                reach_sets: 2,
                reach_ticks: 60,
                return_ticks: 20,
                settle_ticks: 10,
                close_ticks: 16,
                hold_ticks: 6,
                tilt_ticks: 30,
                tilted_ticks: 20,
                tilt_deg: 60.0,
                track_every: 2,
                image_width: 640,
                image_height: 480,
            }
        } else {
            Self {
                train_iterations: 10,
                reach_sets: 10,
                reach_ticks: 60,
                return_ticks: 20,
                settle_ticks: 10,
                close_ticks: 20,
                hold_ticks: 10,
                tilt_ticks: 60,
                tilted_ticks: 40,
                tilt_deg: 60.0,
                track_every: 2,
                image_width: 640,
                image_height: 480,
            }
        }
    }
}

/// A fingertip has arrived within this distance (m), as in the reach task.
pub(super) const REACH_RADIUS: f64 = 0.02;

/// What happens in one span of ticks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Phase {
    /// The policy reaches target set `i`.
    Reach(usize),
    /// Back to the open hand.
    Return,
    /// The cube is dropped on the palm and settles.
    Settle,
    /// The fingers close on it.
    Close,
    /// The grasp holds, palm up.
    Hold,
    /// Gravity tilts about the world x axis (the palm turning).
    Tilt,
    /// The grasp holds, tilted.
    Tilted,
}

impl Phase {
    pub(super) fn name(self) -> &'static str {
        match self {
            Phase::Reach(_) => "reach",
            Phase::Return => "return",
            Phase::Settle => "settle",
            Phase::Close => "close",
            Phase::Hold => "hold",
            Phase::Tilt => "tilt",
            Phase::Tilted => "tilted",
        }
    }
}

/// `(phase, first tick, ticks)` for the whole run.
pub(super) fn timeline(plan: &Plan) -> Vec<(Phase, usize, usize)> {
    let mut spans = Vec::new();
    let mut t = 0;
    let mut push = |phase, len: usize| {
        spans.push((phase, t, len));
        t += len;
    };
    for i in 0..plan.reach_sets {
        push(Phase::Reach(i), plan.reach_ticks);
        push(Phase::Return, plan.return_ticks);
    }
    push(Phase::Settle, plan.settle_ticks);
    push(Phase::Close, plan.close_ticks);
    push(Phase::Hold, plan.hold_ticks);
    push(Phase::Tilt, plan.tilt_ticks);
    push(Phase::Tilted, plan.tilted_ticks);
    spans
}

/// The cube counts as held if it moved less than this in the palm frame (mm).
pub(super) const HELD_SLIP_MM: f64 = 30.0;

/// How far each joint closes from open toward its upper limit for the grasp (model
/// order: index, middle, ring — side-to-side, MCP, PIP, DIP — then the thumb).
pub(super) fn grasp_fraction() -> [f64; 16] {
    [
        0.0, 0.6, 0.6, 0.6, // index
        0.0, 0.6, 0.6, 0.6, // middle
        0.0, 0.6, 0.6, 0.6, // ring
        0.8, 0.5, 0.5, 0.5, // thumb
    ]
}
