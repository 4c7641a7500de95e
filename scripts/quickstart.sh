#!/usr/bin/env bash
# Quick start: install what is missing, build, and run the demo job —
# zeroth-order fine-tuning of the small OPT model that ships in models/ on
# the sentiment data, with evaluation before and after.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh
echo
echo "== sparq logits: the model's next-token NLL on a few tokens"
./build/sparq logits --model models/opt-mini --tokens 2,133,812,16,10,1294 | cut -c1-200
echo
echo "== sparq train: ZO fine-tuning (MeZO/SPSA) of opt-mini on sentiment"
rm -rf runs/demo
./build/sparq train --config examples/sentiment-opt-mini.yaml --set output=runs/demo \
  --set train.steps=${DEMO_STEPS:-300} --set train.eval_every=100 --set train.log_every=50
echo
echo "run folder: runs/demo (runlog.jsonl is the checkpoint; metrics.jsonl has the curve)"
