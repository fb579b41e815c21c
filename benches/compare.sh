#!/usr/bin/env bash
# Same-run comparison against PyTorch eager, torch.compile and ONNX Runtime:
# interleaved rounds of examples/bench.rs, benches/torch_baseline.py and
# benches/anchors.py (ONNX Runtime with its graph optimizations, and torch.compile)
# at 1 and 2 threads, cnnc and eager each also on the AVX2 path (CNNC_KERNEL=avx2;
# oneDNN limited to AVX2 with ONEDNN_MAX_CPU_ISA), then the peak resident memory of
# ResNet-20 training (cnnc against eager, each a process of its own), then the table
# of medians and per-round ratios (benches/compare.py).
#
#     bash benches/compare.sh [ROUNDS] [OUT_DIR]
#
# BEFORE=path/to/an/older/bench adds that binary to every round (a before/after
# comparison of two commits); ANCHORS=0 leaves out ONNX Runtime and torch.compile.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3}
out=${2:-$(mktemp -d)}
mkdir -p "$out"
(cd "$here/.." && cargo build --release --example bench >&2)
now="$here/../target/release/examples/bench"
bash "$here/torch_baseline.sh" 1 > /dev/null   # makes the venv on first use
venv=${TORCH_VENV:-${TMPDIR:-/tmp}/cnnc-torch-venv}
py=$venv/bin/python
anchors=${ANCHORS:-1}
if [ "$anchors" = 1 ] && ! "$py" -c 'import onnx, onnxruntime' 2>/dev/null; then
  "$venv/bin/pip" install -q onnx onnxruntime >&2
fi
for round in $(seq "$rounds"); do
  for t in 1 2; do
    if [ -n "${BEFORE:-}" ]; then
      RAYON_NUM_THREADS=$t "$BEFORE" > "$out/before-t$t-r$round.json"
      CNNC_KERNEL=avx2 RAYON_NUM_THREADS=$t "$BEFORE" > "$out/before_avx2-t$t-r$round.json"
    fi
    RAYON_NUM_THREADS=$t "$now" > "$out/now-t$t-r$round.json"
    "$py" "$here/torch_baseline.py" $t > "$out/torch-t$t-r$round.json"
    if [ "$anchors" = 1 ]; then
      "$py" "$here/anchors.py" $t > "$out/anchors-t$t-r$round.json"
    fi
    CNNC_KERNEL=avx2 RAYON_NUM_THREADS=$t "$now" > "$out/now_avx2-t$t-r$round.json"
    ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 "$py" "$here/torch_baseline.py" $t \
      > "$out/torch_avx2-t$t-r$round.json"
    echo "round $round, $t thread(s) done" >&2
  done
done
RAYON_NUM_THREADS=2 "$now" memory > "$out/now-t2-rmem.json"
"$py" "$here/torch_memory.py" 2 > "$out/torch-t2-rmem.json"
python3 "$here/compare.py" "$out"
