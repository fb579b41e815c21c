#!/usr/bin/env bash
# The run-time plan executor (`cnnc bench`, a model read at run time) against the
# generated code of the same models (examples/bench.rs, `cnn!`): interleaved
# rounds at 1 and 2 threads, on the best kernels and on the AVX2 path
# (CNNC_KERNEL=avx2), LeNet and ResNet-8 at batch 64; medians and the ratio
# executor / generated per figure (images/s; higher is better).
#
#     bash benches/executor.sh [ROUNDS]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
rounds=${1:-3}
out=$(mktemp -d)
(cd "$here/.." && cargo build --release --example bench -p cnnc >&2 && cargo build --release -p cnnc-cli >&2)
gen="$here/../target/release/examples/bench"
cli="$here/../target/release/cnnc"
for round in $(seq "$rounds"); do
  for kernel in best avx2; do
    for t in 1 2; do
      env=(RAYON_NUM_THREADS=$t)
      [ "$kernel" = avx2 ] && env+=(CNNC_KERNEL=avx2)
      for m in lenet resnet8; do
        env "${env[@]}" "$gen" "$m" > "$out/gen-$kernel-$m-t$t-r$round.json"
        env "${env[@]}" "$cli" bench "$here/../examples/models/$m.cnn" --batch 64 --threads $t \
          > "$out/exec-$kernel-$m-t$t-r$round.txt"
      done
    done
  done
done
python3 - "$out" "$rounds" <<'PY'
import json, re, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def gen(kernel, m, t, r, what):
    for line in open(f"{out}/gen-{kernel}-{m}-t{t}-r{r}.json"):
        row = json.loads(line)
        if row["name"] == f"{m}_{what}_b64":
            return row["images_per_s"]
def exe(kernel, m, t, r, what):
    text = open(f"{out}/exec-{kernel}-{m}-t{t}-r{r}.txt").read()
    word = {"train": "train", "infer": "infer"}[what]
    return float(re.search(word + r"\s+batch\s+64:\s+([0-9.]+) images/s", text).group(1))
print(f"{'figure':<28} {'generated':>10} {'executor':>10} {'ratio':>7}")
for kernel in ["best", "avx2"]:
    for m in ["lenet", "resnet8"]:
        for what in ["train", "infer"]:
            for t in [1, 2]:
                g = [gen(kernel, m, t, r, what) for r in range(1, rounds + 1)]
                e = [exe(kernel, m, t, r, what) for r in range(1, rounds + 1)]
                ratio = statistics.median(x / y for x, y in zip(e, g))
                name = f"{m} {what} b64 {t}t {kernel}"
                print(f"{name:<28} {statistics.median(g):>10.0f} {statistics.median(e):>10.0f} {ratio:>6.2f}x")
PY
