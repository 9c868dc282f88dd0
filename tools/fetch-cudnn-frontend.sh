#!/usr/bin/env bash
# Fetches the header-only cuDNN frontend (NVIDIA cudnn-frontend; Apache-2.0, a few files MIT)
# that kernels/cuda/attention_cudnn.cpp builds cuDNN's fused attention graphs with. It is not part
# of the CUDA toolkit; PyPI's nvidia-cudnn-frontend wheel carries its include/ folder. This script
# downloads that exact wheel (pinned version, file and sha256), and unpacks only include/ (and the
# licences) into
#   .cache/cudnn-frontend/include      (CMake looks for include/cudnn_frontend.h there)
# Quiet and does nothing when that version is already there. Without these headers everything still
# builds: attention runs our own CUDA kernel instead.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.32.0
# The wheel is tagged per Python version; its headers are not. Pinning the tags below makes pip
# fetch this one file whatever Python runs it.
wheel=nvidia_cudnn_frontend-1.32.0-cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl
wheel_sha=c6006556017a4d1c914c52a556c71b1267f2d6a0500f742e7b4edef539878df0
dest=.cache/cudnn-frontend
stamp="$version $wheel_sha"

if [ -f "$dest/include/cudnn_frontend.h" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi
source tools/fetch-wheel.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-cudnn-frontend: downloading nvidia-cudnn-frontend==$version from PyPI (12 MB, headers only are kept)" >&2
fetched=$(fetch_wheel fetch-cudnn-frontend "$wheel_sha" "$tmp" "nvidia-cudnn-frontend==$version" --only-binary=:all: \
  --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311)
[ "$(basename "$fetched")" = "$wheel" ] || { echo "fetch-cudnn-frontend: pip fetched $fetched, not $wheel" >&2; exit 1; }
python3 - "$tmp/$wheel" "$tmp/out" <<'PY'
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name in z.namelist():
        if name.startswith("include/") or "/licenses/" in name:
            z.extract(name, sys.argv[2])
PY
[ -f "$tmp/out/include/cudnn_frontend.h" ] || { echo "fetch-cudnn-frontend: no include/cudnn_frontend.h in $wheel" >&2; exit 1; }
mkdir -p "$tmp/out/licenses"
cp "$tmp"/out/*.dist-info/licenses/* "$tmp/out/licenses/" 2>/dev/null || true
rm -rf "$tmp"/out/*.dist-info
echo "$stamp" >"$tmp/out/VERSION"
# Replace the folder in one step (a half-written one never looks complete: VERSION comes last).
mkdir -p .cache
rm -rf "$dest.old"
[ -d "$dest" ] && mv "$dest" "$dest.old"
mv "$tmp/out" "$dest"
rm -rf "$dest.old"
echo "fetch-cudnn-frontend: cuDNN frontend $version headers in $dest/include" >&2
