//! dex's geometry as Python dictionaries, in the primitives `dex-rerun` draws, for
//! viewers driven from Python (`dex.rerun`).

use dex_rerun::Primitive;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// A primitive as a dict: `kind` (`box`, `sphere`, `capsule`, `cylinder`, `points`)
/// and its fields (metres; quaternions `[x, y, z, w]`).
pub(crate) fn primitive_dict<'py>(py: Python<'py>, p: &Primitive) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("kind", p.kind())?;
    match p {
        Primitive::Box {
            center,
            rotation,
            half_size,
        } => {
            d.set_item("center", center.to_vec())?;
            d.set_item("rotation", rotation.to_vec())?;
            d.set_item("half_size", half_size.to_vec())?;
        }
        Primitive::Sphere { center, radius } => {
            d.set_item("center", center.to_vec())?;
            d.set_item("radius", *radius)?;
        }
        Primitive::Capsule { start, end, radius } => {
            d.set_item("start", start.to_vec())?;
            d.set_item("end", end.to_vec())?;
            d.set_item("radius", *radius)?;
        }
        Primitive::Cylinder {
            center,
            rotation,
            length,
            radius,
        } => {
            d.set_item("center", center.to_vec())?;
            d.set_item("rotation", rotation.to_vec())?;
            d.set_item("length", *length)?;
            d.set_item("radius", *radius)?;
        }
        Primitive::Points { points } => {
            d.set_item(
                "points",
                points.iter().map(|p| p.to_vec()).collect::<Vec<_>>(),
            )?;
        }
    }
    Ok(d)
}
