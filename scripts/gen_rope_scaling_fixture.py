#!/usr/bin/env python3
"""Writes model/tests/data/rope_scaling/: a tiny random Llama with scaled RoPE, as an HF folder
and as the GGUF file llama.cpp's converter would make of it, beside transformers' float32 logits.

Usage (transformers 5.x, torch, gguf-py 0.19.0, safetensors, numpy 2.x):
    python3 -m venv /tmp/r && /tmp/r/bin/pip install torch transformers gguf==0.19.0 safetensors
    /tmp/r/bin/python scripts/gen_rope_scaling_fixture.py [scaling ...]   (default: all)

For each scaling (`llama3`, Llama 3.1's; `linear`, position interpolation; `yarn` with its
defaults, as Yarn-Mistral's config has it; `yarn_options`, every YaRN option set):
    <scaling>/config.json, model.safetensors   the HF checkpoint (weights shared by both)
    <scaling>/golden.safetensors                input_ids [64]; logits [64, vocab] from
                                                LlamaForCausalLM; inv_freq, the frequencies
                                                transformers derives; default_rope.logits, the same
                                                weights with RoPE unscaled (so a test can show the
                                                scaling matters at these positions);
                                                attention_scaling, the factor on cos and sin
    <scaling>.gguf (llama3, linear only)                             F32 tensors, q/k rows permuted as
                                                convert_hf_to_gguf.py permutes them; `llama3` as a
                                                `rope_freqs.weight` tensor (convert_hf_to_gguf.py's
                                                LlamaModel formula), `linear` as
                                                `llama.rope.scaling.type`/`.factor`
model/tests/rope_scaling.rs checks the harness's decoder against them.
"""

import json
import math
import sys
from importlib.metadata import version
from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors.torch import save_file
from transformers import LlamaConfig, LlamaForCausalLM

OUT = Path(__file__).resolve().parent.parent / "model/tests/data/rope_scaling"
VOCAB, HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS = 128, 32, 2, 1, 16, 64, 2
THETA, SEQ = 10000.0, 64
# With head_dim 16 the wavelengths 2*pi*theta^(2i/16) are 6.3, 19.9, 62.8, 199, ...: with an
# original context of 64 and factors 1/4, the first is kept, the next two are smoothed and the
# rest divided by `factor`, so every branch of the llama3 rule is taken.
SCALINGS = {
    "llama3": {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 64,
    },
    "linear": {"rope_type": "linear", "factor": 4.0},
    # YaRN's ramp runs over pairs 0-3 of 8 with these betas (dims 0 and 3 at its ends), so pairs
    # are kept, blended and interpolated; the attention factor is 0.1 ln(4) + 1.
    "yarn": {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 64},
    "yarn_options": {
        "rope_type": "yarn",
        "factor": 4.0,
        "original_max_position_embeddings": 64,
        "beta_fast": 16.0,
        "beta_slow": 2.0,
        "truncate": False,
        "mscale": 0.707,
        "mscale_all_dim": 1.0,
    },
}
# llama.cpp's converter writes YaRN as GGUF keys that transformers' GGUF loader does not read.
GGUF_SCALINGS = ("llama3", "linear")


def config(scaling: dict | None) -> LlamaConfig:
    rope = {"rope_type": "default", "rope_theta": THETA} if scaling is None else {**scaling, "rope_theta": THETA}
    return LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS,
        head_dim=HEAD_DIM,
        max_position_embeddings=256,
        rms_norm_eps=1e-5,
        # Larger than the default 0.02, for logits of order 1 (as in ../shared/fixtures/tiny).
        initializer_range=0.2,
        rope_parameters=rope,
        tie_word_embeddings=False,
        bos_token_id=1,
        eos_token_id=2,
    )


def logits(model: LlamaForCausalLM, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(ids[None, :]).logits[0].float()


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_factors(s: dict) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors (`rope_freqs.weight`)."""
    freqs = 1.0 / (THETA ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float32) / HEAD_DIM))
    low_wavelen = s["original_max_position_embeddings"] / s["low_freq_factor"]
    high_wavelen = s["original_max_position_embeddings"] / s["high_freq_factor"]
    factors = []
    for freq in freqs:
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(s["factor"])
        else:
            smooth = (s["original_max_position_embeddings"] / wavelen - s["low_freq_factor"]) / (
                s["high_freq_factor"] - s["low_freq_factor"]
            )
            factors.append(1 / ((1 - smooth) / s["factor"] + smooth))
    return np.array(factors, dtype=np.float32)


def write_gguf(path: Path, state: dict, name: str, scaling: dict) -> None:
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_name(f"tiny-llama-rope-{name}")
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HEAD_DIM)
    writer.add_rope_freq_base(THETA)
    writer.add_layer_norm_rms_eps(1e-5)
    if scaling["rope_type"] == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(scaling["factor"])
    # A SentencePiece vocabulary of VOCAB pieces: only its size matters to these tests.
    pieces = ["<unk>", "<s>", "</s>"] + [f"\u2581t{i}" for i in range(VOCAB - 3)]
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores([0.0] * 3 + [-float(i) for i in range(VOCAB - 3)])
    writer.add_token_types([2, 3, 3] + [1] * (VOCAB - 3))
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    names = {
        "model.embed_tokens.weight": "token_embd.weight",
        "model.norm.weight": "output_norm.weight",
        "lm_head.weight": "output.weight",
    }
    parts = {
        "input_layernorm": "attn_norm",
        "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k",
        "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output",
        "post_attention_layernorm": "ffn_norm",
        "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down",
    }
    if scaling["rope_type"] == "llama3":
        writer.add_tensor("rope_freqs.weight", llama3_rope_factors(scaling))
    for hf, tensor in state.items():
        data = tensor.numpy().astype(np.float32)
        if hf in names:
            writer.add_tensor(names[hf], data)
            continue
        layer, part = hf.removeprefix("model.layers.").split(".", 1)
        part = part.removesuffix(".weight")
        if part == "self_attn.q_proj":
            data = permute(data, HEADS)
        elif part == "self_attn.k_proj":
            data = permute(data, KV_HEADS)
        writer.add_tensor(f"blk.{layer}.{parts[part]}.weight", data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def main(names: list[str]) -> None:
    torch.manual_seed(20261130)
    base = LlamaForCausalLM(config(None)).float().eval()
    state = {k: v.detach().clone().contiguous() for k, v in base.state_dict().items()}
    ids = torch.randint(3, VOCAB, (SEQ,), generator=torch.Generator().manual_seed(7))
    unscaled = logits(base, ids)
    made_by = (
        f"scripts/gen_rope_scaling_fixture.py; transformers {version('transformers')}, "
        f"torch {torch.__version__}, gguf-py {version('gguf')}"
    )
    for name in names:
        scaling = SCALINGS[name]
        folder = OUT / name
        folder.mkdir(parents=True, exist_ok=True)
        model = LlamaForCausalLM(config(scaling)).float().eval()
        model.load_state_dict(state)
        model.save_pretrained(folder, safe_serialization=True)
        golden = {
            "input_ids": ids.to(torch.float32),
            "logits": logits(model, ids),
            "inv_freq": model.model.rotary_emb.inv_freq.float(),
            "default_rope.logits": unscaled,
            "attention_scaling": torch.tensor([model.model.rotary_emb.attention_scaling], dtype=torch.float32),
        }
        save_file({k: v.contiguous() for k, v in golden.items()}, folder / "golden.safetensors", {"made_by": made_by})
        (folder / "generation_config.json").unlink(missing_ok=True)
        if name in GGUF_SCALINGS:
            write_gguf(OUT / f"{name}.gguf", state, name, scaling)
        cfg = json.loads((folder / "config.json").read_text())
        scale, effect = float(golden["logits"].abs().max()), float((golden["logits"] - unscaled).abs().max())
        print(f"{name}: {cfg['rope_parameters']}; logits abs max {scale:.3f}, max |scaled - default| {effect:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:] or list(SCALINGS))
