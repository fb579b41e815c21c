"""PyTorch modules equal to three example models, for their parameter counts and
state_dict names (cnnc's weight files load into them with strict=True):

    python examples/models/torch_equivalents.py

prints each module's parameter count; tests/integration/example_models.rs holds
the same numbers for cnnc's models. Requires torch."""
import torch
from torch import nn


class UNet(nn.Module):
    """examples/models/unet.cnn."""

    def __init__(self, classes=3):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.batchnorm1 = nn.BatchNorm2d(16)
        self.e1 = nn.Conv2d(16, 16, 3, padding=1)
        self.e2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv4 = nn.Conv2d(32, 64, 3, padding=1)
        self.up2 = nn.ConvTranspose2d(64, 32, 2, stride=2)
        self.conv5 = nn.Conv2d(64, 32, 3, padding=1)
        self.conv6 = nn.Conv2d(48, 16, 3, padding=1)
        self.conv7 = nn.Conv2d(16, classes, 1)

    def forward(self, x):
        x = torch.relu(self.batchnorm1(self.conv1(x)))
        e1 = torch.relu(self.e1(x))
        x = nn.functional.max_pool2d(e1, 2)
        e2 = torch.relu(self.e2(x))
        x = nn.functional.max_pool2d(e2, 2)
        x = torch.relu(self.conv4(x))
        x = torch.cat([self.up2(x), e2], dim=1)
        x = torch.relu(self.conv5(x))
        x = nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        x = torch.cat([x, e1], dim=1)
        x = torch.relu(self.conv6(x))
        return self.conv7(x)  # logits; softmax over dim 1 in the loss


class MobileNetV3Block(nn.Module):
    """examples/models/mobilenetv3_block.cnn."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(16, 64, 1, bias=False)
        self.batchnorm1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1, groups=64, bias=False)
        self.x = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 16, 1)
        self.conv4 = nn.Conv2d(16, 64, 1)
        self.conv5 = nn.Conv2d(64, 16, 1, bias=False)
        # Default names count every item of a kind, named or not: `x` is the second
        # batchnorm, so the next unnamed one is batchnorm3.
        self.batchnorm3 = nn.BatchNorm2d(16)
        self.dense1 = nn.Linear(16, 10)

    def forward(self, inp):
        y = nn.functional.hardswish(self.batchnorm1(self.conv1(inp)))
        x = nn.functional.hardswish(self.x(self.conv2(y)))
        g = nn.functional.adaptive_avg_pool2d(x, 1)
        g = nn.functional.hardsigmoid(self.conv4(torch.relu(self.conv3(g))))
        y = self.batchnorm3(self.conv5(x * g)) + inp
        return self.dense1(nn.functional.adaptive_avg_pool2d(y, 1).flatten(1))


class DenseNetBlock(nn.Module):
    """examples/models/densenet_block.cnn."""

    def __init__(self):
        super().__init__()
        self.s = nn.Conv2d(3, 24, 3, padding=1, bias=False)
        self.batchnorm1 = nn.BatchNorm2d(24)
        self.conv2 = nn.Conv2d(24, 12, 3, padding=1, bias=False)
        self.batchnorm2 = nn.BatchNorm2d(36)
        self.conv3 = nn.Conv2d(36, 12, 3, padding=1, bias=False)
        self.batchnorm3 = nn.BatchNorm2d(48)
        self.conv4 = nn.Conv2d(48, 12, 3, padding=1, bias=False)
        self.batchnorm4 = nn.BatchNorm2d(60)
        self.conv5 = nn.Conv2d(60, 30, 1, bias=False)
        self.batchnorm5 = nn.BatchNorm2d(30)
        self.dense1 = nn.Linear(30, 10)

    def forward(self, x):
        s = self.s(x)
        d1 = torch.cat([self.conv2(torch.relu(self.batchnorm1(s))), s], 1)
        d2 = torch.cat([self.conv3(torch.relu(self.batchnorm2(d1))), d1], 1)
        d3 = torch.cat([self.conv4(torch.relu(self.batchnorm3(d2))), d2], 1)
        y = nn.functional.avg_pool2d(self.conv5(torch.relu(self.batchnorm4(d3))), 2)
        y = nn.functional.adaptive_avg_pool2d(torch.relu(self.batchnorm5(y)), 1)
        return self.dense1(y.flatten(1))


if __name__ == "__main__":
    for module, shape in [(UNet(), (2, 3, 64, 64)), (MobileNetV3Block(), (2, 16, 32, 32)), (DenseNetBlock(), (2, 3, 32, 32))]:
        out = module(torch.zeros(shape))
        count = sum(p.numel() for p in module.parameters())
        print(f"{type(module).__name__}: {count} parameters, output {tuple(out.shape)}")
