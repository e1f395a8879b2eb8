#!/usr/bin/python3
"""Times the training step of layca model files in PyTorch, for side-by-side
comparison with layca-bench.

On the CPU (default) it uses Debian's python3-torch with the fair threading
settings of the project's baselines: MLPs run with one torch thread (GEMMs
still use 2 OpenBLAS threads); CNNs with OPENBLAS_NUM_THREADS=1 and two
torch threads.  PyTorch is only as fast as the BLAS it finds: install
libopenblas0-pthread (Debian's default libblas3 is the slow reference BLAS).

With --device cuda the model, data and optimizer live on the GPU and each
timed span ends with torch.cuda.synchronize(), so it covers the GPU's work
(TF32 matmuls stay off: fp32 as layca).

usage: bench_torch.py MODEL.json... [--batch N] [--steps N] [--warmup N] [--device cpu|cuda]
Prints one JSON line per model with steps_per_s, ms and images_per_s."""
import argparse
import json
import math
import os
import sys
import time


def is_cnn(model):
    return any(n["op"] in ("conv2d", "maxpool", "avgpool", "global_avgpool") for n in model["nodes"])


def build(model, torch):
    nn = torch.nn
    defaults = model.get("defaults", {})
    shape = {"input": list(model["input"]["shape"])}
    mods = nn.ModuleDict()
    order = []
    prev = "input"
    for nd in model["nodes"]:
        name, op = nd["name"], nd["op"]
        ins = nd.get("inputs", [prev])
        s = shape[ins[0]]
        bias = nd.get("bias", defaults.get("bias", False))
        if op == "dense":
            mods[name] = nn.Linear(s[0], nd["units"], bias=bias)
            out = [nd["units"]]
        elif op == "conv2d":
            k = nd["kernel"] if isinstance(nd["kernel"], list) else [nd["kernel"]] * 2
            st = nd.get("stride", 1)
            st = st if isinstance(st, list) else [st, st]
            pad = nd.get("pad", "same")
            if pad == "same":
                p = [(k[0] - 1) // 2, (k[1] - 1) // 2]
            elif pad == "valid":
                p = [0, 0]
            else:
                p = pad if isinstance(pad, list) else [pad, pad]
            mods[name] = nn.Conv2d(s[0], nd["filters"], k, st, p, bias=bias)
            oh = (s[1] + 2 * p[0] - k[0]) // st[0] + 1
            ow = (s[2] + 2 * p[1] - k[1]) // st[1] + 1
            out = [nd["filters"], oh, ow]
        elif op == "batchnorm":
            aff = nd.get("affine", False)
            mods[name] = (nn.BatchNorm2d if len(s) == 3 else nn.BatchNorm1d)(
                s[0], eps=nd.get("epsilon", 1e-3), momentum=1 - nd.get("momentum", 0.99), affine=aff)
            out = s
        elif op in ("maxpool", "avgpool"):
            k = nd["kernel"] if isinstance(nd["kernel"], list) else [nd["kernel"]] * 2
            st = nd.get("stride", k)
            st = st if isinstance(st, list) else [st, st]
            mods[name] = (nn.MaxPool2d if op == "maxpool" else nn.AvgPool2d)(k, st)
            out = [s[0], (s[1] - k[0]) // st[0] + 1, (s[2] - k[1]) // st[1] + 1]
        elif op == "global_avgpool":
            mods[name] = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
            out = [s[0]]
        elif op == "dropout":
            mods[name] = nn.Dropout(nd["rate"])
            out = s
        elif op == "relu":
            mods[name] = nn.ReLU()
            out = s
        elif op == "flatten":
            mods[name] = nn.Flatten()
            out = [math.prod(s)]
        elif op == "add":
            out = s
        else:
            raise SystemExit(f"bench_torch: op {op} is not supported")
        shape[name] = out
        order.append((name, op, ins))
        prev = name

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.m = mods

        def forward(self, x):
            v = {"input": x}
            last = None
            for name, op, ins in order:
                if op == "add":
                    v[name] = v[ins[0]] + v[ins[1]]
                else:
                    v[name] = self.m[name](v[ins[0]])
                last = name
            return v[last]

    return Net()


def main():
    # OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on some machines to work
    # around old OpenBLAS bugs, slow the current one 1.5x: measure without
    # them (they must be gone before torch loads OpenBLAS).
    if "OPENBLAS_CORETYPE" in os.environ or "OPENBLAS_L2_SIZE" in os.environ:
        env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
        os.execve(sys.executable, [sys.executable] + sys.argv, env)
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--json", action="store_true", help="accepted for symmetry with layca-bench (always JSON)")
    args = ap.parse_args()
    import torch
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("bench_torch: --device cuda: this PyTorch sees no CUDA device")
    if cuda:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(args.device)

    def sync():
        if cuda:
            torch.cuda.synchronize()

    for path in args.models:
        with open(path) as f:
            model = json.load(f)
        cnn = is_cnn(model)
        if not cuda:
            torch.set_num_threads(2 if cnn else 1)
        net = build(model, torch).to(dev)
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        x = torch.randn(args.batch, *model["input"]["shape"], device=dev)
        y = torch.randint(0, model["classes"], (args.batch,), device=dev)
        lossf = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad()
            loss = lossf(net(x), y)
            loss.backward()
            opt.step()

        for _ in range(args.warmup):
            step()
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        dt = (time.perf_counter() - t0) / args.steps
        rec = {"device": "pytorch-" + args.device, "what": "train_step", "model": path, "batch": args.batch,
               "ms": round(dt * 1e3, 3), "steps_per_s": round(1 / dt, 2), "images_per_s": round(args.batch / dt, 1),
               "torch": torch.__version__}
        if cuda:
            rec["gpu"] = torch.cuda.get_device_name(0)
        else:
            rec["threads"] = torch.get_num_threads()
            rec["openblas_threads"] = os.environ.get("OPENBLAS_NUM_THREADS", "default")
        print(json.dumps(rec))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
