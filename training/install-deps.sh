#!/usr/bin/env bash
# Installs the Debian packages the trainer and its smoke test need (no PyPI).
set -euo pipefail
if /usr/bin/python3 -c 'import torch, numpy, PIL, onnx' 2>/dev/null && [ -e /usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3 ]; then exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy python3-pil python3-onnx libopenblas0-pthread >/dev/null
/usr/bin/python3 -c 'import torch, numpy, PIL, onnx; print("torch", torch.__version__, "onnx", onnx.__version__)'
