#!/usr/bin/env bash
# Same-run comparison against PyTorch: interleaved rounds of examples/bench.rs and
# benches/torch_baseline.py at 1 and 2 threads, each also on the AVX2 path
# (CNNC_KERNEL=avx2; oneDNN limited to AVX2 with ONEDNN_MAX_CPU_ISA), then the
# table of medians and per-round ratios (benches/compare.py).
#
#     bash benches/compare.sh [ROUNDS] [OUT_DIR]
#
# BEFORE=path/to/an/older/bench adds that binary to every round (a before/after
# comparison of two commits).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
(cd "$here/.." && cargo build --release --example bench >&2)
now="$here/../target/release/examples/bench"
bash "$here/torch_baseline.sh" 1 > /dev/null   # makes the venv on first use
py=${TORCH_VENV:-${TMPDIR:-/tmp}/cnnc-torch-venv}/bin/python
for round in $(seq "$rounds"); do
  for t in 1 2; do
    if [ -n "${BEFORE:-}" ]; then
      RAYON_NUM_THREADS=$t "$BEFORE" > "$out/before-t$t-r$round.json"
      CNNC_KERNEL=avx2 RAYON_NUM_THREADS=$t "$BEFORE" > "$out/before_avx2-t$t-r$round.json"
    fi
    RAYON_NUM_THREADS=$t "$now" > "$out/now-t$t-r$round.json"
    "$py" "$here/torch_baseline.py" $t > "$out/torch-t$t-r$round.json"
    CNNC_KERNEL=avx2 RAYON_NUM_THREADS=$t "$now" > "$out/now_avx2-t$t-r$round.json"
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 "$py" "$here/torch_baseline.py" $t \
      > "$out/torch_avx2-t$t-r$round.json"
    echo "round $round, $t thread(s) done" >&2
  done
done
python3 "$here/compare.py" "$out"
