//! Cross-crate benchmarks of dex (`benches/stack.rs`: one control tick env → policy →
//! driver, a `VecEnv` step of each task, batched forward kinematics) and the checks on
//! the workspace's structure ([`imports`]: no import cycles inside a crate). The
//! side-by-side peer scripts are in `peers/`.

pub mod imports;

use std::path::{Path, PathBuf};

/// The workspace root (the directory above this package).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from(".."), Path::to_path_buf)
}

/// The directories of the workspace's crates that have a `src/` folder: every
/// `dex-*` directory at the root, and this package.
///
/// # Errors
///
/// An I/O error listing the root.
pub fn crate_dirs() -> std::io::Result<Vec<PathBuf>> {
    let root = workspace_root();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("Cargo.toml").is_file() && p.join("src").is_dir())
        .collect();
    dirs.sort();
    Ok(dirs)
}
