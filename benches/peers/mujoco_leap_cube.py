#!/usr/bin/env python3
"""Step a LEAP hand holding its pose with a 5 cm, 0.1 kg cube on the palm: MuJoCo vs dex.

MuJoCo side: the MuJoCo Menagerie LEAP right hand (`../shared/assets/menagerie/
leap_hand/right_hand.xml`, its own options: implicitfast, elliptic cones,
impratio 100, timestep from `--dt`), plus a free 5 cm, 0.1 kg box added with
MjSpec at the position where `dex sim bench` puts its cube (both scenes mount the
palm the same way: pos 0 0 0.1, quat 0 1 0 0). Position actuators hold qpos 0.
After 100 settling steps, `--steps` steps are timed on one thread (wall clock and
process CPU time) the way MuJoCo runs at its best from Python: one call
`mj_step(model, data, nstep=N)`, whose loop over the N steps is MuJoCo's own, in C.
This is the figure the ratio is taken against.

Secondary figure (labelled "python loop"; `--no-python-loop` skips it): the same N
steps as N separate `mj_step(model, data)` calls from a Python `for` loop, from
the same settled state, which adds the interpreter's per-call overhead.

dex side: `dex sim bench --hand leap --object cube --steps N --dt DT`, the same
scene on rapier (one thread), whose last line is `steps_per_s`.

Each repeat runs MuJoCo (nstep, then the Python loop) and then dex; the medians over
`--repeats` are printed with the ratio dex / MuJoCo nstep (above 1: dex is faster).

Install and run (from the repository root, after `cargo build --release`):
    python3 -m venv /tmp/mjvenv && /tmp/mjvenv/bin/pip install mujoco==4.0.0
    /tmp/mjvenv/bin/python benches/peers/mujoco_leap_cube.py --steps 20000 --repeats 3 [--dex PATH]
"""

import argparse
import os
import statistics
import subprocess
import tempfile
import time

import mujoco

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_XML = os.path.join(ROOT, "..", "shared", "assets", "menagerie", "leap_hand", "right_hand.xml")
# Where `dex sim bench` rests its cube: above the centre of the palm's collision boxes.
CUBE_POS = (-0.049, 0.0355, 0.1606)
CUBE = "object0"  # the name dex's MJCF export gives its first object
SETTLE_STEPS = 100


def dex_scene_model(dex, dt):
    """dex's own scene (`dex sim mjcf --hand leap --object cube`): the hand, cube, contact
    filter and PD gains the rapier backend steps, as MJCF."""
    with tempfile.TemporaryDirectory() as tmp:
        xml = os.path.join(tmp, "leap_cube.xml")
        subprocess.run(
            [dex, "sim", "mjcf", "--hand", "leap", "--object", "cube", "--dt", str(dt), "--out", xml],
            check=True,
        )
        return mujoco.MjModel.from_xml_path(xml)


def mujoco_model(xml, dt):
    spec = mujoco.MjSpec.from_file(xml)
    body = spec.worldbody.add_body(name=CUBE, pos=list(CUBE_POS))
    body.add_freejoint()
    body.add_geom(type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.025, 0.025, 0.025], mass=0.1)
    model = spec.compile()
    model.opt.timestep = dt
    return model


def settled_data(model):
    data = mujoco.MjData(model)
    data.ctrl[:] = 0.0
    mujoco.mj_step(model, data, nstep=SETTLE_STEPS)
    return data


def timed(step, steps):
    """Runs `step()` once and returns (steps per wall-clock second, steps per CPU second)."""
    wall0, cpu0 = time.perf_counter(), time.process_time()
    step()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return steps / wall, steps / cpu


def mujoco_nstep(model, steps):
    """MuJoCo's own loop: one `mj_step(..., nstep=steps)` call."""
    data = settled_data(model)
    wall, cpu = timed(lambda: mujoco.mj_step(model, data, nstep=steps), steps)
    return wall, cpu, data.body(CUBE).xpos[2], data.ncon


def mujoco_python_loop(model, steps):
    """One `mj_step` call per step from Python (interpreter overhead included)."""
    data = settled_data(model)

    def loop():
        for _ in range(steps):
            mujoco.mj_step(model, data)

    wall, cpu = timed(loop, steps)
    return wall, cpu, data.body(CUBE).xpos[2], data.ncon


def dex_run(dex, steps, dt, backend="rapier"):
    out = subprocess.run(
        [dex, "sim", "bench", "--hand", "leap", "--object", "cube", "--steps", str(steps), "--dt", str(dt),
         "--backend", backend],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip().splitlines()
    return float(out[-1].split()[1]), out[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dex", default=os.path.join(ROOT, "target", "release", "dex"))
    ap.add_argument("--xml", default=DEFAULT_XML)
    ap.add_argument(
        "--scene",
        choices=["menagerie", "dex"],
        default="menagerie",
        help="MuJoCo's model: the Menagerie hand (--xml) plus a cube, or dex's own scene "
        "exported as MJCF (`dex sim mjcf`: the same geometry, gains and contact filter as rapier)",
    )
    ap.add_argument("--steps", type=int, default=20000)
    ap.add_argument("--dt", type=float, default=0.002)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-python-loop", action="store_true", help="skip the secondary per-call figure")
    ap.add_argument(
        "--mujoco-backend",
        action="store_true",
        help="also time dex's MuJoCo backend (`dex sim bench --backend mujoco`: dex built with the "
        "`mujoco` feature, LD_LIBRARY_PATH from scripts/mujoco-setup.sh); compare it with --scene dex",
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    model = dex_scene_model(args.dex, args.dt) if args.scene == "dex" else mujoco_model(args.xml, args.dt)
    mj_wall, mj_cpu, py_wall, py_cpu, dex_sps, dexmj_sps = [], [], [], [], [], []
    for _ in range(args.repeats):
        w, c, z, ncon = mujoco_nstep(model, args.steps)
        mj_wall.append(w)
        mj_cpu.append(c)
        if not args.no_python_loop:
            w, c, pz, _ = mujoco_python_loop(model, args.steps)
            py_wall.append(w)
            py_cpu.append(c)
        d, line = dex_run(args.dex, args.steps, args.dt)
        dex_sps.append(d)
        if args.mujoco_backend:
            dm, mline = dex_run(args.dex, args.steps, args.dt, "mujoco")
            dexmj_sps.append(dm)
    print(f"mujoco {mujoco.__version__}, scene {args.scene}: cube z {z:.4f} m, {ncon} contacts at the end (nstep run)")
    print(f"dex: {line}")
    mw, mc, ds = statistics.median(mj_wall), statistics.median(mj_cpu), statistics.median(dex_sps)
    print(f"mujoco_nstep_steps_per_s {mw:.0f} (per CPU-second {mc:.0f}; repeats {' '.join(f'{x:.0f}' for x in mj_wall)})")
    if py_wall:
        pw, pc = statistics.median(py_wall), statistics.median(py_cpu)
        print(
            f"mujoco_python_loop_steps_per_s {pw:.0f} (secondary: one mj_step call per step; per CPU-second {pc:.0f}; "
            f"repeats {' '.join(f'{x:.0f}' for x in py_wall)}; cube z {pz:.4f} m)"
        )
    print(f"dex_steps_per_s {ds:.0f} (repeats {' '.join(f'{x:.0f}' for x in dex_sps)})")
    print(f"ratio_dex_over_mujoco_nstep {ds / mw:.2f} (vs MuJoCo nstep per CPU-second {ds / mc:.2f})")
    if py_wall:
        print(f"ratio_dex_over_mujoco_python_loop {ds / pw:.2f} (secondary)")
    if dexmj_sps:
        dm = statistics.median(dexmj_sps)
        print(f"dex (mujoco backend): {mline}")
        print(f"dex_mujoco_backend_steps_per_s {dm:.0f} (repeats {' '.join(f'{x:.0f}' for x in dexmj_sps)})")
        print(f"ratio_dex_mujoco_backend_over_mujoco_nstep {dm / mw:.2f} (same scene only with --scene dex)")


if __name__ == "__main__":
    main()
