"""The PyTorch twin of examples/unet.rs: the same U-Net (examples/models/
torch_equivalents.py), the same recipe (adam lr 0.001, batch 16, 20 epochs,
cross-entropy with ignore_index=255, default PyTorch initialization), on the same
files (data/unet-shapes, which `cargo run --release --example unet` writes), and
the same metrics: pixel accuracy and the mean IoU over the classes present in the
labels or the predictions, void (255) left out.

    python examples/unet_torch.py [--threads 2] [--epochs 20]
    python examples/unet_torch.py --cnnc-weights unet.safetensors   # evaluate cnnc's weights

With --cnnc-weights it loads the weight file cnnc wrote into the module with
strict=True and only evaluates it. Requires torch, numpy, pillow (and safetensors
for --cnnc-weights).
"""
import argparse
import pathlib
import sys
import time

import numpy as np
import torch
from PIL import Image

root = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(root / "examples" / "models"))
from torch_equivalents import UNet  # noqa: E402


def read(split):
    folder = root / "data" / "unet-shapes" / split
    names = sorted(p.name for p in (folder / "images").glob("*.png"))
    if not names:
        sys.exit(f"{folder} has no pictures: run `cargo run --release --example unet` first")
    x = np.stack([np.asarray(Image.open(folder / "images" / n).convert("RGB"), np.float32) / 255 for n in names])
    y = np.stack([np.asarray(Image.open(folder / "masks" / n), np.int64) for n in names])
    return torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(y)


def metrics(model, x, y, classes=3):
    model.eval()
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 50]) for i in range(0, len(x), 50)])
    loss = torch.nn.functional.cross_entropy(logits, y, ignore_index=255).item()
    pred = logits.argmax(1)
    keep = y < classes
    accuracy = (pred[keep] == y[keep]).float().mean().item()
    ious = []
    for c in range(classes):
        p, t = (pred == c) & keep, (y == c) & keep
        union = (p | t).sum().item()
        if union:
            ious.append((p & t).sum().item() / union)
    return loss, accuracy, sum(ious) / len(ious)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cnnc-weights")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    test_x, test_y = read("test")
    model = UNet()
    if args.cnnc_weights:
        from safetensors.torch import load_file
        model.load_state_dict(load_file(args.cnnc_weights), strict=True)
        loss, accuracy, iou = metrics(model, test_x, test_y)
        print(f"cnnc's weights in PyTorch: test loss {loss:.4f}, pixel accuracy {100 * accuracy:.2f}%")
        print(f"mean IoU: {iou:.4f}")
        return
    x, y = read("train")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(x))
        total, t = 0.0, time.perf_counter()
        for i in range(0, len(x), 16):
            idx = order[i:i + 16]
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx], ignore_index=255)
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        print(f"epoch {epoch + 1:>2}/{args.epochs}  loss {total / len(x):.4f}  {time.perf_counter() - t:.2f}s", flush=True)
    print(f"trained in {time.perf_counter() - start:.1f}s")
    loss, accuracy, iou = metrics(model, test_x, test_y)
    print(f"test loss {loss:.4f}, pixel accuracy {100 * accuracy:.2f}%")
    print(f"mean IoU: {iou:.4f}")


if __name__ == "__main__":
    main()
