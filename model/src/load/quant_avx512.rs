//! Whole blocks of the types most checkpoints use (Q8_0, Q4_K, Q6_K, BF16), decoded with AVX-512
//! instructions that do what `quant`'s block functions do, operation by operation (an exact
//! integer-to-float conversion, then the same multiplies and subtractions, each rounded once),
//! so the values have the same bits (tested below on every type, scales of both signs). The
//! compiler does not vectorize the block functions this well, even inlined into an AVX-512
//! caller. `quant::decode_unchecked` calls these where the CPU has AVX-512.

use std::arch::x86_64::*;

use super::quant::{GgmlType, decode_portable, q4_k_scale_min, read_f16};

/// Decodes `src` into `out` when `ty` has a vector decoder here; `false` otherwise.
///
/// # Safety
/// The CPU must have AVX-512 F and BW.
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
        GgmlType::Q6_K => {
            let (low_mask, high_mask, offset) = (_mm256_set1_epi8(0x0F), _mm256_set1_epi8(0x30), _mm256_set1_epi8(32));
            for (b, values) in src.chunks_exact(210).zip(out.chunks_exact_mut(256)) {
                let d = read_f16(b, 208);
                // As `q6_k_block`: element 128c + 32j + l takes nibble j / 2 of
                // ql[64c + 32(j % 2) + l], bit pair j of qh[32c + l], scale 8c + 2j + l / 16.
                for c in 0..2 {
                    // SAFETY: the 32 bytes read lie within the 210-byte block.
                    let qh = unsafe { _mm256_loadu_si256(b[128 + 32 * c..].as_ptr().cast()) };
                    for j in 0..4 {
                        // SAFETY: the 32 bytes read lie within the first 128 of the block.
                        let ql = unsafe { _mm256_loadu_si256(b[64 * c + 32 * (j % 2)..].as_ptr().cast()) };
                        let low =
                            _mm256_and_si256(_mm256_srl_epi16(ql, _mm_cvtsi32_si128(4 * (j as i32 / 2))), low_mask);
                        let high = _mm256_and_si256(
                            _mm256_sll_epi16(
                                _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * j as i32)),
                                _mm_cvtsi32_si128(4),
                            ),
                            high_mask,
                        );
                        let q = _mm256_sub_epi8(_mm256_or_si256(low, high), offset);
                        let halves = [_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1)];
                        for (h, half) in halves.into_iter().enumerate() {
                            let dl = _mm512_set1_ps(d * (b[192 + 8 * c + 2 * j + h] as i8) as f32);
                            let value = _mm512_mul_ps(dl, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(half)));
                            // SAFETY: 16 floats at 128c + 32j + 16h lie within the 256 of `values`.
                            unsafe { _mm512_storeu_ps(values[128 * c + 32 * j + 16 * h..].as_mut_ptr(), value) };
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Random blocks, and a bf16 row whose length is not a multiple of 16 (random bf16 bit
    /// patterns include NaNs and infinities, whose bits must pass through too).
    #[test]
    fn the_vector_decoders_give_the_block_functions_bits() {
        if !(is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw")) {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        for (ty, n) in [
            (GgmlType::Q8_0, 4096),
            (GgmlType::Q4_K, 4096),
            (GgmlType::Q6_K, 4096),
            (GgmlType::BF16, 4103),
        ] {
            let bytes = super::super::quant::random_blocks(ty, n);
            let (mut expected, mut got) = (vec![0.0f32; n], vec![0.0f32; n]);
            decode_portable(ty, &bytes, &mut expected);
            // SAFETY: the CPU has AVX-512 F and BW (checked above).
            assert!(
                unsafe { decode(ty, &bytes, &mut got) },
                "{} has a vector decoder",
                ty.name()
            );
            assert!(
                expected.iter().map(|v| v.to_bits()).eq(got.iter().map(|v| v.to_bits())),
                "{}: the vector decoder's bits differ",
                ty.name()
            );
        }
    }
}
