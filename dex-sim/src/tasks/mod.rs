//! The manipulation tasks and the machinery they share: action mapping, proprioception
//! history, domain randomisation and the choice of simulator.
//!
//! **Actions** are in `[-1, 1]^dof`. In [`ActionMode::Absolute`] (default) action `a_i`
//! maps linearly onto joint `i`'s range: `q*_i = mid_i + a_i (upper_i - lower_i) / 2`. In
//! [`ActionMode::Relative`], `q*_i += a_i · relative_scale` from the previous target.
//!
//! **Proprioception** (the first block of every task's state vector): the last
//! `history` control steps (newest first) of joint positions normalised to `[-1, 1]` over
//! their ranges and of the targets likewise normalised, then joint velocities × 0.1.

mod anygrasp;
mod anypose;
mod anypose_table;
mod config;
mod depth_view;
mod hand_core;
mod point_mask;
mod pose_proxy;
mod proprio;
mod reach;
mod registry;
mod rotate;
mod rotate_options;
mod sampling;
mod task;

pub use anygrasp::{
    AnygraspConfig, AnygraspOptions, AnygraspToAnygrasp, Grasp, generate_grasps, grasp_distance,
};
pub use anypose::{AnyposeConfig, AnyposeToAnypose};
pub use anypose_table::{AnyposeTableConfig, AnyposeTableLayout, AnyposeTabletop, TableTask};
pub use config::{ActionMode, Randomization, TaskConfig};
pub use depth_view::DepthView;
pub use hand_core::make_simulator;
pub use point_mask::{PointMask, plane_mask};
pub use pose_proxy::{
    PoseProxy, PoseProxyConfig, ProxyGoals, ProxyLayout, is_symmetric, plan_actions, proxy_track,
};
pub use proprio::Proprioception;
pub use reach::{FingertipReach, ReachConfig, reach_state};
pub use registry::{TASK_NAMES, make_env};
pub use rotate::{InHandRotation, RotateConfig, rotate_state};
pub use rotate_options::{PalmOrientation, RotateOptions};
