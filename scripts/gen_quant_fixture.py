#!/usr/bin/env python3
"""Writes model/tests/data/quant_blocks.gguf: blocks of every ggml type the harness dequantizes,
each beside the f32 values gguf-py dequantizes them to (the reference transformers uses).

Usage (gguf-py 0.19.0, numpy 2.x):
    python3 -m venv /tmp/q && /tmp/q/bin/pip install gguf==0.19.0
    /tmp/q/bin/python scripts/gen_quant_fixture.py

For each type TYPE (lower-case name) the file holds
    TYPE.random           blocks of random bytes, every f16 scale field a random finite f16
    TYPE.quantized        (only where gguf-py can quantize the type) random normal rows
                          quantized with gguf.quants.quantize
and for each of those a NAME.expected F32 tensor: gguf.quants.dequantize of NAME's bytes.
model/tests/gguf_quant_fixture.rs checks the Rust dequantizer against them bit for bit.
"""

from importlib.metadata import version
from pathlib import Path

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize, quantize

OUT = Path(__file__).resolve().parent.parent / "model/tests/data/quant_blocks.gguf"
ROWS, BLOCKS_PER_ROW = 2, 4

# Byte offsets of the f16 scale fields in one block, from gguf-py's quants.py block layouts.
F16_FIELDS = {
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q8_0: [0],
    T.Q2_K: [80, 82],
    T.Q3_K: [108],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
QUANTIZABLE = [T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]


def random_f16_bits(rng: np.random.Generator, n: int) -> np.ndarray:
    """Finite f16 values of every magnitude: any sign and mantissa, exponent 0..30."""
    sign = rng.integers(0, 2, n, dtype=np.uint16) << 15
    exponent = rng.integers(0, 31, n, dtype=np.uint16) << 10
    mantissa = rng.integers(0, 1024, n, dtype=np.uint16)
    return sign | exponent | mantissa


def random_blocks(rng: np.random.Generator, qtype: T) -> np.ndarray:
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = ROWS * BLOCKS_PER_ROW
    blocks = rng.integers(0, 256, (n_blocks, type_size), dtype=np.uint8)
    for at in F16_FIELDS[qtype]:
        blocks[:, at : at + 2] = random_f16_bits(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(ROWS, BLOCKS_PER_ROW * type_size)


def quantized_rows(rng: np.random.Generator, qtype: T) -> np.ndarray:
    block_size, _ = gguf.GGML_QUANT_SIZES[qtype]
    values = rng.standard_normal((ROWS, BLOCKS_PER_ROW * block_size)).astype(np.float32)
    values[0, :block_size] = 0.0  # an all-zero block: d = 0
    return quantize(values, qtype)


def add_pair(writer: gguf.GGUFWriter, name: str, qtype: T, raw: np.ndarray) -> None:
    writer.add_tensor(name, raw, raw_dtype=qtype)
    expected = dequantize(raw, qtype).astype(np.float32)
    writer.add_tensor(f"{name}.expected", expected)


def main() -> None:
    rng = np.random.default_rng(20250907)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(OUT, arch="quant-fixture")
    made_by = f"scripts/gen_quant_fixture.py, gguf-py {version('gguf')}, numpy {np.__version__}"
    writer.add_string("fixture.made_by", made_by)
    for qtype in F16_FIELDS:
        add_pair(writer, f"{qtype.name.lower()}.random", qtype, random_blocks(rng, qtype))
        if qtype in QUANTIZABLE:
            add_pair(writer, f"{qtype.name.lower()}.quantized", qtype, quantized_rows(rng, qtype))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    print(f"{OUT}: {OUT.stat().st_size} bytes")


if __name__ == "__main__":
    main()
