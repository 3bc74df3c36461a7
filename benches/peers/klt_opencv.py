#!/usr/bin/env python3
"""Compare `dex track klt` with OpenCV's pyramidal Lucas-Kanade on dex's synthetic cases.

For each synthetic case (translation, rotation, noisy) the frames are generated
with `dex track synth`, then tracked

  * by dex, with its default forward-backward (FB) check and with `--no-fb`;
  * by OpenCV `cv2.calcOpticalFlowPyrLK`, frame to frame on the same PNG files,
    with the same settings (21x21 window, 3 pyramid levels, at most 30
    iterations, epsilon 0.01, one thread), once plainly and once with the
    usual forward-backward check: a second call tracks the new points back to
    the previous frame and a point whose round trip is longer than 0.7 px is
    flagged as lost (dex uses the same 0.7 px threshold).

Timing: dex reports `ms_per_frame`, the median time of its tracking call per
frame after the first, pyramid building included and file I/O excluded. The
OpenCV calls are timed the same way with time.perf_counter around each call
(each call builds its own pyramids from the decoded images; PNG decoding is
outside the timed section). Every measurement is repeated `--repeats` times,
dex and OpenCV alternating, and the median over repeats is reported.

Accuracy, at the last frame, against truth.csv: the median (and 90th
percentile) end-point error over the points that the truth marks visible,
whatever the tracker says about them, and the number of those points the
tracker reports lost (dex: visible=0; OpenCV: status 0, or FB failure).

Both trackers keep tracking all 256 points in every frame; a point is not
dropped for good once lost. OpenCV's position is updated only where the forward
call reports status 1 (dex updates unless the point left the image).

Install and run (from the repository root, after `cargo build --release`):
    pip install opencv-python-headless numpy
    python3 benches/peers/klt_opencv.py [--dex target/release/dex] [--repeats 3]
"""

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

try:
    import cv2
    import numpy as np
except ImportError:  # pragma: no cover - depends on the environment
    sys.exit("missing peers: pip install opencv-python-headless numpy")

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CASES = ("translation", "rotation", "noisy")
WIN = 21
LEVELS = 3
ITERS = 30
EPS = 0.01
FB_THRESHOLD = 0.7
CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, ITERS, EPS)


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


def read_tracks(path):
    """frame,point,x,y,visible CSV -> {frame: (positions (N,2), visible (N,) bool)}."""
    rows = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            rows.setdefault(int(r["frame"]), []).append(
                (int(r["point"]), float(r["x"]), float(r["y"]), r["visible"].strip() == "1"))
    out = {}
    for frame, items in rows.items():
        items.sort()
        pos = np.array([[x, y] for _, x, y, _ in items], dtype=np.float64)
        vis = np.array([v for *_, v in items], dtype=bool)
        out[frame] = (pos, vis)
    return out


def read_queries(path):
    pts = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                x, y = line.split(",")[:2]
                pts.append((float(x), float(y)))
    return np.array(pts, dtype=np.float32)


def dex_klt(dex, case_dir, fb):
    out = os.path.join(case_dir, "dex_fb.csv" if fb else "dex_nofb.csv")
    args = ["track", "klt", "--frames", os.path.join(case_dir, "frames"),
            "--queries", os.path.join(case_dir, "queries.csv"), "--out", out,
            "--win", str(WIN), "--levels", str(LEVELS), "--iters", str(ITERS), "--eps", str(EPS)]
    if not fb:
        args.append("--no-fb")
    stdout = run_dex(dex, args)
    last = stdout.strip().splitlines()[-1].split()
    assert last[0] == "ms_per_frame", stdout
    tracks = read_tracks(out)
    last_frame = max(tracks)
    return float(last[1]), tracks[last_frame]


def opencv_klt(frames, queries, fb):
    """Track frame to frame; return (median ms per call-set per frame, last positions, last ok flags)."""
    pts = queries.reshape(-1, 1, 2).copy()
    ok = np.ones(len(queries), dtype=bool)
    times = []
    for prev, nxt in zip(frames[:-1], frames[1:]):
        t0 = time.perf_counter()
        new, st, _ = cv2.calcOpticalFlowPyrLK(prev, nxt, pts, None, winSize=(WIN, WIN),
                                              maxLevel=LEVELS, criteria=CRITERIA)
        if fb:
            back, st_b, _ = cv2.calcOpticalFlowPyrLK(nxt, prev, new, None, winSize=(WIN, WIN),
                                                     maxLevel=LEVELS, criteria=CRITERIA)
        times.append((time.perf_counter() - t0) * 1e3)
        st = st.reshape(-1).astype(bool) & np.isfinite(new.reshape(-1, 2)).all(axis=1)
        ok = st.copy()
        if fb:
            round_trip = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
            ok &= st_b.reshape(-1).astype(bool) & (round_trip <= FB_THRESHOLD)
        pts = np.where(st[:, None, None], new, pts)
    return statistics.median(times), pts.reshape(-1, 2).astype(np.float64), ok


def accuracy(pos, ok, truth_pos, truth_vis):
    err = np.linalg.norm(pos - truth_pos, axis=1)[truth_vis]
    err = np.where(np.isfinite(err), err, np.inf)
    return {
        "epe_med": float(np.median(err)),
        "epe_p90": float(np.percentile(err, 90)),
        "gt1": int((err > 1.0).sum()),
        "lost": int((~ok[truth_vis]).sum()),
        "n": int(truth_vis.sum()),
    }


def bench_case(dex, case, repeats, seed):
    with tempfile.TemporaryDirectory(prefix=f"klt_{case}_") as tmp:
        run_dex(dex, ["track", "synth", "--case", case, "--out", tmp, "--seed", str(seed)])
        frame_dir = os.path.join(tmp, "frames")
        names = sorted(n for n in os.listdir(frame_dir) if n.endswith(".png"))
        frames = [cv2.imread(os.path.join(frame_dir, n), cv2.IMREAD_GRAYSCALE) for n in names]
        queries = read_queries(os.path.join(tmp, "queries.csv"))
        truth = read_tracks(os.path.join(tmp, "truth.csv"))
        truth_pos, truth_vis = truth[len(frames) - 1]

        ms = {k: [] for k in ("dex_fb", "dex_plain", "cv_fb", "cv_plain")}
        last = {}
        for r in range(repeats):
            # Alternate the two sides, and flip the order every repeat.
            order = [("dex_plain", "cv_plain"), ("dex_fb", "cv_fb")]
            if r % 2:
                order = [(b, a) for a, b in reversed(order)]
            for pair in order:
                for key in pair:
                    if key.startswith("dex"):
                        t, (pos, vis) = dex_klt(dex, tmp, fb=(key == "dex_fb"))
                    else:
                        t, pos, vis = opencv_klt(frames, queries, fb=(key == "cv_fb"))
                    ms[key].append(t)
                    last[key] = (pos, vis)
        med = {k: statistics.median(v) for k, v in ms.items()}
        acc = {k: accuracy(*last[k], truth_pos, truth_vis) for k in last}
        return med, ms, acc, len(frames), len(queries)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dex", default="target/release/dex")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    dex = resolve_dex(a.dex)
    cv2.setNumThreads(1)
    print(f"dex: {dex}")
    print(f"opencv {cv2.__version__} (threads={cv2.getNumThreads()}), numpy {np.__version__}, "
          f"python {sys.version.split()[0]}")
    print(f"settings: win {WIN}, levels {LEVELS}, iters {ITERS}, eps {EPS}, FB threshold "
          f"{FB_THRESHOLD} px, repeats {a.repeats}, seed {a.seed}")
    labels = {"dex_plain": "dex --no-fb", "cv_plain": "opencv", "dex_fb": "dex (FB)",
              "cv_fb": "opencv + FB"}
    for case in CASES:
        med, ms, acc, nf, nq = bench_case(dex, case, a.repeats, a.seed)
        n = acc["dex_fb"]["n"]
        print(f"\n== {case}: {nf} frames, {nq} points, {n} visible in the truth at frame {nf - 1}")
        print(f"{'method':<14} {'ms/frame':>9} {'(all repeats)':<24} {'EPE med':>8} {'EPE p90':>8} "
              f"{'>1px':>5} {'lost':>5}")
        for key in ("dex_plain", "cv_plain", "dex_fb", "cv_fb"):
            runs = " ".join(f"{t:.3f}" for t in ms[key])
            s = acc[key]
            print(f"{labels[key]:<14} {med[key]:>9.3f} {'[' + runs + ']':<24} {s['epe_med']:>8.4f} "
                  f"{s['epe_p90']:>8.4f} {s['gt1']:>5} {s['lost']:>5}")
        print(f"ratio opencv_ms / dex_ms (>1 = dex faster): plain {med['cv_plain'] / med['dex_plain']:.2f}, "
              f"FB {med['cv_fb'] / med['dex_fb']:.2f}")
    print("\nEPE = end-point error (px) at the last frame over truth-visible points; "
          ">1px = how many of those are off by more than 1 px; lost = how many of those the "
          "method flags lost.")
    print("klt_peer done")


if __name__ == "__main__":
    main()
