//! The file handling of datasets kept as chunked `.npy` files under a TOML manifest
//! (dex-diffusion's and dex-ndm's): a manifest rewritten through a temporary file and a
//! rename, so a reader never sees half of one, and arrays read back with their shape
//! checked against the manifest.

use std::path::Path;

use ndarray::Array2;
use ndarray_npy::{ReadableElement, WritableElement, read_npy, write_npy};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A file that could not be written or read, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct FileError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

fn file_error(path: &Path, reason: impl ToString) -> FileError {
    FileError {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Writes `value` as TOML to `path` through `path.tmp` and a rename.
///
/// # Errors
///
/// [`FileError`] naming the file that could not be serialised, written or renamed.
pub fn write_toml_atomic<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let text = toml::to_string_pretty(value).map_err(|e| file_error(path, e))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, text).map_err(|e| file_error(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

/// Reads the TOML file at `path`.
///
/// # Errors
///
/// [`FileError`] naming it when it is missing, unreadable or not a `T`.
pub fn read_toml<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| file_error(path, format!("cannot read it: {e}")))?;
    toml::from_str(&text).map_err(|e| file_error(path, e))
}

/// Writes `array` to the `.npy` file at `path`.
///
/// # Errors
///
/// [`FileError`] naming it when it cannot be written.
pub fn write_array<T: WritableElement>(path: &Path, array: &Array2<T>) -> Result<(), FileError> {
    write_npy(path, array).map_err(|e| file_error(path, e))
}

/// Reads the `.npy` file at `path`, which must hold `rows × cols` values.
///
/// # Errors
///
/// [`FileError`] naming it when it is missing, truncated, of another type or shape.
pub fn read_array<T: ReadableElement>(
    path: &Path,
    rows: usize,
    cols: usize,
) -> Result<Array2<T>, FileError> {
    let array: Array2<T> = read_npy(path).map_err(|e| file_error(path, e))?;
    if array.dim() != (rows, cols) {
        return Err(file_error(
            path,
            format!(
                "holds {:?} values, the manifest says {rows} × {cols}",
                array.dim()
            ),
        ));
    }
    Ok(array)
}
