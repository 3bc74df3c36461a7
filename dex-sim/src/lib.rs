//! Simulation for dex: the [`Simulator`] trait (the physics of one hand and its objects),
//! the [`Env`] trait (a task on top of a simulator, Gymnasium-shaped) with vectorised
//! environments, four manipulation tasks, domain randomisation and a ray-cast depth camera.
//!
//! The default `rapier` feature provides [`RapierSim`], a rapier3d backend with one
//! reduced-coordinate multibody per finger and PD position motors. Without it the crate
//! keeps the traits, the tasks, [`VecEnv`] and [`MockSimulator`].
//!
//! ```
//! # #[cfg(feature = "rapier")] {
//! use dex_sim::{ObjectSpec, RapierSim, SimConfig, Simulator, rest_pose_on_palm};
//! use dex_core::HandModel;
//!
//! let model = HandModel::leap_right();
//! let config = SimConfig::for_hand(&model);
//! let cube = ObjectSpec::cube(0.05, 0.1);
//! let pose = rest_pose_on_palm(&model, &config.hand_pose, 0.025, 0.005);
//! let mut sim = RapierSim::new(model, &[cube], &[pose], config)?;
//! let hold = sim.joint_targets().to_vec();
//! sim.set_joint_targets(&hold)?;
//! sim.step()?; // one control period (10 × 2 ms)
//! assert!(sim.object_state(0)?.pose.translation.z > 0.1);
//! # }
//! # Ok::<(), dex_sim::Error>(())
//! ```

pub mod camera;
mod chaos;
pub mod env;
mod error;
pub mod mjcf;
mod mock;
#[cfg(feature = "mujoco")]
mod mujoco;
pub mod object;
mod simulator;
mod spec;
pub mod tasks;
pub mod texture;
pub mod wrist;

#[cfg(feature = "rapier")]
mod rapier;

pub use camera::{Camera, DepthFrame, LABEL_MARKER};
pub use chaos::{ChaosBox, Scene, chaos_box};
pub use env::{
    AutoReset, BoxSpace, Env, Info, Observation, ObservationSpec, Step, TimeLimit, VecEnv, VecStep,
    env_seed,
};
pub use error::{Error, Result};
pub use mjcf::to_mjcf;
pub use mock::{MockEnv, MockSimulator};
#[cfg(feature = "mujoco")]
pub use mujoco::MujocoSim;
pub use object::{ObjectShape, ObjectSpec, RandomObjectParams, random_object};
pub use simulator::{
    Backend, BodyRef, Contact, Enclosure, MjcfHand, ObjectState, SimConfig, SimState, Simulator,
    Table, mount_pose, nominal_pd_gains, open_configuration, palm_up_pose, rest_pose_on_palm,
};
pub use spec::EnvSpec;
pub use tasks::{
    ActionMode, AnygraspConfig, AnygraspOptions, AnygraspToAnygrasp, AnyposeConfig,
    AnyposeTableConfig, AnyposeTableLayout, AnyposeTabletop, AnyposeToAnypose, DepthView,
    FingertipReach, InHandRotation, PalmOrientation, PointMask, PoseProxy, PoseProxyConfig,
    Proprioception, ProxyGoals, ProxyLayout, Randomization, ReachConfig, RotateConfig,
    RotateOptions, TASK_NAMES, TableTask, TaskConfig, make_env, make_simulator, reach_state,
    rotate_state,
};
pub use wrist::{WristConfig, WristState, wrist_pose};

#[cfg(feature = "rapier")]
pub use rapier::RapierSim;

// Foreign crates whose types appear in our signatures.
pub use dex_core;
pub use nalgebra;
pub use ndarray;

/// The names most programs need: `use dex_sim::prelude::*;`.
pub mod prelude {
    #[cfg(feature = "rapier")]
    pub use crate::RapierSim;
    pub use crate::{
        ActionMode, Env, EnvSpec, Error, MockEnv, MockSimulator, ObjectSpec, Observation, Result,
        SimConfig, Simulator, Step, TaskConfig, TimeLimit, VecEnv, make_env,
    };
    pub use dex_core::HandModel;
}
