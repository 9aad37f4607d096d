//! f32 values to a stored encoding, for writing checkpoints: F32, F16, BF16 (round to nearest
//! even, as torch's `.to(bfloat16)`), Q8_0 (ggml's reference quantizer) and Q4_K (a min-max
//! quantizer: valid Q4_K blocks that `quant::dequantize` and gguf-py decode identically, but
//! not ggml's iterative `make_qkx2_quants` search, so its error is somewhat larger).

use half::{bf16, f16};

use super::quant::GgmlType;

/// Elements per Q8_0 block and per Q4_K super-block.
const QK8_0: usize = 32;
const QK_K: usize = 256;

/// `values` encoded as `ty`; `None` for a type this module cannot write or a length that is
/// not whole blocks.
pub fn quantize(ty: GgmlType, values: &[f32]) -> Option<Vec<u8>> {
    let block = ty.block_size()? as usize;
    if !values.len().is_multiple_of(block) {
        return None;
    }
    let encode: fn(&[f32], &mut Vec<u8>) = match ty {
        GgmlType::F32 => |v, out| out.extend_from_slice(&v[0].to_le_bytes()),
        GgmlType::F16 => |v, out| out.extend_from_slice(&f16::from_f32(v[0]).to_le_bytes()),
        GgmlType::BF16 => |v, out| out.extend_from_slice(&bf16::from_f32(v[0]).to_le_bytes()),
        GgmlType::Q8_0 => q8_0_block,
        GgmlType::Q4_K => q4_k_block,
        _ => return None,
    };
    let mut out = Vec::with_capacity(ty.byte_size(values.len() as u64)? as usize);
    for chunk in values.chunks_exact(block) {
        encode(chunk, &mut out);
    }
    Some(out)
}

/// C's `roundf`: halves away from zero (ggml rounds so; Rust's `f32::round` does the same).
fn roundf(x: f32) -> f32 {
    x.round()
}

/// ggml `quantize_row_q8_0_ref`: d = max|x| / 127, q = round(x / d), d stored as f16.
fn q8_0_block(x: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(x.len(), QK8_0);
    let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
    out.extend(x.iter().map(|&v| roundf(v * id) as i8 as u8));
}

/// Q4_K: eight sub-blocks of 32, value = d·sc·q − dmin·m with 4-bit q and 6-bit sc, m. Each
/// sub-block's range [min(x, 0), max(x)] is split into 15 steps; the scales and mins are then
/// expressed in units of the largest over 63.
fn q4_k_block(x: &[f32], out: &mut Vec<u8>) {
    debug_assert_eq!(x.len(), QK_K);
    let mut scales = [0.0f32; 8];
    let mut mins = [0.0f32; 8];
    for (s, sub) in x.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0.0f32, |m, &v| m.min(v));
        let hi = sub.iter().fold(f32::MIN, |m, &v| m.max(v));
        scales[s] = (hi - lo) / 15.0;
        mins[s] = -lo;
    }
    let max_scale = scales.iter().fold(0.0f32, |m, &v| m.max(v));
    let max_min = mins.iter().fold(0.0f32, |m, &v| m.max(v));
    let d = f16::from_f32(max_scale / 63.0);
    let dmin = f16::from_f32(max_min / 63.0);
    let six_bits = |v: f32, unit: f32| {
        if unit > 0.0 {
            roundf(v / unit).clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    let sc: [u8; 8] = std::array::from_fn(|s| six_bits(scales[s], d.to_f32()));
    let mn: [u8; 8] = std::array::from_fn(|s| six_bits(mins[s], dmin.to_f32()));
    let mut q = [0u8; QK_K];
    for (s, sub) in x.chunks_exact(32).enumerate() {
        let step = d.to_f32() * sc[s] as f32;
        let offset = dmin.to_f32() * mn[s] as f32;
        for (l, &v) in sub.iter().enumerate() {
            q[32 * s + l] = if step > 0.0 {
                roundf((v + offset) / step).clamp(0.0, 15.0) as u8
            } else {
                0
            };
        }
    }
    out.extend_from_slice(&d.to_le_bytes());
    out.extend_from_slice(&dmin.to_le_bytes());
    out.extend_from_slice(&pack_scale_min(&sc, &mn));
    // Sub-blocks 2p and 2p+1 share bytes 32p..32p+32: low nibble, high nibble.
    for p in 0..4 {
        for l in 0..32 {
            out.push(q[64 * p + l] | (q[64 * p + 32 + l] << 4));
        }
    }
}

/// The inverse of quant.rs's `q4_k_scale_min`: scales and mins 0..4 in the low 6 bits of bytes
/// 0..4 and 4..8; 4..8 split into low 4 bits (bytes 8..12) and top 2 bits (the spare top bits
/// of bytes 0..8).
fn pack_scale_min(sc: &[u8; 8], mn: &[u8; 8]) -> [u8; 12] {
    let mut s = [0u8; 12];
    for i in 0..4 {
        s[i] = sc[i] | ((sc[4 + i] >> 4) << 6);
        s[4 + i] = mn[i] | ((mn[4 + i] >> 4) << 6);
        s[8 + i] = (sc[4 + i] & 0x0F) | ((mn[4 + i] & 0x0F) << 4);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::quant::dequantize;

    fn ramp(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0).collect()
    }

    #[test]
    fn q8_0_round_trips_within_half_a_step() {
        let x = ramp(64);
        let back = dequantize(GgmlType::Q8_0, &quantize(GgmlType::Q8_0, &x).unwrap(), 64).unwrap();
        for (block, (xs, ys)) in x.chunks(32).zip(back.chunks(32)).enumerate() {
            let step = xs.iter().fold(0.0f32, |m, v| m.max(v.abs())) / 127.0;
            for (a, b) in xs.iter().zip(ys) {
                // f16 rounding of d adds a relative error of at most 2^-11 on top of half a step.
                assert!(
                    (a - b).abs() <= 0.5 * step + a.abs() * 1e-3,
                    "block {block}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn q4_k_round_trips_within_a_step_of_its_sub_block() {
        let x = ramp(512);
        let back = dequantize(GgmlType::Q4_K, &quantize(GgmlType::Q4_K, &x).unwrap(), 512).unwrap();
        for (xs, ys) in x.chunks(32).zip(back.chunks(32)) {
            let range = xs.iter().fold(0.0f32, |m, &v| m.max(v)) - xs.iter().fold(0.0f32, |m, &v| m.min(v));
            // Half a step, plus the 6-bit rounding of the scale and the min.
            let tolerance = range / 15.0;
            for (a, b) in xs.iter().zip(ys) {
                assert!((a - b).abs() <= tolerance, "{a} vs {b} (range {range})");
            }
        }
    }

    #[test]
    fn scale_packing_is_the_inverse_of_decoding() {
        let sc = [0, 1, 17, 63, 32, 48, 5, 62];
        let mn = [63, 2, 31, 0, 16, 33, 61, 7];
        // Decode the packed bytes the way quant.rs does (gguf-py's get_scale_min).
        let s = pack_scale_min(&sc, &mn);
        for i in 0..4 {
            assert_eq!(s[i] & 0x3F, sc[i]);
            assert_eq!(s[4 + i] & 0x3F, mn[i]);
            assert_eq!((s[8 + i] & 0x0F) | ((s[i] >> 2) & 0x30), sc[4 + i]);
            assert_eq!((s[8 + i] >> 4) | ((s[4 + i] >> 2) & 0x30), mn[4 + i]);
        }
    }

    #[test]
    fn unwritable_types_and_partial_blocks_are_refused() {
        assert!(quantize(GgmlType::Q6_K, &[0.0; 256]).is_none());
        assert!(quantize(GgmlType::Q8_0, &[0.0; 33]).is_none());
        assert_eq!(
            quantize(GgmlType::BF16, &[1.0]).unwrap(),
            half::bf16::from_f32(1.0).to_le_bytes()
        );
    }
}
