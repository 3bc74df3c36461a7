//! `dex._core.LeapHand` (the LEAP driver over a serial port, behind the safety layer)
//! and `dex._core.Emulator` (the emulated servo bus served on a pseudo-terminal).

use std::sync::Mutex;

use dex_core::HandModel;
use dex_hw::emulator::{PhysicsClock, PtyEmulator, SimJoints};
use dex_hw::{
    HandDriver, JointTargets, LeapConfig, LeapHand, LimitPolicy, SafetyConfig, SafetyLimits,
    SerialTransport, ServoBus,
};
use dex_sim::{ObjectSpec, RapierSim, SimConfig, rest_pose_on_palm};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{hw_error, poisoned, sim_error, value_error};

type Driver = SafetyLimits<LeapHand<SerialTransport>>;

/// The LEAP Hand over its Dynamixel bus (a USB adapter's port, or an emulator's
/// pseudo-terminal), every target checked by the safety layer before it is sent.
/// Torque goes off on `disable()`, `close()`, when the object is dropped, and after
/// any bus error while enabled.
#[pyclass(module = "dex._core", name = "LeapHand")]
pub struct PyLeapHand {
    driver: Mutex<Option<Driver>>,
    names: Vec<String>,
    limits: Vec<(f64, f64)>,
}

impl PyLeapHand {
    fn with<T>(&self, f: impl FnOnce(&mut Driver) -> dex_hw::Result<T>) -> PyResult<T> {
        let mut guard = self.driver.lock().map_err(poisoned)?;
        let driver = guard
            .as_mut()
            .ok_or_else(|| value_error("the hand is closed"))?;
        f(driver).map_err(hw_error)
    }
}

#[pymethods]
impl PyLeapHand {
    /// Opens the hand on `port` at `baud` bit/s and pings its 16 servos (writes
    /// nothing). Targets outside the joint limits, or moving a joint more than
    /// `max_step` rad from one write to the next (`None`: no step limit), are refused
    /// with `ValueError`, or clamped when `clamp=True`. `OSError` if the port cannot be
    /// opened or the servos do not answer.
    #[new]
    #[pyo3(signature = (port, baud = 4_000_000, max_step = Some(0.05), clamp = false))]
    fn new(
        py: Python<'_>,
        port: &str,
        baud: u32,
        max_step: Option<f64>,
        clamp: bool,
    ) -> PyResult<Self> {
        if let Some(s) = max_step
            && !(s.is_finite() && s > 0.0)
        {
            return Err(value_error(format!(
                "max_step {s}: needs a positive number"
            )));
        }
        let model = HandModel::leap_right();
        let mut safety = SafetyConfig::from_model(&model, max_step);
        if clamp {
            safety.policy = LimitPolicy::Clamp;
        }
        let limits = safety.limits.clone();
        let driver = py
            .detach(|| {
                let transport = SerialTransport::open(port, baud)?;
                let hand = LeapHand::open(transport, LeapConfig::default())?;
                SafetyLimits::new(hand, safety)
            })
            .map_err(hw_error)?;
        Ok(Self {
            names: driver.joint_names(),
            driver: Mutex::new(Some(driver)),
            limits,
        })
    }

    /// Joint names, in model order (joint `i` is servo ID `i`).
    #[getter]
    fn joint_names(&self) -> Vec<String> {
        self.names.clone()
    }

    /// `(16, 2)` joint limits (rad) the safety layer enforces.
    fn joint_limits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        ndarray::Array2::from_shape_fn((self.limits.len(), 2), |(i, k)| {
            if k == 0 {
                self.limits[i].0
            } else {
                self.limits[i].1
            }
        })
        .into_pyarray(py)
    }

    /// The driver's state: opened, configured, enabled, disabled or faulted.
    #[getter]
    fn state(&self) -> PyResult<String> {
        self.with(|d| Ok(d.state().as_str().to_string()))
    }

    /// Writes modes, gains and limits with torque off (also recovers from a fault).
    fn configure(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.with(|d| d.configure()))
    }

    /// Turns torque on; the hand holds its present pose until the first target.
    fn enable(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.with(|d| d.enable()))
    }

    /// Turns torque off.
    fn disable(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.with(|d| d.disable()))
    }

    /// Reads the joints: `{"q": rad, "qdot": rad/s, "effort": N·m}` as arrays.
    fn read_state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = py.detach(|| self.with(|d| d.read_state()))?;
        let out = PyDict::new(py);
        out.set_item("q", s.q.into_pyarray(py))?;
        out.set_item("qdot", s.qdot.into_pyarray(py))?;
        out.set_item("effort", s.effort.into_pyarray(py))?;
        Ok(out)
    }

    /// Sends position targets (rad, 16 values) through the safety layer.
    fn write_targets(&self, py: Python<'_>, q: PyReadonlyArray1<'_, f64>) -> PyResult<()> {
        let targets = JointTargets::new(q.as_array().to_vec());
        py.detach(|| self.with(|d| d.write_targets(&targets)))
    }

    /// What the safety layer did so far: `rejected`, `clamped`, `step_limited`.
    fn safety_events<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let e = self.with(|d| Ok(d.events()))?;
        let out = PyDict::new(py);
        out.set_item("rejected", e.rejected)?;
        out.set_item("clamped", e.clamped)?;
        out.set_item("step_limited", e.step_limited)?;
        Ok(out)
    }

    /// Turns torque off and closes the port; later calls raise `ValueError`.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let driver = self.driver.lock().map_err(poisoned)?.take();
        if let Some(mut d) = driver {
            py.detach(|| d.disable()).map_err(hw_error)?;
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }
}

/// Sixteen emulated XC330-M288-T servos (IDs 0–15) of a LEAP Hand, served on a new
/// pseudo-terminal by a background thread in real time: open `path` with
/// `LeapHand` (or the ROBOTIS SDK) as if it were the hand's USB adapter.
#[pyclass(module = "dex._core", name = "Emulator")]
pub struct PyEmulator {
    inner: Mutex<Option<PtyEmulator>>,
    path: String,
}

/// The simulated LEAP Hand, palm up, with `object` (a named object, or `none`) resting
/// on its palm; 2 ms physics steps.
fn leap_scene(object: &str) -> dex_sim::Result<RapierSim> {
    let model = HandModel::leap_right();
    let mut config = SimConfig::for_hand(&model);
    config.substeps = 1;
    let (objects, poses) = if object == "none" {
        (Vec::new(), Vec::new())
    } else {
        let spec = ObjectSpec::named(object)?;
        let h = spec.shape.half_height();
        let pose = rest_pose_on_palm(&model, &config.hand_pose, h, 0.002);
        (vec![spec], vec![pose])
    };
    RapierSim::new(model, &objects, &poses, config)
}

#[pymethods]
impl PyEmulator {
    /// Starts the emulator. `physics="motor"`: each servo's motor model alone;
    /// `physics="sim"`: the servos move a simulated LEAP Hand (rapier, the engine's
    /// PD joints) with `object` (`none`, `cube`, `sphere`, ...) on its palm.
    #[new]
    #[pyo3(signature = (physics = "motor", object = "none"))]
    fn new(physics: &str, object: &str) -> PyResult<Self> {
        let bus = match physics {
            "motor" => {
                if object != "none" {
                    return Err(value_error("an object needs physics=\"sim\""));
                }
                ServoBus::leap_hand()
            }
            "sim" => {
                let sim = leap_scene(object).map_err(sim_error)?;
                ServoBus::leap_hand_with_physics(
                    Box::new(SimJoints::new(Box::new(sim))),
                    PhysicsClock::BusTime,
                )
                .map_err(hw_error)?
            }
            other => {
                return Err(value_error(format!(
                    "physics `{other}`: use \"motor\" or \"sim\""
                )));
            }
        };
        let emulator = PtyEmulator::start(bus).map_err(hw_error)?;
        Ok(Self {
            path: emulator.path().to_string(),
            inner: Mutex::new(Some(emulator)),
        })
    }

    /// The pseudo-terminal's path (e.g. `/dev/pts/3`).
    #[getter]
    fn path(&self) -> String {
        self.path.clone()
    }

    /// Whether the emulator still serves its bus.
    #[getter]
    fn running(&self) -> PyResult<bool> {
        Ok(self.inner.lock().map_err(poisoned)?.is_some())
    }

    /// Stops serving and closes the terminal.
    fn stop(&self) -> PyResult<()> {
        let emulator = self.inner.lock().map_err(poisoned)?.take();
        if let Some(mut e) = emulator {
            e.stop();
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        _exc_type: Option<Bound<'_, PyAny>>,
        _exc: Option<Bound<'_, PyAny>>,
        _tb: Option<Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.stop()?;
        Ok(false)
    }
}
