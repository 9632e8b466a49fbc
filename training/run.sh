#!/usr/bin/env bash
# npm run train: generate, train, export, evaluate and write the model card of the
# shipped model, from fixed seeds. Options go to train.py (e.g. --epochs 1 for a try).
set -euo pipefail
cd "$(dirname "$0")"
bash install-deps.sh
PY=/usr/bin/python3
OUT=${IRIS_MODEL_OUT:-../assets/models/shapes-base}
RUN=${IRIS_RUN_DIR:-runs/shapes-base}
TEST=${IRIS_TEST_DIR:-data/test}
TEST_SIZE=${IRIS_TEST_SIZE:-1000}
TEST_OOD=${IRIS_TEST_OOD:-600}  # out-of-domain lines after the scenes (200 of them photographs)
mkdir -p "$RUN" "$OUT"
start=$(date +%s)

echo "== held-out test set: $TEST_SIZE scenes and $TEST_OOD out-of-domain images (seeds never used in training)"
$PY -c "import data; data.write_folder('$TEST', 'test', $TEST_SIZE, ood_count=$TEST_OOD)"

echo "== train"
$PY train.py --out "$RUN" "$@"

echo "== export to $OUT"
$PY export.py --checkpoint "$RUN/model.pt" --out "$OUT" --parity "$OUT/parity.json"

echo "== draft model for speculative decoding (one decoder layer, distilled from the main one)"
$PY train_draft.py --teacher "$RUN/model.pt" --out "$RUN/draft"
$PY export.py --checkpoint "$RUN/draft/model.pt" --out "$OUT/draft" --draft

echo "== evaluate (PyTorch) on $TEST"
$PY evaluate.py --checkpoint "$RUN/model.pt" --folder "$TEST" --out "$RUN/eval_pytorch.json" --ood-out "$RUN/eval_ood_pytorch.json"

$PY model_card.py --run "$RUN" --model "$OUT" --minutes $(( ($(date +%s) - start) / 60 ))

echo "== int8 and fp16 variants, and the quality table through Iris's TypeScript pipeline"
node ../bin/iris.js quantize "$OUT" --dtype all
node ../bin/iris.js eval "$TEST" --model "$OUT"
echo "== done in $(( $(date +%s) - start )) s"
