//! Dequantisation of every supported ggml type on small hand-built blocks (the gguf-py
//! comparison on generated blocks of every quantized type is in gguf_quant_fixture.rs).
//!
//! Two kinds of check:
//! - hand-built blocks whose values are worked out in the test from the block layout, and
//! - pseudo-random blocks (bytes from `lcg_bytes`, with the f16 scale fields set to sane values)
//!   whose expected f32 bit patterns were computed once with gguf-py 0.19.0 `gguf.quants.dequantize`
//!   and numpy 2.x, i.e. the reference transformers uses. To regenerate: fill a block with the same
//!   LCG, overwrite the listed f16 fields (little-endian), call
//!   `dequantize(np.frombuffer(b, np.uint8), GGMLQuantizationType.X)` and print `.view(np.uint32)`.

use model::load::quant::{GgmlType, dequantize};

/// The generator the expected values were made with (64-bit LCG, top byte of each state).
fn lcg_bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 56) as u8
        })
        .collect()
}

/// A block of `ty` filled by the LCG, with f16 fields (byte offset, bits) overwritten.
fn random_block(ty: GgmlType, seed: u64, f16_fields: &[(usize, u16)]) -> Vec<u8> {
    let mut b = lcg_bytes(seed, ty.type_size().unwrap() as usize);
    for &(at, bits) in f16_fields {
        b[at..at + 2].copy_from_slice(&bits.to_le_bytes());
    }
    b
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

fn f16_bytes(bits: u16) -> [u8; 2] {
    bits.to_le_bytes()
}

// Q4_0: seed 1, f16 fields [(0, '0xb4cd')], sum np.float64(4.80078125)
const Q4_0_EXPECTED: [u32; 32] = [
    0x3f667000, 0x3fe67000, 0xbf667000, 0x4019a000, 0xbfc00800, 0x4019a000, 0x3f19a000, 0x3fe67000, 0xbfe67000,
    0xbe99a000, 0x80000000, 0x40066c00, 0xbfe67000, 0xc0066c00, 0xbf99a000, 0x3fe67000, 0xbf19a000, 0x3f19a000,
    0xbf99a000, 0x80000000, 0x80000000, 0x40066c00, 0xbfc00800, 0x3fc00800, 0xbf667000, 0x80000000, 0xbf99a000,
    0x3f667000, 0x3fc00800, 0xbf667000, 0x3f19a000, 0xbe99a000,
];
// Q4_1: seed 2, f16 fields [(0, '0x2e66'), (2, '0xbc9a')], sum np.float64(-14.9178466796875)
const Q4_1_EXPECTED: [u32; 32] = [
    0xbf268800, 0xbf934000, 0xbee6b000, 0xbf0cf000, 0xbf735000, 0xbf59b800, 0xbd4f8000, 0xbf402000, 0xbf402000,
    0xbe805000, 0xbf735000, 0x3e18e000, 0xbf268800, 0xbd4f8000, 0xbeb38000, 0x3e7f4000, 0xbf59b800, 0xbee6b000,
    0xbf934000, 0x3d4a0000, 0xbf59b800, 0x3eb2d000, 0x3e18e000, 0xbd4f8000, 0xbeb38000, 0xbeb38000, 0xbe805000,
    0xbf402000, 0xbf268800, 0xbf735000, 0xbf934000, 0x3eb2d000,
];
// Q8_0: seed 3, f16 fields [(0, '0x1e1f')], sum np.float64(2.6899337768554688)
const Q8_0_EXPECTED: [u32; 32] = [
    0xbed01e00, 0x3f06aa00, 0xbf15f780, 0x3f146fc0, 0xbf43e000, 0x3f3c3940, 0xbf2ffb40, 0xbeeba980, 0xbd43e000,
    0xbe43e000, 0x3ec3e000, 0xbec0d080, 0xbe190700, 0xbe689a00, 0x3ec0d080, 0xbeb7a200, 0x3f2cebc0, 0xbea85480,
    0x3eb49280, 0x3f2b6400, 0xbe12e800, 0x3f3dc100, 0x3e95f780, 0x3f330ac0, 0x3f223580, 0x3ee58a80, 0xbec9ff00,
    0x3f330ac0, 0x3ed01e00, 0xbe92e800, 0xbf0cc900, 0x3edc5c00,
];
// Q4_K: seed 4, f16 fields [(0, '0x2bff'), (2, '0x27a3')], sum np.float64(3177.677276611328)
const Q4_K_EXPECTED: [u32; 256] = [
    0x40119d40, 0x408ec5e0, 0x40499640, 0x3f06ad00, 0x402d99c0, 0x406592c0, 0x3fb34880, 0x406592c0, 0x40119d40,
    0x406592c0, 0x3f06ad00, 0x40499640, 0xbf492900, 0x40aac260, 0xbf492900, 0x3fb34880, 0x408ec5e0, 0x3fb34880,
    0xbeb26e00, 0xbf9c8d80, 0x409cc420, 0x402d99c0, 0x4080c7a0, 0x3feb4180, 0x40119d40, 0x40499640, 0xbf492900,
    0x40aac260, 0x402d99c0, 0x402d99c0, 0x40aac260, 0x408ec5e0, 0x3f12a000, 0x40708e80, 0x414412a0, 0x41001b20,
    0x409a4300, 0x41111900, 0x41001b20, 0x41551080, 0xbefa7c00, 0x413314c0, 0x414412a0, 0x41551080, 0x41111900,
    0x412216e0, 0x402c9700, 0x409a4300, 0x402c9700, 0x41111900, 0x3f12a000, 0x414412a0, 0xbefa7c00, 0xbefa7c00,
    0x40de3a80, 0x414412a0, 0x41111900, 0x409a4300, 0x40708e80, 0xbfc68e00, 0x413314c0, 0x40bc3ec0, 0x40708e80,
    0x412216e0, 0x403fcb40, 0x420e6c64, 0x4256e354, 0x4239e6f4, 0x41a8e748, 0x4239e6f4, 0x415ddd10, 0x418beae8,
    0x415ddd10, 0x4123e450, 0x420e6c64, 0x420e6c64, 0x41ffdc68, 0x4123e450, 0x420e6c64, 0x4123e450, 0x421cea94,
    0x420e6c64, 0x41c5e3a8, 0x42486524, 0xbf205f00, 0xbf205f00, 0x42486524, 0x40d3d720, 0x418beae8, 0x4239e6f4,
    0xbf205f00, 0x4256e354, 0x415ddd10, 0x40d3d720, 0x41a8e748, 0x418beae8, 0x4229fc00, 0x41f20440, 0x41901080,
    0x40b87300, 0x41f20440, 0x402cfe80, 0xbeb74800, 0x41c10a60, 0x410d3360, 0x413e2d40, 0x42054098, 0x4229fc00,
    0x402cfe80, 0x402cfe80, 0x4229fc00, 0x41f20440, 0x41c10a60, 0x42054098, 0x41a88d70, 0x41d98750, 0x41c10a60,
    0x421dbd88, 0x421dbd88, 0x413e2d40, 0x421dbd88, 0x42117f10, 0xbeb74800, 0x41d98750, 0x41a88d70, 0x42363a78,
    0x421dbd88, 0x416f2720, 0x400b9840, 0x3f0e9500, 0xbe82a200, 0x4124d5d0, 0x40adbf20, 0x410ad910, 0x410ad910,
    0x4124d5d0, 0x403f91c0, 0x3faf3d80, 0xbe82a200, 0x40e1b8a0, 0x400b9840, 0x400b9840, 0x40c7bbe0, 0x40fbb560,
    0x40c7bbe0, 0x3faf3d80, 0x4124d5d0, 0x40adbf20, 0x403f91c0, 0x40fbb560, 0x403f91c0, 0xbe82a200, 0xbf889b80,
    0x4124d5d0, 0x4117d770, 0xbf889b80, 0x40c7bbe0, 0xbff08e80, 0xbe82a200, 0x40c7bbe0, 0x418e8758, 0x3f231100,
    0xbf6cbd00, 0x41b402a8, 0xbf6cbd00, 0x41b402a8, 0x416b14f0, 0x40dc4920, 0x41b402a8, 0x41201e50, 0x400cb7c0,
    0x418e8758, 0x418e8758, 0x419b05c8, 0x418e8758, 0x400cb7c0, 0x418e8758, 0xbf6cbd00, 0x41072170, 0x41b402a8,
    0x41391b30, 0xbf6cbd00, 0x41201e50, 0x41391b30, 0x40dc4920, 0x418208e8, 0x4070ab40, 0x419b05c8, 0x41072170,
    0x41521810, 0x41521810, 0x3f231100, 0x42428bfc, 0x42248fbc, 0x42518a1c, 0xbdb74800, 0x42428bfc, 0x41327af0,
    0x41ef2ab8, 0x406a27c0, 0x416e7370, 0x4206937c, 0x406a27c0, 0x40ed04e0, 0x4206937c, 0x416e7370, 0xbdb74800,
    0x419535f8, 0x416e7370, 0x416e7370, 0x41ef2ab8, 0x4206937c, 0x41b33238, 0x406a27c0, 0x406a27c0, 0x42338ddc,
    0x419535f8, 0x40ed04e0, 0x42338ddc, 0x41327af0, 0x416e7370, 0x40ed04e0, 0x42518a1c, 0x40ed04e0, 0x40aa2fc0,
    0x40ea27c0, 0x3fe8f700, 0x40347380, 0x40147780, 0x40746b80, 0x409a31c0, 0x409a31c0, 0x40746b80, 0x3fe8f700,
    0x3fe8f700, 0x40347380, 0x40ea27c0, 0xbe374800, 0x40347380, 0x40746b80, 0x40ca2bc0, 0x3fe8f700, 0x40aa2fc0,
    0x40746b80, 0x40ca2bc0, 0x408a33c0, 0x40ba2dc0, 0x40746b80, 0x40aa2fc0, 0x40546f80, 0x3fe8f700, 0x40ca2bc0,
    0x3fe8f700, 0x40aa2fc0, 0x3ea43c00, 0x40347380,
];
// Q6_K: seed 5, f16 fields [(208, '0x3bff')], sum np.float64(-30224.23486328125)
const Q6_K_EXPECTED: [u32; 256] = [
    0x4386ef20, 0x45230b9c, 0xc333e980, 0x42b3e980, 0x44a8aae8, 0x449d6c50, 0xc4e0e3e0, 0xc41d6c50, 0x4486ef20,
    0x4486ef20, 0xc333e980, 0xc5014fd4, 0xc50c8e6c, 0xc333e980, 0xc4b3e980, 0xc3e0e3e0, 0xc4f4017c, 0xc41d6c50,
    0xc4ec2278, 0x44f4017c, 0x44bce860, 0xc41d6c50, 0xc4dc6470, 0xc4b5095c, 0xc27be080, 0xc4fbe080, 0xc2fbe080,
    0x44c4c764, 0xc4d4856c, 0xc3fbe080, 0xc27be080, 0xc4958d4c, 0xc51e0c3c, 0xc40fae08, 0x4565e340, 0xc40fae08,
    0xc53ac8a4, 0xc54926d8, 0x4365e340, 0x4541f7be, 0x45087eee, 0x44c926d8, 0xc465e340, 0x440fae08, 0xc49e0c3c,
    0x444926d8, 0x454926d8, 0xc4ac6a70, 0x4476e120, 0x4297ed00, 0xc397ed00, 0x4384ef60, 0xc217ed00, 0xc450e5e0,
    0x442aeaa0, 0x4489aec8, 0x4397ed00, 0x4363e380, 0x43aaeaa0, 0xc45a64b0, 0x442aeaa0, 0x4484ef60, 0xc40e6e30,
    0x446d6250, 0x4506ef20, 0xc357e500, 0x45002ff8, 0x44a1ebc0, 0xc43ce860, 0xc3d7e500, 0xc43ce860, 0xc54a66b0,
    0xc506ef20, 0xc5002ff8, 0xc5002ff8, 0xc5002ff8, 0xc5362938, 0x44af6a10, 0xc528aae8, 0xc4ca66b0, 0x44dce460,
    0x454966d0, 0xc49bec80, 0xc52f6a10, 0xc5156d50, 0x4542e7a0, 0xc49bec80, 0x45086ef0, 0x454966d0, 0xc542e7a0,
    0x439bec80, 0x451bec80, 0xc44fe600, 0xc54fe600, 0xc4a8eae0, 0xc2cfe600, 0xc3c36790, 0x43b7e900, 0xc437e900,
    0x43f161d0, 0x43da64b0, 0xc3f161d0, 0xc437e900, 0xc3b7e900, 0xc3e5e340, 0x43b7e900, 0xc3ac6a70, 0x43e5e340,
    0xc289eec0, 0x4409eec0, 0x4389eec0, 0xc3e5e340, 0xc3946d70, 0x442d2a58, 0xc4b988cc, 0xc45ea428, 0xc526fb1e,
    0xc53988cc, 0x450e3e36, 0x44880efc, 0xc4ad2a58, 0xc545e740, 0x44c5e740, 0xc445e740, 0x43f76110, 0xc4dea428,
    0x44946d70, 0xc4dea428, 0x45112dd8, 0xc3a5eb40, 0xc4cf6610, 0xc3f8e0e0, 0x4478e0e0, 0xc525eb40, 0x44f8e0e0,
    0xc506cf24, 0xc4b049f4, 0xc4f8e0e0, 0x4425eb40, 0xc4912dd8, 0x4378e0e0, 0x451b8c8c, 0x449b8c8c, 0xc44f6610,
    0x450e6e30, 0x44d0e5e0, 0x4484ef60, 0xc476e120, 0xc517ed00, 0xc43de840, 0xc504ef60, 0xc317ed00, 0x44d0e5e0,
    0x4404ef60, 0x442aeaa0, 0x44d0e5e0, 0xc3e3e380, 0xc4aaeaa0, 0xc50e6e30, 0x44ed6250, 0xc2fbe080, 0x4451e5c0,
    0xc49d6c50, 0x445c6470, 0xc2a7eb00, 0xc351e5c0, 0x448dae48, 0x447be080, 0x4466e320, 0xc43ce860, 0x4466e320,
    0xc4086ef0, 0xc43ce860, 0xc47be080, 0xc37be080, 0xc4886ef0, 0x4445e740, 0xc4896ed0, 0x443ae8a0, 0xc32fea00,
    0x4445e740, 0xc4aa6ab0, 0xc48eee20, 0xc4a4eb60, 0x4483ef80, 0xc4afea00, 0xc45be480, 0xc4afea00, 0xc303ef80,
    0xc471e1c0, 0xc303ef80, 0xc43ae8a0, 0xc3c5e740, 0xc345e740, 0xc3bae8a0, 0xc3f1e1c0, 0x4371e1c0, 0x435be480,
    0xc40eee20, 0xc2afea00, 0x43bae8a0, 0x440eee20, 0x440eee20, 0xc32fea00, 0x4419ecc0, 0xc419ecc0, 0x441f6c10,
    0xc4096ed0, 0x42d1e5c0, 0xc44067f0, 0x42d1e5c0, 0xc3aeea20, 0x448bee80, 0xc3f4e160, 0x80000000, 0xc44926d8,
    0x4374e160, 0x44032f98, 0x4474e160, 0x432eea20, 0x432eea20, 0x445aa4a8, 0x42d1e5c0, 0xc3c067f0, 0x44cf6610,
    0x44642378, 0x444f6610, 0xc5019fca, 0x4425eb40, 0x44d9c4c4, 0x44642378, 0x43cf6610, 0xc50bfe7e, 0x44112dd8,
    0x4486cf24, 0x4520bbe6, 0xc43aa8a8, 0x444f6610, 0x44a5eb40, 0xc378e0e0, 0xc4b229b8, 0xc3fce060, 0x4365e340,
    0x447161d0, 0xc47161d0, 0x447ce060, 0xc3a0ebe0, 0x44956d50, 0xc420ebe0, 0x4437e900, 0xc4b229b8, 0x447ce060,
    0xc365e340, 0x42b7e900, 0x447ce060, 0xc4b7e900,
];

/// A pseudo-random block and the values gguf-py gives for it.
struct Pinned {
    ty: GgmlType,
    seed: u64,
    f16_fields: &'static [(usize, u16)],
    expected: &'static [u32],
}

const PINNED: &[Pinned] = &[
    Pinned {
        ty: GgmlType::Q4_0,
        seed: 1,
        f16_fields: &[(0, 0xB4CD)],
        expected: &Q4_0_EXPECTED,
    },
    Pinned {
        ty: GgmlType::Q4_1,
        seed: 2,
        f16_fields: &[(0, 0x2E66), (2, 0xBC9A)],
        expected: &Q4_1_EXPECTED,
    },
    Pinned {
        ty: GgmlType::Q8_0,
        seed: 3,
        f16_fields: &[(0, 0x1E1F)],
        expected: &Q8_0_EXPECTED,
    },
    Pinned {
        ty: GgmlType::Q4_K,
        seed: 4,
        f16_fields: &[(0, 0x2BFF), (2, 0x27A3)],
        expected: &Q4_K_EXPECTED,
    },
    Pinned {
        ty: GgmlType::Q6_K,
        seed: 5,
        f16_fields: &[(208, 0x3BFF)],
        expected: &Q6_K_EXPECTED,
    },
];

#[test]
fn random_blocks_match_gguf_py_bit_exactly() {
    for p in PINNED {
        let block = random_block(p.ty, p.seed, p.f16_fields);
        let got = dequantize(p.ty, &block, p.expected.len()).unwrap();
        assert_eq!(bits(&got), p.expected, "{:?}", p.ty);
    }
}

#[test]
fn consecutive_blocks_decode_independently() {
    for p in PINNED {
        let n = p.expected.len();
        let second = random_block(p.ty, p.seed + 100, p.f16_fields);
        let mut both = random_block(p.ty, p.seed, p.f16_fields);
        both.extend_from_slice(&second);
        let got = dequantize(p.ty, &both, 2 * n).unwrap();
        assert_eq!(bits(&got[..n]), p.expected, "{:?} first block", p.ty);
        let alone = dequantize(p.ty, &second, n).unwrap();
        assert_eq!(bits(&got[n..]), bits(&alone), "{:?} second block", p.ty);
    }
}

#[test]
fn q4_0_hand_block() {
    // d = 0.5; byte k holds k in its low nibble and 15 - k in its high nibble.
    let mut b = f16_bytes(0x3800).to_vec();
    b.extend((0..16u8).map(|k| k | ((15 - k) << 4)));
    let got = dequantize(GgmlType::Q4_0, &b, 32).unwrap();
    for k in 0..16 {
        assert_eq!(got[k], 0.5 * (k as f32 - 8.0), "low nibble {k}");
        assert_eq!(got[16 + k], 0.5 * (7.0 - k as f32), "high nibble {k}");
    }
}

#[test]
fn q4_1_hand_block() {
    // d = 0.25, m = -1; byte k holds k (low) and 15 - k (high).
    let mut b = f16_bytes(0x3400).to_vec();
    b.extend(f16_bytes(0xBC00));
    b.extend((0..16u8).map(|k| k | ((15 - k) << 4)));
    let got = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
    for k in 0..16 {
        assert_eq!(got[k], 0.25 * k as f32 - 1.0);
        assert_eq!(got[16 + k], 0.25 * (15 - k) as f32 - 1.0);
    }
}

#[test]
fn q8_0_hand_block() {
    // d = 2; q = k - 16, and the last byte is -128.
    let mut b = f16_bytes(0x4000).to_vec();
    b.extend((0..32i32).map(|k| (k - 16) as i8 as u8));
    b[2 + 31] = 0x80;
    let got = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
    for (k, &v) in got[..31].iter().enumerate() {
        assert_eq!(v, 2.0 * (k as f32 - 16.0));
    }
    assert_eq!(got[31], -256.0);
}

#[test]
fn q4_k_hand_block() {
    // d = 1, dmin = 0.5; 6-bit scales and mins chosen so that 4..8 use their top two bits.
    let sc: [u8; 8] = [1, 2, 3, 4, 33, 50, 63, 17];
    let mn: [u8; 8] = [0, 1, 2, 3, 40, 5, 63, 16];
    let mut packed = [0u8; 12];
    for i in 0..4 {
        packed[i] = sc[i] | ((sc[4 + i] >> 4) << 6);
        packed[4 + i] = mn[i] | ((mn[4 + i] >> 4) << 6);
        packed[8 + i] = (sc[4 + i] & 0x0F) | ((mn[4 + i] & 0x0F) << 4);
    }
    let mut b = f16_bytes(0x3C00).to_vec();
    b.extend(f16_bytes(0x3800));
    b.extend(packed);
    // Each 32-byte chunk: low nibble l % 16 (even sub-block), high nibble (l + 3) % 16 (odd).
    for _ in 0..4 {
        b.extend((0..32u8).map(|l| (l % 16) | (((l + 3) % 16) << 4)));
    }
    assert_eq!(b.len(), 144);
    let got = dequantize(GgmlType::Q4_K, &b, 256).unwrap();
    for s in 0..8 {
        for l in 0..32 {
            let q = if s % 2 == 0 { l % 16 } else { (l + 3) % 16 };
            let want = sc[s] as f32 * q as f32 - 0.5 * mn[s] as f32;
            assert_eq!(got[32 * s + l], want, "sub-block {s} element {l}");
        }
    }
}

#[test]
fn q6_k_hand_block() {
    // ql bytes 0x21: low nibble 1 (elements r < 64 of each half), high nibble 2 (r >= 64).
    // qh bytes 0xE4: bit pairs 0, 1, 2, 3 for r / 32 = 0, 1, 2, 3.
    // So q - 32 is -31, -15, 2, 18 for the four quarters of each 128-element half.
    // d = 0.5, scale of group g (16 elements) = g - 8.
    let mut b = vec![0x21u8; 128];
    b.extend([0xE4u8; 64]);
    b.extend((0..16i32).map(|g| (g - 8) as i8 as u8));
    b.extend(f16_bytes(0x3800));
    assert_eq!(b.len(), 210);
    let got = dequantize(GgmlType::Q6_K, &b, 256).unwrap();
    let quarter = [-31.0f32, -15.0, 2.0, 18.0];
    for e in 0..256 {
        let want = (0.5 * (e / 16) as f32 - 4.0) * quarter[(e % 128) / 32];
        assert_eq!(got[e], want, "element {e}");
    }
}

/// Q5 test nibbles: byte k holds k (low) and 15 - k (high); `qh` sets the fifth bit of the even
/// elements 0..16 (0x5555) and of the odd elements 16..32 (0xAAAA << 16).
fn q5_hand_quants() -> (Vec<u8>, [u8; 32]) {
    let mut bytes = 0xAAAA_5555u32.to_le_bytes().to_vec();
    bytes.extend((0..16u8).map(|k| k | ((15 - k) << 4)));
    let mut q = [0u8; 32];
    for k in 0..16u8 {
        q[k as usize] = k + if k % 2 == 0 { 16 } else { 0 };
        q[16 + k as usize] = (15 - k) + if k % 2 == 1 { 16 } else { 0 };
    }
    (bytes, q)
}

#[test]
fn q5_0_hand_block() {
    // d = 0.5, value d * (q - 16).
    let (quants, q) = q5_hand_quants();
    let mut b = f16_bytes(0x3800).to_vec();
    b.extend(quants);
    let got = dequantize(GgmlType::Q5_0, &b, 32).unwrap();
    for e in 0..32 {
        assert_eq!(got[e], 0.5 * (q[e] as f32 - 16.0), "element {e}");
    }
}

#[test]
fn q5_1_hand_block() {
    // d = 0.25, m = -1, value d * q + m.
    let (quants, q) = q5_hand_quants();
    let mut b = f16_bytes(0x3400).to_vec();
    b.extend(f16_bytes(0xBC00));
    b.extend(quants);
    let got = dequantize(GgmlType::Q5_1, &b, 32).unwrap();
    for e in 0..32 {
        assert_eq!(got[e], 0.25 * q[e] as f32 - 1.0, "element {e}");
    }
}

#[test]
fn q2_k_hand_block() {
    // Group g (16 elements) has scale g and min 15 - g; every 2-bit byte is 0xE4, so the bit
    // pair of quarter r / 32 of each 128-element half is r / 32. d = 1, dmin = 0.5.
    let mut b: Vec<u8> = (0..16u8).map(|g| g | ((15 - g) << 4)).collect();
    b.extend([0xE4u8; 64]);
    b.extend(f16_bytes(0x3C00));
    b.extend(f16_bytes(0x3800));
    assert_eq!(b.len(), 84);
    let got = dequantize(GgmlType::Q2_K, &b, 256).unwrap();
    for e in 0..256 {
        let (g, q) = (e / 16, (e % 128) / 32);
        let want = g as f32 * q as f32 - 0.5 * (15 - g) as f32;
        assert_eq!(got[e], want, "element {e}");
    }
}

#[test]
fn q3_k_hand_block() {
    // Scales -32, -27, ..., 28, 31, 31 (the 6-bit range); packed as gguf-py's diagram says.
    let scales: [i8; 16] = std::array::from_fn(|i| (5 * i as i32 - 32).clamp(-32, 31) as i8);
    let mut packed = [0u8; 12];
    for (i, &s) in scales.iter().enumerate() {
        let stored = (s as i32 + 32) as u8;
        packed[i % 8] |= (stored & 0x0F) << (4 * (i / 8));
        packed[8 + i % 4] |= (stored >> 4) << (2 * (i / 4));
    }
    // hmask bytes 0x0F: the high bit is set for e / 32 < 4, so the second half is offset by -4.
    let mut b = vec![0x0Fu8; 32];
    b.extend([0xE4u8; 64]);
    b.extend(packed);
    b.extend(f16_bytes(0x3800));
    assert_eq!(b.len(), 110);
    let got = dequantize(GgmlType::Q3_K, &b, 256).unwrap();
    for e in 0..256 {
        let q = ((e % 128) / 32) as f32 - if e >= 128 { 4.0 } else { 0.0 };
        assert_eq!(got[e], 0.5 * scales[e / 16] as f32 * q, "element {e}");
    }
}

#[test]
fn q5_k_hand_block() {
    // Q4_K's hand block (d = 1, dmin = 0.5, the same scales and mins) plus qh bytes 0xA5 at
    // even l and 0 at odd l: sub-blocks 0, 2, 5 and 7 add 16 at even l.
    let sc: [u8; 8] = [1, 2, 3, 4, 33, 50, 63, 17];
    let mn: [u8; 8] = [0, 1, 2, 3, 40, 5, 63, 16];
    let mut packed = [0u8; 12];
    for i in 0..4 {
        packed[i] = sc[i] | ((sc[4 + i] >> 4) << 6);
        packed[4 + i] = mn[i] | ((mn[4 + i] >> 4) << 6);
        packed[8 + i] = (sc[4 + i] & 0x0F) | ((mn[4 + i] & 0x0F) << 4);
    }
    let mut b = f16_bytes(0x3C00).to_vec();
    b.extend(f16_bytes(0x3800));
    b.extend(packed);
    b.extend((0..32).map(|l| if l % 2 == 0 { 0xA5u8 } else { 0 }));
    for _ in 0..4 {
        b.extend((0..32u8).map(|l| (l % 16) | (((l + 3) % 16) << 4)));
    }
    assert_eq!(b.len(), 176);
    let got = dequantize(GgmlType::Q5_K, &b, 256).unwrap();
    for s in 0..8 {
        for l in 0..32 {
            let low = if s % 2 == 0 { l % 16 } else { (l + 3) % 16 };
            let fifth = if l % 2 == 0 && [0, 2, 5, 7].contains(&s) { 16 } else { 0 };
            let want = sc[s] as f32 * (low + fifth) as f32 - 0.5 * mn[s] as f32;
            assert_eq!(got[32 * s + l], want, "sub-block {s} element {l}");
        }
    }
}

#[test]
fn f16_values() {
    let cases: [(u16, f32); 8] = [
        (0x3C00, 1.0),
        (0xC000, -2.0),
        (0x0001, 5.960_464_5e-8), // smallest subnormal, 2^-24
        (0x7BFF, 65504.0),
        (0xFC00, f32::NEG_INFINITY),
        (0x3555, 0.333_251_95),
        (0x8000, -0.0),
        (0x2E66, 0.099_975_586),
    ];
    let bytes: Vec<u8> = cases.iter().flat_map(|c| c.0.to_le_bytes()).collect();
    let got = dequantize(GgmlType::F16, &bytes, cases.len()).unwrap();
    for (g, (h, want)) in got.iter().zip(cases) {
        assert_eq!(g.to_bits(), want.to_bits(), "f16 {h:#06x}");
    }
    let nan = dequantize(GgmlType::F16, &0x7E00u16.to_le_bytes(), 1).unwrap();
    assert!(nan[0].is_nan());
}

#[test]
fn bf16_values() {
    // bf16 is the upper half of an f32, so these are exact by construction.
    let cases: [u16; 6] = [0x3F80, 0xC049, 0x0001, 0x7F80, 0x8000, 0x7FC1];
    let bytes: Vec<u8> = cases.iter().flat_map(|c| c.to_le_bytes()).collect();
    let got = dequantize(GgmlType::BF16, &bytes, cases.len()).unwrap();
    for (g, h) in got.iter().zip(cases) {
        assert_eq!(g.to_bits(), (h as u32) << 16, "bf16 {h:#06x}");
    }
    assert_eq!(got[0], 1.0);
    assert_eq!(got[1], -3.140625);
}

#[test]
fn f32_values_keep_their_bits() {
    let vals = [1.5f32, -0.0, f32::from_bits(0x7FC0_1234), f32::MIN_POSITIVE / 4.0];
    let bytes: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
    let got = dequantize(GgmlType::F32, &bytes, vals.len()).unwrap();
    assert_eq!(bits(&got), bits(&vals));
}

#[test]
fn empty_input_gives_empty_output() {
    for ty in [GgmlType::F32, GgmlType::Q4_1, GgmlType::Q6_K] {
        assert_eq!(dequantize(ty, &[], 0).unwrap(), Vec::<f32>::new());
    }
}

#[test]
fn dequantize_rejects_bad_arguments() {
    // Too few and too many bytes.
    let err = dequantize(GgmlType::Q8_0, &[0u8; 33], 32).unwrap_err();
    assert!(err.contains("34") && err.contains("33"), "{err}");
    assert!(dequantize(GgmlType::Q8_0, &[0u8; 35], 32).is_err());
    assert!(dequantize(GgmlType::F32, &[0u8; 7], 2).is_err());
    // Not a whole number of blocks.
    let err = dequantize(GgmlType::Q4_K, &[0u8; 144], 255).unwrap_err();
    assert!(err.contains("Q4_K") && err.contains("255"), "{err}");
    // Known-size but unsupported (IQ2_XXS), and unknown types.
    let err = dequantize(GgmlType::Other(16), &[0u8; 66], 256).unwrap_err();
    assert!(err.contains("IQ2_XXS"), "{err}");
    let err = dequantize(GgmlType::Other(999), &[], 0).unwrap_err();
    assert!(err.contains("999"), "{err}");
}

#[test]
fn ggml_type_ids_names_and_sizes() {
    let named = [
        (0, GgmlType::F32, "F32"),
        (1, GgmlType::F16, "F16"),
        (2, GgmlType::Q4_0, "Q4_0"),
        (3, GgmlType::Q4_1, "Q4_1"),
        (6, GgmlType::Q5_0, "Q5_0"),
        (7, GgmlType::Q5_1, "Q5_1"),
        (8, GgmlType::Q8_0, "Q8_0"),
        (10, GgmlType::Q2_K, "Q2_K"),
        (11, GgmlType::Q3_K, "Q3_K"),
        (12, GgmlType::Q4_K, "Q4_K"),
        (13, GgmlType::Q5_K, "Q5_K"),
        (14, GgmlType::Q6_K, "Q6_K"),
        (30, GgmlType::BF16, "BF16"),
    ];
    for (id, ty, name) in named {
        assert_eq!(GgmlType::from_u32(id), ty);
        assert_eq!(ty.id(), id);
        assert_eq!(ty.name(), name);
        assert!(ty.can_dequantize());
    }
    assert_eq!(GgmlType::from_u32(16), GgmlType::Other(16));
    assert_eq!(GgmlType::Other(16).name(), "IQ2_XXS");
    assert!(!GgmlType::Other(16).can_dequantize());
    assert_eq!(
        GgmlType::dequantizable_names(),
        "F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16"
    );
    assert!(GgmlType::from_u32(12345).name().contains("12345"));
    for id in 0..64 {
        assert_eq!(GgmlType::from_u32(id).id(), id);
    }

    assert_eq!(GgmlType::F32.byte_size(10), Some(40));
    assert_eq!(GgmlType::F16.byte_size(10), Some(20));
    assert_eq!(GgmlType::BF16.byte_size(3), Some(6));
    assert_eq!(GgmlType::Q4_0.byte_size(64), Some(36));
    assert_eq!(GgmlType::Q4_1.byte_size(64), Some(40));
    assert_eq!(GgmlType::Q8_0.byte_size(576), Some(18 * 34));
    assert_eq!(GgmlType::Q4_K.byte_size(512), Some(288));
    assert_eq!(GgmlType::Q6_K.byte_size(256), Some(210));
    assert_eq!(GgmlType::Q5_0.byte_size(64), Some(44));
    assert_eq!(GgmlType::Q5_1.byte_size(64), Some(48));
    assert_eq!(GgmlType::Q2_K.byte_size(256), Some(84));
    assert_eq!(GgmlType::Q3_K.byte_size(256), Some(110));
    assert_eq!(GgmlType::Q5_K.byte_size(256), Some(176));
    assert_eq!(GgmlType::Other(16).byte_size(256), Some(66));
    assert_eq!(GgmlType::Q8_0.byte_size(31), None);
    assert_eq!(GgmlType::Q4_K.byte_size(128), None);
    assert_eq!(GgmlType::Other(999).byte_size(32), None);
    assert_eq!(GgmlType::F32.byte_size(u64::MAX), None);
    assert_eq!(GgmlType::Q8_0.byte_size(0), Some(0));
}
