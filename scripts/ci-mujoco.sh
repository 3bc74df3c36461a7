#!/usr/bin/env bash
# The MuJoCo backend's checks, apart from .ci/run (5.6 minutes on 2 cores after the
# workspace's release build; .ci/run keeps its step under 5): MuJoCo 3.17.0's library
# from its PyPI wheel, dex-sim's MuJoCo tests (one generic body on both backends),
# dex's CLI on it (same seed, same digest), and the LEAP + cube bench against MuJoCo's
# own C loop on the same scene, and dex for Python built with the feature. Run from the
# repository root: bash scripts/ci-mujoco.sh
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${TMPDIR:-/tmp}/dex-ci-peers-venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check mujoco==4.0.0

echo "== MuJoCo backend (feature mujoco): MuJoCo 3.17.0's library from its PyPI wheel, the backend's tests, same seed same digest"
start=$(date +%s)
eval "$(scripts/mujoco-setup.sh)"
cargo test --release -p dex-sim --features mujoco --test mujoco --test wrist --test physics
cargo test --release -p dex-cli --features mujoco --test cli_mujoco
cargo build --release -p dex-cli --features mujoco
a=$(target/release/dex sim run --backend mujoco --hand leap --task rotate --seed 7 --steps 120 --policy random | tail -1)
b=$(target/release/dex sim run --backend mujoco --hand leap --task rotate --seed 7 --steps 120 --policy random | tail -1)
echo "$a"
[ "$a" = "$b" ] || { echo "digests differ: $a vs $b"; exit 1; }
"$venv/bin/python" benches/peers/mujoco_leap_cube.py --dex target/release/dex --steps 2000 --repeats 1 \
    --scene dex --no-python-loop --mujoco-backend
cargo run --release -p dex-sim --features mujoco --example backend_fidelity | tail -1
# dex for Python with the feature: `backend="mujoco"` and a Menagerie hand from gymnasium.
pyvenv="${TMPDIR:-/tmp}/dex-ci-py-mujoco-venv"
if [ ! -x "$pyvenv/bin/uv" ]; then
    rm -rf "$pyvenv"
    python3 -m venv "$pyvenv"
    "$pyvenv/bin/pip" install --quiet --disable-pip-version-check uv==0.13.9
fi
"$pyvenv/bin/uv" pip install --quiet --python "$pyvenv/bin/python" \
    maturin==1.16.0 gymnasium==1.2.2 numpy==2.2.6 pytest==9.2.0
MATURIN_PEP517_ARGS="--features mujoco" "$pyvenv/bin/uv" pip install --quiet \
    --python "$pyvenv/bin/python" --reinstall-package dex --refresh-package dex ./dex-py
DEX_PY_MUJOCO=1 "$pyvenv/bin/python" -m pytest -q -p no:cacheprovider dex-py/tests/test_mujoco.py
echo "MuJoCo backend step: $(( $(date +%s) - start )) s"

