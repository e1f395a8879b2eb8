#!/usr/bin/python3
"""Golden data for tests/test_onnx.c: a small residual CNN built in PyTorch
(conv-bn-relu, a residual Add, padded max pooling as in torchvision's ResNet
stem, padded average pooling, global average pooling, a linear layer,
dropout), exported with torch.onnx.export, with an input
batch, labels and PyTorch's outputs (logits) as ONNX TensorProto files.

usage: /usr/bin/python3 tools/onnx_golden.py OUTDIR   (needs torch and onnx)"""
import os
import sys

import onnx
import onnx.numpy_helper
import torch
import torch.nn as nn


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.block = Block(8)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.conv3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.flat = nn.Flatten()
        self.drop = nn.Dropout(0.25)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.bn(self.stem(x)))
        x = self.pool(self.block(x))
        x = self.avg(torch.relu(self.conv3(x)))
        return self.fc(self.drop(self.flat(self.gap(x))))


def save(t, name, path):
    onnx.save_tensor(onnx.numpy_helper.from_array(t, name), path)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(7)
    net = Net()
    # running statistics away from 0 and 1, so the test sees them used
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    net.eval()
    x = torch.randn(8, 3, 12, 12)
    labels = torch.randint(0, 10, (8,))
    with torch.no_grad():
        y = net(x)
    path = os.path.join(out, "resnet_small.onnx")
    # PRESERVE keeps the batchnorm nodes (EVAL would fold them into the convolutions)
    torch.onnx.export(net, x, path, input_names=["image"], output_names=["logits"], opset_version=13,
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False,
                      dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    onnx.checker.check_model(onnx.load(path))
    save(x.numpy(), "image", os.path.join(out, "resnet_small_input.pb"))
    save(labels.numpy(), "labels", os.path.join(out, "resnet_small_labels.pb"))
    save(y.numpy(), "logits", os.path.join(out, "resnet_small_output.pb"))


if __name__ == "__main__":
    main()
