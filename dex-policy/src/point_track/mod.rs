//! Dex4D's point-track student (Kuang et al., "Dex4D", arXiv 2602.15828): a policy
//! that sees the object only as paired point tracks — for each tracked point, where it
//! is now and where it should be next — besides its own joints and last action, and is
//! distilled by DAgger from a privileged teacher.
//!
//! - [`PointTrackNet`]: the "action world model" transformer over four tokens (joint
//!   positions, joint velocities, last action, the point-set token), with Dex4D's
//!   paired point encoding and the ablations of its Table II
//!   ([`PointEncoding::Decoupled`], [`PointEncoding::Mlp`], no self-attention, no
//!   world-model loss).
//! - [`PointTrackPolicy`]: the network as a [`crate::Policy`] reading its inputs from
//!   an environment's observation ([`PointTrackInputs`]); checkpoints.
//! - [`PointTrackDagger`]: Dex4D's DAgger loop (the student acts, the teacher labels,
//!   a ring buffer of the newest steps, L1 behaviour cloning + L1 world model).
//!
//! Missing points are zeros in both the current and the goal set, as Dex4D's code and
//! its real pipeline write them; the encoders pool over the visible points only.
//!
//! ```no_run
//! use dex_policy::point_track::{PointTrackConfig, PointTrackDagger, PointTrackPolicy};
//! use dex_policy::PoseProxyExpert;
//! use dex_policy::point_track::PointTrackInputs;
//! use dex_sim::{Env, PoseProxy, PoseProxyConfig, ProxyLayout, VecEnv};
//!
//! let config = PoseProxyConfig::default();
//! let make = |_| -> dex_sim::Result<Box<dyn Env>> { Ok(Box::new(PoseProxy::new(config.clone())?)) };
//! let venv = VecEnv::from_fn(64, make)?;
//! let dim = venv.observation_spec().state.dim();
//! let student = PointTrackPolicy::new(
//!     &PointTrackConfig::default(), PointTrackInputs::proxy(&ProxyLayout::new(config.slots)), dim, 6, 0, Default::default())?;
//! let mut teacher = PoseProxyExpert::new(&config);
//! let mut dagger = PointTrackDagger::new(student, venv, Default::default(), 0)?;
//! for _ in 0..100 {
//!     let it = dagger.iterate(&mut teacher)?;
//!     println!("{} bc {:.3} wm {:.3}", it.iteration, it.bc_loss, it.world_model_loss);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod dagger;
mod net;
mod student;

pub use dagger::{
    PointTrackDagger, PointTrackDaggerConfig, PointTrackIteration, PointTrackTrainer,
    world_model_target,
};
pub use net::{
    PointEncoding, PointTrackBatch, PointTrackConfig, PointTrackInputs, PointTrackNet,
    PointTrackOutput,
};
pub use student::{PointTrackMeta, PointTrackPolicy};
