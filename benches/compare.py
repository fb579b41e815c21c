"""The table of benches/compare.sh: medians over rounds of every benchmark, for
cnnc ("now"), PyTorch and (when measured) an older cnnc binary ("before"), on the
default path and on AVX2, with the ratios (higher is better for cnnc)."""
import collections
import glob
import json
import statistics
import sys

NAMES = ['lenet_train_b64', 'lenet_infer_b64', 'lenet_infer_b1', 'cifar_train_b32', 'resnet8_train_b64',
         'resnet8_infer_b64', 'resnet8_infer_b1', 'conv64_fwd', 'conv64_bwd', 'peak']

runs = collections.defaultdict(dict)  # (variant, threads, name) -> {round: (value, unit)}
for path in sorted(glob.glob(sys.argv[1] + '/*.json')):
    variant, threads, rnd = path.rsplit('/', 1)[1][:-5].rsplit('-', 2)
    for line in open(path):
        if line.startswith('{'):
            row = json.loads(line)
            unit = next(k for k in row if k != 'name')
            runs[(variant, threads, row['name'])][rnd] = (row[unit], unit)


def median(variant, threads, name):
    v = runs.get((variant, threads, name))
    return (statistics.median(x for x, _ in v.values()), next(iter(v.values()))[1]) if v else (None, None)


def ratio(ours, theirs, unit):
    if ours is None or theirs is None:
        return '-'
    return f'{(theirs / ours if unit == "latency_us" else ours / theirs):.2f}x'


def fmt(x):
    return '-' if x is None else f'{x:,.1f}'


for t in ['t1', 't2']:
    print(f'\n{t[1]} thread(s): medians; ratios of medians (and median of per-round ratios)\n')
    print('| benchmark | unit | cnnc | PyTorch | ratio | cnnc AVX2 | PyTorch AVX2 | ratio | before | now/before |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for n in NAMES:
        now, unit = median('now', t, n)
        torch, _ = median('torch', t, n)
        now2, _ = median('now_avx2', t, n)
        torch2, _ = median('torch_avx2', t, n)
        before, _ = median('before', t, n)
        per_round = [ratio(a[0], runs[('torch', t, n)][r][0], a[1])
                     for r, a in runs.get(('now', t, n), {}).items() if r in runs.get(('torch', t, n), {})]
        pr = f' ({statistics.median(float(x[:-1]) for x in per_round):.2f}x)' if per_round else ''
        print(f'| {n} | {unit} | {fmt(now)} | {fmt(torch)} | {ratio(now, torch, unit)}{pr} | {fmt(now2)} | '
              f'{fmt(torch2)} | {ratio(now2, torch2, unit)} | {fmt(before)} | {ratio(now, before, unit)} |')
