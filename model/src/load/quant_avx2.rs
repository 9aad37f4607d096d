//! Whole blocks of every GGUF type but F32 (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K … Q6_K, BF16,
//! F16), decoded with AVX2 and F16C instructions that do what `quant`'s block functions do,
//! operation by operation (an exact integer-to-float conversion, then the same multiplies,
//! adds and subtractions, each rounded once), so the values have the same bits (test
//! `quant::tests::every_decoder_build_gives_the_block_functions_bits`). The compiler does not
//! vectorize the block functions this well, even inlined into an AVX2 caller.
//! `quant::decoder_for` chooses these where the CPU has AVX2 and F16C (x86-64 CPUs since
//! 2013-2015).

use std::arch::x86_64::*;

use super::quant::{GgmlType, decode_portable, q3_k_scales, q4_k_scale_min, read_f16, read_u32};

/// Decodes `src` into `out` when `ty` has a vector decoder here; `false` otherwise. `src` must
/// hold exactly `out.len()` values of `ty`, in whole blocks. The caller must know that the CPU
/// has AVX2 and F16C (calling it is `unsafe` outside code compiled for them).
#[target_feature(enable = "avx2,f16c")]
pub fn decode(ty: GgmlType, src: &[u8], out: &mut [f32]) -> bool {
    // Whole blocks of `$bytes` bytes into `$values` values each (the caller's length checks
    // guarantee both sides split into the same number of blocks).
    macro_rules! blocks {
        ($src:expr, $out:expr, $decode:ident, $bytes:literal => $values:literal) => {{
            debug_assert_eq!(ty.byte_size($values), Some($bytes));
            let (src, _) = $src.as_chunks::<$bytes>();
            let (out, _) = $out.as_chunks_mut::<$values>();
            for (b, values) in src.iter().zip(out) {
                $decode(b, values);
            }
        }};
    }
    match ty {
        GgmlType::Q4_0 => blocks!(src, out, q4_0, 18 => 32),
        GgmlType::Q4_1 => blocks!(src, out, q4_1, 20 => 32),
        GgmlType::Q5_0 => blocks!(src, out, q5_0, 22 => 32),
        GgmlType::Q5_1 => blocks!(src, out, q5_1, 24 => 32),
        GgmlType::Q8_0 => blocks!(src, out, q8_0, 34 => 32),
        GgmlType::Q2_K => blocks!(src, out, q2_k, 84 => 256),
        GgmlType::Q3_K => blocks!(src, out, q3_k, 110 => 256),
        GgmlType::Q4_K => blocks!(src, out, q4_k, 144 => 256),
        GgmlType::Q5_K => blocks!(src, out, q5_k, 176 => 256),
        GgmlType::Q6_K => blocks!(src, out, q6_k, 210 => 256),
        // One value per "block": whole groups of 8, the rest one at a time.
        GgmlType::BF16 | GgmlType::F16 => {
            let body = out.len() / 8 * 8;
            let (values, tail) = out.split_at_mut(body);
            if ty == GgmlType::BF16 {
                blocks!(src[..2 * body], values, bf16x8, 16 => 8);
            } else {
                blocks!(src[..2 * body], values, f16x8, 16 => 8);
            }
            decode_portable(ty, &src[2 * body..], tail);
        }
        _ => return false,
    }
    true
}

/// Eight values into `out[at..at + 8]`.
#[target_feature(enable = "avx2")]
#[inline]
fn put<const V: usize>(out: &mut [f32; V], at: usize, values: __m256) {
    let slot: &mut [f32; 8] = (&mut out[at..at + 8]).try_into().unwrap();
    // SAFETY: `slot` is 8 floats.
    unsafe { _mm256_storeu_ps(slot.as_mut_ptr(), values) }
}

/// The 8 unsigned (`widen_u8`) or signed (`widen_i8`) bytes in the low half of `q`, as
/// floats (exact: every byte value is an f32).
#[target_feature(enable = "avx2")]
#[inline]
fn widen_u8(q: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(q))
}

#[target_feature(enable = "avx2")]
#[inline]
fn widen_i8(q: __m128i) -> __m256 {
    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q))
}

/// The high 8 bytes of `q` moved to its low half.
#[target_feature(enable = "avx2")]
#[inline]
fn high_half(q: __m128i) -> __m128i {
    _mm_unpackhi_epi64(q, q)
}

/// 16 bytes from `b[at..]`.
#[target_feature(enable = "avx2")]
#[inline]
fn load16(b: &[u8], at: usize) -> __m128i {
    let bytes: &[u8; 16] = b[at..at + 16].try_into().unwrap();
    // SAFETY: `bytes` is 16 bytes.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast()) }
}

/// 32 bytes from `b[at..]`.
#[target_feature(enable = "avx2")]
#[inline]
fn load32(b: &[u8], at: usize) -> __m256i {
    let bytes: &[u8; 32] = b[at..at + 32].try_into().unwrap();
    // SAFETY: `bytes` is 32 bytes.
    unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) }
}

/// The low and high nibbles of 16 bytes (elements k and 16 + k of Q4_0/Q4_1).
#[target_feature(enable = "avx2")]
#[inline]
fn nibbles16(q: __m128i) -> [__m128i; 2] {
    let mask = _mm_set1_epi8(0x0F);
    [_mm_and_si128(q, mask), _mm_and_si128(_mm_srli_epi16(q, 4), mask)]
}

/// As `quant::q4_0_block`: `d * (q - 8)`.
#[target_feature(enable = "avx2")]
#[inline]
fn q4_0(b: &[u8; 18], out: &mut [f32; 32]) {
    let d = _mm256_set1_ps(read_f16(b, 0));
    let eight = _mm_set1_epi8(8);
    for (h, q) in nibbles16(load16(b, 2)).into_iter().enumerate() {
        let q = _mm_sub_epi8(q, eight);
        put(out, 16 * h, _mm256_mul_ps(d, widen_i8(q)));
        put(out, 16 * h + 8, _mm256_mul_ps(d, widen_i8(high_half(q))));
    }
}

/// As `quant::q4_1_block`: `d * q + m`, rounded after the multiply and after the add.
#[target_feature(enable = "avx2")]
#[inline]
fn q4_1(b: &[u8; 20], out: &mut [f32; 32]) {
    let (d, m) = (_mm256_set1_ps(read_f16(b, 0)), _mm256_set1_ps(read_f16(b, 2)));
    for (h, q) in nibbles16(load16(b, 4)).into_iter().enumerate() {
        put(out, 16 * h, _mm256_add_ps(_mm256_mul_ps(d, widen_u8(q)), m));
        put(
            out,
            16 * h + 8,
            _mm256_add_ps(_mm256_mul_ps(d, widen_u8(high_half(q))), m),
        );
    }
}

/// A Q5 block's 32 quants (0..32): the nibbles of `qs` (element k < 16 the low nibble of byte
/// k, 16 + k the high one) with bit k of the little-endian `qh` as element k's fifth bit.
#[target_feature(enable = "avx2")]
#[inline]
fn q5_quants(qs: __m128i, qh: u32) -> __m256i {
    let [low, high] = nibbles16(qs);
    let nibbles = _mm256_set_m128i(high, low);
    // Byte k gets byte k / 8 of qh, then every bit but bit k % 8 is set: all ones where bit k
    // of qh is set.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(qh as i32),
        _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0),
    );
    let set = _mm256_cmpeq_epi8(
        _mm256_or_si256(spread, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe)),
        _mm256_set1_epi8(-1),
    );
    _mm256_or_si256(nibbles, _mm256_and_si256(set, _mm256_set1_epi8(0x10)))
}

/// 32 values `f(q)` from 32 bytes, eight at a time (`widen` turns 8 bytes into floats).
#[target_feature(enable = "avx2")]
#[inline]
fn put32<const V: usize>(
    out: &mut [f32; V],
    at: usize,
    q: __m256i,
    widen: impl Fn(__m128i) -> __m256,
    f: impl Fn(__m256) -> __m256,
) {
    for (h, half) in [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)]
        .into_iter()
        .enumerate()
    {
        put(out, at + 16 * h, f(widen(half)));
        put(out, at + 16 * h + 8, f(widen(high_half(half))));
    }
}

/// As `quant::q5_0_block`: `d * (q - 16)`.
#[target_feature(enable = "avx2")]
#[inline]
fn q5_0(b: &[u8; 22], out: &mut [f32; 32]) {
    let d = _mm256_set1_ps(read_f16(b, 0));
    let qh = read_u32(b, 2);
    let q = _mm256_sub_epi8(q5_quants(load16(b, 6), qh), _mm256_set1_epi8(16));
    put32(out, 0, q, |q| widen_i8(q), |q| _mm256_mul_ps(d, q));
}

/// As `quant::q5_1_block`: `d * q + m`, rounded after the multiply and after the add.
#[target_feature(enable = "avx2")]
#[inline]
fn q5_1(b: &[u8; 24], out: &mut [f32; 32]) {
    let (d, m) = (_mm256_set1_ps(read_f16(b, 0)), _mm256_set1_ps(read_f16(b, 2)));
    let qh = read_u32(b, 4);
    let q = q5_quants(load16(b, 8), qh);
    put32(out, 0, q, |q| widen_u8(q), |q| _mm256_add_ps(_mm256_mul_ps(d, q), m));
}

/// As `quant::q8_0_block`: `q * d`.
#[target_feature(enable = "avx2")]
#[inline]
fn q8_0(b: &[u8; 34], out: &mut [f32; 32]) {
    let d = _mm256_set1_ps(read_f16(b, 0));
    for h in 0..2 {
        let q = load16(b, 2 + 16 * h);
        put(out, 16 * h, _mm256_mul_ps(widen_i8(q), d));
        put(out, 16 * h + 8, _mm256_mul_ps(widen_i8(high_half(q)), d));
    }
}

/// 32 values `dl * q - ml` of one k-quant sub-block, from its 32 quants (0..64) in `q`.
#[target_feature(enable = "avx2")]
#[inline]
fn k_sub_block(out: &mut [f32; 256], s: usize, q: __m256i, dl: f32, ml: f32) {
    let (dl, ml) = (_mm256_set1_ps(dl), _mm256_set1_ps(ml));
    for (h, half) in [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)]
        .into_iter()
        .enumerate()
    {
        put(
            out,
            32 * s + 16 * h,
            _mm256_sub_ps(_mm256_mul_ps(dl, widen_u8(half)), ml),
        );
        put(
            out,
            32 * s + 16 * h + 8,
            _mm256_sub_ps(_mm256_mul_ps(dl, widen_u8(high_half(half))), ml),
        );
    }
}

/// The 2-bit fields j (bits 2j, 2j + 1) of 32 bytes.
#[target_feature(enable = "avx2")]
#[inline]
fn two_bits32(q: __m256i, j: usize) -> __m256i {
    _mm256_and_si256(
        _mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j as i32)),
        _mm256_set1_epi8(3),
    )
}

/// As `quant::q2_k_block`: element 128c + 32j + l is 2-bit field j of `qs[32c + l]`, in group
/// 8c + 2j + l / 16 of 16 with scale and min nibbles; value `(d * sc) * q - (dmin * m)`.
#[target_feature(enable = "avx2")]
#[inline]
fn q2_k(b: &[u8; 84], out: &mut [f32; 256]) {
    let (d, dmin) = (read_f16(b, 80), read_f16(b, 82));
    for c in 0..2 {
        let qs = load32(b, 16 + 32 * c);
        for j in 0..4 {
            let q = two_bits32(qs, j);
            for (h, half) in [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)]
                .into_iter()
                .enumerate()
            {
                let scale = b[8 * c + 2 * j + h];
                let dl = _mm256_set1_ps(d * (scale & 0x0F) as f32);
                let ml = _mm256_set1_ps(dmin * (scale >> 4) as f32);
                let at = 128 * c + 32 * j + 16 * h;
                put(out, at, _mm256_sub_ps(_mm256_mul_ps(dl, widen_u8(half)), ml));
                put(
                    out,
                    at + 8,
                    _mm256_sub_ps(_mm256_mul_ps(dl, widen_u8(high_half(half))), ml),
                );
            }
        }
    }
}

/// As `quant::q3_k_block`: Q2_K's 2-bit fields from `qs`, minus 4 where bit 4c + j of
/// `hmask[l]` is clear; value `(d * scale) * q` with one signed scale per 16 values.
#[target_feature(enable = "avx2")]
#[inline]
fn q3_k(b: &[u8; 110], out: &mut [f32; 256]) {
    let d = read_f16(b, 108);
    let scales = q3_k_scales(&b[96..108]);
    let hmask = load32(b, 0);
    let (one, four) = (_mm256_set1_epi8(1), _mm256_set1_epi8(4));
    for c in 0..2 {
        let qs = load32(b, 32 + 32 * c);
        for j in 0..4 {
            let high = _mm256_and_si256(_mm256_srl_epi16(hmask, _mm_cvtsi32_si128((4 * c + j) as i32)), one);
            // q + 4 * high - 4: 0..3 - 4 where the bit is clear, 0..3 where it is set.
            let q = _mm256_sub_epi8(_mm256_or_si256(two_bits32(qs, j), _mm256_slli_epi16(high, 2)), four);
            for (h, half) in [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)]
                .into_iter()
                .enumerate()
            {
                let dl = _mm256_set1_ps(d * scales[8 * c + 2 * j + h] as f32);
                let at = 128 * c + 32 * j + 16 * h;
                put(out, at, _mm256_mul_ps(dl, widen_i8(half)));
                put(out, at + 8, _mm256_mul_ps(dl, widen_i8(high_half(half))));
            }
        }
    }
}

/// The low and high nibbles of 32 bytes (k-quant sub-blocks 2p and 2p + 1).
#[target_feature(enable = "avx2")]
#[inline]
fn nibbles32(q: __m256i) -> [__m256i; 2] {
    let mask = _mm256_set1_epi8(0x0F);
    [
        _mm256_and_si256(q, mask),
        _mm256_and_si256(_mm256_srli_epi16(q, 4), mask),
    ]
}

/// As `quant::q4_k_block`: `(d * sc) * q - (dmin * m)` per 32-value sub-block.
#[target_feature(enable = "avx2")]
#[inline]
fn q4_k(b: &[u8; 144], out: &mut [f32; 256]) {
    let (d, dmin) = (read_f16(b, 0), read_f16(b, 2));
    let (sc, mn) = q4_k_scale_min(&b[4..16]);
    for pair in 0..4 {
        for (k, q) in nibbles32(load32(b, 16 + 32 * pair)).into_iter().enumerate() {
            let s = 2 * pair + k;
            k_sub_block(out, s, q, d * sc[s] as f32, dmin * mn[s] as f32);
        }
    }
}

/// As `quant::q5_k_block`: Q4_K's nibbles with bit s of `qh[l]` as the fifth bit of element
/// 32s + l.
#[target_feature(enable = "avx2")]
#[inline]
fn q5_k(b: &[u8; 176], out: &mut [f32; 256]) {
    let (d, dmin) = (read_f16(b, 0), read_f16(b, 2));
    let (sc, mn) = q4_k_scale_min(&b[4..16]);
    let qh = load32(b, 16);
    let one = _mm256_set1_epi8(1);
    for pair in 0..4 {
        for (k, q) in nibbles32(load32(b, 48 + 32 * pair)).into_iter().enumerate() {
            let s = 2 * pair + k;
            // Bit s of each byte (a 16-bit shift moves the next byte's bits only above bit 0).
            let fifth = _mm256_and_si256(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(s as i32)), one);
            let q = _mm256_or_si256(q, _mm256_slli_epi16(fifth, 4));
            k_sub_block(out, s, q, d * sc[s] as f32, dmin * mn[s] as f32);
        }
    }
}

/// As `quant::q6_k_block`: element 128c + 32j + l takes nibble j / 2 of
/// `ql[64c + 32(j % 2) + l]`, bit pair j of `qh[32c + l]`, scale 8c + 2j + l / 16; value
/// `(d * scale) * (q - 32)`.
#[target_feature(enable = "avx2")]
#[inline]
fn q6_k(b: &[u8; 210], out: &mut [f32; 256]) {
    let d = read_f16(b, 208);
    let (low_mask, high_mask, offset) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30), _mm256_set1_epi8(32));
    for c in 0..2 {
        let qh = load32(b, 128 + 32 * c);
        for j in 0..4 {
            let ql = load32(b, 64 * c + 32 * (j % 2));
            let low = _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (j as i32 / 2))), low_mask);
            let high = _mm256_and_si256(
                _mm256_slli_epi16(_mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j as i32)), 4),
                high_mask,
            );
            let q = _mm256_sub_epi8(_mm256_or_si256(low, high), offset);
            for (h, half) in [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)]
                .into_iter()
                .enumerate()
            {
                let dl = _mm256_set1_ps(d * (b[192 + 8 * c + 2 * j + h] as i8) as f32);
                let at = 128 * c + 32 * j + 16 * h;
                put(out, at, _mm256_mul_ps(dl, widen_i8(half)));
                put(out, at + 8, _mm256_mul_ps(dl, widen_i8(high_half(half))));
            }
        }
    }
}

/// Eight bf16, the top halves of f32s.
#[target_feature(enable = "avx2")]
#[inline]
fn bf16x8(b: &[u8; 16], out: &mut [f32; 8]) {
    let bits = _mm256_slli_epi32(_mm256_cvtepu16_epi32(load16(b, 0)), 16);
    put(out, 0, _mm256_castsi256_ps(bits));
}

/// Eight f16, converted exactly by F16C (NaNs quieted, as `half` does).
#[target_feature(enable = "avx2,f16c")]
#[inline]
fn f16x8(b: &[u8; 16], out: &mut [f32; 8]) {
    put(out, 0, _mm256_cvtph_ps(load16(b, 0)));
}
