#!/usr/bin/env bash
# The main job: set up, build, train the 3-layer MLP with Layca-SGD on the
# real Fashion-MNIST data set for two epochs (rotation recorded every 10 steps),
# and draw its layer rotation
# curves and training curves into runs/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cd "$root"
mkdir -p runs/demo
./build/tools/layca train models/mlp3.json --data mnist:/usr/share/datasets/fashion-mnist \
  --metrics runs/demo/metrics.jsonl --save runs/demo/weights.safetensors --rotation-every 10 "$@"
./build/tools/layca plot runs/demo/metrics.jsonl --title "mlp3, Layca-SGD, Fashion-MNIST"
echo "metrics: runs/demo/metrics.jsonl, weights: runs/demo/weights.safetensors" >&2
