#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build, run the GPU tests, and record the
# GPU figures of issue 7 in bench/results/gpu-<device>.md (also under $OUT
# when set, e.g. on a lent device machine).
#   1. ctest -L gpu: every CUDA kernel against the CPU backend, the GPU codec
#      byte for byte against the CPU codec, golden logits on the CUDA backend,
#      stage workers on the GPU;
#   2. sparq bench gpu: forward MFU at OPT-1.3B (bf16, fp16, tf32, fp32 GEMMs) and
#      OPT-6.7B shapes, device memory per stage vs first-order, two-stage
#      step with overlap on/off;
#   3. bench_codec_gpu: codec throughput vs HBM bandwidth, cuSPARSE SpMM.
# Usage: scripts/gpu.sh [--tests-only]
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS=${JOBS:-$(nproc)}
command -v nvidia-smi >/dev/null && nvidia-smi -L || { echo "no NVIDIA GPU visible"; exit 1; }

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSPARQ_CUDA=ON >build.log 2>&1 || { cat build.log; exit 1; }
cmake --build build -j "$JOBS"
echo "== GPU tests"
(cd build && ctest -L gpu --output-on-failure --timeout 600)
[ "${1:-}" = "--tests-only" ] && exit 0

dev=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1 | tr ' ' '-' | tr -cd 'A-Za-z0-9.-')
res=bench/results/gpu-${dev}.md
{
  echo "# GPU figures on ${dev} (scripts/gpu.sh, $(date -u +%F))"
  echo
  for g in bf16 fp16 tf32 fp32; do
    echo "## sparq bench gpu --gemm $g --shape opt-1.3b --batch 4 --seq 512 --stages 2 --micro 4"
    build/sparq bench gpu --gemm $g --shape opt-1.3b --batch 4 --seq 512 --stages 2 --micro 4
    echo
  done
  echo '## sparq bench gpu --gemm bf16 --shape opt-6.7b --batch 4 --seq 512 --stages 2 --micro 4'
  build/sparq bench gpu --gemm bf16 --shape opt-6.7b --batch 4 --seq 512 --stages 2 --micro 4
  echo
  echo '## bench_codec_gpu'
  build/bench/bench_codec_gpu
} | tee "$res"
if [ -n "${OUT:-}" ]; then cp "$res" "$OUT/"; fi
echo "figures written to $res"
