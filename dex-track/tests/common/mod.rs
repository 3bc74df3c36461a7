//! Helpers shared by the integration tests.

pub mod sim_scene;
