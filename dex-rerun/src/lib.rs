//! Recordings of dex scenes for the [rerun](https://rerun.io) viewer.
//!
//! A [`Recorder`] logs what a researcher looks at in a run — the hand's links with
//! their collision shapes, the objects, a camera's grey images with the points a
//! tracker follows, each joint's target against its measured angle — under fixed
//! entity paths, through a [`SceneSink`]:
//!
//! - [`RerunSink`] (feature `rerun`, off by default: the rerun SDK is heavy) writes an
//!   `.rrd` file that the rerun viewer **0.35** opens (`rerun FILE.rrd`);
//! - [`MemorySink`] keeps the entries in memory, for tests and for callers that
//!   forward them (dex's Python package logs the same paths through `rerun-sdk`).
//!
//! ```
//! use dex_core::HandModel;
//! use dex_rerun::{MemorySink, Recorder, HAND};
//! use dex_sim::{MockSimulator, SimConfig};
//!
//! let model = HandModel::leap_right();
//! let sim = MockSimulator::new(model.clone(), SimConfig::default())?;
//! let sink = MemorySink::new();
//! let mut rec = Recorder::new(Box::new(sink.clone()), &model)?;
//! rec.set_time(0, 0.0);
//! rec.log_simulator(&sim)?;
//! let palm = format!("{HAND}/{}", model.links()[0].name);
//! assert_eq!(sink.at(&palm).len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod recorder;
#[cfg(feature = "rerun")]
mod rerun_sink;
mod shapes;
mod sink;

pub use error::{Error, Result};
pub use recorder::{HAND, JOINTS, OBJECTS, Recorder};
#[cfg(feature = "rerun")]
pub use rerun_sink::RerunSink;
pub use shapes::{Primitive, geometry_primitives, object_primitive, shape_primitive};
pub use sink::{Entry, Logged, MemorySink, Rgba, SceneSink};

/// Whether this build writes rerun files (the `rerun` feature).
pub const RERUN_ENABLED: bool = cfg!(feature = "rerun");
