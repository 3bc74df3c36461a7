#!/bin/bash
# DexNDM's Fig. 6 comparison at CPU scale: joint-wise against whole-hand against
# first-order dynamics, in and out of distribution, with little and with more "real"
# data. Pre-training data from the ideal simulation, "real" data from the gap hand (the
# servo-driven simulated LEAP Hand behind an emulated bus, default gap), both in the
# chaos box, random target sequences, palm up; the out-of-distribution tests turn
# gravity sideways and reverse it, and put the 5 cm cube on the palm instead of the
# balls, with the default payload (0.05 kg) and a heavier one (0.25 kg). About 10
# minutes on 2 cores.
#
#   dex-ndm/scripts/joint_vs_whole.sh [OUT_DIR] [SEEDS...]
set -euo pipefail
OUT=${1:-runs/ndm}
shift || true
SEEDS=${*:-0 1 2}
export RAYON_NUM_THREADS=1
cargo build --release -q -p dex-cli
DEX=$PWD/target/release/dex
mkdir -p "$OUT" && cd "$OUT"
[ -e sim ] || $DEX ndm collect --sim --object chaos-box --minutes 30 --seed 1 --out sim
[ -e real ] || $DEX ndm collect --emulated --object chaos-box --minutes 30 --seed 2 --out real
[ -e real-small ] || $DEX ndm collect --emulated --object chaos-box --minutes 2.5 --seed 3 --out real-small
[ -e test-id ] || $DEX ndm collect --emulated --object chaos-box --minutes 5 --seed 4 --out test-id
[ -e test-ood ] || $DEX ndm collect --emulated --object chaos-box --gravity 0,9.81,0 --minutes 5 --seed 5 --out test-ood
[ -e test-ood-down ] || $DEX ndm collect --emulated --object chaos-box --gravity 0,0,9.81 --minutes 5 --seed 6 --out test-ood-down
[ -e test-cube ] || $DEX ndm collect --emulated --object cube --minutes 5 --seed 7 --out test-cube
printf 'payload = 0.25\n' > heavy.toml
[ -e test-cube-heavy ] || $DEX ndm collect --emulated --object cube --gap heavy.toml --minutes 5 --seed 7 --out test-cube-heavy
for seed in $SEEDS; do
  for size in small large; do
    data=real; [ $size = small ] && data=real-small
    for model in joint whole pd; do
      out=m-$model-$size-s$seed
      [ -e $out/model.toml ] || $DEX ndm train --data $data --pretrain sim --model $model --seed $seed --out $out > $out.log 2>&1
      for t in test-id test-ood test-ood-down test-cube test-cube-heavy; do
        echo "$size $model $t seed$seed $($DEX ndm eval --model $out --data $t | tail -1)"
      done
    done
  done
done | tee results.txt
