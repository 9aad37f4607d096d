//! One attention module for MHA, MQA, GQA and sliding-window attention: `num_heads` query
//! heads share `kv_heads` key/value heads, and an optional window limits how far back a query
//! looks. Also the checkpoint conversions between head layouts. Scores and softmax run in f32
//! whatever the compute precision (as transformers' eager attention does in half precision).

use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, FloatDType, Tensor, activation::softmax};

use crate::attention_spec::ResolvedAttention;
use crate::backend::on_flex_in_f32;
use crate::cache::KvCache;
use crate::config::ModelConfig;
use crate::error::Result;
use crate::linear::Linear;
use crate::load::weights::Weights;
use crate::rope::RotaryTables;

pub struct Attention {
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub num_heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
}

impl Attention {
    /// `q_proj`, `k_proj`, `v_proj` and `o_proj` under `w`, K and V converted to `attention`'s
    /// head count.
    pub fn load(w: &Weights, config: &ModelConfig, attention: &ResolvedAttention) -> Result<Self> {
        let (h, d) = (config.hidden_size, config.head_dim);
        let kv_proj = |name: &str| {
            if attention.kv_heads == attention.native_kv_heads {
                // Nothing to convert: held as any other projection (`--weights direct` included).
                return w.linear(name, config.kv_dim(), h);
            }
            let attention = attention.clone();
            w.linear_mapped(name, config.kv_dim(), h, move |weight| {
                convert_kv_projection(weight, &attention, d)
            })
        };
        Ok(Self {
            q: w.linear("q_proj", config.q_dim(), h)?,
            k: kv_proj("k_proj")?,
            v: kv_proj("v_proj")?,
            o: w.linear("o_proj", h, config.q_dim())?,
            num_heads: attention.num_heads,
            kv_heads: attention.kv_heads,
            head_dim: d,
        })
    }

    /// x: [batch, seq, hidden]; `mask` from `cache::blocked_mask` ([batch, 1, groups*seq, keys]).
    pub fn forward(
        &self,
        x: Tensor<3>,
        rotary: &RotaryTables,
        mask: &Tensor<4, Bool>,
        cache: Option<(&mut KvCache, usize)>,
    ) -> Tensor<3> {
        let [b, s, _] = x.dims();
        let (h, kvh, d) = (self.num_heads, self.kv_heads, self.head_dim);
        let groups = h / kvh;
        let split = |t: Tensor<3>, heads: usize| t.reshape([b, s, heads, d]).swap_dims(1, 2);
        let q = rotary.apply(split(self.q.forward(x.clone()), h));
        let k = rotary.apply(split(self.k.forward(x.clone()), kvh));
        let v = split(self.v.forward(x), kvh);
        let (k, v) = match cache {
            Some((cache, layer)) => cache.attend_and_store(layer, k, v),
            None => (k, v),
        };
        // Query head g*kvh.. shares kv head g: fold each group's heads into the row dimension
        // so one batched matmul serves the whole group without copying K/V per head.
        let q = q.reshape([b, kvh, groups * s, d]);
        let scale = (d as f64).powf(-0.5);
        let context = if fused_kernel_fits(&q, s) {
            fused_attention(q, k, v, mask.clone(), scale)
        } else {
            explicit_attention(q, k, v, mask, scale)
        };
        let context = context.reshape([b, h, s, d]).swap_dims(1, 2).reshape([b, s, h * d]);
        self.o.forward(context)
    }
}

/// Whether a step's attention runs through burn-flex's fused kernel: steps of several tokens
/// per row, in f32, on the CPU backend. The kernel computes each head's scores in a scratch
/// tile and scales, masks and soft-maxes them in one pass, where the explicit product makes
/// five passes over a [batch, heads, queries, keys] tensor in memory: 5-shot MMLU, whose
/// items attend over a ~430-token shared prefix, scores ~25% faster (BENCHMARKS, "Fused
/// attention"). Decode steps keep the explicit product, which reads the cache's buffers in
/// place (the kernel would copy the keys and values contiguous at every step: ~10% slower
/// decoding); half precision keeps it too, so its products round to the half type as
/// transformers' do (README, "Half precision").
fn fused_kernel_fits(q: &Tensor<4>, seq: usize) -> bool {
    seq > 1 && on_flex_in_f32(q)
}

/// softmax(q·kᵀ·scale, masked) · v with the mask broadcast over the kv heads; q is
/// [batch, kv_heads, queries, head_dim], `mask` [batch, 1, queries, keys] (true: blocked).
/// burn-flex materializes the scores per head when they fit its budget and tiles them with an
/// online softmax otherwise; both sum in f32.
fn fused_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Tensor<4, Bool>, scale: f64) -> Tensor<4> {
    let options = AttentionModuleOptions {
        scale: Some(scale),
        softcap: None,
        is_causal: false,
    };
    attention(q, k, v, Some(mask), None, options)
}

/// The same product as `fused_attention`, one tensor operation at a time: scores in f32
/// whatever the compute precision (transformers' eager attention), the context in it.
fn explicit_attention(q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: &Tensor<4, Bool>, scale: f64) -> Tensor<4> {
    let ([b, kvh, rows, _], keys) = (q.dims(), k.dims()[2]);
    let dtype = q.dtype();
    let scores = q.matmul(k.swap_dims(2, 3)).cast(FloatDType::F32).mul_scalar(scale);
    let scores = scores.mask_fill(mask.clone().expand([b, kvh, rows, keys]), f32::MIN);
    softmax(scores, 3).cast(dtype).matmul(v)
}

/// Converts a K or V projection ([hidden, native_kv * d], stored [in, out]) to the resolved
/// head count: repeat each head to one per query head (exact, GQA → MHA), then mean-pool
/// consecutive heads into groups (Ainslie et al. 2023, "GQA", §2.1).
pub fn convert_kv_projection(weight: Tensor<2>, attention: &ResolvedAttention, head_dim: usize) -> Tensor<2> {
    let (native, target, n) = (attention.native_kv_heads, attention.kv_heads, attention.num_heads);
    if native == target {
        return weight;
    }
    let [hidden, _] = weight.dims();
    let per_query = weight
        .reshape([hidden, native, 1, head_dim])
        .expand([hidden, native, n / native, head_dim])
        .reshape([hidden, n, head_dim]);
    if target == n {
        return per_query.reshape([hidden, n * head_dim]);
    }
    per_query
        .reshape([hidden, target, n / target, head_dim])
        .mean_dim(2)
        .reshape([hidden, target * head_dim])
}
