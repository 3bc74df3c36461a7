#!/bin/bash
# The reach rows of DexNDM's comparison at CPU scale: the shipped reach student in the
# ideal simulation, on the gap hand over its (in-process, emulated) bus as it is, and
# with a residual trained through a joint-wise or a whole-hand model of the gap hand.
# Both models are pre-trained on the student's replayed rollouts in ideal simulation and
# fine-tuned on the same replayed on the gap hand (10 min of hand time each). A few
# minutes on 2 cores.
#
#   dex-ndm/scripts/reach_residual.sh [OUT_DIR] [EPOCHS] [EPISODES] [SEEDS...]
set -euo pipefail
OUT=${1:-runs/reach}
EPOCHS=${2:-100}
EPISODES=${3:-100}
shift 3 || true
SEEDS=${*:-300 400}
export RAYON_NUM_THREADS=1
cargo build --release -q -p dex-cli
DEX=$PWD/target/release/dex
CK=$PWD/dex-cli/assets/reach-student
mkdir -p "$OUT" && cd "$OUT"
[ -e sim ] || $DEX ndm collect --sim --policy "$CK" --object none --minutes 10 --sequence-steps 60 --seed 1 --out sim
[ -e real ] || $DEX ndm collect --emulated --policy "$CK" --object none --minutes 10 --sequence-steps 60 --seed 2 --out real
for m in joint whole; do
  [ -e m-$m/model.toml ] || $DEX ndm train --data real --pretrain sim --model $m --seed 0 --out m-$m > m-$m.log 2>&1
  [ -e r-$m/residual.toml ] || $DEX ndm residual train --base "$CK" --model m-$m --episodes 300 --seed 0 --set epochs=$EPOCHS --out r-$m > r-$m.log 2>&1
  tail -1 r-$m.log
done
for seed in $SEEDS; do
  echo "sim seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --envs 5 | tail -1)"
  echo "gap direct seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --emulated | tail -1)"
  for m in joint whole; do
    echo "gap residual-$m seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --emulated --residual r-$m | tail -1)"
  done
done | tee results.txt
