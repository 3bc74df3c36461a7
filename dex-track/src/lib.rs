#![doc = include_str!("../README.md")]

mod error;
mod goal;
pub mod icp;
mod klt;
mod lift;
pub mod metrics;
mod oracle;
mod rigid;
pub mod synthetic;
mod tracker;

pub use error::{Error, Result};
pub use goal::{GoalCorrection, GoalFollower, GoalFollowerConfig, GoalUpdate, goal_tracks};
pub use icp::{IcpConfig, IcpMethod, IcpResult, IcpTarget, icp};
pub use klt::{KltConfig, KltTracker};
pub use lift::LiftedTracker;
pub use metrics::{QueryMode, TapVidInput, TapVidMetrics, tapvid_metrics};
pub use oracle::{OracleConfig, OracleTracker};
pub use rigid::{RigidObjectTracker, RobustFit, RobustFitConfig, fit_rigid_robust};
pub use tracker::{MockTracker, Observation, TrackFrame, Tracker, track_sequence};

// Foreign types in our signatures.
pub use image;
pub use image::GrayImage;

/// The names most programs need: `use dex_track::prelude::*;`.
pub mod prelude {
    pub use crate::{
        GrayImage, IcpConfig, IcpMethod, KltConfig, KltTracker, LiftedTracker, MockTracker,
        Observation, Tracker, icp, tapvid_metrics, track_sequence,
    };
}
