#!/usr/bin/env bash
# The GPU checks of issue 9, run on a lent GPU machine from what scripts/gpu/prepare.sh packed:
#
#   scripts/gpu/check.sh .gpu/N     # one device call per part, carrying .gpu/N
#
# A call with an earlier part stashes it and returns. The call with the last part joins the
# bundle, recreates the paths the binaries were built with, and runs, in this order, each step
# under the time left (GPU_CHECK_SECONDS, default 560, inside the call's 600 s):
#   1. the wgpu adapter, and `harness logprobs` on wgpu against flex on this machine's CPU;
#   2. the fidelity tests on wgpu (tiny-model and SmolLM2 fixtures, greedy decoding included,
#      and wgpu_backend's eval against flex), tolerances as on flex;
#   3. Mistral-7B-shaped scoring, batch 8 × 512 tokens, f16 (PyTorch bf16 on an H200: 35,350
#      tokens/s);
#   4. hellaswag and arc_easy on SmolLM2 in full, f16 and f32, items/s from each item's own
#      timer (a step cut by the time limit still gives the rate of the items it finished), and
#      how often f16's decisions equal f32's;
#   5. the 7B scoring in f32.
# Figures go to $OUT/gpu-check.md as each step ends, logs to $OUT/gpu-check.log.
# GPU_CHECK_LIMIT=N evaluates only the first N items, GPU_CHECK_SHAPE picks the scoring shape
# (default mistral-7b), GPU_CHECK_BACKEND the backend (default wgpu): with `small`, a few items
# and lavapipe, the whole script runs on a CPU machine, which is how it was tried before a GPU.
set -uo pipefail
cd "$(dirname "$0")/../.."
start=$(date +%s)
part_dir=${1:?usage: scripts/gpu/check.sh .gpu/N}
out=${OUT:-/tmp/gpu-check-out}
stash=${GPU_CHECK_STASH:-/tmp/gpu-stash}
unpacked=${GPU_CHECK_UNPACKED:-/tmp/gpu-bundle}
mkdir -p "$out" "$stash"

[[ -f $part_dir/bundle.meta && -f $part_dir/bundle.part ]] ||
    { echo "$part_dir: no bundle part (run scripts/gpu/prepare.sh here, carry .gpu/N there)"; exit 1; }
read -r sha index count <"$part_dir/bundle.meta"
cp "$part_dir/bundle.part" "$stash/part$index"
if ((index < count)); then
    echo "part $index of $count stashed in $stash; make the call with part $((index + 1)) now"
    exit 0
fi
for i in $(seq 1 "$count"); do
    [[ -f $stash/part$i ]] || {
        echo "part $i of $count is missing: the machine went back between calls; make every call again"
        exit 1
    }
done
# shellcheck disable=SC2046
cat $(for i in $(seq 1 "$count"); do echo "$stash/part$i"; done) >/tmp/gpu-bundle.tar.xz
echo "$sha  /tmp/gpu-bundle.tar.xz" | sha256sum -c --quiet ||
    { echo "the joined bundle does not match its sha256: parts from two preparations?"; exit 1; }
rm -rf "$unpacked" && mkdir -p "$unpacked"
python3 -c 'import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])' \
    /tmp/gpu-bundle.tar.xz "$unpacked" || exit 1
# shellcheck disable=SC1091
source "$unpacked/paths.env"

# The binaries look for the fixtures, the model, the task data and the harness binary where they
# were built: recreate those paths (links), never replacing anything that is already there.
place() { [[ -e $2 || -L $2 ]] || { mkdir -p "$(dirname "$2")" && ln -s "$1" "$2"; }; }
place "$PWD" "$SOURCE_ROOT"
place "$unpacked/shared" "$SHARED_DIR"
mkdir -p "$BIN_DIR" models
for b in harness harness-bench; do
    cmp -s "$unpacked/bin/$b" "$BIN_DIR/$b" || cp "$unpacked/bin/$b" "$BIN_DIR/$b"
done
[[ -f models/SmolLM2-135M-Instruct.Q4_1.gguf ]] || cp "$unpacked/models/"*.gguf models/
if ! ldconfig -p | grep -q 'libvulkan.so.1 '; then
    for f in "$unpacked"/debs/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[[ -f $icd && -z ${VK_DRIVER_FILES:-} ]] && export VK_DRIVER_FILES=$icd \
    __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json

H=$BIN_DIR/harness B=$BIN_DIR/harness-bench M=models/SmolLM2-135M-Instruct.Q4_1.gguf
backend=${GPU_CHECK_BACKEND:-wgpu} shape=${GPU_CHECK_SHAPE:-mistral-7b}
limit=() && [[ -n ${GPU_CHECK_LIMIT:-} ]] && limit=(--limit "$GPU_CHECK_LIMIT")
deadline=$((start + ${GPU_CHECK_SECONDS:-560}))
summary=$out/gpu-check.md log=$out/gpu-check.log
{
    echo "# GPU checks ($(date -u +%FT%TZ))"
    echo
    echo "machine: $(nvidia-smi -L 2>/dev/null | head -1 || true); $(nproc) CPU cores; backend $backend"
    echo
} >"$summary"
note() { echo "$*" | tee -a "$summary"; }

# step NAME MAX_SECONDS CMD...: runs CMD under the smaller of MAX_SECONDS and the time left,
# appending its output to the log; returns CMD's status (124 when cut).
step() {
    local name=$1 max=$2 left
    shift 2
    left=$((deadline - $(date +%s)))
    ((left > max)) && left=$max
    if ((left < 10)); then
        note "- $name: not run, no time left"
        return 124
    fi
    echo "=== $name ($(date +%T), up to ${left}s): $*" >>"$log"
    timeout -k 5 "$left" "$@" >/tmp/gpu-step.log 2>&1
    local status=$?
    cat /tmp/gpu-step.log >>"$log"
    return $status
}

# 1. The adapter, and one forward pass against flex.
ids=1,504,3857,282,253,2421,3046,314,2347,28,1030,2248,314,12692,30
for b in flex "$backend"; do
    step "$b logprobs" 120 sh -c "\"$H\" logprobs --model \"$M\" --ids $ids --json --backend $b --dtype f32 >/tmp/gpu-logprobs-$b.json"
done
note "- logprobs, $backend f32 against flex f32 on this machine's CPU: $(python3 - /tmp/gpu-logprobs-flex.json "/tmp/gpu-logprobs-$backend.json" <<'PY'
import json, sys
try:
    a, b = (json.load(open(p))["positions"] for p in sys.argv[1:])
except (OSError, ValueError) as e:
    sys.exit(print(f"no comparison: {e}"))
diffs = [abs(p["logprob"] - q["logprob"]) for p, q in zip(a, b) if p["logprob"] is not None]
same_top = sum(p["top"][0][0] == q["top"][0][0] for p, q in zip(a, b))
print(f"largest |Δ log-prob| {max(diffs):.2e} over {len(diffs)} tokens; top-1 equal at {same_top}/{len(a)} positions")
PY
)"

# 2. Fidelity tests, as in CI but with greedy decoding too.
for t in tiny_fixtures:90 smollm2_fixtures:150 wgpu_backend:120; do
    max=${t#*:} t=${t%:*}
    if step "test $t" "$max" env MODEL_TEST_BACKEND="$backend" "$unpacked/tests/$t"; then
        note "- test $t on $backend: $(grep -a 'test result' /tmp/gpu-step.log | tail -1)"
    else
        note "- test $t on $backend: FAILED or cut (status $?): $(grep -a -E '^test .*(FAILED|ok)$|test result' /tmp/gpu-step.log | tail -3 | tr '\n' ' ')"
    fi
done

# 3 and 5. Scoring at real size (written here: 16 cores write a Q8_0 7B file in about a minute).
ckpt=/tmp/gpu-ckpt
score() {
    local dtype=$1
    if [[ ! -f $ckpt/$shape.Q8_0.gguf ]]; then
        step "write the $shape checkpoint" 150 "$B" checkpoint --shape "$shape" --formats q8_0 --out "$ckpt" ||
            { note "- the $shape checkpoint was not written (status $?): the log says why"; return; }
    fi
    # Batch 8 × 512 scores 4,088 positions; the LM head takes them in chunks of 64 MiB of
    # logits (model/src/decoder.rs), which lavapipe allows (one [4088, 32000] buffer, 523 MB,
    # it refused). Batch 1 stays as the fallback should a driver refuse another buffer.
    local batch status
    for batch in 8 1; do
        ((deadline - $(date +%s) >= 10)) || { note "- $shape scoring, $backend $dtype: not run, no time left"; return; }
        step "score $shape $dtype batch $batch" 200 "$B" score --model "$ckpt/$shape.Q8_0.gguf" \
            --backend "$backend" --dtype "$dtype" --weights load --batch "$batch" --seq 512 --runs 3
        status=$?
        if ((status == 0)); then
            note "- $shape scoring, $backend $dtype: $(grep -a -E '^(load|score):' /tmp/gpu-step.log | tr '\n' ' ')"
            return
        fi
        note "- $shape scoring, $backend $dtype, batch $batch × 512: failed or cut (status $status): $(grep -a -E 'Error|allocate|panicked' /tmp/gpu-step.log | head -2 | tr '\n' ' ')"
    done
}
score f16

# 4. The two suites in full on SmolLM2.
runs=/tmp/gpu-runs
for dtype in f16 f32; do
    for task in hellaswag arc_easy; do
        step "eval $task $dtype" 75 "$H" eval --model "$M" --tasks "$task" --backend "$backend" \
            --dtype "$dtype" --batch-size 32 --quiet "${limit[@]}" --out "$runs/$task-$dtype"
        status=$?
        note "- $task, $backend $dtype, batch 32: $(python3 - "$runs/$task-$dtype/samples/$task.jsonl" "$status" <<'PY'
import json, sys
path, status = sys.argv[1], sys.argv[2]
try:
    rows = [json.loads(l) for l in open(path)]
except OSError:
    rows = []
if not rows:
    print(f"no items finished (status {status})")
else:
    seconds = sum(r["seconds"] for r in rows)
    acc = sum(r["acc"] for r in rows) / len(rows)
    cut = "" if status == "0" else f", cut by the time limit (status {status})"
    print(f"{len(rows)} items, {len(rows) / seconds:.1f} items/s, acc {acc:.4f}{cut}")
PY
)"
    done
done
for task in hellaswag arc_easy; do
    note "- $task decisions, f16 against f32 on $backend: $(python3 - "$runs/$task-f16/samples/$task.jsonl" "$runs/$task-f32/samples/$task.jsonl" <<'PY'
import json, sys
def rows(p):
    try:
        return {r["doc_id"]: r for r in map(json.loads, open(p))}
    except OSError:
        return {}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
both = sorted(set(a) & set(b))
if both:
    same = sum(a[d]["prediction"] == b[d]["prediction"] and a[d]["prediction_norm"] == b[d]["prediction_norm"] for d in both)
    print(f"{same}/{len(both)} items with both decisions equal ({100 * same / len(both):.2f}%)")
else:
    print("no item finished in both")
PY
)"
done

score f32
note "- done in $(($(date +%s) - start)) s"
