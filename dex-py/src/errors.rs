//! Rust errors as Python exceptions: bad input is a `ValueError`, files and ports an
//! `OSError`, anything else a `dex.DexError`; the message is the Rust error's.

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::{PyErr, PyResult, create_exception};

create_exception!(
    _core,
    DexError,
    pyo3::exceptions::PyRuntimeError,
    "A dex operation failed for a reason other than bad input (a physics or bus failure)."
);

/// A `ValueError` with `e`'s message.
pub(crate) fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// The exception for a dex-core error.
pub(crate) fn core_error(e: dex_core::Error) -> PyErr {
    match e {
        dex_core::Error::Io { .. } => PyOSError::new_err(e.to_string()),
        other => value_error(other),
    }
}

/// The exception for a dex-sim error.
pub(crate) fn sim_error(e: dex_sim::Error) -> PyErr {
    use dex_sim::Error as E;
    match e {
        E::Core(c) => core_error(c),
        E::Io { .. } => PyOSError::new_err(e.to_string()),
        E::Diverged { .. } | E::StateMismatch { .. } | E::Mesh { .. } => {
            DexError::new_err(e.to_string())
        }
        other => value_error(other),
    }
}

/// The exception for a dex-policy error.
pub(crate) fn policy_error(e: dex_policy::Error) -> PyErr {
    use dex_policy::Error as E;
    match e {
        E::Sim(s) => sim_error(s),
        E::Io(_) => PyOSError::new_err(e.to_string()),
        E::Diverged(_) | E::LockPoisoned { .. } | E::Tensor(_) => DexError::new_err(e.to_string()),
        other => value_error(other),
    }
}

/// The exception for a dex-hw error: bad arguments and targets are `ValueError`s, a
/// port that cannot be opened or a bus that stops answering an `OSError`, a fault the
/// hand reports a `DexError`.
pub(crate) fn hw_error(e: dex_hw::Error) -> PyErr {
    use dex_hw::Error as E;
    match e {
        E::Io { .. } | E::Timeout { .. } | E::Crc { .. } | E::Malformed { .. } => {
            PyOSError::new_err(e.to_string())
        }
        E::InvalidArgument { .. }
        | E::LengthMismatch { .. }
        | E::NonFiniteTarget { .. }
        | E::OutOfLimits { .. }
        | E::StepTooLarge { .. }
        | E::InvalidState { .. } => value_error(e),
        E::Model(c) => core_error(c),
        other => DexError::new_err(other.to_string()),
    }
}

/// Runs `f` on the value behind `m` (usable with the GIL released: the result holds no
/// guard).
pub(crate) fn locked<T, R>(m: &std::sync::Mutex<T>, f: impl FnOnce(&mut T) -> R) -> PyResult<R> {
    let mut guard = m.lock().map_err(poisoned)?;
    Ok(f(&mut guard))
}

/// A poisoned lock (a panic while another call held it) as a `DexError`.
pub(crate) fn poisoned<T>(_: T) -> PyErr {
    DexError::new_err("an earlier call failed while holding this object; make a new one")
}
