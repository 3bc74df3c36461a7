#!/usr/bin/env python3
"""Step a LEAP hand holding its pose with a 5 cm, 0.1 kg cube on the palm: MuJoCo vs dex.

MuJoCo side: the MuJoCo Menagerie LEAP right hand (`../shared/assets/menagerie/
leap_hand/right_hand.xml`, its own options: implicitfast, elliptic cones,
impratio 100, timestep from `--dt`), plus a free 5 cm, 0.1 kg box added with
MjSpec at the position where `dex sim bench` puts its cube (both scenes mount the
palm the same way: pos 0 0 0.1, quat 0 1 0 0). Position actuators hold qpos 0.
After 100 settling steps, `--steps` calls of mj_step are timed on one thread
(wall clock and process CPU time).

dex side: `dex sim bench --hand leap --object cube --steps N --dt DT`, the same
scene on rapier (one thread), whose last line is `steps_per_s`.

Both run `--repeats` times, alternating; the medians are printed with the ratio
dex / MuJoCo (above 1: dex is faster).

Install and run (from the repository root, after `cargo build --release`):
    python3 -m venv /tmp/mjvenv && /tmp/mjvenv/bin/pip install mujoco
    /tmp/mjvenv/bin/python benches/peers/mujoco_leap_cube.py [--steps 20000]
"""

import argparse
import os
import statistics
import subprocess
import time

import mujoco

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_XML = os.path.join(ROOT, "..", "shared", "assets", "menagerie", "leap_hand", "right_hand.xml")
# Where `dex sim bench` rests its cube: above the centre of the palm's collision boxes.
CUBE_POS = (-0.049, 0.0355, 0.1606)


def mujoco_run(xml, steps, dt):
    spec = mujoco.MjSpec.from_file(xml)
    body = spec.worldbody.add_body(name="cube", pos=list(CUBE_POS))
    body.add_freejoint()
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.025, 0.025, 0.025], mass=0.1)
    model = spec.compile()
    model.opt.timestep = dt
    data = mujoco.MjData(model)
    data.ctrl[:] = 0.0
    for _ in range(100):
        mujoco.mj_step(model, data)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        mujoco.mj_step(model, data)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    z = data.body("cube").xpos[2]
    return steps / wall, steps / cpu, z, data.ncon


def dex_run(dex, steps, dt):
    out = subprocess.run(
        [dex, "sim", "bench", "--hand", "leap", "--object", "cube", "--steps", str(steps), "--dt", str(dt)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip().splitlines()
    return float(out[-1].split()[1]), out[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dex", default=os.path.join(ROOT, "target", "release", "dex"))
    ap.add_argument("--xml", default=DEFAULT_XML)
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--dt", type=float, default=0.002)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mj_wall, mj_cpu, dex_sps = [], [], []
    for _ in range(args.repeats):
        w, c, z, ncon = mujoco_run(args.xml, args.steps, args.dt)
        mj_wall.append(w)
        mj_cpu.append(c)
        d, line = dex_run(args.dex, args.steps, args.dt)
        dex_sps.append(d)
    print(f"mujoco {mujoco.__version__}: cube z {z:.4f} m, {ncon} contacts at the end")
    print(f"dex: {line}")
    mw, mc, ds = statistics.median(mj_wall), statistics.median(mj_cpu), statistics.median(dex_sps)
    print(f"mujoco_steps_per_s {mw:.0f} (per CPU-second {mc:.0f})")
    print(f"dex_steps_per_s {ds:.0f}")
    print(f"ratio_dex_over_mujoco {ds / mw:.2f} (vs MuJoCo per CPU-second {ds / mc:.2f})")


if __name__ == "__main__":
    main()
