#!/usr/bin/env bash
# Tiny random-weights model folders for fast tests, in both cache namings.
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../assets/models}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 -c "
import torch, train
from model import VisionLanguageModel
torch.manual_seed(0)
cfg = train.make_config('tiny')
torch.save({'config': cfg.to_dict(), 'state_dict': VisionLanguageModel(cfg).state_dict()}, '$tmp/tiny.pt')
"
/usr/bin/python3 export.py --checkpoint "$tmp/tiny.pt" --out "$out/tiny-random" --parity "$out/tiny-random/parity.json"
/usr/bin/python3 export.py --checkpoint "$tmp/tiny.pt" --out "$out/tiny-random-gpt2" --naming gpt2 --parity "$out/tiny-random-gpt2/parity.json"
bash make_fixture_llava.sh "$out"
