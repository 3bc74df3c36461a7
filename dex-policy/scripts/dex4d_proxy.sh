#!/usr/bin/env bash
# Dex4D's representation question on the pose proxy, side by side at one budget:
# paired / decoupled / MLP point encodings, no self-attention, no world-model loss and
# a student trained without masking, each distilled by DAgger for ITERATIONS
# iterations (256 environments, one step each), then evaluated on 100 five-waypoint
# tracks (closed loop, slip on and off, 64/32/16/8 visible points). The teacher and the
# open-loop plan are evaluated once.
#
#   dex-policy/scripts/dex4d_proxy.sh [OUT_DIR] [SEEDS...]
#
# Environment: ITERATIONS (default 320), VARIANTS (default: all).
set -euo pipefail
out=${1:-runs/dex4d-proxy}
shift || true
seeds=("$@")
[ ${#seeds[@]} -eq 0 ] && seeds=(0 1)
iterations=${ITERATIONS:-320}
variants=${VARIANTS:-"paired decoupled mlp no-attention no-world-model no-mask"}
mkdir -p "$out"
cargo build --release -q -p dex-policy --example dex4d_proxy
bin=target/release/examples/dex4d_proxy
[ -f "$out/baselines.log" ] || "$bin" --baselines | tee "$out/baselines.log"
for seed in "${seeds[@]}"; do
  for v in $variants; do
    case $v in
      paired|decoupled|mlp) args=(--encoder "$v") ;;
      *) args=("--$v") ;;
    esac
    log="$out/$v-s$seed.log"
    [ -f "$log" ] && grep -q "student-visible8" "$log" && continue
    "$bin" "${args[@]}" --iterations "$iterations" --seed "$seed" --out "$out/$v-s$seed" > "$log"
    echo "== $v seed $seed"; grep "^eval\|^trained" "$log"
  done
done
