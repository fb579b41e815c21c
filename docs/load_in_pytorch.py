"""Loads the weights that `cargo run --release --example mnist` saves into PyTorch,
and evaluates them on the same 2,000 test digits.

    pip install torch safetensors numpy
    python docs/load_in_pytorch.py lenet.safetensors
"""
import gzip, sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import load_file


class LeNet(nn.Module):
    # Submodule names are the .cnn layer names: conv1, conv2, dense1, ...
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.dense1 = nn.Linear(400, 120)
        self.dense2 = nn.Linear(120, 84)
        self.dense3 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.dense1(x.flatten(1)))
        x = F.relu(self.dense2(x))
        return F.softmax(self.dense3(x), dim=1)


def idx(path):
    data = gzip.open(path).read()
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


model = LeNet()
model.load_state_dict(load_file(sys.argv[1] if len(sys.argv) > 1 else "lenet.safetensors"))
images = torch.tensor(idx("data/mnist-10k/t10k-images-idx3-ubyte.gz"), dtype=torch.float32)[:, None] / 255
labels = torch.tensor(idx("data/mnist-10k/t10k-labels-idx1-ubyte.gz").astype(np.int64))
with torch.no_grad():
    accuracy = (model(images).argmax(1) == labels).float().mean().item()
print(f"PyTorch test accuracy: {accuracy * 100:.2f}%")
