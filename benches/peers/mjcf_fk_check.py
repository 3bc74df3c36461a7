#!/usr/bin/env python3
"""dex's MJCF export against dex's own kinematics, in MuJoCo (PyPI `mujoco`).

For each hand, `dex sim mjcf --hand H --at-origin` writes the hand as MJCF; MuJoCo
compiles it, and for random configurations within the joint limits MuJoCo's forward
kinematics (`mj_kinematics`) must place every body where `dex fk --json` places the
link: position within --tol metres and orientation within --tol radians. Also checks
that every actuated joint is there with its range, and that MuJoCo's position
actuators hold the open hand against gravity (reported, not asserted).

    pip install mujoco==4.0.0
    python3 benches/peers/mjcf_fk_check.py --dex target/release/dex
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import mujoco

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def dex_json(dex: str, *args: str) -> dict:
    out = subprocess.run([dex, *args], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def quat_matrix(wxyz: np.ndarray) -> np.ndarray:
    m = np.zeros(9)
    mujoco.mju_quat2Mat(m, np.asarray(wxyz, dtype=float))
    return m.reshape(3, 3)


def rotation_angle(a: np.ndarray, b: np.ndarray) -> float:
    """The angle between two rotations (rad), from the chord ‖A − B‖_F = 2√2 sin(θ/2),
    which keeps its precision near 0 (arccos of the trace does not)."""
    chord = float(np.linalg.norm(a - b)) / (2.0 * np.sqrt(2.0))
    return 2.0 * float(np.arcsin(min(chord, 1.0)))


def check_hand(dex: str, hand: str, configs: int, tol: float, rng: np.random.Generator) -> bool:
    info = dex_json(dex, "hand", "show", "--hand", hand, "--json")
    joints = [j for j in info["joints"] if j["type"] != "fixed"]
    joints.sort(key=lambda j: j["index"])
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, f"{hand}.xml")
        subprocess.run([dex, "sim", "mjcf", "--hand", hand, "--at-origin", "--out", xml], check=True)
        model = mujoco.MjModel.from_xml_path(xml)
    data = mujoco.MjData(model)
    ok = True
    for j in joints:
        mj = model.joint(j["name"])
        lo, hi = model.jnt_range[mj.id]
        if abs(lo - j["lower"]) > 0 or abs(hi - j["upper"]) > 0:
            print(f"{hand}: joint {j['name']} range {lo} {hi} against {j['lower']} {j['upper']}")
            ok = False
    worst_pos, worst_rot = 0.0, 0.0
    for _ in range(configs):
        q = np.array([rng.uniform(j["lower"], j["upper"]) for j in joints])
        for j, v in zip(joints, q):
            data.qpos[model.joint(j["name"]).qposadr[0]] = v
        mujoco.mj_kinematics(model, data)
        fk = dex_json(dex, "fk", "--hand", hand, "--q", ",".join(repr(float(v)) for v in q), "--json")
        for name, pose in fk["links"].items():
            b = model.body(name).id
            worst_pos = max(worst_pos, float(np.linalg.norm(data.xpos[b] - np.asarray(pose["pos"]))))
            worst_rot = max(worst_rot, rotation_angle(data.xmat[b].reshape(3, 3), quat_matrix(pose["quat"])))
    passed = worst_pos <= tol and worst_rot <= tol
    ok &= passed
    # The position actuators holding the open hand (targets at 0 clamped into range).
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, f"{hand}.xml")
        subprocess.run([dex, "sim", "mjcf", "--hand", hand, "--out", xml], check=True)
        model = mujoco.MjModel.from_xml_path(xml)
    data = mujoco.MjData(model)
    target = np.clip(0.0, model.actuator_ctrlrange[:, 0], model.actuator_ctrlrange[:, 1])
    data.ctrl[:] = target
    mujoco.mj_step(model, data, nstep=int(round(1.0 / model.opt.timestep)))
    adr = [model.joint(model.actuator_trnid[i, 0]).qposadr[0] for i in range(model.nu)]
    hold = float(np.max(np.abs(data.qpos[adr] - target)))
    print(
        f"{hand}: {len(joints)} joints, {model.nbody - 1} bodies, {configs} configurations: "
        f"max position error {worst_pos:.3e} m, max rotation error {worst_rot:.3e} rad "
        f"({'ok' if passed else 'FAILED'}, tolerance {tol:g}); open hand held 1 s under gravity "
        f"by MuJoCo's position actuators: max joint error {hold:.4f} rad"
    )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dex", default=os.path.join(ROOT, "target", "release", "dex"))
    ap.add_argument("--hands", default="leap,allegro")
    ap.add_argument("--configs", type=int, default=20)
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    ok = all([check_hand(args.dex, h, args.configs, args.tol, rng) for h in args.hands.split(",")])
    print(f"mujoco {mujoco.__version__}: {'all within tolerance' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
