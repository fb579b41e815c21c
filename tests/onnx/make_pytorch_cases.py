#!/usr/bin/env python3
"""Writes the PyTorch-exported ONNX cases of tests/integration/onnx.rs into pytorch/
beside this file: small networks with random weights and batchnorm statistics,
exported with torch.onnx.export (opset 17, dynamic batch), each with an input batch
(NAME.x.bin) and ONNX Runtime's output for it (NAME.y.bin), raw little-endian f32,
shapes in NAME.json. The test imports each file with cnnc and compares, without
Python. The MobileNetV2 block has ReLU6 (exported as Clip); the v3 cases (a U-Net,
an Inception-like block, a DenseNet-like block, squeeze-and-excitation) import as
graphs of language version 3. Run it again only to change the cases (it needs
torch, onnx, onnxruntime); with names, it writes only those cases:
    python3 tests/onnx/make_pytorch_cases.py [NAME...]"""
import json, os, sys

import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn
import torch.nn.functional as F

here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pytorch")
torch.manual_seed(0)


class BasicBlock(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class ResNet18(nn.Module):
    """torchvision's ResNet-18 layout (7x7 stem, max pooling, 2-2-2-2 basic blocks),
    narrowed to widths 4-32 so that the file stays small."""
    def __init__(self, widths=(4, 8, 16, 32), classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, c = [], widths[0]
        for i, w in enumerate(widths):
            layers.append(nn.Sequential(BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)))
            c = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        x = self.maxpool(F.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class SmallNet(nn.Module):
    """view(N, -1) (Shape/Gather/Concat/Reshape), SiLU, GELU, a dilated and a grouped
    conv, average pooling with padding, MatMul-free Linear without bias, LeakyReLU."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(1, 8, 3, padding=2, dilation=2)
        self.grouped = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=4)
        self.pool = nn.AvgPool2d(3, 2, 1)
        self.head = nn.Linear(8 * 4 * 4, 16, bias=False)
        self.out = nn.Linear(16, 5)

    def forward(self, x):
        x = F.silu(self.stem(x))
        x = self.pool(F.gelu(self.grouped(x)))
        x = x.view(x.size(0), -1)
        return self.out(F.leaky_relu(self.head(x), 0.2))


class MobileNetV2Block(nn.Module):
    """An inverted residual with ReLU6: language version 3 (relu6)."""
    def __init__(self):
        super().__init__()
        self.expand = nn.Sequential(nn.Conv2d(8, 32, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.dw = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1, groups=32, bias=False), nn.BatchNorm2d(32), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(32, 8, 1, bias=False), nn.BatchNorm2d(8))

    def forward(self, x):
        return x + self.project(self.dw(self.expand(x)))


class UNet(nn.Module):
    """Two levels: a ConvTranspose2d (stride 2, padding 1, output_padding 1) and a
    bilinear nn.Upsample back up, torch.cat with the encoder maps, a per-pixel
    softmax over the classes."""
    def __init__(self):
        super().__init__()
        self.enc1 = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU())
        self.enc2 = nn.Conv2d(8, 12, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.mid = nn.Conv2d(12, 16, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(16, 12, 3, stride=2, padding=1, output_padding=1)
        self.dec2 = nn.Conv2d(24, 8, 3, padding=1)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec1 = nn.Conv2d(16, 8, 3, padding=1)
        self.head = nn.Conv2d(8, 3, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = F.relu(self.enc2(self.pool(e1)))
        m = F.relu(self.mid(self.pool(e2)))
        d2 = F.relu(self.dec2(torch.cat([self.up2(m), e2], 1)))
        d1 = F.relu(self.dec1(torch.cat([self.up1(d2), e1], 1)))
        return torch.softmax(self.head(d1), dim=1)


class Inception(nn.Module):
    """Three branches from the stem (a 1x1 conv; 1x1 then 3x3; max pooling, 1x1 and
    a nearest nn.Upsample), concatenated in that order, global max pooling."""
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.b1 = nn.Conv2d(8, 4, 1)
        self.b2 = nn.Sequential(nn.Conv2d(8, 4, 1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1))
        self.b3 = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(8, 4, 1), nn.Upsample(scale_factor=2, mode="nearest"))
        self.head = nn.Linear(14, 5)

    def forward(self, x):
        s = F.relu(self.stem(x))
        y = torch.cat([F.relu(self.b1(s)), F.relu(self.b2(s)), self.b3(s)], 1)
        return self.head(torch.flatten(F.adaptive_max_pool2d(y, 1), 1))


class DenseNet(nn.Module):
    """A DenseNet block (each layer reads the concatenation of every map before
    it: batchnorm, ReLU, 3x3 conv), a transition (batchnorm, ReLU, 1x1 conv,
    average pooling), global average pooling and a Linear."""
    def __init__(self, c=6, growth=4, layers=3):
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        self.layers = nn.ModuleList(
            nn.Sequential(nn.BatchNorm2d(c + i * growth), nn.ReLU(), nn.Conv2d(c + i * growth, growth, 3, padding=1, bias=False))
            for i in range(layers))
        out = c + layers * growth
        self.transition = nn.Sequential(nn.BatchNorm2d(out), nn.ReLU(), nn.Conv2d(out, 8, 1), nn.AvgPool2d(2))
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        feats = [self.stem(x)]
        for layer in self.layers:
            feats.append(layer(torch.cat(feats, 1)))
        y = self.transition(torch.cat(feats, 1))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(y, 1), 1))


class SqueezeExcite(nn.Module):
    """torchvision's squeeze-and-excitation (`x * sigmoid(fc2(relu(fc1(pool(x)))))`,
    x the first operand), then an SE-ResNet block: a residual body whose gate is
    Hardsigmoid, added to the block's input."""
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.fc1, self.fc2 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.body = nn.Conv2d(16, 16, 3, padding=1)
        self.gate1, self.gate2 = nn.Conv2d(16, 4, 1), nn.Conv2d(4, 16, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        x = F.relu(self.conv(x))
        x = x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        y = F.relu(self.body(x))
        y = y * F.hardsigmoid(self.gate2(F.relu(self.gate1(F.adaptive_avg_pool2d(y, 1)))))
        x = F.relu(x + y)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def randomize(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return model.eval()


def write(name, model, chw, training=torch.onnx.TrainingMode.EVAL):
    path = os.path.join(here, name + ".onnx")
    x = torch.randn(3, *chw)
    torch.onnx.export(model, (x[:1],), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}},
                      training=training)
    y = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"input": x.numpy()})[0]
    with torch.no_grad():
        assert np.allclose(y, model(x).numpy(), atol=1e-5)
    x.numpy().astype("<f4").tofile(os.path.join(here, name + ".x.bin"))
    y.astype("<f4").tofile(os.path.join(here, name + ".y.bin"))
    json.dump({"input": list(x.shape), "output": list(y.shape)}, open(os.path.join(here, name + ".json"), "w"))
    print(name, os.path.getsize(path), "bytes")


os.makedirs(here, exist_ok=True)
# The default export folds each batchnorm into its conv (a deployment graph);
# TrainingMode.PRESERVE of an eval() model keeps them (a graph to fine-tune).
# Each case draws its weights after seeding with its place in this list.
PRESERVE = torch.onnx.TrainingMode.PRESERVE
cases = [
    ("resnet18", lambda: ResNet18(), (3, 32, 32), torch.onnx.TrainingMode.EVAL),
    ("resnet18_bn", lambda: ResNet18(), (3, 32, 32), PRESERVE),
    ("smallnet", lambda: SmallNet(), (1, 14, 14), torch.onnx.TrainingMode.EVAL),
    ("mobilenetv2_block", lambda: MobileNetV2Block(), (8, 8, 8), torch.onnx.TrainingMode.EVAL),
    ("unet", lambda: UNet(), (3, 16, 16), PRESERVE),
    ("inception", lambda: Inception(), (3, 8, 8), torch.onnx.TrainingMode.EVAL),
    ("densenet", lambda: DenseNet(), (3, 8, 8), PRESERVE),
    ("squeeze_excite", lambda: SqueezeExcite(), (3, 8, 8), torch.onnx.TrainingMode.EVAL),
]
wanted = set(sys.argv[1:])
for k, (name, make, chw, training) in enumerate(cases):
    if wanted and name not in wanted:
        continue
    # The first four cases were written by one seeded run, in this order.
    if k >= 4:
        torch.manual_seed(k)
    write(name, randomize(make()), chw, training)
