"""Loads the weights that `cargo run --release --example mnist_resnet` saves into the
PyTorch module of docs/mnist_resnet.py (same names: conv1, batchnorm1, residual1.conv1,
residual2.shortcut.batchnorm1, dense1, ...; batchnorm running statistics and
num_batches_tracked included, so `strict=True` holds), and evaluates it on the same
2,000 test digits in inference mode (running statistics).

    pip install torch safetensors numpy
    python docs/load_resnet_in_pytorch.py mnist_resnet.safetensors
"""
import os, sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mnist_resnet import MnistResNet, accuracy, mnist  # noqa: E402

state = load_file(sys.argv[1] if len(sys.argv) > 1 else "mnist_resnet.safetensors")
model = MnistResNet()
model.load_state_dict(state, strict=True)  # every name, shape and buffer must match
steps = state["batchnorm1.num_batches_tracked"]
print(f"loaded {len(state)} tensors; num_batches_tracked {steps.item()} ({steps.dtype})")
images, labels = mnist("test")
print(f"PyTorch test accuracy: {accuracy(model, images, labels) * 100:.2f}%")
