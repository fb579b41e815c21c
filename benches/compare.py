"""The table of benches/compare.sh: medians over rounds of every benchmark, for cnnc
("now"), PyTorch eager, torch.compile and ONNX Runtime (benches/anchors.py, names
suffixed _compile / _ort) and (when measured) an older cnnc binary ("before"), on the
default path and on AVX2, with the ratios (higher is better for cnnc), then the peak
resident memory of ResNet-20 training."""
import collections
import glob
import json
import statistics
import sys

NAMES = ['lenet_train_b64', 'lenet_infer_b64', 'lenet_infer_b1', 'cifar_train_b32', 'resnet8_train_b64',
         'resnet8_infer_b64', 'resnet8_infer_b1', 'resnet20_train_b128', 'resnet20_infer_b128', 'conv64_fwd',
         'conv64_bwd', 'peak']

runs = collections.defaultdict(dict)  # (variant, threads, name) -> {round: (value, unit)}
for path in sorted(glob.glob(sys.argv[1] + '/*.json')):
    variant, threads, rnd = path.rsplit('/', 1)[1][:-5].rsplit('-', 2)
    for line in open(path):
        if line.startswith('{'):
            row = json.loads(line)
            unit = next((k for k in row if k != 'name'), None)
            if unit is None or not isinstance(row[unit], (int, float)):
                continue
            name, v = row['name'], variant
            if variant == 'anchors':
                name, v = row['name'].rsplit('_', 1)
            runs[(v, threads, name)][rnd] = (row[unit], unit)


def median(variant, threads, name):
    v = runs.get((variant, threads, name))
    return (statistics.median(x for x, _ in v.values()), next(iter(v.values()))[1]) if v else (None, None)


def ratio(ours, theirs, unit):
    if ours is None or theirs is None:
        return '-'
    return f'{(theirs / ours if unit in ("latency_us", "mib") else ours / theirs):.2f}x'


def per_round(variant, other, t, n):
    """The median of the per-round ratios of `variant` against `other`, in brackets."""
    ours, theirs = runs.get((variant, t, n), {}), runs.get((other, t, n), {})
    rs = [ratio(v[0], theirs[r][0], v[1]) for r, v in ours.items() if r in theirs]
    return f' ({statistics.median(float(x[:-1]) for x in rs):.2f}x)' if len(rs) > 1 else ''


def fmt(x):
    return '-' if x is None else f'{x:,.1f}'


for t in ['t1', 't2']:
    print(f'\n{t[1]} thread(s): medians; ratios of medians (and median of per-round ratios)\n')
    print('| benchmark | unit | cnnc | eager | vs eager | torch.compile | vs compile | ONNX Runtime | vs ORT '
          '| cnnc AVX2 | eager AVX2 | vs eager | before | now/before |')
    print('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|')
    for n in NAMES:
        now, unit = median('now', t, n)
        cells = [fmt(now)]
        for other in ['torch', 'compile', 'ort']:
            theirs, _ = median(other, t, n)
            cells += [fmt(theirs), ratio(now, theirs, unit) + (per_round('now', other, t, n) if theirs else '')]
        now2, _ = median('now_avx2', t, n)
        torch2, _ = median('torch_avx2', t, n)
        before, _ = median('before', t, n)
        cells += [fmt(now2), fmt(torch2), ratio(now2, torch2, unit), fmt(before), ratio(now, before, unit)]
        print(f'| {n} | {unit} | ' + ' | '.join(cells) + ' |')

mem_now, _ = median('now', 't2', 'resnet20_train_b128_peak_rss')
mem_torch, _ = median('torch', 't2', 'resnet20_train_b128_peak_rss')
if mem_now or mem_torch:
    print(f'\nresnet20 training at batch 128, peak resident memory (2 threads): cnnc {fmt(mem_now)} MiB, '
          f'PyTorch eager {fmt(mem_torch)} MiB ({ratio(mem_now, mem_torch, "mib")} less for cnnc)')
