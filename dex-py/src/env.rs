//! `dex._core.Env` (one environment) and `dex._core.VecEnv` (a batch stepped on rayon
//! with either auto-reset mode). The Python classes in `dex.envs` wrap them as
//! Gymnasium environments; these are the raw, typed steps.

use std::collections::BTreeSet;
use std::sync::Mutex;

use dex_sim::{AutoReset, BoxSpace, Camera, Env, Info, Observation, VecEnv};
use ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{locked, poisoned, sim_error, value_error};
use crate::spaces::{bounds, build_env, info_dict, task_config};

/// What both classes report about their spaces.
#[derive(Debug, Clone)]
struct Shapes {
    task: String,
    hand: String,
    action: BoxSpace,
    state: BoxSpace,
    depth: Option<(usize, usize)>,
}

impl Shapes {
    fn of(env: &dyn Env, task: &str, hand: &str) -> Self {
        Self {
            task: task.to_string(),
            hand: hand.to_string(),
            action: env.action_space().clone(),
            state: env.observation_spec().state.clone(),
            depth: env.observation_spec().depth,
        }
    }
}

type StateArray<'py> = Bound<'py, PyArray1<f32>>;
type DepthArray<'py> = Option<Bound<'py, PyArray2<f32>>>;

/// The state vector and the depth image (if any) of one observation, moved into numpy
/// without copying.
fn observation<'py>(py: Python<'py>, obs: Observation) -> (StateArray<'py>, DepthArray<'py>) {
    (
        obs.state.into_pyarray(py),
        obs.depth.map(|d| d.into_pyarray(py)),
    )
}

/// One dex task as a Gymnasium-shaped environment: `reset(seed)` and `step(action)`
/// release the GIL while Rust steps.
#[pyclass(module = "dex._core", name = "Env")]
pub struct PyEnv {
    inner: Mutex<Box<dyn Env>>,
    shapes: Shapes,
}

#[pymethods]
impl PyEnv {
    /// `task` (a dex task name: reach, reach-depth, rotate, anypose, anypose-table,
    /// anypose-proxy, anygrasp) on `hand` (leap, allegro or a URDF path), with task
    /// settings `config` as JSON (the keys of the TOML `[task]` table).
    #[new]
    #[pyo3(signature = (task, hand = "leap", config = None))]
    fn new(task: &str, hand: &str, config: Option<&str>) -> PyResult<Self> {
        let config = task_config(config)?;
        let env = build_env(task, hand, &config)?;
        let shapes = Shapes::of(env.as_ref(), task, hand);
        Ok(Self {
            inner: Mutex::new(env),
            shapes,
        })
    }

    /// The task's name.
    #[getter]
    fn task(&self) -> String {
        self.shapes.task.clone()
    }

    /// The hand as given.
    #[getter]
    fn hand(&self) -> String {
        self.shapes.hand.clone()
    }

    /// `(low, high)` of actions.
    #[getter]
    fn action_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        bounds(&self.shapes.action)
    }

    /// `(low, high)` of the state vector.
    #[getter]
    fn state_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        bounds(&self.shapes.state)
    }

    /// `(height, width)` of the depth image, or `None` if the task observes none.
    #[getter]
    fn depth_shape(&self) -> Option<(usize, usize)> {
        self.shapes.depth
    }

    /// Starts an episode: `seed` reseeds the environment, `None` continues its random
    /// stream. Returns `(state, depth or None, info)`.
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<(StateArray<'py>, DepthArray<'py>, Bound<'py, PyDict>)> {
        let (obs, info) = py
            .detach(|| locked(&self.inner, |e| e.reset(seed)))?
            .map_err(sim_error)?;
        let (state, depth) = observation(py, obs);
        Ok((state, depth, info_dict(py, &info)?))
    }

    /// One control step. Returns `(state, depth or None, reward, terminated, truncated,
    /// info)`. A wrong length, a NaN or a value outside the action bounds raises
    /// `ValueError` and changes nothing.
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        action: PyReadonlyArray1<'py, f32>,
    ) -> PyResult<(
        StateArray<'py>,
        DepthArray<'py>,
        f64,
        bool,
        bool,
        Bound<'py, PyDict>,
    )> {
        let action = action.as_array().to_vec();
        let s = py
            .detach(|| locked(&self.inner, |e| e.step(&action)))?
            .map_err(sim_error)?;
        let (state, depth) = observation(py, s.obs);
        Ok((
            state,
            depth,
            s.reward,
            s.terminated,
            s.truncated,
            info_dict(py, &s.info)?,
        ))
    }

    /// The scene through a camera looking down at the fingertips, as an 8-bit grey
    /// image repeated into `(height, width, 3)` (what the trackers see: every surface
    /// textured, lit by a head light). `ValueError` for a task without a simulator.
    #[pyo3(signature = (width = 320, height = 240))]
    fn render<'py>(
        &self,
        py: Python<'py>,
        width: usize,
        height: usize,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let image = py
            .detach(|| {
                let env = self.inner.lock().map_err(poisoned)?;
                render_gray(env.as_ref(), width, height)
            })?
            .into_pyarray(py);
        Ok(image)
    }

    /// The scene now, in the world frame: `time` (s), `q`, `qdot`, `targets` (rad),
    /// `link_names` and `link_poses` `(links, 4, 4)`, `fingertips` `(fingers, 3)`,
    /// `object_poses` `(objects, 4, 4)`. What a viewer draws (e.g. rerun) and what a
    /// user checks a policy against. `ValueError` for a task without a simulator.
    fn scene<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let env = self.inner.lock().map_err(poisoned)?;
        let sim = env
            .simulator()
            .ok_or_else(|| value_error(format!("task `{}` has no simulator", env.name())))?;
        let js = sim.joint_state();
        let poses = |ps: &[nalgebra::Isometry3<f64>]| {
            let ms: Vec<nalgebra::Matrix4<f64>> = ps.iter().map(|p| p.to_homogeneous()).collect();
            Array3::from_shape_fn((ms.len(), 4, 4), |(i, r, c)| ms[i][(r, c)])
        };
        let objects = (0..sim.objects().len())
            .map(|i| sim.object_state(i).map(|s| s.pose))
            .collect::<dex_sim::Result<Vec<_>>>()
            .map_err(sim_error)?;
        let tips = sim.fingertip_positions();
        let d = PyDict::new(py);
        d.set_item("time", sim.time())?;
        d.set_item("q", js.q.into_pyarray(py))?;
        d.set_item("qdot", js.qdot.into_pyarray(py))?;
        d.set_item("targets", sim.joint_targets().to_vec().into_pyarray(py))?;
        let names: Vec<String> = sim.model().links().iter().map(|l| l.name.clone()).collect();
        d.set_item("link_names", names)?;
        d.set_item("link_poses", poses(&sim.link_poses()).into_pyarray(py))?;
        d.set_item(
            "fingertips",
            Array2::from_shape_fn((tips.len(), 3), |(i, k)| tips[i][k]).into_pyarray(py),
        )?;
        d.set_item("object_poses", poses(&objects).into_pyarray(py))?;
        Ok(d)
    }

    /// The camera `render(width, height)` uses now: `pose` (4 × 4, camera → world; x
    /// right, y down, z forward) and the pinhole `fx`, `fy`, `cx`, `cy`, `width`, `height`.
    fn camera<'py>(
        &self,
        py: Python<'py>,
        width: usize,
        height: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = self.inner.lock().map_err(poisoned)?;
        let camera = overview_camera(env.as_ref(), width, height)?;
        let k = camera.intrinsics;
        let d = PyDict::new(py);
        let m = camera.pose.to_homogeneous();
        let pose = Array2::from_shape_fn((4, 4), |(r, c)| m[(r, c)]);
        d.set_item("pose", pose.into_pyarray(py))?;
        for (key, v) in [("fx", k.fx), ("fy", k.fy), ("cx", k.cx), ("cy", k.cy)] {
            d.set_item(key, v)?;
        }
        d.set_item("width", k.width)?;
        d.set_item("height", k.height)?;
        Ok(d)
    }

    /// Each object's shape in its own frame (a dict as `HandModel.collision_shapes`
    /// gives; convex hulls as `kind="points"`), in `scene()["object_poses"]` order.
    fn object_shapes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Bound<'py, PyDict>>> {
        let env = self.inner.lock().map_err(poisoned)?;
        let Some(sim) = env.simulator() else {
            return Ok(Vec::new());
        };
        sim.objects()
            .iter()
            .map(|o| crate::shapes::primitive_dict(py, &dex_rerun::object_primitive(&o.shape)))
            .collect()
    }

    /// A digest of the simulator's full state (same seed and actions, same digest), or
    /// `None` for a task without a simulator.
    fn state_digest(&self) -> PyResult<Option<u64>> {
        let env = self.inner.lock().map_err(poisoned)?;
        Ok(env.simulator().map(|s| s.state_digest()))
    }
}

/// The camera `render` uses: an overview of the hand, aimed at its fingertips' mean.
fn overview_camera(env: &dyn Env, width: usize, height: usize) -> PyResult<Camera> {
    let sim = env.simulator().ok_or_else(|| {
        value_error(format!(
            "task `{}` has no simulator to render (it is physics-free)",
            env.name()
        ))
    })?;
    Camera::overview_of(width, height, &sim.fingertip_positions()).map_err(sim_error)
}

/// The grey image of `env`'s scene, `(height, width, 3)`.
fn render_gray(env: &dyn Env, width: usize, height: usize) -> PyResult<Array3<u8>> {
    let camera = overview_camera(env, width, height)?;
    let sim = env
        .simulator()
        .ok_or_else(|| value_error("no simulator to render"))?;
    let frame = sim.render_depth(&camera).map_err(sim_error)?;
    let (h, w) = frame.gray.dim();
    Ok(Array3::from_shape_fn((h, w, 3), |(y, x, _)| {
        frame.gray[[y, x]]
    }))
}

/// Per key: the values (0 where an environment's info lacks the key) and a mask of
/// where they are present, as Gymnasium's vector infos (`key`, `_key`).
fn stacked_infos<'py>(
    py: Python<'py>,
    infos: &[&Info],
    present: &[bool],
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    let success: Vec<bool> = infos.iter().map(|i| i.success).collect();
    d.set_item("success", success.into_pyarray(py))?;
    d.set_item("_success", present.to_vec().into_pyarray(py))?;
    let keys: BTreeSet<&String> = infos.iter().flat_map(|i| i.values.keys()).collect();
    for k in keys {
        let values: Vec<f64> = infos.iter().map(|i| i.get(k).unwrap_or(0.0)).collect();
        let mask: Vec<bool> = infos
            .iter()
            .zip(present)
            .map(|(i, p)| *p && i.values.contains_key(k))
            .collect();
        d.set_item(k, values.into_pyarray(py))?;
        d.set_item(format!("_{k}"), mask.into_pyarray(py))?;
    }
    Ok(d)
}

/// Observations stacked into `(n, d)` states and `(n, h, w)` depth images (zeros
/// where `obs` is `None`).
fn stack(
    obs: &[Option<&Observation>],
    dim: usize,
    depth: Option<(usize, usize)>,
) -> (Array2<f32>, Option<Array3<f32>>) {
    let n = obs.len();
    let mut states = Array2::zeros((n, dim));
    let mut images = depth.map(|(h, w)| Array3::zeros((n, h, w)));
    for (i, o) in obs.iter().enumerate() {
        let Some(o) = o else { continue };
        states.row_mut(i).assign(&Array1::from(o.state.clone()));
        if let (Some(images), Some(d)) = (images.as_mut(), o.depth.as_ref()) {
            images.index_axis_mut(ndarray::Axis(0), i).assign(d);
        }
    }
    (states, images)
}

/// A batch of one task's environments stepped in parallel (rayon), with Gymnasium's
/// NEXT_STEP auto-reset or SAME_STEP with final observations.
#[pyclass(module = "dex._core", name = "VecEnv")]
pub struct PyVecEnv {
    inner: Mutex<VecEnv>,
    shapes: Shapes,
    num_envs: usize,
    same_step: bool,
}

type Batch<'py> = (Bound<'py, PyArray2<f32>>, Option<Bound<'py, PyArray3<f32>>>);

fn batch<'py>(py: Python<'py>, (states, depth): (Array2<f32>, Option<Array3<f32>>)) -> Batch<'py> {
    (states.into_pyarray(py), depth.map(|d| d.into_pyarray(py)))
}

#[pymethods]
impl PyVecEnv {
    /// `num_envs` environments of `task` on `hand` with task settings `config` (JSON);
    /// `autoreset` is `"next_step"` (Gymnasium's default) or `"same_step"`.
    #[new]
    #[pyo3(signature = (task, num_envs, hand = "leap", config = None, autoreset = "next_step"))]
    fn new(
        task: &str,
        num_envs: usize,
        hand: &str,
        config: Option<&str>,
        autoreset: &str,
    ) -> PyResult<Self> {
        let mode = match autoreset {
            "next_step" => AutoReset::NextStep,
            "same_step" => AutoReset::SameStep,
            other => {
                return Err(value_error(format!(
                    "autoreset `{other}`: use \"next_step\" or \"same_step\""
                )));
            }
        };
        if num_envs == 0 {
            return Err(value_error("num_envs must be at least 1"));
        }
        let config = task_config(config)?;
        let venv = VecEnv::from_fn(num_envs, |_| {
            build_env(task, hand, &config).map_err(|e| dex_sim::Error::InvalidParameter {
                what: "environment",
                reason: e.to_string(),
            })
        })
        .map_err(sim_error)?
        .with_autoreset(mode);
        let shapes = Shapes::of(venv.envs()[0].as_ref(), task, hand);
        Ok(Self {
            inner: Mutex::new(venv),
            shapes,
            num_envs,
            same_step: mode == AutoReset::SameStep,
        })
    }

    /// The number of environments.
    #[getter]
    fn num_envs(&self) -> usize {
        self.num_envs
    }

    /// The auto-reset mode, `"next_step"` or `"same_step"`.
    #[getter]
    fn autoreset(&self) -> &'static str {
        if self.same_step {
            "same_step"
        } else {
            "next_step"
        }
    }

    /// The task's name.
    #[getter]
    fn task(&self) -> String {
        self.shapes.task.clone()
    }

    /// `(low, high)` of one environment's actions.
    #[getter]
    fn action_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        bounds(&self.shapes.action)
    }

    /// `(low, high)` of one environment's state vector.
    #[getter]
    fn state_bounds(&self) -> (Vec<f32>, Vec<f32>) {
        bounds(&self.shapes.state)
    }

    /// `(height, width)` of the depth image, or `None`.
    #[getter]
    fn depth_shape(&self) -> Option<(usize, usize)> {
        self.shapes.depth
    }

    /// Resets every environment, environment `i` with seed `env_seed(seed, i)`; with
    /// `None` each continues its own random stream. Returns `(states (n, d), depth
    /// (n, h, w) or None, infos)`.
    #[allow(clippy::type_complexity)]
    #[pyo3(signature = (seed = None))]
    fn reset<'py>(
        &self,
        py: Python<'py>,
        seed: Option<u64>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Option<Bound<'py, PyArray3<f32>>>,
        Bound<'py, PyDict>,
    )> {
        let (obs, infos) = py
            .detach(|| {
                locked(&self.inner, |v| match seed {
                    Some(s) => v.reset(s),
                    None => v.reset_unseeded(),
                })
            })?
            .map_err(sim_error)?;
        let refs: Vec<Option<&Observation>> = obs.iter().map(Some).collect();
        let (states, depth) = batch(py, stack(&refs, self.shapes.state.dim(), self.shapes.depth));
        let info_refs: Vec<&Info> = infos.iter().collect();
        let infos = stacked_infos(py, &info_refs, &vec![true; infos.len()])?;
        Ok((states, depth, infos))
    }

    /// Steps every environment with its row of `actions` (`(n, action_dim)`, float32);
    /// bad actions raise `ValueError` before anything moves. Returns `(states, depth,
    /// rewards, terminated, truncated, infos, final)`; `final` is `None` in
    /// next-step mode, and in same-step mode `(final_states, final_depth, ended,
    /// final_infos)` for the environments whose episode ended in this step (`ended` is
    /// their mask; the other rows are zeros).
    #[allow(clippy::type_complexity)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        actions: PyReadonlyArray2<'py, f32>,
    ) -> PyResult<(
        Bound<'py, PyArray2<f32>>,
        Option<Bound<'py, PyArray3<f32>>>,
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyArray1<bool>>,
        Bound<'py, PyDict>,
        Option<Bound<'py, pyo3::types::PyTuple>>,
    )> {
        let view = actions.as_array();
        let (rows, cols) = view.dim();
        if rows != self.num_envs || cols != self.shapes.action.dim() {
            return Err(value_error(format!(
                "actions have shape ({rows}, {cols}); expected ({}, {})",
                self.num_envs,
                self.shapes.action.dim()
            )));
        }
        let flat: Vec<f32> = view.iter().copied().collect();
        let s = py
            .detach(|| locked(&self.inner, |v| v.step(&flat)))?
            .map_err(sim_error)?;
        let refs: Vec<Option<&Observation>> = s.obs.iter().map(Some).collect();
        let (states, depth) = batch(py, stack(&refs, self.shapes.state.dim(), self.shapes.depth));
        let info_refs: Vec<&Info> = s.infos.iter().collect();
        let infos = stacked_infos(py, &info_refs, &vec![true; s.infos.len()])?;
        let last = if self.same_step {
            let ended: Vec<bool> = s.final_obs.iter().map(Option::is_some).collect();
            let final_refs: Vec<Option<&Observation>> =
                s.final_obs.iter().map(Option::as_ref).collect();
            let (final_states, final_depth) = batch(
                py,
                stack(&final_refs, self.shapes.state.dim(), self.shapes.depth),
            );
            let empty = Info::default();
            let final_infos: Vec<&Info> = s
                .final_info
                .iter()
                .map(|i| i.as_ref().unwrap_or(&empty))
                .collect();
            let final_infos = stacked_infos(py, &final_infos, &ended)?;
            Some(pyo3::types::PyTuple::new(
                py,
                [
                    final_states.into_any(),
                    final_depth.into_pyobject(py)?.into_any(),
                    ended.into_pyarray(py).into_any(),
                    final_infos.into_any(),
                ],
            )?)
        } else {
            None
        };
        Ok((
            states,
            depth,
            s.rewards.into_pyarray(py),
            s.terminated.into_pyarray(py),
            s.truncated.into_pyarray(py),
            infos,
            last,
        ))
    }
}
