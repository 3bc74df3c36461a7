#!/usr/bin/env bash
# MuJoCo 3.17.0's shared library for dex-sim's `mujoco` feature (the mujoco-rs crate,
# 7.0.0+mj-3.17.0, links against exactly this version), taken from the `mujoco==3.17.0`
# wheel on PyPI and unpacked under target/mujoco/lib. Nothing else is downloaded.
#
#   eval "$(scripts/mujoco-setup.sh)"
#   cargo build --release -p dex-cli --features mujoco
#
# Prints the export lines the build (MUJOCO_DYNAMIC_LINK_DIR) and the binaries
# (LD_LIBRARY_PATH) need; progress goes to stderr.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=3.17.0
dir="$root/target/mujoco"
lib="$dir/lib"
if [ ! -f "$lib/libmujoco.so.$version" ]; then
    py=$(command -v python3 || true)
    [ -n "$py" ] || { echo "mujoco-setup: python3 (with pip) is needed to fetch the wheel" >&2; exit 1; }
    mkdir -p "$dir/wheel" "$lib"
    echo "mujoco-setup: fetching mujoco==$version from PyPI" >&2
    "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: --platform manylinux_2_28_x86_64 --python-version 3.12 \
        "mujoco==$version" -d "$dir/wheel" >&2
    wheel=$(ls "$dir"/wheel/mujoco-"$version"-*.whl | head -1)
    "$py" - "$wheel" "$lib" "$version" <<'PY'
import pathlib, sys, zipfile
wheel, lib, version = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
name = f"mujoco/libmujoco.so.{version}"
with zipfile.ZipFile(wheel) as z:
    (lib / f"libmujoco.so.{version}").write_bytes(z.read(name))
PY
    ln -sf "libmujoco.so.$version" "$lib/libmujoco.so"
    echo "mujoco-setup: $lib/libmujoco.so.$version" >&2
fi
echo "export MUJOCO_DYNAMIC_LINK_DIR=$lib"
echo "export LD_LIBRARY_PATH=$lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
