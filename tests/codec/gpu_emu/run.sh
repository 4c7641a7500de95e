#!/bin/bash
# Build and run the GPU codec's test (and optionally its benchmark) against a
# host emulation of CUDA, for machines without a GPU. See README.md.
#   tests/codec/gpu_emu/run.sh [--san] [--full] [--bench] [OUT_DIR]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
M=$(cd "$HERE/../../.." && pwd)
SAN=0 FULL=0 BENCH=0 OUT=/tmp/sq_gpu_emu
for a in "$@"; do
  case $a in
    --san) SAN=1 ;;
    --full) FULL=1 ;;
    --bench) BENCH=1 ;;
    -*) echo "usage: $0 [--san] [--full] [--bench] [OUT_DIR]" >&2; exit 2 ;;
    *) OUT=$a ;;
  esac
done
mkdir -p "$OUT/gen" "$OUT/obj"
rm -f "$OUT"/obj/*.o
for f in "$M"/codec/cuda/*.cu; do python3 "$HERE/transform.py" "$f" "$OUT/gen/$(basename "$f" .cu).cpp"; done
FL="-O1 -g -ffp-contract=off -fno-math-errno -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE"
[ $SAN = 1 ] && FL="$FL -fsanitize=address,undefined -fno-omit-frame-pointer"
INC="-I$HERE/include -I$M/include -I$M/codec -I$M/codec/cuda -I$M/tests/codec -I$M/bench"
W="-Wall -Wextra -Wno-unused-parameter"
for f in "$OUT"/gen/*.cpp "$HERE/emu.cpp"; do
  g++ -std=c++17 $W -Wno-unused-function -Wno-unknown-pragmas $FL $INC -c "$f" -o "$OUT/obj/$(basename "$f").o" &
done
for f in "$M"/codec/*.c "$M"/base/*.c; do
  case $f in */*_disabled.c) continue ;; esac
  gcc -std=c17 $W -Wno-format-truncation $FL -march=native $INC -c "$f" -o "$OUT/obj/$(basename "$f").o" &
done
wait
LIB=$(ls "$OUT"/obj/*.o)
gcc -std=c17 $W $FL $INC -c "$M/tests/codec/test_codec_gpu.c" -o "$OUT/test.o"
gcc -std=c17 $W $FL $INC -c "$M/tests/codec/codec_test_util.c" -o "$OUT/util.o"
g++ $FL $LIB "$OUT/test.o" "$OUT/util.o" -o "$OUT/test_codec_gpu" -lcmocka -lm
if [ $BENCH = 1 ]; then
  for f in "$M/bench/bench_codec_gpu.c" "$M/bench/bench_common.c" "$HERE/emu_blas.c"; do
    gcc -std=c17 $W $FL -fopenmp $INC -c "$f" -o "$OUT/b_$(basename "$f").o"
  done
  g++ $FL -fopenmp $LIB "$OUT"/b_*.o -o "$OUT/bench_codec_gpu" -lopenblas -lm
  "$OUT/bench_codec_gpu" --rows 40 --cols 96,200 --out 72 --reps 1 --warmup 1
fi
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
if [ $FULL = 1 ]; then "$OUT/test_codec_gpu"; else SQ_GPU_TEST_QUICK=1 "$OUT/test_codec_gpu"; fi
