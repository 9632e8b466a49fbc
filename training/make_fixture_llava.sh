#!/usr/bin/env bash
# The LLaVA-layout fixture assets/models/tiny-random-llava: the joint model's tiny preset,
# trained 128 steps from seed 0 (fp32, 1 thread: byte-for-byte reproducible; about 20 s),
# exported by export_joint.py, its PyTorch references checked in onnxruntime (parity.json).
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../assets/models}/tiny-random-llava
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 train_joint.py --preset tiny --out "$tmp/run" --train-size 2048 --val-size 64 --epochs 1 --batch 16 \
  --max-steps 128 --val-every 0 --threads 1 --precision fp32
rm -rf "$out"
/usr/bin/python3 export_joint.py --checkpoint "$tmp/run/model.pt" --out "$out" --parity "$out/parity.json"
node onnx_parity.mjs "$out" "$out/parity.json"
