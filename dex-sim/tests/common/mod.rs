//! The backends the behaviour tests run on: rapier, and MuJoCo with the `mujoco` feature.
#![allow(dead_code)]

use dex_core::HandModel;
use dex_sim::nalgebra::Isometry3;
use dex_sim::{ObjectSpec, RapierSim, SimConfig, Simulator};

/// A backend's constructor: hand model, objects, poses, settings.
pub type Build = fn(
    HandModel,
    &[ObjectSpec],
    &[Isometry3<f64>],
    SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>>;

/// The rapier backend.
pub fn rapier(
    m: HandModel,
    o: &[ObjectSpec],
    p: &[Isometry3<f64>],
    c: SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>> {
    Ok(Box::new(RapierSim::new(m, o, p, c)?))
}

/// The MuJoCo backend.
#[cfg(feature = "mujoco")]
pub fn mujoco(
    m: HandModel,
    o: &[ObjectSpec],
    p: &[Isometry3<f64>],
    c: SimConfig,
) -> dex_sim::Result<Box<dyn Simulator>> {
    Ok(Box::new(dex_sim::MujocoSim::new(m, o, p, c)?))
}

/// Instantiates each generic test body `fn name(build: Build)` once per backend.
#[macro_export]
macro_rules! on_backends {
    ($($name:ident),* $(,)?) => {
        mod rapier_backend {
            $(#[test] fn $name() { super::$name(super::common::rapier); })*
        }
        #[cfg(feature = "mujoco")]
        mod mujoco_backend {
            $(#[test] fn $name() { super::$name(super::common::mujoco); })*
        }
    };
}
