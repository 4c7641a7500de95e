#!/usr/bin/env bash
# Install the Debian 12 packages sparq needs, only those that are missing.
# Usage: scripts/deps.sh            (uses sudo when not root)
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ninja-build   # toolchain
  clang libclang-rt-14-dev                       # fuzzers (libFuzzer) and sanitizers
  libopenblas-dev                                # CPU GEMM
  libyaml-dev                                    # job configs
  libcjson-dev                                   # config.json, safetensors headers, vocab.json
  libpcre2-dev                                   # GPT-2 pre-tokenizer regex (Unicode classes)
  libucx-dev ucx-utils                           # transport, ucx_perftest
  libcmocka-dev                                  # unit tests (run by ctest)
  python3                                        # golden-test driver, bench tables
  iproute2                                       # ip netns + tc: bench/netns_pipeline.sh
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#PKGS[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
