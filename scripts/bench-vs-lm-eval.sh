#!/usr/bin/env bash
# Items/s of `harness eval` and of lm-eval 0.4 + transformers (float32, CPU, torch with 2 threads)
# on the same task, data, limit and machine, each from its own in-process timer (model loading
# excluded), then the per-item comparison (log-likelihoods, or the generated responses).
#
#   scripts/bench-vs-lm-eval.sh TASK LIMIT [LM_EVAL_BATCH] [HARNESS_BATCH] [-- EXTRA ARGS...]
#   e.g. scripts/bench-vs-lm-eval.sh hellaswag 100
#        scripts/bench-vs-lm-eval.sh mmlu_anatomy 40 8 16 -- --shots 5
#        scripts/bench-vs-lm-eval.sh gsm8k_cot 4 8 32 -- --samples 8 --temperature 0.6
#
# EXTRA ARGS (--shots, --samples, --temperature) go to both sides; HARNESS_ARGS (e.g.
# "--weights direct") to the harness alone. Needs the lm-eval venv of
# scripts/lm_eval_compare.py (LMEVAL_PY, default /tmp/lmvenv/bin/python). LM_EVAL_BATCH=0 skips
# lm-eval (harness only); HARNESS_BATCH=0 skips the harness.
set -euo pipefail
cd "$(dirname "$0")/.."
task=$1 limit=$2 lm_batch=${3:-1} our_batch=${4:-8}
shift $(($# < 4 ? $# : 4))
[[ ${1:-} == -- ]] && shift
extra=("$@")
read -ra harness_args <<<"${HARNESS_ARGS:-}"
py=${LMEVAL_PY:-/tmp/lmvenv/bin/python}
harness=${HARNESS:-${CARGO_TARGET_DIR:-target}/release/harness}
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
if [[ $our_batch != 0 ]]; then
    "$harness" eval --model models/SmolLM2-135M-Instruct.Q4_1.gguf --tasks "$task" --limit "$limit" \
        --batch-size "$our_batch" "${extra[@]}" "${harness_args[@]}" --out "$out/harness" >"$out/harness.log" 2>&1
    python3 - "$out/harness" "$task" "$our_batch" <<'PY'
import json, sys
from pathlib import Path
run, task, batch = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in (run / "samples" / f"{task}.jsonl").read_text().splitlines()]
seconds = sum(r["seconds"] for r in rows)
line = f"harness (batch {batch}): {len(rows)} items in {seconds:.1f} s, {len(rows) / seconds:.3f} items/s"
if "generated_tokens" in rows[0]:
    tokens = sum(sum(r["generated_tokens"]) for r in rows)
    line += f", {tokens} generated tokens, {tokens / seconds:.1f} tokens/s"
print(line)
PY
fi
if [[ $lm_batch != 0 ]]; then
    "$py" scripts/lm_eval_compare.py run --tasks "$task" --limit "$limit" --batch-size "$lm_batch" \
        "${extra[@]}" --out "$out/lm-eval" >"$out/lm-eval.log" 2>&1
    "$py" - "$out/lm-eval/timings.json" "$task" "$lm_batch" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tasks"][sys.argv[2]]
line = f"lm-eval (batch {sys.argv[3]}): {t['items']} items in {t['seconds']:.1f} s, {t['items_per_s']:.3f} items/s"
if "generated_tokens" in t:
    line += f", {t['generated_tokens']} tokens in the responses"
print(line)
PY
fi
if [[ $our_batch != 0 && $lm_batch != 0 ]]; then
    "$py" scripts/lm_eval_compare.py compare --lm-eval "$out/lm-eval" --harness "$out/harness" | tail -4 || true
fi
echo "outputs in $out"
