//! Python bindings of dex, built by maturin into the `dex._core` extension module of
//! the `dex` Python package (see `python/dex`): Gymnasium-shaped environments and a
//! batched vector environment over dex-sim's tasks, hand models, policies from any dex
//! checkpoint, and the LEAP driver with the servo-bus emulator.
//!
//! The Python package wraps these classes as `gymnasium.Env` / `gymnasium.vector.VectorEnv`
//! subclasses and registers `dex/Reach-v0` and the others on `import dex`.

mod dataset;
mod env;
mod errors;
mod hw;
mod model;
mod policy;
mod shapes;
mod spaces;

use pyo3::prelude::*;

/// The seed of environment `index` in a batch reset with `seed` (what `VecEnv.reset`
/// gives each environment).
#[pyfunction]
fn env_seed(seed: u64, index: usize) -> u64 {
    dex_sim::env_seed(seed, index)
}

/// Environment steps per second of `num_envs` environments of `task` stepped by the
/// Rust `VecEnv` alone (zero actions, `steps` batch steps after a reset with `seed` and 3 untimed ones):
/// the baseline the Python vector environment's overhead is measured against
/// (`dex-py/benches/vector_overhead.py`).
#[pyfunction]
#[pyo3(signature = (task, num_envs, steps, config = None, seed = 0))]
fn _rust_env_steps_per_s(
    py: Python<'_>,
    task: &str,
    num_envs: usize,
    steps: usize,
    config: Option<&str>,
    seed: u64,
) -> PyResult<f64> {
    let config = spaces::task_config(config)?;
    py.detach(|| {
        let mut venv = dex_sim::VecEnv::from_fn(num_envs, |_| {
            let model = dex_core::HandModel::load("leap")?;
            dex_sim::make_env(task, model, config.clone())
        })?;
        venv.reset(seed)?;
        let actions = vec![0.0f32; num_envs * venv.action_space().dim()];
        for _ in 0..3 {
            venv.step(&actions)?;
        }
        let start = std::time::Instant::now();
        for _ in 0..steps {
            std::hint::black_box(venv.step(&actions)?);
        }
        Ok((num_envs * steps) as f64 / start.elapsed().as_secs_f64())
    })
    .map_err(errors::sim_error)
}

/// The `dex._core` extension module.
#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<env::PyEnv>()?;
    m.add_class::<env::PyVecEnv>()?;
    m.add_class::<model::PyHandModel>()?;
    m.add_class::<policy::PyPolicy>()?;
    m.add_class::<hw::PyLeapHand>()?;
    m.add_class::<hw::PyEmulator>()?;
    m.add_function(wrap_pyfunction!(env_seed, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::write_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::read_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(_rust_env_steps_per_s, m)?)?;
    m.add("DexError", m.py().get_type::<errors::DexError>())?;
    m.add(
        "TASK_NAMES",
        dex_sim::TASK_NAMES
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    )?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
