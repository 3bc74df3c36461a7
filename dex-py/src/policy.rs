//! `dex._core.Policy`: any checkpoint written by dex's trainers, acting on numpy
//! observations.

use std::path::PathBuf;
use std::sync::Mutex;

use dex_policy::{ActMode, Policy, evaluate, load_checkpoint};
use dex_sim::EnvSpec;
use ndarray::Array2;
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray2};
use pyo3::exceptions::PyFileNotFoundError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::errors::{locked, poisoned, policy_error, sim_error, value_error};

/// What `act` mutates: the policy (some keep per-environment history) and the random
/// stream of stochastic actions.
struct Acting {
    policy: Box<dyn Policy>,
    rng: ChaCha8Rng,
}

/// A policy loaded from a dex checkpoint directory (PPO, SAC, DAgger students, the
/// point-track student, gaits), with the environment it was trained on.
#[pyclass(module = "dex._core", name = "Policy")]
pub struct PyPolicy {
    acting: Mutex<Acting>,
    algorithm: String,
    env: EnvSpec,
    env_steps: u64,
    observation_dim: usize,
    action_dim: usize,
}

#[pymethods]
impl PyPolicy {
    /// Loads the checkpoint in directory `path` (as `dex eval --checkpoint` does).
    /// `FileNotFoundError` if it does not exist; `ValueError` for a corrupt or
    /// mismatched one.
    #[staticmethod]
    #[pyo3(signature = (path, seed = 0))]
    fn load(path: PathBuf, seed: u64) -> PyResult<Self> {
        if !path.join(dex_policy::META_FILE).is_file() {
            return Err(PyFileNotFoundError::new_err(format!(
                "{}: no {} (not a dex checkpoint directory)",
                path.display(),
                dex_policy::META_FILE
            )));
        }
        let ck = load_checkpoint(&path).map_err(policy_error)?;
        let env = EnvSpec::from_table(&ck.env).map_err(sim_error)?;
        Ok(Self {
            observation_dim: ck.policy.observation_dim(),
            action_dim: ck.policy.action_dim(),
            acting: Mutex::new(Acting {
                policy: ck.policy,
                rng: ChaCha8Rng::seed_from_u64(seed),
            }),
            algorithm: ck.algorithm.to_string(),
            env,
            env_steps: ck.env_steps,
        })
    }

    /// The algorithm that wrote the checkpoint (`ppo`, `sac`, `dagger`, `gait`).
    #[getter]
    fn algorithm(&self) -> String {
        self.algorithm.clone()
    }

    /// Environment steps of training (for a student: the dataset rows it learnt from).
    #[getter]
    fn env_steps(&self) -> u64 {
        self.env_steps
    }

    /// Length of one observation.
    #[getter]
    fn observation_dim(&self) -> usize {
        self.observation_dim
    }

    /// Length of one action.
    #[getter]
    fn action_dim(&self) -> usize {
        self.action_dim
    }

    /// The task the policy was trained on (a dex task name).
    #[getter]
    fn task(&self) -> PyResult<String> {
        self.env.sim_task().map_err(sim_error)
    }

    /// The hand it was trained on.
    #[getter]
    fn hand(&self) -> String {
        self.env.hand.clone()
    }

    /// Its task settings as JSON (the keys of the TOML `[task]` table).
    #[getter]
    fn config_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.env.config).map_err(value_error)
    }

    /// Actions `(n, action_dim)` for observations `(n, observation_dim)` (float32);
    /// `deterministic=False` samples from stochastic policies with the policy's own
    /// seeded stream. `ValueError` for a wrong width or NaN.
    #[pyo3(signature = (observations, deterministic = true))]
    fn act<'py>(
        &self,
        py: Python<'py>,
        observations: PyReadonlyArray2<'py, f32>,
        deterministic: bool,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let x: Array2<f32> = observations.as_array().to_owned();
        let mode = if deterministic {
            ActMode::Deterministic
        } else {
            ActMode::Stochastic
        };
        let a = py
            .detach(|| {
                locked(&self.acting, |acting| {
                    let Acting { policy, rng } = acting;
                    policy.act(x.view(), mode, rng)
                })
            })?
            .map_err(policy_error)?;
        Ok(a.into_pyarray(py))
    }

    /// Forgets environment `env`'s history (call when its episode ends).
    fn reset(&self, env: usize) -> PyResult<()> {
        self.acting.lock().map_err(poisoned)?.policy.reset(env);
        Ok(())
    }

    /// Evaluates the policy on its own task as `dex eval` does (`num_envs`
    /// environments, `episodes` episodes, seed `seed`; actions clipped to the bounds).
    /// Returns `success_rate`, `mean_return`, `mean_length`, `episodes` and the mean
    /// of each info figure at episode end.
    #[pyo3(signature = (episodes, seed = 0, num_envs = 1, deterministic = true))]
    fn evaluate<'py>(
        &self,
        py: Python<'py>,
        episodes: usize,
        seed: u64,
        num_envs: usize,
        deterministic: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        if num_envs == 0 {
            return Err(value_error("num_envs must be at least 1"));
        }
        let mode = if deterministic {
            ActMode::Deterministic
        } else {
            ActMode::Stochastic
        };
        let r = py
            .detach(|| {
                locked(&self.acting, |acting| {
                    let mut venv = self.env.build(num_envs)?;
                    evaluate(acting.policy.as_mut(), &mut venv, episodes, seed, mode)
                })
            })?
            .map_err(policy_error)?;
        let d = PyDict::new(py);
        d.set_item("episodes", r.episodes)?;
        d.set_item("success_rate", r.success_rate)?;
        d.set_item("mean_return", r.mean_return)?;
        d.set_item("mean_length", r.mean_length)?;
        for (k, v) in &r.final_info {
            d.set_item(k, *v)?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!(
            "Policy({}, task={:?}, hand={:?}, obs={}, act={})",
            self.algorithm, self.env.task, self.env.hand, self.observation_dim, self.action_dim
        )
    }
}
