#!/usr/bin/env bash
# Installs the Debian packages the trainer and its smoke test need (no PyPI), and the
# packaged images training/ood.py draws its out-of-domain photographs and text from:
# dataset-fashion-mnist (Fashion-MNIST, 30 MB), lomiri-wallpapers-16.04/-20.04 (15
# photographs, 27 MB), fonts-dejavu-core; and chromium, the browser test/browser/ drives
# with playwright-core (npm's playwright-core downloads no browser of its own); and
# redis-server and haproxy, the real components test/scale-out/ runs 3 replicas between.
set -euo pipefail
FILES=(/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3
       /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
       /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
       /usr/share/backgrounds/life_by_Aitzol_Berasategi.jpg
       /usr/share/backgrounds/Dragonfly_by_Bolly.jpg
       /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
       /usr/bin/chromium
       /usr/bin/redis-server
       /usr/sbin/haproxy)
present() {
  /usr/bin/python3 -c 'import torch, numpy, PIL, onnx' 2>/dev/null || return 1
  for f in "${FILES[@]}"; do [ -e "$f" ] || return 1; done
}
if present; then exit 0; fi
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch python3-numpy python3-pil python3-onnx \
  libopenblas0-pthread dataset-fashion-mnist lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 fonts-dejavu-core chromium redis-server haproxy >/dev/null
cd "$(dirname "$0")" && /usr/bin/python3 -c 'import torch, numpy, PIL, onnx, ood; assert ood.photo_sources_available(); print("torch", torch.__version__, "onnx", onnx.__version__)'
