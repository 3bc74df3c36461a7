#!/bin/bash
# The rotation rows of DexNDM's comparison at CPU scale: the shipped PPO rotation
# policy (dex-cli/assets/rotate-ppo, palm up, 5 cm cube, 5 s episodes) in the ideal
# simulation, on the ideal hand behind the in-process bus, on the gap hand over its bus
# as it is, and with a residual trained through a joint-wise or a whole-hand model of
# the gap hand. Both models are pre-trained on the base's rollouts replayed in ideal
# simulation and fine-tuned on the same replayed on the gap hand (MINUTES of hand time
# each, with OBJECT on the palm: `chaos-box`, DexNDM's, or `cube`, the task's own load).
# Rotation (rad per episode) and time to fall (s) per seed. A few minutes on 2 cores.
# BASE=CKPT runs another base policy of the rotate task (dex-cli/assets/rotate-gait,
# the shipped gait, say).
#
#   [BASE=CKPT] dex-ndm/scripts/rotate_residual.sh [OUT_DIR] [OBJECT] [MINUTES] [EPOCHS] [EPISODES] [SEEDS...]
set -euo pipefail
OUT=${1:-runs/rotate}
OBJECT=${2:-chaos-box}
MINUTES=${3:-5}
EPOCHS=${4:-20}
EPISODES=${5:-24}
shift 5 || true
SEEDS=${*:-100 200}
export RAYON_NUM_THREADS=${RAYON_NUM_THREADS:-2}
cargo build --release -q -p dex-cli
DEX=$PWD/target/release/dex
CK=$(realpath "${BASE:-dex-cli/assets/rotate-ppo}")
mkdir -p "$OUT" && cd "$OUT"
[ -e sim ] || $DEX ndm collect --sim --policy "$CK" --object "$OBJECT" --minutes "$MINUTES" --sequence-steps 100 --seed 1 --out sim
[ -e real ] || $DEX ndm collect --emulated --policy "$CK" --object "$OBJECT" --minutes "$MINUTES" --sequence-steps 100 --seed 2 --out real
for m in joint whole; do
  [ -e m-$m/model.toml ] || $DEX ndm train --data real --pretrain sim --model $m --seed 0 --out m-$m > m-$m.log 2>&1
  [ -e r-$m/residual.toml ] || $DEX ndm residual train --base "$CK" --model m-$m --episodes 200 --seed 0 --set epochs=$EPOCHS --out r-$m > r-$m.log 2>&1
  tail -1 r-$m.log
done
for seed in $SEEDS; do
  echo "sim seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --envs 4 | tail -1)"
  echo "ideal-bus seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --emulated --actuator pd | tail -1)"
  echo "gap direct seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --emulated | tail -1)"
  for m in joint whole; do
    echo "gap residual-$m seed $seed $($DEX eval --checkpoint "$CK" --episodes $EPISODES --seed $seed --emulated --residual r-$m | tail -1)"
  done
done | tee results.txt
