//! ggml tensor element types and their dequantisation to f32.
//!
//! Every formula follows gguf-py's `gguf/quants.py` operation by operation (same operand
//! order, f32 arithmetic, one rounding per numpy operation), so the results are bit-identical to
//! what transformers loads. Rust never contracts `a * b + c` into a fused multiply-add, which
//! is what keeps e.g. Q4_1's `d * q + m` bit-exact.

use half::f16;

/// The ggml type of a tensor, as stored (as a u32 id) in a GGUF tensor-info record.
///
/// The types this crate can dequantize have their own variant; every other id is `Other(id)`.
/// Build values with [`GgmlType::from_u32`] so that an id always maps to one variant.
#[allow(non_camel_case_types)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Other(u32),
}

/// Elements per super-block of the k-quants.
const QK_K: u64 = 256;

/// Every type gguf-py 0.19 knows: (id, name, elements per block, bytes per block).
/// Knowing the sizes of types we cannot dequantize still lets a file be validated at open.
const KNOWN_TYPES: &[(u32, &str, u64, u64)] = &[
    (0, "F32", 1, 4),
    (1, "F16", 1, 2),
    (2, "Q4_0", 32, 2 + 16),
    (3, "Q4_1", 32, 2 + 2 + 16),
    (6, "Q5_0", 32, 2 + 4 + 16),
    (7, "Q5_1", 32, 2 + 2 + 4 + 16),
    (8, "Q8_0", 32, 2 + 32),
    (9, "Q8_1", 32, 4 + 4 + 32),
    (10, "Q2_K", QK_K, 2 + 2 + QK_K / 16 + QK_K / 4),
    (11, "Q3_K", QK_K, 2 + QK_K / 4 + QK_K / 8 + 12),
    (12, "Q4_K", QK_K, 2 + 2 + QK_K / 2 + 12),
    (13, "Q5_K", QK_K, 2 + 2 + QK_K / 2 + QK_K / 8 + 12),
    (14, "Q6_K", QK_K, 2 + QK_K / 2 + QK_K / 4 + QK_K / 16),
    (15, "Q8_K", QK_K, 4 + QK_K + QK_K / 8),
    (16, "IQ2_XXS", QK_K, 2 + QK_K / 4),
    (17, "IQ2_XS", QK_K, 2 + QK_K / 4 + QK_K / 32),
    (18, "IQ3_XXS", QK_K, 2 + QK_K / 4 + QK_K / 8),
    (19, "IQ1_S", QK_K, 2 + QK_K / 8 + QK_K / 16),
    (20, "IQ4_NL", 32, 2 + 16),
    (21, "IQ3_S", QK_K, 2 + QK_K / 4 + QK_K / 8 + QK_K / 32 + 4),
    (22, "IQ2_S", QK_K, 2 + QK_K / 4 + QK_K / 16),
    (23, "IQ4_XS", QK_K, 2 + 2 + QK_K / 2 + QK_K / 64),
    (24, "I8", 1, 1),
    (25, "I16", 1, 2),
    (26, "I32", 1, 4),
    (27, "I64", 1, 8),
    (28, "F64", 1, 8),
    (29, "IQ1_M", QK_K, QK_K / 8 + QK_K / 16 + QK_K / 32),
    (30, "BF16", 1, 2),
    (34, "TQ1_0", QK_K, 2 + 4 * 13),
    (35, "TQ2_0", QK_K, 2 + 64),
    (39, "MXFP4", 32, 1 + 16),
    (40, "NVFP4", 64, 4 + 32),
    (41, "Q1_0", 128, 2 + 16),
];

impl GgmlType {
    pub fn from_u32(v: u32) -> Self {
        match v {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            10 => Self::Q2_K,
            11 => Self::Q3_K,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    /// The numeric id GGUF stores for this type.
    pub fn id(&self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q2_K => 10,
            Self::Q3_K => 11,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
            Self::Other(v) => *v,
        }
    }

    fn known(&self) -> Option<&'static (u32, &'static str, u64, u64)> {
        let id = self.id();
        KNOWN_TYPES.iter().find(|t| t.0 == id)
    }

    /// gguf-py's name for the type (`"Q4_1"`), or `"unknown type <id>"`.
    pub fn name(&self) -> String {
        match self.known() {
            Some(t) => t.1.to_string(),
            None => format!("unknown type {}", self.id()),
        }
    }

    /// Elements per block (1 for plain float types); `None` for an unknown id.
    pub fn block_size(&self) -> Option<u64> {
        self.known().map(|t| t.2)
    }

    /// Bytes per block; `None` for an unknown id.
    pub fn type_size(&self) -> Option<u64> {
        self.known().map(|t| t.3)
    }

    /// Bytes needed for `n_elements`; `None` for an unknown id, for a count that is not a
    /// whole number of blocks, or on overflow.
    pub fn byte_size(&self, n_elements: u64) -> Option<u64> {
        let (block, size) = (self.block_size()?, self.type_size()?);
        if !n_elements.is_multiple_of(block) {
            return None;
        }
        (n_elements / block).checked_mul(size)
    }

    /// Whether [`dequantize`] handles this type.
    pub fn can_dequantize(&self) -> bool {
        // Every named variant has a block function in `decode_portable`.
        !matches!(self, Self::Other(_))
    }

    /// Every type [`dequantize`] handles, in GGUF id order.
    pub fn dequantizable() -> impl Iterator<Item = GgmlType> {
        KNOWN_TYPES
            .iter()
            .map(|t| Self::from_u32(t.0))
            .filter(Self::can_dequantize)
    }

    /// The names of every type [`dequantize`] handles, for error messages ("F32, F16, ...").
    pub fn dequantizable_names() -> String {
        let names: Vec<String> = Self::dequantizable().map(|t| t.name()).collect();
        names.join(", ")
    }
}

impl std::fmt::Display for GgmlType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Dequantize `n` elements stored as `ty` in `bytes` to f32, bit-exactly as gguf-py's
/// gguf/quants.py does. `bytes` must hold exactly `ty.byte_size(n)` bytes.
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let mut out = vec![0.0f32; n];
    dequantize_into(ty, bytes, &mut out)?;
    Ok(out)
}

/// [`dequantize`] into `out` (its length is the element count), so that a loader decodes
/// straight into the buffer it keeps.
pub fn dequantize_into(ty: GgmlType, bytes: &[u8], out: &mut [f32]) -> Result<(), String> {
    if !ty.can_dequantize() {
        return Err(format!("dequantizing ggml type {} is not supported", ty.name()));
    }
    let n = out.len();
    let block = ty.block_size().unwrap_or(1) as usize;
    let expected = ty
        .byte_size(n as u64)
        .ok_or_else(|| format!("{n} elements is not a whole number of {} blocks of {block}", ty.name()))?;
    if bytes.len() as u64 != expected {
        return Err(format!(
            "{n} elements of {} need {expected} bytes, got {}",
            ty.name(),
            bytes.len()
        ));
    }
    decoder_for(ty)(bytes, out);
    Ok(())
}

/// Decodes whole blocks of one type (`bytes` exactly `out.len()` values of it).
pub(crate) type Decode = fn(&[u8], &mut [f32]);

/// The widest decoder this CPU has for `ty`, chosen once for a loop that decodes many pieces:
/// AVX-512 (`quant_avx512`: Q8_0, Q4_K, BF16) or AVX2 (`quant_avx2`: every type but F32)
/// decoders with the block functions' bits, else the block functions. `ty` must be decodable.
pub(crate) fn decoder_for(ty: GgmlType) -> Decode {
    macro_rules! portable {
        ($($ty:ident),*) => {
            match ty {
                $(GgmlType::$ty => |bytes, out| decode_portable(GgmlType::$ty, bytes, out),)*
                GgmlType::Other(_) => unreachable!("decoder_for: {} cannot be decoded", ty.name()),
            }
        };
    }
    macro_rules! vector {
        ($module:ident, $($ty:ident),*) => {
            match ty {
                // SAFETY: called only where the CPU has the module's features (below). A type
                // listed here that the module lacks would still decode, with the block functions.
                $(GgmlType::$ty => Some(|bytes, out| {
                    if !unsafe { super::$module::decode(GgmlType::$ty, bytes, out) } {
                        decode_portable(GgmlType::$ty, bytes, out)
                    }
                }),)*
                _ => None,
            }
        };
    }
    #[cfg(target_arch = "x86_64")]
    {
        let avx512: Option<Decode> = vector!(quant_avx512, Q8_0, Q4_K, BF16);
        let avx2: Option<Decode> = vector!(
            quant_avx2, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
        );
        if let Some(decode) = avx512.filter(|_| has_avx512()) {
            return decode;
        }
        if let Some(decode) = avx2.filter(|_| has_avx2()) {
            return decode;
        }
    }
    portable!(
        F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K
    )
}

/// Whether the CPU runs `quant_avx512`'s decoders (compiled for AVX-512 F and BW, and AVX2).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_avx512() -> bool {
    is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bw") && has_avx2()
}

/// Whether the CPU runs `quant_avx2`'s decoders (compiled for AVX2 and F16C).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn has_avx2() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("f16c")
}

/// A build of the decoders: decodes `bytes` (exactly `out.len()` values of `ty`, else it
/// panics) into `out` and returns `true`, or returns `false` for a type it has no decoder for.
pub type DecoderBuild = fn(GgmlType, &[u8], &mut [f32]) -> bool;

/// The decoder builds this CPU runs, widest first, as [`decoder_for`] tries them (for
/// `harness-bench decoders`, which times each on each type, and the test that each gives the
/// block functions' bits).
pub fn decoder_builds() -> Vec<(&'static str, DecoderBuild)> {
    fn check(ty: GgmlType, bytes: &[u8], out: &[f32]) {
        assert_eq!(
            ty.byte_size(out.len() as u64),
            Some(bytes.len() as u64),
            "{ty}: bytes for {} values",
            out.len()
        );
    }
    let mut builds: Vec<(&'static str, DecoderBuild)> = Vec::new();
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx512() {
            builds.push(("avx512", |ty, bytes, out| {
                check(ty, bytes, out);
                // SAFETY: the CPU has the features the decoders are compiled for.
                unsafe { super::quant_avx512::decode(ty, bytes, out) }
            }));
        }
        if has_avx2() {
            builds.push(("avx2", |ty, bytes, out| {
                check(ty, bytes, out);
                // SAFETY: the CPU has the features the decoders are compiled for.
                unsafe { super::quant_avx2::decode(ty, bytes, out) }
            }));
        }
    }
    builds.push(("portable", |ty, bytes, out| {
        ty.can_dequantize() && {
            check(ty, bytes, out);
            decode_portable(ty, bytes, out);
            true
        }
    }));
    builds
}

/// The block functions over whole blocks. Each type's loop calls its block function directly,
/// so the compiler inlines it (a call per value through a function pointer does not vectorize;
/// loading bf16 checkpoints spends its time here).
#[inline(always)]
pub(crate) fn decode_portable(ty: GgmlType, bytes: &[u8], out: &mut [f32]) {
    let block = ty.block_size().unwrap_or(1) as usize;
    let size = ty.type_size().unwrap_or(1) as usize;
    // The block function is named in the loop (not passed in), so it is inlined even into a
    // caller compiled with other target features. The checks of `dequantize_into` guarantee
    // both sides split into the same number of whole blocks.
    macro_rules! blocks {
        ($decode:ident) => {
            for (src, dst) in bytes.chunks_exact(size).zip(out.chunks_exact_mut(block)) {
                $decode(src, dst);
            }
        };
    }
    match ty {
        GgmlType::F32 => blocks!(f32_block),
        GgmlType::F16 => blocks!(f16_block),
        GgmlType::BF16 => blocks!(bf16_block),
        GgmlType::Q4_0 => blocks!(q4_0_block),
        GgmlType::Q4_1 => blocks!(q4_1_block),
        GgmlType::Q5_0 => blocks!(q5_0_block),
        GgmlType::Q5_1 => blocks!(q5_1_block),
        GgmlType::Q8_0 => blocks!(q8_0_block),
        GgmlType::Q2_K => blocks!(q2_k_block),
        GgmlType::Q3_K => blocks!(q3_k_block),
        GgmlType::Q4_K => blocks!(q4_k_block),
        GgmlType::Q5_K => blocks!(q5_k_block),
        GgmlType::Q6_K => blocks!(q6_k_block),
        GgmlType::Other(_) => unreachable!("decode_portable: {} cannot be decoded", ty.name()),
    }
}

#[inline(always)]
pub(crate) fn read_f16(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

#[inline(always)]
fn f32_block(b: &[u8], out: &mut [f32]) {
    // from_bits keeps NaN payloads, like numpy's `view(np.float32)`.
    out[0] = f32::from_bits(u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
}

#[inline(always)]
fn f16_block(b: &[u8], out: &mut [f32]) {
    out[0] = read_f16(b, 0);
}

#[inline(always)]
fn bf16_block(b: &[u8], out: &mut [f32]) {
    // bf16 is the top half of an f32.
    out[0] = f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16);
}

/// 18 bytes: f16 d, 16 bytes of nibbles; element k < 16 is the low nibble of byte k, element
/// 16 + k the high one. Value `d * (q - 8)`.
#[inline(never)]
fn q4_0_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let qs = &b[2..18];
    let (low, high) = out[..32].split_at_mut(16);
    for ((lo, hi), &q) in low.iter_mut().zip(high).zip(qs) {
        *lo = d * ((q & 0x0F) as i8 - 8) as f32;
        *hi = d * ((q >> 4) as i8 - 8) as f32;
    }
}

/// 20 bytes: f16 d, f16 m, 16 bytes of nibbles (same order as Q4_0). Value `d * q + m`,
/// rounded after the multiply and again after the add.
#[inline(never)]
fn q4_1_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let m = read_f16(b, 2);
    let qs = &b[4..20];
    let (low, high) = out[..32].split_at_mut(16);
    for ((lo, hi), &q) in low.iter_mut().zip(high).zip(qs) {
        *lo = d * (q & 0x0F) as f32 + m;
        *hi = d * (q >> 4) as f32 + m;
    }
}

/// The fifth bits of Q5_0/Q5_1: bit k of this little-endian u32 belongs to element k.
#[inline(always)]
pub(crate) fn read_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Element k and k + 16 of a Q5 block: nibbles of `qs[k]` (as in Q4_0) with bits k and k + 16
/// of `qh` on top, as values 0..32.
#[inline(always)]
fn q5_pair(qs: u8, qh: u32, k: usize) -> (u8, u8) {
    let low = (qs & 0x0F) | ((((qh >> k) & 1) as u8) << 4);
    let high = (qs >> 4) | ((((qh >> (k + 16)) & 1) as u8) << 4);
    (low, high)
}

/// 22 bytes: f16 d, u32 qh, 16 bytes of nibbles. Value `d * (q - 16)`.
#[inline(never)]
fn q5_0_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let qh = read_u32(b, 2);
    for (k, &q) in b[6..22].iter().enumerate() {
        let (low, high) = q5_pair(q, qh, k);
        out[k] = d * (low as i8 - 16) as f32;
        out[k + 16] = d * (high as i8 - 16) as f32;
    }
}

/// 24 bytes: f16 d, f16 m, u32 qh, 16 bytes of nibbles. Value `d * q + m`, rounded after the
/// multiply and again after the add (as Q4_1).
#[inline(never)]
fn q5_1_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let m = read_f16(b, 2);
    let qh = read_u32(b, 4);
    for (k, &q) in b[8..24].iter().enumerate() {
        let (low, high) = q5_pair(q, qh, k);
        out[k] = d * low as f32 + m;
        out[k + 16] = d * high as f32 + m;
    }
}

/// 34 bytes: f16 d, 32 signed bytes. Value `q * d`.
#[inline(never)]
fn q8_0_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    for (value, &q) in out[..32].iter_mut().zip(&b[2..34]) {
        *value = (q as i8) as f32 * d;
    }
}

/// The 2-bit field of element e of a k-quant super-block packed four to a byte (Q2_K, Q3_K):
/// in half c = e / 128 at r = e % 128, bit pair r / 32 of byte `32c + r % 32`.
#[inline(always)]
fn two_bits(qs: &[u8], e: usize) -> u8 {
    let (c, r) = (e / 128, e % 128);
    (qs[32 * c + r % 32] >> (2 * (r / 32))) & 0x03
}

/// 84 bytes: 16 bytes of 4-bit scale (low nibble) and min (high nibble), one pair per 16
/// elements; 64 bytes of 2-bit values; f16 d; f16 dmin. Value `(d * sc) * q - (dmin * m)`.
#[inline(never)]
fn q2_k_block(b: &[u8], out: &mut [f32]) {
    let (scales, qs) = (&b[0..16], &b[16..80]);
    let d = read_f16(b, 80);
    let dmin = read_f16(b, 82);
    for (g, &s) in scales.iter().enumerate() {
        let dl = d * (s & 0x0F) as f32;
        let ml = dmin * (s >> 4) as f32;
        for e in 16 * g..16 * g + 16 {
            out[e] = dl * two_bits(qs, e) as f32 - ml;
        }
    }
}

/// Q3_K's sixteen 6-bit signed scales in 12 bytes (gguf-py's diagram in `Q3_K`): the low 4 bits
/// of scale i are the low (i < 8) or high (i >= 8) nibble of byte i % 8, the top 2 bits are bit
/// pair i / 4 of byte 8 + i % 4; the stored value is offset by 32.
#[inline(always)]
pub(crate) fn q3_k_scales(s: &[u8]) -> [i8; 16] {
    let mut scales = [0i8; 16];
    for (i, scale) in scales.iter_mut().enumerate() {
        let low = (s[i % 8] >> (4 * (i / 8))) & 0x0F;
        let high = (s[8 + i % 4] >> (2 * (i / 4))) & 0x03;
        *scale = (low | (high << 4)) as i8 - 32;
    }
    scales
}

/// 110 bytes: 32 bytes `hmask`, 64 bytes of 2-bit values, 12 bytes of scales, f16 d. Element e
/// takes its low 2 bits as in Q2_K and bit e / 32 of `hmask[e % 32]`, which when *clear*
/// subtracts 4. Value `(d * scale) * q` with one scale per 16 elements.
#[inline(never)]
fn q3_k_block(b: &[u8], out: &mut [f32]) {
    let (hmask, qs) = (&b[0..32], &b[32..96]);
    let scales = q3_k_scales(&b[96..108]);
    let d = read_f16(b, 108);
    for (g, &scale) in scales.iter().enumerate() {
        let dl = d * scale as f32;
        for e in 16 * g..16 * g + 16 {
            let high_clear = (hmask[e % 32] >> (e / 32)) & 1 == 0;
            let q = two_bits(qs, e) as i8 - if high_clear { 4 } else { 0 };
            out[e] = dl * q as f32;
        }
    }
}

/// Q4_K's eight 6-bit scales and mins, packed into 12 bytes (gguf-py `get_scale_min`):
/// bytes 0..4 hold scales 0..4 in their low 6 bits, bytes 4..8 mins 0..4; scales and mins
/// 4..8 take their low 4 bits from bytes 8..12 and their top 2 bits from the spare top bits
/// of bytes 0..4 and 4..8 respectively.
#[inline(always)]
pub(crate) fn q4_k_scale_min(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let mut sc = [0u8; 8];
    let mut mn = [0u8; 8];
    for i in 0..4 {
        sc[i] = s[i] & 0x3F;
        mn[i] = s[4 + i] & 0x3F;
        sc[4 + i] = (s[8 + i] & 0x0F) | ((s[i] >> 2) & 0x30);
        mn[4 + i] = (s[8 + i] >> 4) | ((s[4 + i] >> 2) & 0x30);
    }
    (sc, mn)
}

/// 144 bytes: f16 d, f16 dmin, 12 bytes of scales/mins, 128 bytes of nibbles. Sub-block s
/// (32 elements) reads byte `32 * (s / 2) + l`, low nibble for even s, high for odd.
/// Value `(d * sc) * q - (dmin * m)`.
#[inline(never)]
fn q4_k_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let dmin = read_f16(b, 2);
    let (sc, mn) = q4_k_scale_min(&b[4..16]);
    for s in 0..8 {
        let dl = d * sc[s] as f32;
        let ml = dmin * mn[s] as f32;
        let shift = 4 * (s % 2);
        // Fixed-size arrays: no bounds checks, so the loop vectorizes.
        let bytes: &[u8; 32] = b[16 + 32 * (s / 2)..][..32].try_into().unwrap();
        let values: &mut [f32; 32] = (&mut out[32 * s..][..32]).try_into().unwrap();
        for l in 0..32 {
            values[l] = dl * ((bytes[l] >> shift) & 0x0F) as f32 - ml;
        }
    }
}

/// 176 bytes: f16 d, f16 dmin, 12 bytes of scales/mins (as Q4_K), 32 bytes `qh`, 128 bytes of
/// nibbles (as Q4_K). Element 32s + l of sub-block s adds bit s of `qh[l]` as its fifth bit.
/// Value `(d * sc) * q - (dmin * m)`.
#[inline(never)]
fn q5_k_block(b: &[u8], out: &mut [f32]) {
    let d = read_f16(b, 0);
    let dmin = read_f16(b, 2);
    let (sc, mn) = q4_k_scale_min(&b[4..16]);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    for s in 0..8 {
        let dl = d * sc[s] as f32;
        let ml = dmin * mn[s] as f32;
        let shift = 4 * (s % 2);
        let bytes = &qs[32 * (s / 2)..32 * (s / 2) + 32];
        for ((value, &q), &high) in out[32 * s..32 * s + 32].iter_mut().zip(bytes).zip(qh) {
            let q = ((q >> shift) & 0x0F) | (((high >> s) & 1) << 4);
            *value = dl * q as f32 - ml;
        }
    }
}

/// 210 bytes: 128 bytes `ql` (low 4 bits), 64 bytes `qh` (high 2 bits), 16 signed scales,
/// f16 d. Element e, in half c = e / 128 at r = e % 128, takes nibble r / 64 of
/// `ql[64c + r % 64]` and bit pair r / 32 of `qh[32c + r % 32]`. Value `(d * scale) * (q - 32)`
/// with one scale per 16 elements.
#[inline(never)]
fn q6_k_block(b: &[u8], out: &mut [f32]) {
    let (ql, qh, scales) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = read_f16(b, 208);
    // Element e = 128c + 32j + l: nibble j / 2 of ql[64c + 32(j % 2) + l], bit pair j of
    // qh[32c + l], scale (e / 16) = 8c + 2j + l / 16.
    for c in 0..2 {
        for j in 0..4 {
            let ql = &ql[64 * c + 32 * (j % 2)..][..32];
            let qh = &qh[32 * c..][..32];
            let out = &mut out[128 * c + 32 * j..][..32];
            for half in 0..2 {
                let dl = d * (scales[8 * c + 2 * j + half] as i8) as f32;
                let span = 16 * half..16 * half + 16;
                for ((slot, &low), &high) in out[span.clone()].iter_mut().zip(&ql[span.clone()]).zip(&qh[span]) {
                    let lo = (low >> (4 * (j / 2))) & 0x0F;
                    let hi = (high >> (2 * j)) & 0x03;
                    let q = (lo | (hi << 4)) as i8 - 32;
                    *slot = dl * q as f32;
                }
            }
        }
    }
}

/// `n` values of `ty` for tests: pseudo-random bytes (every bit pattern of a quantized field is
/// valid; one-value types get every bit pattern, NaNs and infinities included) with each
/// block's f16 scales set to finite values of both signs, from an f16 subnormal to 300. For
/// tests and `harness-bench decoders`.
///
/// # Panics
/// For a type of unknown size, or an `n` that is not a whole number of blocks.
pub fn random_blocks(ty: GgmlType, n: usize) -> Vec<u8> {
    blocks_with_scales(
        ty,
        n,
        &[0.01, -0.02, 6.0e-8, 300.0, -0.004, 0.5, -1e-5].map(f16::from_f32),
    )
}

/// As [`random_blocks`], the blocks' f16 scales cycling through `scale_values`.
fn blocks_with_scales(ty: GgmlType, n: usize, scale_values: &[f16]) -> Vec<u8> {
    let (block, size) = (ty.block_size().unwrap() as usize, ty.type_size().unwrap() as usize);
    assert!(
        n.is_multiple_of(block),
        "{ty}: {n} values are not whole blocks of {block}"
    );
    let scales: &[usize] = match ty {
        GgmlType::Q4_0 | GgmlType::Q5_0 | GgmlType::Q8_0 => &[0],
        GgmlType::Q4_1 | GgmlType::Q5_1 | GgmlType::Q4_K | GgmlType::Q5_K => &[0, 2],
        GgmlType::Q2_K => &[80, 82],
        GgmlType::Q3_K => &[108],
        GgmlType::Q6_K => &[208],
        _ => &[],
    };
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut bytes: Vec<u8> = (0..n / block * size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for (b, block_bytes) in bytes.chunks_exact_mut(size).enumerate() {
        for (k, &at) in scales.iter().enumerate() {
            let scale = scale_values[(b + k) % scale_values.len()];
            block_bytes[at..at + 2].copy_from_slice(&scale.to_le_bytes());
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every decoder build this CPU runs gives the block functions' bits on every type it
    /// decodes: random blocks with finite scales; every f16 and bf16 bit pattern (NaNs
    /// included) in a row that is not a multiple of 8; and scales that are infinite, NaN, zero
    /// or subnormal, where a NaN may carry another operand's payload (`d * q + m` with both
    /// NaN), so any NaN matches a NaN there.
    #[test]
    fn every_decoder_build_gives_the_block_functions_bits() {
        let every_half: Vec<u8> = (0..=u16::MAX).chain([1, 2, 3]).flat_map(u16::to_le_bytes).collect();
        let special = [0x7C00, 0xFC00, 0x7E00, 0x7D01, 0xFE55, 0x8000, 0x0001, 0x3C00].map(f16::from_bits);
        let mut cases = Vec::new();
        for ty in GgmlType::dequantizable() {
            if ty.block_size() == Some(1) {
                let bytes = if ty.type_size() == Some(2) {
                    every_half.clone()
                } else {
                    random_blocks(ty, 4099)
                };
                cases.push((ty, bytes, false));
            } else {
                cases.push((ty, random_blocks(ty, 4096), false));
                cases.push((ty, blocks_with_scales(ty, 4096, &special), true));
            }
        }
        let mut builds = decoder_builds();
        // And the decoder loops use, the widest for each type.
        builds.push(("chosen", |ty, bytes, out| {
            decoder_for(ty)(bytes, out);
            true
        }));
        for (ty, bytes, special_scales) in cases {
            let n = bytes.len() / ty.type_size().unwrap() as usize * ty.block_size().unwrap() as usize;
            let mut expected = vec![0.0f32; n];
            decode_portable(ty, &bytes, &mut expected);
            for (name, decode) in &builds {
                let mut got = vec![0.0f32; n];
                if !decode(ty, &bytes, &mut got) {
                    continue;
                }
                let same =
                    |(e, g): (&f32, &f32)| e.to_bits() == g.to_bits() || (special_scales && e.is_nan() && g.is_nan());
                let first_difference = expected.iter().zip(&got).position(|pair| !same(pair));
                assert_eq!(
                    first_difference, None,
                    "{ty}: the {name} decoder's bits differ (special scales: {special_scales})"
                );
            }
        }
    }
}
