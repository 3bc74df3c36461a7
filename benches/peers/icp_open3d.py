#!/usr/bin/env python3
"""Compare `dex track icp` (point-to-plane) with Open3D's registration_icp on dex's synthetic clouds.

For each shape (box, mug) and each seed 0..trials-1, `dex track synth` writes a
source cloud, an independently sampled target cloud of the same surface and the
true source-to-target transform (20 degree rotation about a random axis plus
2 cm translation). Both registrations start from the identity and use a 0.05 m
correspondence limit and at most 50 iterations:

  * dex: `dex track icp --method point-to-plane`; its reported `ms` covers the
    registration itself including target normal estimation and the k-d tree
    (file I/O excluded);
  * Open3D: target normals by `estimate_normals(KDTreeSearchParamKNN(10))`, then
    `o3d.pipelines.registration.registration_icp` with
    `TransformationEstimationPointToPlane()`. The timed section (perf_counter)
    covers normal estimation plus registration, so it matches dex's `ms`;
    building the PointCloud objects from numpy arrays (the analogue of file
    parsing) is outside it.

Open3D parallelises with OpenMP; the script sets OMP_NUM_THREADS=1 before
importing it to keep it on one thread like dex (it prints what it could check).

Success: rotation error < 1 degree and translation error < 2 mm against
truth.json, plus `converged` for dex and fitness > 0.9 for Open3D (Open3D's
fitness is the fraction of source points with a correspondence within 0.05 m).
The two sides alternate, and their order flips every seed.

Install and run (from the repository root, after `cargo build --release`):
    pip install open3d numpy
    python3 benches/peers/icp_open3d.py [--dex target/release/dex] [--trials 10]
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # must precede the open3d import

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

try:
    import numpy as np
    import open3d as o3d
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(f"missing peers ({exc}): pip install open3d numpy")

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SHAPES = ("box", "mug")
MAX_DIST = 0.05
MAX_ITERS = 50
KNN = 10
ROT_TOL_DEG = 1.0
TRANS_TOL_M = 0.002


def resolve_dex(path):
    if os.path.isabs(path) or os.path.exists(path):
        return os.path.abspath(path)
    return os.path.join(REPO_ROOT, path)


def run_dex(dex, args, attempts=10):
    """Run dex and return its stdout; retry while the binary is missing or busy (being rebuilt)."""
    last = None
    for _ in range(attempts):
        try:
            proc = subprocess.run([dex, *args], capture_output=True, text=True)
        except OSError as exc:  # missing or "text file busy" while cargo rewrites it
            last = str(exc)
            time.sleep(3)
            continue
        if proc.returncode == 0:
            return proc.stdout
        last = f"exit {proc.returncode}: {proc.stderr.strip()}"
        if not os.path.exists(dex):
            time.sleep(3)
            continue
        break
    sys.exit(f"dex {' '.join(args)} failed: {last}")


def errors(rot, trans, truth):
    """Rotation error (degrees) and translation error (metres) of an estimate against the truth."""
    r_true = np.array(truth["rotation"], dtype=np.float64).reshape(3, 3)
    t_true = np.array(truth["translation"], dtype=np.float64)
    r_rel = np.asarray(rot, dtype=np.float64).reshape(3, 3).T @ r_true
    cos = np.clip((np.trace(r_rel) - 1.0) / 2.0, -1.0, 1.0)
    return float(np.degrees(np.arccos(cos))), float(np.linalg.norm(np.asarray(trans, dtype=np.float64) - t_true))


def run_dex_icp(dex, case_dir, truth):
    out = run_dex(dex, ["track", "icp", "--source", os.path.join(case_dir, "source.xyz"),
                        "--target", os.path.join(case_dir, "target.xyz"), "--method", "point-to-plane",
                        "--max-dist", str(MAX_DIST), "--iters", str(MAX_ITERS)])
    r = json.loads(out.strip().splitlines()[-1])
    rot_err, trans_err = errors(r["rotation"], r["translation"], truth)
    ok = rot_err < ROT_TOL_DEG and trans_err < TRANS_TOL_M and bool(r["converged"])
    return {"ms": float(r["ms"]), "rot": rot_err, "trans": trans_err, "ok": ok,
            "fitness": float(r["fitness"]), "rmse": float(r["rmse"]), "iters": r["iterations"],
            "converged": bool(r["converged"])}


def run_open3d_icp(src_xyz, tgt_xyz, truth):
    reg = o3d.pipelines.registration
    source = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(src_xyz))
    target = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(tgt_xyz))
    criteria = reg.ICPConvergenceCriteria(max_iteration=MAX_ITERS)
    t0 = time.perf_counter()
    target.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(knn=KNN))
    result = reg.registration_icp(source, target, MAX_DIST, np.eye(4),
                                  reg.TransformationEstimationPointToPlane(), criteria)
    ms = (time.perf_counter() - t0) * 1e3
    t = np.asarray(result.transformation)
    rot_err, trans_err = errors(t[:3, :3], t[:3, 3], truth)
    ok = rot_err < ROT_TOL_DEG and trans_err < TRANS_TOL_M and result.fitness > 0.9
    return {"ms": ms, "rot": rot_err, "trans": trans_err, "ok": ok,
            "fitness": float(result.fitness), "rmse": float(result.inlier_rmse)}


def thread_note():
    omp = os.environ.get("OMP_NUM_THREADS")
    if omp == "1":
        return "open3d: OMP_NUM_THREADS=1 set before import (Open3D exposes no thread-count API; OpenMP honours the variable)"
    return f"open3d: OMP_NUM_THREADS={omp!r} from the environment, so Open3D may use several threads"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dex", default="target/release/dex")
    ap.add_argument("--trials", type=int, default=10)
    a = ap.parse_args()
    dex = resolve_dex(a.dex)
    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    print(f"dex: {dex}")
    print(f"open3d {o3d.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}")
    print(thread_note())
    print(f"point-to-plane, max dist {MAX_DIST} m, {MAX_ITERS} iterations, normals KNN {KNN}, init identity; "
          f"success = rot < {ROT_TOL_DEG} deg and trans < {TRANS_TOL_M * 1e3:.0f} mm "
          f"(+ dex converged / open3d fitness > 0.9)")
    for shape in SHAPES:
        rows = []
        for seed in range(a.trials):
            with tempfile.TemporaryDirectory(prefix=f"icp_{shape}_{seed}_") as tmp:
                run_dex(dex, ["track", "synth", "--case", shape, "--out", tmp, "--seed", str(seed)])
                with open(os.path.join(tmp, "truth.json")) as f:
                    truth = json.load(f)
                src = np.loadtxt(os.path.join(tmp, "source.xyz"), dtype=np.float64).reshape(-1, 3)
                tgt = np.loadtxt(os.path.join(tmp, "target.xyz"), dtype=np.float64).reshape(-1, 3)
                if seed % 2 == 0:
                    d = run_dex_icp(dex, tmp, truth)
                    o = run_open3d_icp(src, tgt, truth)
                else:
                    o = run_open3d_icp(src, tgt, truth)
                    d = run_dex_icp(dex, tmp, truth)
                rows.append((seed, d, o))
        print(f"\n== {shape}: {a.trials} seeds, {len(src)} source / {len(tgt)} target points")
        print(f"{'seed':>4} | {'dex ms':>8} {'rot°':>7} {'mm':>7} {'iters':>5} {'conv':>5} {'ok':>3} | "
              f"{'o3d ms':>8} {'rot°':>7} {'mm':>7} {'fit':>5} {'ok':>3}")
        for seed, d, o in rows:
            print(f"{seed:>4} | {d['ms']:>8.2f} {d['rot']:>7.4f} {d['trans'] * 1e3:>7.3f} {d['iters']:>5} "
                  f"{'y' if d['converged'] else 'n':>5} {'y' if d['ok'] else 'n':>3} | "
                  f"{o['ms']:>8.2f} {o['rot']:>7.4f} {o['trans'] * 1e3:>7.3f} {o['fitness']:>5.3f} "
                  f"{'y' if o['ok'] else 'n':>3}")
        d_ms = statistics.median(d["ms"] for _, d, _ in rows)
        o_ms = statistics.median(o["ms"] for _, _, o in rows)
        d_ok = sum(d["ok"] for _, d, _ in rows)
        o_ok = sum(o["ok"] for _, _, o in rows)
        print(f"{shape}: dex success {d_ok}/{a.trials}, median {d_ms:.2f} ms | "
              f"open3d success {o_ok}/{a.trials}, median {o_ms:.2f} ms | "
              f"ratio open3d_ms / dex_ms = {o_ms / d_ms:.2f} (>1 = dex faster)")
    print("icp_peer done")


if __name__ == "__main__":
    main()
