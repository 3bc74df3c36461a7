//! Tasks by name: [`TASK_NAMES`] and [`make_env`].

use dex_core::HandModel;

use super::anygrasp::{AnygraspConfig, AnygraspToAnygrasp};
use super::anypose::{AnyposeConfig, AnyposeToAnypose};
use super::anypose_table::{AnyposeTableConfig, AnyposeTabletop};
use super::config::TaskConfig;
use super::pose_proxy::PoseProxy;
use super::reach::{FingertipReach, ReachConfig};
use super::rotate::{InHandRotation, RotateConfig};
use crate::error::{Error, Result};

/// The task names [`make_env`] accepts.
pub const TASK_NAMES: &[&str] = &[
    "reach",
    "reach-depth",
    "rotate",
    "anypose",
    "anypose-table",
    "anypose-proxy",
    "anygrasp",
];

/// Builds a task by name (`reach`, `reach-depth`, `rotate`, `anypose`, `anypose-table`
/// (Dex4D's setting: the hand on a wrist over a table), `anypose-proxy` (its
/// physics-free proxy, settings from [`TaskConfig::proxy`]), `anygrasp`) for
/// `model` with default task-specific settings (but `anygrasp`'s and `rotate`'s options,
/// which come from [`TaskConfig::anygrasp`] and [`TaskConfig::rotate`]). `reach-depth` is `reach` observed
/// through [`TaskConfig::depth_view`]: the targets are seen only as spheres in the depth
/// image (see [`ReachConfig::depth`]).
pub fn make_env(name: &str, model: HandModel, config: TaskConfig) -> Result<Box<dyn crate::Env>> {
    Ok(match name {
        "reach" => Box::new(FingertipReach::new(model, config, ReachConfig::default())?),
        "reach-depth" => Box::new(FingertipReach::new(
            model,
            config,
            ReachConfig {
                depth: true,
                ..ReachConfig::default()
            },
        )?),
        "rotate" => Box::new(InHandRotation::new(model, config, RotateConfig::default())?),
        "anypose" => Box::new(AnyposeToAnypose::new(
            model,
            config,
            AnyposeConfig::default(),
        )?),
        "anypose-table" => Box::new(AnyposeTabletop::new(
            model,
            config,
            AnyposeTableConfig::default(),
        )?),
        // Physics-free: the hand model is not used.
        "anypose-proxy" => Box::new(PoseProxy::new(config.proxy.clone())?),
        "anygrasp" => {
            let params = config.anygrasp.apply(AnygraspConfig::default());
            Box::new(AnygraspToAnygrasp::new(model, config, params)?)
        }
        other => {
            return Err(Error::UnknownName {
                kind: "task",
                name: other.to_string(),
                known: TASK_NAMES.join(", "),
            });
        }
    })
}
