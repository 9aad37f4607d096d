"""Runs lm-evaluation-harness 0.4.x (HF transformers backend, float32, CPU) on SmolLM2 over the same
bundled data as `harness eval`, and compares per item with a harness run: log-likelihoods for
multiple-choice tasks, the responses themselves for generative ones (gsm8k, gsm8k_cot, humaneval,
mbpp, nq_open, minerva_math_*, bbh_cot_fewshot_*; `--samples k --temperature t` for k sampled
responses per item, lm-eval's `repeats`).

    python3 -m venv /tmp/lmvenv
    /tmp/lmvenv/bin/pip install lm-eval==0.4.12 torch transformers==5.24.0 gguf==0.19.0
    /tmp/lmvenv/bin/python scripts/lm_eval_compare.py run --tasks arc_easy,hellaswag --limit 200 \
        --out /tmp/lm-eval-out [--batch-size 1]
    /tmp/lmvenv/bin/python scripts/lm_eval_compare.py compare --lm-eval /tmp/lm-eval-out \
        --harness results/runs/<run>/

The model is the GGUF the harness reads, loaded by transformers (`gguf_file=`, which dequantizes to
float32), so both sides evaluate identical weights. Tasks are built by lm-eval's own
ConfigurableTask from its YAMLs with the bundled data (tasks/tests/reference/lm_eval_reference.py),
and evaluated by lm-eval's own evaluator. `run` also writes the evaluation time of each task
(`seconds`, model loading excluded), which BENCHMARKS.md reports as lm-eval's items/s.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tasks/tests/reference"))

# Our task names → lm-eval's.
LM_EVAL_NAME = {"siqa": "social_iqa"}


GENERATIVE = ("gsm8k", "gsm8k_cot", "humaneval", "mbpp", "nq_open", "minerva_math_", "bbh_cot_fewshot_")


def is_generative(name):
    return name in GENERATIVE or name.startswith(GENERATIVE[-2:])


def lm_eval_task(name, shots, samples=1, temperature=0.0):
    import datasets
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.tasks._yaml_loader import load_yaml

    if is_generative(name):
        import lm_eval_gen_reference as gen

        task = gen.make(name, shots)
        if samples > 1:
            # --samples k --temperature t: k sampled requests per item (lm-eval's `repeats`).
            task.set_config(key="repeats", value=samples)
            kwargs = dict(task.config.generation_kwargs or {})
            kwargs.update(do_sample=True, temperature=temperature)
            task.set_config(key="generation_kwargs", value=kwargs)
        return task
    import lm_eval_reference as ref

    shots = shots or 0
    lm_name = LM_EVAL_NAME.get(name, name)
    cfg = load_yaml(ref.TASKS / (ref.YAML.get(lm_name) or f"mmlu/default/{lm_name}.yaml"))
    for k in ("tag", "group", "task_list"):
        cfg.pop(k, None)
    data = datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in ref.splits(lm_name).items()})
    cfg["custom_dataset"] = lambda **_: data
    cfg["num_fewshot"] = shots
    return ConfigurableTask(config=cfg)


def restore_pre_tokenizer(tok, gguf):
    """transformers' GGUF conversion splits every byte-level vocabulary with GPT-2's regex alone and
    ignores `tokenizer.ggml.pre`. SmolLM2's own tokenizer.json (and llama.cpp's `smollm` type, and
    the harness) split digits one by one first, which changes the ids wherever a run of whitespace
    precedes a digit ("\n    3" is [`\n    `, `3`], not [`\n   `, ` `, `3`]): HumanEval's
    doctests are full of them. Without this the reference side tokenizes unlike the model's own
    tokenizer (11 of HumanEval's first 64 prompts)."""
    from gguf import GGUFReader
    from tokenizers import pre_tokenizers

    field = GGUFReader(gguf).fields.get("tokenizer.ggml.pre")
    pre = bytes(field.parts[field.data[0]]).decode() if field else None
    if pre == "smollm":
        tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ])
    elif pre not in (None, "default", "gpt-2"):
        print(f"warning: {gguf.name} has tokenizer.ggml.pre = {pre!r}, which transformers' GGUF "
              "loader ignores (GPT-2's split regex for every byte-level vocabulary): the reference "
              "side may tokenize unlike the model's own tokenizer", file=sys.stderr)


def run(args):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from lm_eval import evaluator
    from lm_eval.models.huggingface import HFLM

    torch.set_num_threads(args.threads)
    gguf = Path(args.model).resolve()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    restore_pre_tokenizer(tok, gguf)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    model.eval()
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.batch_size, device="cpu", dtype="float32")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    timings = {}
    for name in args.tasks.split(","):
        task = lm_eval_task(name, args.shots, args.samples, args.temperature)
        start = time.perf_counter()
        # Code tasks are "unsafe" to lm-eval; its code_eval is stubbed here (lm_eval_gen_reference), so
        # nothing generated is executed on this side.
        res = evaluator.evaluate(lm=lm, task_dict={name: task}, limit=args.limit, log_samples=True,
                                 confirm_run_unsafe_code=True)
        seconds = time.perf_counter() - start
        samples = res["samples"][name]
        items = []
        # A task with several filters logs each document once per filter: keep one.
        samples = list({s["doc_id"]: s for s in reversed(samples)}.values())
        for s in sorted(samples, key=lambda s: s["doc_id"]):
            if is_generative(name):
                responses = [r[0] for r in s["resps"]]
                tokens = sum(len(tok(r, add_special_tokens=False)["input_ids"]) for r in responses)
                items.append({"doc_id": s["doc_id"], "responses": responses, "generated_tokens": tokens})
            else:
                lls = [float(r[0][0]) for r in s["resps"]]
                items.append({"doc_id": s["doc_id"], "loglikelihoods": lls, "acc": s["acc"],
                              "acc_norm": s.get("acc_norm")})
        scores = {k: v for k, v in res["results"][name].items() if isinstance(v, (int, float))}
        timings[name] = {"items": len(items), "seconds": seconds, "items_per_s": len(items) / seconds}
        if is_generative(name):
            generated = sum(it["generated_tokens"] for it in items)
            timings[name].update(generated_tokens=generated, tokens_per_s=generated / seconds)
        (out / f"{name}.json").write_text(json.dumps({"scores": scores, "items": items}) + "\n")
        print(f"{name}: {len(items)} items in {seconds:.1f} s ({len(items) / seconds:.2f} items/s) {scores}",
              flush=True)
    (out / "timings.json").write_text(json.dumps({"batch_size": args.batch_size, "threads": args.threads,
                                                  "tasks": timings}, indent=1) + "\n")


def argmax(xs):
    best = 0
    for i, x in enumerate(xs):
        if x > xs[best]:
            best = i
    return best


def compare(args):
    """Per task: acc/acc_norm on both sides, per-item decision agreement, and the largest per-choice
    log-likelihood difference. Disagreements are listed with their margins (a tie within float noise
    shows a margin near zero on one side)."""
    worst_points = 0.0
    worst_agree = 1.0
    rows = []
    for path in sorted(Path(args.lm_eval).glob("*.json")):
        if path.name == "timings.json":
            continue
        name = path.stem
        theirs = {it["doc_id"]: it for it in json.loads(path.read_text())["items"]}
        journal = Path(args.harness) / "samples" / f"{name}.jsonl"
        if not journal.exists():
            print(f"{name}: no harness journal at {journal}")
            continue
        ours = {}
        for line in journal.read_text().splitlines():
            s = json.loads(line)
            ours[s["doc_id"]] = s
        common = sorted(set(ours) & set(theirs))
        if not common:
            continue
        if "responses" in theirs[common[0]]:
            same = sum(ours[d]["responses"] == theirs[d]["responses"] for d in common)
            for d in common:
                if ours[d]["responses"] != theirs[d]["responses"]:
                    print(f"{name}: doc {d} differs:\n  ours   {ours[d]['responses']!r}\n  lm-eval {theirs[d]['responses']!r}")
            rows.append(f"| {name} | responses | {len(common)} | | | | {same / len(common) * 100:.2f}% identical | |")
            worst_agree = min(worst_agree, same / len(common))
            continue
        max_dll = 0.0
        agree = {"acc": 0, "acc_norm": 0}
        totals = {"acc": [0.0, 0.0], "acc_norm": [0.0, 0.0]}
        notes = []
        for d in common:
            o, t = ours[d], theirs[d]
            for a, b in zip(o["loglikelihoods"], t["loglikelihoods"]):
                max_dll = max(max_dll, abs(a - b))
            for metric in ("acc", "acc_norm"):
                if t.get(metric) is None:
                    continue
                totals[metric][0] += o[metric]
                totals[metric][1] += t[metric]
                if o[metric] == t[metric]:
                    agree[metric] += 1
                else:
                    lls = t["loglikelihoods"]
                    srt = sorted(lls, reverse=True)
                    notes.append(f"  doc {d} {metric}: ours {o[metric]} lm-eval {t[metric]} "
                                 f"(lm-eval top-2 margin {srt[0] - srt[1]:.2e})")
        n = len(common)
        for metric in ("acc", "acc_norm"):
            if theirs[common[0]].get(metric) is None:
                continue
            ov, tv = totals[metric][0] / n, totals[metric][1] / n
            pts = abs(ov - tv) * 100
            rate = agree[metric] / n
            worst_points = max(worst_points, pts)
            worst_agree = min(worst_agree, rate)
            rows.append(f"| {name} | {metric} | {n} | {ov:.4f} | {tv:.4f} | {pts:.2f} | {rate * 100:.2f}% | {max_dll:.1e} |")
        for line in notes:
            print(f"{name}:{line}")
    print("| task | metric | n | harness | lm-eval | diff (points) | items agreeing | max abs Δ loglik |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print(f"worst difference {worst_points:.2f} points, worst per-item agreement {worst_agree * 100:.2f}%")
    return 0 if worst_points <= 0.3 and worst_agree >= 0.995 else 1


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--model", default=str(ROOT / "models/SmolLM2-135M-Instruct.Q4_1.gguf"))
    r.add_argument("--tasks", required=True)
    r.add_argument("--shots", type=int, help="default: 0 for multiple choice, the YAML's for generative tasks")
    r.add_argument("--samples", type=int, default=1, help="generative tasks: sampled requests per item")
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--limit", type=int)
    r.add_argument("--batch-size", type=int, default=1)
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--out", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--lm-eval", required=True)
    c.add_argument("--harness", required=True)
    a = p.parse_args()
    if a.cmd == "run":
        run(a)
    else:
        sys.exit(compare(a))


if __name__ == "__main__":
    main()
