"""The network and recipe of examples/models/mnist_resnet.cnn in PyTorch, trained on
the same bundled MNIST subset (data/mnist-10k: 8,000 training, 2,000 test digits),
for comparison with `cargo run --release --example mnist_resnet`.

    pip install torch numpy
    python docs/mnist_resnet.py [THREADS]        # default 2 threads

Same architecture and tensor names (a file saved by the Rust example loads into
`MnistResNet` with `load_state_dict(strict=True)`, see docs/load_resnet_in_pytorch.py),
same initialization scheme (the spec's: He normal where a conv reaches a relu through
batchnorm only, Xavier uniform otherwise, batchnorm 1 and 0), same optimizer (SGD,
lr 0.1, momentum 0.9, nesterov, weight decay 5e-4 on every parameter), cosine schedule
per epoch over 8 epochs, batch 64, a fresh shuffle every epoch. The random draws differ.
"""
import gzip, os, sys, time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mnist-10k")


def idx(path):
    """An IDX file (gzip), as the Rust reader `cnnc::rt::data::mnist` reads it."""
    data = gzip.open(path).read()
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(data[3])]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def mnist(split):
    prefix = "train" if split == "train" else "t10k"
    images = torch.tensor(idx(os.path.join(DATA, f"{prefix}-images-idx3-ubyte.gz")), dtype=torch.float32)
    labels = torch.tensor(idx(os.path.join(DATA, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64))
    return images[:, None] / 255, labels


def conv(c_in, c_out, k, stride=1, pad=0):
    return nn.Conv2d(c_in, c_out, k, stride, pad, bias=False)


class Shortcut(nn.Module):
    """`shortcut { conv C kernel 1 stride 2 round floor bias off  batchnorm }`"""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv1, self.batchnorm1 = conv(c_in, c_out, 1, 2), nn.BatchNorm2d(c_out)

    def forward(self, x):
        return self.batchnorm1(self.conv1(x))


class Residual(nn.Module):
    """`residual { conv, batchnorm relu, conv, batchnorm [shortcut] } relu`"""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1, self.batchnorm1 = conv(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out)
        self.conv2, self.batchnorm2 = conv(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out)
        if stride != 1:
            self.shortcut = Shortcut(c_in, c_out)

    def forward(self, x):
        y = self.batchnorm2(self.conv2(F.relu(self.batchnorm1(self.conv1(x)))))
        return F.relu(y + (self.shortcut(x) if hasattr(self, "shortcut") else x))


class MnistResNet(nn.Module):
    # Submodule names are the .cnn names: conv1, batchnorm1, residual1.conv1, ...,
    # residual2.shortcut.conv1, dense1.
    def __init__(self):
        super().__init__()
        self.conv1, self.batchnorm1 = conv(1, 16, 3, 1, 1), nn.BatchNorm2d(16)
        self.residual1 = Residual(16, 16, 1)
        self.residual2 = Residual(16, 32, 2)
        self.residual3 = Residual(32, 64, 2)
        self.dense1 = nn.Linear(64, 10)
        # The spec's initialization: He normal for a conv whose output reaches a relu
        # through batchnorm only (the stem and each body's first conv); Xavier uniform
        # for the rest (a body's last conv and the shortcut reach the add first; the
        # dense layer feeds softmax). Biases 0; batchnorm weight 1, bias 0 (the default).
        for name, m in self.named_modules():
            if isinstance(m, nn.Conv2d):
                if name in ("conv1", "residual1.conv1", "residual2.conv1", "residual3.conv1"):
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                else:
                    nn.init.xavier_uniform_(m.weight)
        nn.init.xavier_uniform_(self.dense1.weight)
        nn.init.zeros_(self.dense1.bias)

    def forward(self, x):
        """Logits; the .cnn model ends in softmax, fused with the cross-entropy loss."""
        x = F.relu(self.batchnorm1(self.conv1(x)))
        x = self.residual3(self.residual2(self.residual1(x)))
        return self.dense1(F.adaptive_avg_pool2d(x, 1).flatten(1))


def accuracy(model, images, labels, batch=500):
    model.eval()
    with torch.no_grad():
        right = sum((model(images[i:i + batch]).argmax(1) == labels[i:i + batch]).sum().item()
                    for i in range(0, len(images), batch))
    return right / len(images)


def main():
    torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    torch.manual_seed(0)
    (x, y), (xt, yt) = mnist("train"), mnist("test")
    model = MnistResNet()
    epochs, batch = 8, 64
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    print(f"MnistResNet (PyTorch {torch.__version__}, {torch.get_num_threads()} threads): "
          f"{sum(p.numel() for p in model.parameters())} parameters; "
          f"{len(x)} training and {len(xt)} test images; {epochs} epochs of batch {batch}")
    start = time.perf_counter()
    for epoch in range(epochs):
        t = time.perf_counter()
        model.train()
        order = torch.randperm(len(x))
        loss_sum = right = 0.0
        for i in range(0, len(x), batch):
            xb, yb = x[order[i:i + batch]], y[order[i:i + batch]]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(xb)
            right += (out.argmax(1) == yb).sum().item()
        lr = sched.get_last_lr()[0]
        sched.step()
        print(f"epoch {epoch + 1}/{epochs}: lr {lr:.4f}, train loss {loss_sum / len(x):.4f}, "
              f"train accuracy {right / len(x) * 100:.2f}% ({time.perf_counter() - t:.1f}s)")
    seconds = time.perf_counter() - start
    print(f"trained in {seconds:.1f}s ({seconds / epochs:.2f}s per epoch)")
    print(f"test accuracy: {accuracy(model, xt, yt) * 100:.2f}%")


if __name__ == "__main__":
    main()
