#!/usr/bin/env bash
# Configure and build sparq into build/ (Release). Extra args go to cmake.
# Usage: scripts/build.sh [-DSPARQ_CUDA=OFF ...]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$JOBS"
