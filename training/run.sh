#!/usr/bin/env bash
# npm run train: generate, train, export, evaluate and write the model card of the
# shipped models, from fixed seeds. Options go to train.py (e.g. --epochs 1 for a try).
# IRIS_MODELS picks the models (comma-separated, default both):
#   base   shapes-base, the vision encoder-decoder (cross-attention) model
#   joint  shapes-joint, the joint-embedding model in the LLaVA layout (train_joint.py);
#          its options go in IRIS_JOINT_ARGS (e.g. IRIS_JOINT_ARGS="--epochs 1")
# e.g. IRIS_MODELS=joint npm run train  trains only the joint model.
set -euo pipefail
cd "$(dirname "$0")"
bash install-deps.sh
PY=/usr/bin/python3
MODELS=",${IRIS_MODELS:-base,joint},"
OUT=${IRIS_MODEL_OUT:-../assets/models/shapes-base}
RUN=${IRIS_RUN_DIR:-runs/shapes-base}
JOINT_OUT=${IRIS_JOINT_OUT:-../assets/models/shapes-joint}
JOINT_RUN=${IRIS_JOINT_RUN_DIR:-runs/shapes-joint}
TEST=${IRIS_TEST_DIR:-data/test}
TEST_SIZE=${IRIS_TEST_SIZE:-1000}
TEST_OOD=${IRIS_TEST_OOD:-600}  # out-of-domain lines after the scenes (200 of them photographs)
for m in ${MODELS//,/ }; do
  case "$m" in base|joint) ;; *) echo "IRIS_MODELS: unknown model '$m' (base, joint)" >&2; exit 2;; esac
done
start=$(date +%s)

echo "== held-out test set: $TEST_SIZE scenes and $TEST_OOD out-of-domain images (seeds never used in training)"
$PY -c "import data; data.write_folder('$TEST', 'test', $TEST_SIZE, ood_count=$TEST_OOD)"

if [[ "$MODELS" == *,base,* ]]; then
  mkdir -p "$RUN" "$OUT"
  echo "== shapes-base: train"
  $PY train.py --out "$RUN" "$@"

  echo "== export to $OUT"
  $PY export.py --checkpoint "$RUN/model.pt" --out "$OUT" --parity "$OUT/parity.json"

  echo "== draft model for speculative decoding (one decoder layer, distilled from the main one)"
  $PY train_draft.py --teacher "$RUN/model.pt" --out "$RUN/draft"
  $PY export.py --checkpoint "$RUN/draft/model.pt" --out "$OUT/draft" --draft

  echo "== Medusa heads for speculative decoding (trained on the exported model, written to $OUT/medusa)"
  $PY medusa.py --model "$OUT"

  echo "== evaluate (PyTorch) on $TEST"
  $PY evaluate.py --checkpoint "$RUN/model.pt" --folder "$TEST" --out "$RUN/eval_pytorch.json" --ood-out "$RUN/eval_ood_pytorch.json"

  echo "== the attention map that points best (the pointing game through Iris) into $OUT/attention.json"
  node ../bin/iris.js eval "$TEST" --model "$OUT" --attention --update-model

  $PY model_card.py --run "$RUN" --model "$OUT" --minutes $(( ($(date +%s) - start) / 60 ))

  echo "== int8 and fp16 variants, and the quality table through Iris's TypeScript pipeline"
  node ../bin/iris.js quantize "$OUT" --dtype all
  node ../bin/iris.js eval "$TEST" --model "$OUT" --update-model
  echo "== shapes-base done at $(( $(date +%s) - start )) s"
fi

if [[ "$MODELS" == *,joint,* ]]; then
  joint_start=$(date +%s)
  mkdir -p "$JOINT_RUN" "$JOINT_OUT"
  echo "== shapes-joint: train"
  # shellcheck disable=SC2086
  $PY train_joint.py --out "$JOINT_RUN" ${IRIS_JOINT_ARGS:-}

  echo "== export to $JOINT_OUT (LLaVA layout), onnxruntime vs PyTorch into parity.json"
  $PY export_joint.py --checkpoint "$JOINT_RUN/model.pt" --out "$JOINT_OUT" --parity "$JOINT_OUT/parity.json"
  node onnx_parity.mjs "$JOINT_OUT" "$JOINT_OUT/parity.json"

  echo "== evaluate (PyTorch) on $TEST"
  $PY evaluate.py --joint --checkpoint "$JOINT_RUN/model.pt" --folder "$TEST" --out "$JOINT_RUN/eval_pytorch.json" --ood-out "$JOINT_RUN/eval_ood_pytorch.json"

  node ../bin/iris.js eval "$TEST" --model "$JOINT_OUT" --attention --update-model

  $PY model_card.py --joint --run "$JOINT_RUN" --model "$JOINT_OUT" --minutes $(( ($(date +%s) - joint_start) / 60 ))

  echo "== int8 and fp16 variants, and the quality table through Iris's TypeScript pipeline"
  node ../bin/iris.js quantize "$JOINT_OUT" --dtype all
  node ../bin/iris.js eval "$TEST" --model "$JOINT_OUT" --update-model
  echo "== shapes-joint done in $(( $(date +%s) - joint_start )) s"
fi
echo "== done in $(( $(date +%s) - start )) s"
