//! Building environments from Python's arguments: task names, hands and task settings
//! given as JSON (the same keys as the `[task]` table of a TOML config).

use dex_core::HandModel;
use dex_sim::{BoxSpace, Env, Info, TaskConfig, make_env};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{core_error, sim_error, value_error};

/// Task settings from JSON (`None` or `""`: the defaults). Unknown keys are an error
/// that names them and lists the known ones.
pub(crate) fn task_config(json: Option<&str>) -> PyResult<TaskConfig> {
    let config = match json {
        None | Some("") => TaskConfig::default(),
        Some(text) => serde_json::from_str::<TaskConfig>(text)
            .map_err(|e| value_error(format!("task settings: {e}")))?,
    };
    config.validate().map_err(sim_error)?;
    Ok(config)
}

/// One environment of `task` on `hand` (a built-in name or a URDF path).
pub(crate) fn build_env(task: &str, hand: &str, config: &TaskConfig) -> PyResult<Box<dyn Env>> {
    let model = HandModel::load(hand).map_err(core_error)?;
    make_env(task, model, config.clone()).map_err(sim_error)
}

/// `(low, high)` of a box as Python lists.
pub(crate) fn bounds(space: &BoxSpace) -> (Vec<f32>, Vec<f32>) {
    (space.low.clone(), space.high.clone())
}

/// An info as a dict: `success` and each named figure.
pub(crate) fn info_dict<'py>(py: Python<'py>, info: &Info) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("success", info.success)?;
    for (k, v) in &info.values {
        d.set_item(k, *v)?;
    }
    Ok(d)
}
