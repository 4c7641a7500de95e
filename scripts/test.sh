#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this):
#   1. install missing Debian packages,
#   2. Release build (gcc; CUDA compiled and linked when nvcc is present) + ctest
#      (GPU tests report "skipped" without a GPU),
#   3. the CUDA code built against the host emulation of CUDA (SPARQ_CUDA=EMU,
#      tests/gpu_emu) and the gpu tests run on it: kernels, GPU codec, golden
#      logits on the CUDA backend, GPU stage workers (none may skip),
#   4. ASan/UBSan build with clang + libFuzzer: the CPU tests again under the
#      sanitizers, and every fuzz target for a bounded time.
# Usage: scripts/test.sh [--quick]   (--quick: skip steps 3 and 4)
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
FUZZ_SECONDS=${FUZZ_SECONDS:-30}

scripts/deps.sh

echo "== release build and tests"
scripts/build.sh
(cd build && ctest --output-on-failure -j "$JOBS" --timeout 600)

if [ "${1:-}" = "--quick" ]; then exit 0; fi

echo "== gpu tests on the host emulation of CUDA"
cmake -S . -B build-emu -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARQ_CUDA=EMU \
  >build-emu.log 2>&1 || { cat build-emu.log; exit 1; }
cmake --build build-emu -j "$JOBS"
(cd build-emu && ctest --output-on-failure -j "$JOBS" --timeout 600 -L gpu) | tee build-emu/ctest.log
if grep -q "Skipped" build-emu/ctest.log; then
  echo "error: a gpu test skipped on the emulated device (build-emu/ctest.log)" >&2
  exit 1
fi

echo "== sanitizer build (clang, ASan+UBSan) with fuzz targets"
CC=clang cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARQ_SANITIZE=ON \
  -DSPARQ_FUZZ=ON -DSPARQ_CUDA=OFF -DSPARQ_NATIVE=ON >build-asan.log 2>&1 || { cat build-asan.log; exit 1; }
cmake --build build-asan -j "$JOBS"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
(cd build-asan && ctest --output-on-failure -j "$JOBS" --timeout 900 -LE "gpu|slow")
