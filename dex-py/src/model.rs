//! `dex._core.HandModel`: a hand's kinematic model, forward kinematics and Jacobians
//! as numpy arrays.

use dex_core::HandModel;
use nalgebra::{Isometry3, Matrix6xX, Point3};
use ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray2, PyArray3, PyArray4, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::errors::{core_error, value_error};

/// A hand model: links, joints, limits, fingertips and keypoints, loaded from a
/// built-in name (`leap`, `allegro`) or a URDF file.
#[pyclass(module = "dex._core", name = "HandModel", frozen)]
pub struct PyHandModel {
    pub(crate) model: HandModel,
}

/// A pose as a 4 × 4 homogeneous matrix.
fn matrix(pose: &Isometry3<f64>) -> [[f64; 4]; 4] {
    let m = pose.to_homogeneous();
    std::array::from_fn(|r| std::array::from_fn(|c| m[(r, c)]))
}

/// Points as an `(n, 3)` array.
fn points(ps: &[Point3<f64>]) -> Array2<f64> {
    Array2::from_shape_fn((ps.len(), 3), |(i, k)| ps[i][k])
}

/// A 6 × dof Jacobian as an array (rows: linear x, y, z, then angular).
fn jacobian_array(j: &Matrix6xX<f64>) -> Array2<f64> {
    Array2::from_shape_fn((6, j.ncols()), |(r, c)| j[(r, c)])
}

impl PyHandModel {
    fn configuration(&self, q: &PyReadonlyArray1<'_, f64>) -> PyResult<Vec<f64>> {
        let q = q.as_array().to_vec();
        if q.len() != self.model.dof() {
            return Err(value_error(format!(
                "configuration has {} values; {} has {} joints",
                q.len(),
                self.model.name(),
                self.model.dof()
            )));
        }
        Ok(q)
    }
}

#[pymethods]
impl PyHandModel {
    /// Loads a built-in hand (`leap`, `allegro`) or a URDF file.
    #[staticmethod]
    fn load(spec: &str) -> PyResult<Self> {
        Ok(Self {
            model: HandModel::load(spec).map_err(core_error)?,
        })
    }

    /// The model's name.
    #[getter]
    fn name(&self) -> String {
        self.model.name().to_string()
    }

    /// Number of actuated joints.
    #[getter]
    fn dof(&self) -> usize {
        self.model.dof()
    }

    /// Actuated joint names, in configuration order.
    #[getter]
    fn joint_names(&self) -> Vec<String> {
        self.model
            .joint_names()
            .into_iter()
            .map(str::to_string)
            .collect()
    }

    /// Link names, in the order of `forward_kinematics`'s poses.
    #[getter]
    fn link_names(&self) -> Vec<String> {
        self.model.links().iter().map(|l| l.name.clone()).collect()
    }

    /// Each link's collision shapes in the link frame, in `link_names` order: a list of
    /// dicts (`kind`: `box`, `sphere`, `capsule`, `cylinder`; metres, quaternions
    /// `[x, y, z, w]`). Mesh references, which dex does not load, are left out.
    fn collision_shapes<'py>(&self, py: Python<'py>) -> PyResult<Vec<Vec<Bound<'py, PyDict>>>> {
        self.model
            .links()
            .iter()
            .map(|l| {
                dex_rerun::geometry_primitives(&l.collisions)
                    .0
                    .iter()
                    .map(|p| crate::shapes::primitive_dict(py, p))
                    .collect()
            })
            .collect()
    }

    /// Fingertip frame names.
    #[getter]
    fn fingertip_names(&self) -> Vec<String> {
        self.model
            .fingertips()
            .iter()
            .map(|f| f.name.clone())
            .collect()
    }

    /// `(dof, 2)` joint limits (rad): lower, upper.
    fn joint_limits<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        let limits = self.model.joint_limits();
        Array2::from_shape_fn((limits.len(), 2), |(i, k)| {
            if k == 0 {
                limits[i].lower
            } else {
                limits[i].upper
            }
        })
        .into_pyarray(py)
    }

    /// The middle of every joint's range.
    fn mid_configuration<'py>(&self, py: Python<'py>) -> Bound<'py, numpy::PyArray1<f64>> {
        self.model.mid_configuration().into_pyarray(py)
    }

    /// Every link's pose in the hand's root frame, `(links, 4, 4)`, for the
    /// configuration `q` (`(dof,)`, rad). `ValueError` for a wrong length or NaN.
    fn forward_kinematics<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let q = self.configuration(&q)?;
        let poses = self.model.forward_kinematics(&q).map_err(core_error)?;
        let ms: Vec<[[f64; 4]; 4]> = poses.iter().map(matrix).collect();
        Ok(Array3::from_shape_fn((ms.len(), 4, 4), |(l, r, c)| ms[l][r][c]).into_pyarray(py))
    }

    /// Forward kinematics of a batch `(b, dof)`: `(b, links, 4, 4)`.
    fn forward_kinematics_batch<'py>(
        &self,
        py: Python<'py>,
        qs: PyReadonlyArray2<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray4<f64>>> {
        let view = qs.as_array();
        let b = view.nrows();
        let nl = self.model.links().len();
        let poses = self
            .model
            .forward_kinematics_batch(view)
            .map_err(core_error)?;
        let ms: Vec<[[f64; 4]; 4]> = poses.iter().map(matrix).collect();
        Ok(
            ndarray::Array4::from_shape_fn((b, nl, 4, 4), |(i, l, r, c)| ms[i * nl + l][r][c])
                .into_pyarray(py),
        )
    }

    /// Fingertip positions `(fingers, 3)` (m, root frame).
    fn fingertip_positions<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let q = self.configuration(&q)?;
        let tips = self.model.fingertip_positions(&q).map_err(core_error)?;
        Ok(points(&tips).into_pyarray(py))
    }

    /// Keypoint positions `(keypoints, 3)` (each finger's middle joint and tip; m, root
    /// frame).
    fn keypoint_positions<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let q = self.configuration(&q)?;
        let k = self.model.keypoint_positions(&q).map_err(core_error)?;
        Ok(points(&k.positions).into_pyarray(py))
    }

    /// The geometric Jacobian `(6, dof)` of a point fixed on link `link` (given in that
    /// link's frame; default its origin): rows are the linear then angular velocity in
    /// the root frame per unit joint velocity.
    #[pyo3(signature = (q, link, point = [0.0, 0.0, 0.0]))]
    fn jacobian<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
        link: &str,
        point: [f64; 3],
    ) -> PyResult<Bound<'py, PyArray2<f64>>> {
        let q = self.configuration(&q)?;
        let id = self.model.link_id(link).map_err(core_error)?;
        let j = self
            .model
            .jacobian(&q, id, &Point3::from(point))
            .map_err(core_error)?;
        Ok(jacobian_array(&j).into_pyarray(py))
    }

    /// The Jacobians `(fingers, 6, dof)` of every fingertip.
    fn fingertip_jacobians<'py>(
        &self,
        py: Python<'py>,
        q: PyReadonlyArray1<'py, f64>,
    ) -> PyResult<Bound<'py, PyArray3<f64>>> {
        let q = self.configuration(&q)?;
        let tips = self.model.fingertips();
        let dof = self.model.dof();
        let mut out = Array3::zeros((tips.len(), 6, dof));
        for (i, tip) in tips.iter().enumerate() {
            let j = self.model.frame_jacobian(&q, tip).map_err(core_error)?;
            out.index_axis_mut(ndarray::Axis(0), i)
                .assign(&jacobian_array(&j));
        }
        Ok(out.into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "HandModel({:?}, dof={}, links={})",
            self.model.name(),
            self.model.dof(),
            self.model.links().len()
        )
    }
}
