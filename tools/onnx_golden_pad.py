#!/usr/bin/python3
"""Golden data for tests/test_onnx.c: a small CNN built in PyTorch whose
export has a Pad for the importer to fold: average pooling that counts its
padding (nn.AvgPool2d(3, stride=1, padding=1), count_include_pad=True, which
torch.onnx.export writes at opset 13 as Constant -> Pad -> AveragePool)
between a convolution with ReLU and max pooling, flatten and a linear layer.
Writes the model, an input batch and PyTorch's logits as ONNX TensorProto
files, and a copy of the model whose convolution's padding is moved into a
Pad before it (Constant -> Pad -> Conv with pads 0) and with Identity nodes
on the way (the pads, the conv's weight, the ReLU's output): the same logits;
and small cases with numpy's values (small_cases).

usage: /usr/bin/python3 tools/onnx_golden_pad.py OUTDIR   (needs torch and onnx)"""
import os
import sys

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import torch
import torch.nn as nn

from onnx_golden import save


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.avg = nn.AvgPool2d(3, stride=1, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        x = self.avg(torch.relu(self.conv(x)))
        return self.fc(self.flat(self.pool(x)))


def conv_padding_as_pad(model):
    """The Conv's pads [1, 1, 1, 1] become a Pad of zeros before it; Identity
    nodes pass on the pads, the Conv's weight and the ReLU's output."""
    g = model.graph
    k, conv = next((i, n) for i, n in enumerate(g.node) if n.op_type == "Conv")
    pads = next(a for a in conv.attribute if a.name == "pads")
    del pads.ints[:]
    pads.ints.extend([0, 0, 0, 0])
    new = [onnx.helper.make_node("Constant", [], ["conv_pads"], name="/conv/PadConstant",
                                 value=onnx.numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64))),
           onnx.helper.make_node("Identity", ["conv_pads"], ["conv_pads_id"], name="/conv/PadIdentity"),
           onnx.helper.make_node("Pad", [conv.input[0], "conv_pads_id"], ["conv_padded"], name="/conv/Pad",
                                 mode="constant"),
           onnx.helper.make_node("Identity", [conv.input[1]], ["conv.weight.id"], name="/conv/WeightIdentity")]
    conv.input[0] = "conv_padded"
    conv.input[1] = "conv.weight.id"
    for n in reversed(new):
        g.node.insert(k, n)
    k, relu = next((i, n) for i, n in enumerate(g.node) if n.op_type == "Relu")
    g.node.insert(k + 1, onnx.helper.make_node("Identity", [relu.output[0]], ["relu_id"], name="/ReluIdentity"))
    for n in g.node[k + 2:]:
        for i, name in enumerate(n.input):
            if name == relu.output[0]:
                n.input[i] = "relu_id"


def window_reduce(x, k, f):
    """f over each k x k window (stride 1) of x [N, C, H, W]."""
    n, c, h, w = x.shape
    return np.array([[[[f(x[a, b, i:i + k, j:j + k]) for j in range(w - k + 1)] for i in range(h - k + 1)]
                      for b in range(c)] for a in range(n)], np.float32)


def small_cases(out):
    """Cases in the layout of ONNX's node tests (model.onnx,
    test_data_set_0/input_0.pb, output_0.pb), expected values from numpy:
    Pad's opset 10 attribute form, -inf before a MaxPool, Constants from
    value_float and value_ints, an Identity of a constant."""
    from onnx import TensorProto, helper
    x = np.random.RandomState(5).randn(3, 2, 5, 5).astype(np.float32)
    hw = ((0, 0), (0, 0), (1, 0), (0, 1))  # top 1, right 1
    pads = [0, 0, 1, 0, 0, 0, 0, 1]
    cases = {
        "pad_opset10_avgpool": (10, [
            helper.make_node("Pad", ["x"], ["p"], name="pad", mode="constant", pads=pads, value=0.0),
            helper.make_node("AveragePool", ["p"], ["q"], name="avg", kernel_shape=[2, 2]),
            helper.make_node("Flatten", ["q"], ["y"], name="flat")],
            window_reduce(np.pad(x, hw), 2, np.mean)),
        "pad_maxpool_neg_inf": (13, [
            helper.make_node("Constant", [], ["pads"], name="pads", value_ints=pads),
            helper.make_node("Constant", [], ["v"], name="v", value_float=float("-inf")),
            helper.make_node("Pad", ["x", "pads", "v"], ["p"], name="pad", mode="constant"),
            helper.make_node("MaxPool", ["p"], ["q"], name="max", kernel_shape=[2, 2]),
            helper.make_node("Constant", [], ["shape"], name="shape", value_ints=[0, -1]),
            helper.make_node("Identity", ["shape"], ["shape_id"], name="shape_id"),
            helper.make_node("Reshape", ["q", "shape_id"], ["y"], name="reshape")],
            window_reduce(np.pad(x, hw, constant_values=-np.inf), 2, np.max)),
    }
    for name, (opset, nodes, y) in cases.items():
        y = y.reshape(len(x), -1)
        g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 5, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", y.shape[1]])])
        m = helper.make_model(g, producer_name="onnx_golden_pad.py", opset_imports=[helper.make_opsetid("", opset)])
        onnx.checker.check_model(m)
        d = os.path.join(out, "pad_cases", name, "test_data_set_0")
        os.makedirs(d, exist_ok=True)
        onnx.save(m, os.path.join(out, "pad_cases", name, "model.onnx"))
        save(x, "x", os.path.join(d, "input_0.pb"))
        save(y, "y", os.path.join(d, "output_0.pb"))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(11)
    net = Net().eval()
    x = torch.randn(4, 2, 8, 8)
    with torch.no_grad():
        y = net(x)
    path = os.path.join(out, "pad_small.onnx")
    torch.onnx.export(net, x, path, input_names=["image"], output_names=["logits"], opset_version=13,
                      do_constant_folding=False, dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load(path)
    onnx.checker.check_model(model)
    conv_padding_as_pad(model)
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "pad_small_conv.onnx"))
    save(x.numpy(), "image", os.path.join(out, "pad_small_input.pb"))
    save(y.numpy(), "logits", os.path.join(out, "pad_small_output.pb"))
    small_cases(out)


if __name__ == "__main__":
    main()
