#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the demo job — a
# 2-stage pipelined ZO fine-tuning run of the small OPT model that ships in
# models/ (two worker processes on this machine, activations 8-bit quantized
# and sent sparse over UCX), with evaluation before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
echo
echo "== sparq launch: 2 stages, ZO fine-tuning of opt-mini on the sentiment data"
rm -rf runs/demo
./build/sparq launch examples/pipeline-opt-mini.yaml --set output=runs/demo \
  --set train.steps=${DEMO_STEPS:-200}
echo
echo "run folders: runs/demo/stage-0, runs/demo/stage-1 (runlog.jsonl is the checkpoint;"
echo "metrics.jsonl has per-step losses, compute/encode/wait times and bytes on the wire)"
