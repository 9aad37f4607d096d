#!/usr/bin/env bash
# Items/s of `harness eval` and of lm-eval 0.4 + transformers (float32, CPU) on the same task,
# data, limit and machine, each from its own in-process timer (model loading excluded).
#
#   scripts/bench-vs-lm-eval.sh TASK LIMIT [LM_EVAL_BATCH]     e.g. hellaswag 100
#
# Needs the lm-eval venv of scripts/lm_eval_compare.py (LMEVAL_PY, default /tmp/lmvenv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
task=$1 limit=$2 lm_batch=${3:-1}
py=${LMEVAL_PY:-/tmp/lmvenv/bin/python}
harness=${HARNESS:-${CARGO_TARGET_DIR:-target}/release/harness}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$harness" eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --tasks "$task" --limit "$limit" \
    --out "$out/harness" >/dev/null 2>&1
"$py" scripts/lm_eval_compare.py run --tasks "$task" --limit "$limit" --batch-size "$lm_batch" \
    --out "$out/lm-eval" >/dev/null 2>&1
ours=$(awk -F, 'NR==2 {print $11}' "$out/harness/scores.csv")
theirs=$("$py" -c "import json,sys; print(json.load(open(sys.argv[1]))['tasks'][sys.argv[2]]['items_per_s'])" \
    "$out/lm-eval/timings.json" "$task")
python3 - "$task" "$limit" "$ours" "$theirs" "$lm_batch" <<'PY'
import sys
task, limit, ours, theirs, b = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
print(f"{task} limit {limit}: harness {ours:.2f} items/s, lm-eval (batch {b}) {theirs:.2f} items/s, ratio {ours / theirs:.2f}x")
PY
/tmp/lmvenv/bin/python scripts/lm_eval_compare.py compare --lm-eval "$out/lm-eval" --harness "$out/harness" | tail -3
