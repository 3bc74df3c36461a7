//! `dex demo`: the whole stack in one command.
//!
//! A simulated LEAP Hand (dex-sim) stands in for the real one behind an emulated
//! servo bus on a pseudo-terminal (dex-hw's `SimJoints`); the LEAP driver, wrapped
//! in its safety layer, runs the control loop over that terminal; a policy from
//! dex-policy reaches fingertip targets, then a scripted grasp closes on a cube and
//! holds it while gravity tilts; a camera renders the scene and the KLT tracker from
//! dex-track follows points on the cube, lifted to 3D, with the cube's pose by
//! Kabsch. Everything is compared with the simulator's ground truth.

mod args;
mod control;
mod frames;
mod plan;
mod policy;
mod progress;
mod report;
mod session;
mod track;

pub(crate) use track::gray_image;

pub use args::DemoArgs;
pub use session::run;
