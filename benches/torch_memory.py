#!/usr/bin/env python3
"""Peak resident memory of PyTorch eager training ResNet-20 at batch 128 (the network of
torch_baseline.py beside this file), for `cargo run --release --example bench -- memory`:
a process of its own, a few steps, then ru_maxrss. One JSON line:
    {"name": "resnet20_train_b128_peak_rss", "mib": ...}
usage: torch_memory.py [THREADS]"""
import importlib.util, json, os, resource, sys

import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("tb", os.path.join(here, "torch_baseline.py"))
argv, sys.argv = sys.argv, [sys.argv[0], str(threads)]
tb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tb)
sys.argv = argv
torch.set_num_threads(threads)
model = tb.resnet20()
opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
x, y = torch.randn(128, 3, 32, 32), torch.randint(0, 10, (128,))
for _ in range(8):
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()
print(json.dumps({"name": "resnet20_train_b128_peak_rss", "mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
