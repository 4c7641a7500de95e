#!/bin/bash
# Build and run the CUDA backend's op test (tests/kernels/test_cuda_ops.c)
# against the host emulation of CUDA in tests/codec/gpu_emu (see its
# README.md), for machines without a GPU: kernels/cuda/*.cu are compiled as
# host C++ (every CUDA thread a fiber, cuBLAS a naive host GEMM), the CPU
# backend is the real one (OpenBLAS, OpenMP).
#   tests/kernels/gpu_emu_run.sh [--san] [OUT_DIR]
# --san: ASan + UBSan. The test runs at its full sizes (about 2-3 minutes
# emulated). Needs g++, python3, libopenblas.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
M=$(cd "$HERE/../.." && pwd)
EMU=$M/tests/codec/gpu_emu
SAN=0 OUT=/tmp/sq_kernels_gpu_emu
for a in "$@"; do
  case $a in
    --san) SAN=1 ;;
    -*) echo "usage: $0 [--san] [OUT_DIR]" >&2; exit 2 ;;
    *) OUT=$a ;;
  esac
done
mkdir -p "$OUT/gen" "$OUT/obj"
rm -f "$OUT"/obj/*.o "$OUT"/gen/*.cpp
for f in "$M"/kernels/cuda/*.cu; do python3 "$EMU/transform.py" "$f" "$OUT/gen/$(basename "$f" .cu).cpp"; done
FL="-O2 -g -ffp-contract=off -fno-math-errno -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
[ $SAN = 1 ] && FL="$FL -fsanitize=address,undefined -fno-omit-frame-pointer"
INC="-I$EMU/include -I$M/include -I$M/kernels/cuda -I$M/kernels/cpu $(pkg-config --cflags openblas 2>/dev/null || true)"
W="-Wall -Wextra -Wno-unused-parameter"
pids=()
for f in "$OUT"/gen/*.cpp "$EMU/emu.cpp"; do
  g++ -std=c++17 $W -Wno-unused-function -Wno-unknown-pragmas $FL $INC -c "$f" -o "$OUT/obj/$(basename "$f").o" & pids+=($!)
done
gcc -std=c17 $W $FL $INC -c "$EMU/emu_blas.c" -o "$OUT/obj/emu_blas.c.o" & pids+=($!)
for f in "$M"/kernels/cpu/*.c "$M"/base/*.c; do
  gcc -std=c17 $W -Wno-format-truncation $FL -march=native -fopenmp $INC -c "$f" -o "$OUT/obj/cpu_$(basename "$f").o" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done
gcc -std=c17 $W $FL $INC -c "$M/tests/kernels/test_cuda_ops.c" -o "$OUT/test.o"
g++ $FL -fopenmp "$OUT"/obj/*.o "$OUT/test.o" -o "$OUT/test_cuda_ops" -lopenblas -lm
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4}
"$OUT/test_cuda_ops"
