//! The files of a checkpoint directory and reading and writing them: every trainer
//! writes `checkpoint.toml` (its settings and the environment) and
//! `policy.safetensors` (the networks' weights).

#[cfg(feature = "candle")]
use std::path::Path;

#[cfg(feature = "candle")]
use candle_nn::VarMap;
#[cfg(feature = "candle")]
use serde::Serialize;
#[cfg(feature = "candle")]
use serde::de::DeserializeOwned;

#[cfg(feature = "candle")]
use crate::error::{Result, invalid};

/// Weights file inside a checkpoint directory.
pub const WEIGHTS_FILE: &str = "policy.safetensors";
/// Metadata file inside a checkpoint directory.
pub const META_FILE: &str = "checkpoint.toml";

#[cfg(feature = "candle")]
/// An [`crate::Error::Checkpoint`] for the checkpoint directory `dir`.
pub(crate) fn checkpoint_error(dir: &Path, reason: impl Into<String>) -> crate::Error {
    crate::Error::Checkpoint {
        path: dir.display().to_string(),
        reason: reason.into(),
    }
}

#[cfg(feature = "candle")]
/// Reads and parses `checkpoint.toml` in `dir`.
pub(crate) fn read_checkpoint_meta<M: DeserializeOwned>(dir: &Path) -> Result<M> {
    let text = std::fs::read_to_string(dir.join(META_FILE))
        .map_err(|e| checkpoint_error(dir, format!("reading {META_FILE}: {e}")))?;
    toml::from_str(&text).map_err(|e| checkpoint_error(dir, format!("parsing {META_FILE}: {e}")))
}

#[cfg(feature = "candle")]
/// Writes a checkpoint: `varmap` to `policy.safetensors` and `meta` to
/// `checkpoint.toml` in `dir` (created if needed).
pub(crate) fn write_checkpoint<M: Serialize>(dir: &Path, varmap: &VarMap, meta: &M) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    varmap.save(dir.join(WEIGHTS_FILE))?;
    let text = toml::to_string(meta).map_err(|e| invalid(e.to_string()))?;
    std::fs::write(dir.join(META_FILE), text)?;
    Ok(())
}

#[cfg(feature = "candle")]
/// Loads `policy.safetensors` in `dir` into the variables of `varmap` (shapes must match).
pub(crate) fn load_weights(dir: &Path, varmap: &mut VarMap) -> Result<()> {
    varmap
        .load(dir.join(WEIGHTS_FILE))
        .map_err(|e| checkpoint_error(dir, format!("loading {WEIGHTS_FILE}: {e}")))
}
