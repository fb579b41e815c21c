#!/usr/bin/env python3
"""Writes the PyTorch-exported ONNX cases of tests/integration/onnx.rs into pytorch/
beside this file: small networks with random weights and batchnorm statistics,
exported with torch.onnx.export (opset 17, dynamic batch), each with an input batch
(NAME.x.bin) and ONNX Runtime's output for it (NAME.y.bin), raw little-endian f32,
shapes in NAME.json. The test imports each file with cnnc and compares, without
Python. The MobileNetV2 block (ReLU6, exported as Clip) needs language version 3:
the test checks that the importer says so. Run it again only to change the cases (it needs torch, onnx, onnxruntime):
    python3 tests/onnx/make_pytorch_cases.py"""
import json, os

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
write("resnet18", randomize(ResNet18()), (3, 32, 32))
write("resnet18_bn", randomize(ResNet18()), (3, 32, 32), torch.onnx.TrainingMode.PRESERVE)
write("smallnet", randomize(SmallNet()), (1, 14, 14))
write("mobilenetv2_block", randomize(MobileNetV2Block()), (8, 8, 8))
