//! With the `mujoco` feature, records MuJoCo's library directory
//! (`MUJOCO_DYNAMIC_LINK_DIR`, set by `scripts/mujoco-setup.sh`) as the binaries' run
//! path, so `dex` finds `libmujoco.so.3.17.0` without `LD_LIBRARY_PATH`.

fn main() {
    println!("cargo::rerun-if-env-changed=MUJOCO_DYNAMIC_LINK_DIR");
    if std::env::var_os("CARGO_FEATURE_MUJOCO").is_some()
        && let Some(dir) = std::env::var_os("MUJOCO_DYNAMIC_LINK_DIR")
        && let Some(dir) = dir.to_str()
    {
        println!("cargo::rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
