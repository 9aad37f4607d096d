//! Q8_0, Q4_K and BF16 decoded 16 values per instruction with AVX-512, where that is faster
//! than `quant_avx2`'s 8 (in L1, on an AVX-512 machine: Q8_0 17.6 against 15.6 G values/s,
//! Q4_K 10.7 against 10.1, BF16 23.1 against 18.2; Q6_K was slower than AVX2's and is left to
//! it; BENCHMARKS "Vector decoders"). The same operations as `quant`'s block functions, so the
//! same bits (test `quant::tests::every_decoder_build_gives_the_block_functions_bits`).
//! `quant::decoder_for` chooses these where the CPU has AVX-512, and `quant_avx2` for the
//! other types.

use std::arch::x86_64::*;

use super::quant::{GgmlType, decode_portable, q4_k_scale_min, read_f16};

/// Decodes `src` into `out` when `ty` has a vector decoder here; `false` otherwise.
///
/// # Safety
/// The CPU must have AVX-512 F and BW, and AVX2.
#[target_feature(enable = "avx512f,avx512bw,avx2")]
pub unsafe fn decode(ty: GgmlType, src: &[u8], out: &mut [f32]) -> bool {
    match ty {
        GgmlType::Q8_0 => {
            for (b, values) in src.chunks_exact(34).zip(out.chunks_exact_mut(32)) {
                let d = _mm512_set1_ps(read_f16(b, 0));
                // SAFETY: `b` holds 34 bytes, `values` 32 floats.
                unsafe {
                    let q = _mm256_loadu_si256(b[2..].as_ptr().cast());
                    let low = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
                    let high = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
                    _mm512_storeu_ps(values.as_mut_ptr(), _mm512_mul_ps(low, d));
                    _mm512_storeu_ps(values[16..].as_mut_ptr(), _mm512_mul_ps(high, d));
                }
            }
            true
        }
        GgmlType::Q4_K => {
            let mask = _mm256_set1_epi8(0x0F);
            for (b, values) in src.chunks_exact(144).zip(out.chunks_exact_mut(256)) {
                let (d, dmin) = (read_f16(b, 0), read_f16(b, 2));
                let (sc, mn) = q4_k_scale_min(&b[4..16]);
                for pair in 0..4 {
                    // SAFETY: 32 bytes at 16 + 32 * pair lie within the 144-byte block.
                    let q = unsafe { _mm256_loadu_si256(b[16 + 32 * pair..].as_ptr().cast()) };
                    let nibbles = [
                        _mm256_and_si256(q, mask),
                        _mm256_and_si256(_mm256_srli_epi16(q, 4), mask),
                    ];
                    for (k, nibbles) in nibbles.into_iter().enumerate() {
                        let s = 2 * pair + k;
                        let dl = _mm512_set1_ps(d * sc[s] as f32);
                        let ml = _mm512_set1_ps(dmin * mn[s] as f32);
                        let halves = [_mm256_castsi256_si128(nibbles), _mm256_extracti128_si256(nibbles, 1)];
                        for (h, half) in halves.into_iter().enumerate() {
                            let q = _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(half));
                            let value = _mm512_sub_ps(_mm512_mul_ps(dl, q), ml);
                            // SAFETY: 16 floats at 32s + 16h lie within the 256 of `values`.
                            unsafe { _mm512_storeu_ps(values[32 * s + 16 * h..].as_mut_ptr(), value) };
                        }
                    }
                }
            }
            true
        }
        GgmlType::BF16 => {
            let body = out.len() / 16 * 16;
            let (values, tail) = out.split_at_mut(body);
            for (b, values) in src.chunks_exact(32).zip(values.chunks_exact_mut(16)) {
                // bf16 is the top half of an f32. SAFETY: `b` holds 16 bf16, `values` 16 floats.
                unsafe {
                    let h = _mm256_loadu_si256(b.as_ptr().cast());
                    let bits = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
                    _mm512_storeu_ps(values.as_mut_ptr(), _mm512_castsi512_ps(bits));
                }
            }
            decode_portable(ty, &src[2 * body..], tail);
            true
        }
        _ => false,
    }
}
