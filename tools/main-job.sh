#!/usr/bin/env bash
# The README's main job: set up, build, and run hone's current main job on data the program makes.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup-debian.sh
bash tools/build.sh hone
./build/tools/hone demo "$@"
