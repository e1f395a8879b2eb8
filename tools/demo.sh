#!/usr/bin/env bash
# The main job: set up, build, and train the 3-layer MLP on the real
# Fashion-MNIST data set for two epochs, writing metrics to runs/demo/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/tools/setup.sh"
cd "$root"
mkdir -p runs/demo
./build/tools/layca train models/mlp3.json --data mnist:/usr/share/datasets/fashion-mnist --epochs 2 \
  --metrics runs/demo/metrics.jsonl --save runs/demo/weights.safetensors "$@"
echo "metrics: runs/demo/metrics.jsonl, weights: runs/demo/weights.safetensors"
