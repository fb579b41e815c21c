"""Paired before/after runs of two `examples/bench` binaries on a noisy host.

    python3 benches/pair.py ROUNDS GROUP OLD_BENCH NEW_BENCH

Both binaries run at once, one thread each (RAYON_NUM_THREADS=1), pinned to
cores 0 and 1 with `taskset` and swapped every round, so both see the same
neighbours at the same time; prints each benchmark's medians and the median (and
range) of the per-round ratios NEW/OLD. On a host whose speed drifts by 15%
between rounds, interleaved rounds cannot resolve a 5% change; paired ones can.
The environment passes through (CNNC_KERNEL=avx2 for the AVX2 path). Needs two
cores; the two runs share the last-level cache and memory, as two workers do.
"""
import collections
import json
import os
import statistics
import subprocess
import sys


def main():
    rounds, group, old, new = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    results = collections.defaultdict(lambda: collections.defaultdict(list))
    env = dict(os.environ, RAYON_NUM_THREADS="1")
    for r in range(rounds):
        cores = (0, 1) if r % 2 == 0 else (1, 0)
        runs = [
            subprocess.Popen(["taskset", "-c", str(c), b, group], stdout=subprocess.PIPE, text=True, env=env)
            for b, c in zip((old, new), cores)
        ]
        for b, p in zip((old, new), runs):
            out = p.communicate()[0]
            if p.returncode != 0:
                sys.exit(f"{b} {group} exited with {p.returncode}")
            for line in out.splitlines():
                if line.startswith("{"):
                    d = json.loads(line)
                    unit = next(k for k in d if k != "name")
                    results[d["name"]][b].append(d[unit])
    for name, per in results.items():
        a, b = per[old], per[new]
        ratios = [y / x for x, y in zip(a, b)]
        print(
            f"{name}: old median {statistics.median(a):.1f}, new median {statistics.median(b):.1f}, "
            f"new/old median {statistics.median(ratios):.3f} (rounds {min(ratios):.3f}-{max(ratios):.3f})"
        )


if __name__ == "__main__":
    main()
