//! Soft actor–critic on a [`dex_sim::VecEnv`], with the options of Squint's recipe for fast
//! parallel SAC: a C51 distributional critic, LayerNorm in every hidden layer, an
//! update-to-data ratio, and a replay buffer that stores each observation once.
//!
//! Squint (fast visual RL) trains with 1,024 environments, UTD 0.25, batch 512,
//! γ 0.9, τ 0.01, a 1M-transition buffer and C51 with 101 atoms on [−20, 20]; the
//! defaults here keep those settings except the number of environments and the buffer
//! size, scaled to a 2-core machine.
//!
//! **Images.** When the environments observe depth ([`dex_sim::ObservationSpec::depth`]
//! is `H × W`), the last `H·W` values of every state vector are the image, row by row,
//! in `[0, 1]` (dex-sim's squinted depth, see [`dex_sim::DepthView`]). The replay
//! buffer stores them as `u8` (`round(255·v)`), the policy acts on the same quantised
//! values, and a [`crate::CnnEncoder`] ([`SacConfig::cnn`]) turns them into features that are
//! concatenated with the rest of the state. The encoder belongs to the critics (both
//! share it, trained by the critic loss, Polyak-averaged into a target copy); the actor
//! reads its features detached, as in DrQ.

mod c51;
mod checkpoint_meta;
mod config;
mod networks;
mod policy;
mod replay;
mod trainer;

#[cfg(test)]
mod tests;

pub use c51::c51_project;
pub use checkpoint_meta::SacCheckpointMeta;
pub use config::SacConfig;
pub use policy::SacPolicy;
pub use replay::{Batch, ReplayBuffer};
pub use trainer::{SacLosses, SacTrainer};
