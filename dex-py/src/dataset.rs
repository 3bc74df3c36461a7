//! dex's behaviour-cloning datasets (`dex_policy::Dataset`: `dataset.toml` and `.npy`
//! chunks) written and read from Python, so that data from elsewhere (LeRobot) can
//! train `dex train bc`.

use std::path::PathBuf;

use dex_policy::{Dataset, DatasetWriter};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::prelude::*;

use crate::errors::{policy_error, value_error};

/// Writes `observations` `(n, d)` and `actions` `(n, a)` (float32) as a new dex
/// dataset in `path`, with `meta_json` (a JSON object) as its free-form `[meta]` table;
/// `meta.env` (task, hand, obs, config) names the environment `dex train bc` evaluates
/// the student on. Returns the number of rows.
#[pyfunction]
#[pyo3(signature = (path, observations, actions, meta_json = "{}", chunk_rows = 65536))]
pub(crate) fn write_dataset(
    py: Python<'_>,
    path: PathBuf,
    observations: PyReadonlyArray2<'_, f32>,
    actions: PyReadonlyArray2<'_, f32>,
    meta_json: &str,
    chunk_rows: usize,
) -> PyResult<usize> {
    let mut value: serde_json::Value =
        serde_json::from_str(meta_json).map_err(|e| value_error(format!("meta: {e}")))?;
    drop_nulls(&mut value);
    let meta = toml::Table::try_from(value)
        .map_err(|e| value_error(format!("meta is not a TOML table: {e}")))?;
    if let Some(toml::Value::Table(env)) = meta.get("env") {
        dex_sim::EnvSpec::from_table(env).map_err(|e| value_error(format!("meta.env: {e}")))?;
    }
    let x = observations.as_array().to_owned();
    let y = actions.as_array().to_owned();
    py.detach(|| {
        let mut w = DatasetWriter::create(&path, x.ncols(), y.ncols(), chunk_rows, meta)?;
        w.push(x.view(), y.view())?;
        Ok(w.finish()?.rows())
    })
    .map_err(policy_error)
}

/// Removes `null` members of objects (TOML has no null; an absent key reads as `None`
/// or the default).
fn drop_nulls(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            map.retain(|_, x| !x.is_null());
            map.values_mut().for_each(drop_nulls);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

type Rows<'py> = Bound<'py, PyArray2<f32>>;

/// Reads a dex dataset: `(observations, actions, meta as JSON)`.
#[pyfunction]
pub(crate) fn read_dataset<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<(Rows<'py>, Rows<'py>, String)> {
    let (x, y, meta) = py
        .detach(|| {
            let data = Dataset::open(&path)?;
            let (x, y) = data.load_all()?;
            Ok((x, y, data.meta().meta.clone()))
        })
        .map_err(policy_error)?;
    let meta = serde_json::to_string(&meta).map_err(value_error)?;
    Ok((x.into_pyarray(py), y.into_pyarray(py), meta))
}
