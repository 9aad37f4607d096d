//! The Llama/Mistral decoder stack: embedding, pre-norm blocks (attention + SwiGLU), final
//! norm and LM head. Returns logits for every position, since scoring needs them all.

use burn::tensor::{Bool, DType, Device, FloatDType, Int, Tensor, TensorData, activation::log_softmax};

use crate::attention::Attention;
use crate::attention_spec::ResolvedAttention;
use crate::cache::{KvCache, blocked_mask};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::input::StepInput;
use crate::linear::{Linear, Product};
use crate::load::memory::Residency;
use crate::load::weights::Weights;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::param::Embedding;
use crate::rope::Rotary;

pub struct Block {
    pub attn_norm: RmsNorm,
    pub attention: Attention,
    pub mlp_norm: RmsNorm,
    pub mlp: Mlp,
}

impl Block {
    /// One decoder layer's weights under `w` (`model.layers.N`).
    pub fn load(w: &Weights, config: &ModelConfig, attention: &ResolvedAttention) -> Result<Self> {
        let (h, eps) = (config.hidden_size, config.rms_norm_eps);
        Ok(Self {
            attn_norm: RmsNorm::load(w, "input_layernorm", h, eps)?,
            attention: Attention::load(&w.at("self_attn"), config, attention)?,
            mlp_norm: RmsNorm::load(w, "post_attention_layernorm", h, eps)?,
            mlp: Mlp::load(&w.at("mlp"), config)?,
        })
    }
}

/// One token to score: how likely `target` is to follow position `pos` of row `row`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenQuery {
    pub row: usize,
    pub pos: usize,
    pub target: u32,
}

/// Values a forward pass gives back (logits, log-probabilities) are finite, or the model is
/// broken: weights holding NaN or infinity, or a half precision that overflowed. Scores or
/// tokens drawn from them would be written as results, so they are an error instead.
pub fn ensure_finite(values: &[f32], what: &str) -> Result<()> {
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad == 0 {
        return Ok(());
    }
    Err(ModelError::Invalid(format!(
        "{bad} of {} {what} the model computed are not finite (NaN or infinity): the checkpoint's weights hold non-finite values, or the compute precision overflowed (--dtype f32 shows which)",
        values.len()
    )))
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TokenScore {
    /// log p(target | the row up to pos), from an f32 log-softmax.
    pub logprob: f32,
    /// Whether `target` is the argmax there (greedy decoding would pick it).
    pub is_argmax: bool,
}

pub struct Decoder {
    pub config: ModelConfig,
    pub attention: ResolvedAttention,
    /// [vocab, hidden]
    pub embed: Embedding,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    /// [hidden, vocab], in f32 whatever the compute precision (see `logits`).
    pub lm_head: Linear,
    pub rotary: Rotary,
    pub device: Device,
    /// The compute precision; logits come back in f32 whatever it is.
    pub dtype: FloatDType,
    /// Scored positions whose logits `score_tokens` computes at once (`logits_chunk_rows`).
    pub logits_chunk_rows: usize,
}

/// About the most bytes of f32 logits `score_tokens` holds at once (a chunk may take one
/// position more, see `query_chunks`). The 4,088 positions scored at batch 8 × 512 with a
/// 32,000-token vocabulary were one 523 MB buffer, which lavapipe's Vulkan driver refuses, and
/// with its log-softmax about three times that in RAM (a 128k vocabulary at 8 × 2,048: 8.4 GB
/// each).
pub const LOGITS_CHUNK_BYTES: usize = 64 << 20;

/// Positions per chunk of the LM head under `LOGITS_CHUNK_BYTES`, at least 2.
pub fn logits_chunk_rows(vocab: usize) -> usize {
    (LOGITS_CHUNK_BYTES / (vocab.max(1) * 4)).max(2)
}

/// `n` scored positions in chunks of `rows` (≥ 2), a last chunk of one folded into the one
/// before: on flex an f32 product gives a row the same bits whatever the rows beside it from
/// two on, but one row alone takes the matrix-vector kernel (`bands`), so chunking never
/// changes a score.
pub fn query_chunks(n: usize, rows: usize) -> Vec<std::ops::Range<usize>> {
    let rows = rows.max(2);
    let mut chunks = Vec::with_capacity(n.div_ceil(rows));
    let mut start = 0;
    while start < n {
        let end = match (start + rows).min(n) {
            end if n - end == 1 => n,
            end => end,
        };
        chunks.push(start..end);
        start = end;
    }
    chunks
}

impl Decoder {
    /// The whole model from HF-named weights (`model.embed_tokens`, `model.layers.N`, ...).
    pub fn load(w: &Weights, config: &ModelConfig, attention: &ResolvedAttention) -> Result<Self> {
        let (h, vocab) = (config.hidden_size, config.vocab_size);
        let model = w.at("model");
        let embed = model.embedding("embed_tokens", vocab, h)?;
        let target = w.target();
        let mut lm_head = if config.tie_word_embeddings {
            Linear {
                weight: embed.transposed(),
                stored: (target.residency == Residency::Direct)
                    .then(|| embed.stored())
                    .flatten(),
            }
        } else {
            w.linear("lm_head", vocab, h)?
        };
        // `logits` multiplies in f32: a resident head is converted once here, not at every step;
        // a streamed one is materialized in the compute precision, then cast, at every pass
        // (the same values: the half type's rounding, then an exact widening).
        lm_head.weight = lm_head.weight.in_f32(&target.device);
        let blocks = (0..config.num_layers)
            .map(|i| Block::load(&model.at(&format!("layers.{i}")), config, attention))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            attention: attention.clone(),
            embed,
            blocks,
            norm: RmsNorm::load(&model, "norm", h, config.rms_norm_eps)?,
            lm_head,
            rotary: Rotary::new(config.head_dim, config.rope_theta, &config.rope_scaling),
            device: target.device.clone(),
            dtype: target.dtype,
            logits_chunk_rows: logits_chunk_rows(vocab),
        })
    }

    /// A cache sized for this model's attention: a rolling buffer for the layers with a window.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(&self.attention.windows, batch)
    }

    /// Bytes one row of a cache holds after `tokens` tokens, in the compute precision.
    pub fn kv_bytes_per_row(&self, tokens: usize) -> usize {
        let value = DType::from(self.dtype).size();
        self.attention.kv_bytes_per_row(self.config.head_dim, tokens, value)
    }

    /// Logits [batch, seq, vocab] for every position of `input`. With a cache, the input
    /// continues what the cache holds, and the cache is extended.
    pub fn forward(&self, input: &StepInput, cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        let hidden = self.hidden_states(input, cache)?;
        let [b, s, h] = hidden.dims();
        let vocab = self.config.vocab_size;
        let head = self.lm_head.product(s == 1);
        Ok(self.logits(&head, hidden.reshape([b * s, h])).reshape([b, s, vocab]))
    }

    /// Logits [batch, vocab] at the last position of each row (left-padded rows all end there):
    /// what decoding needs. The LM head runs on one position per row.
    pub fn last_logits(&self, input: &StepInput, cache: Option<&mut KvCache>) -> Result<Tensor<2>> {
        let hidden = self.hidden_states(input, cache)?;
        let [b, s, h] = hidden.dims();
        let head = self.lm_head.product(s == 1);
        Ok(self.logits(&head, hidden.narrow(1, s - 1, 1).reshape([b, h])))
    }

    /// Scores only the requested (position, next token) pairs: the LM head runs on those
    /// positions alone, `logits_chunk_rows` at a time, and only two numbers per query come back
    /// from the device.
    pub fn score_tokens(&self, input: &StepInput, queries: &[TokenQuery]) -> Result<Vec<TokenScore>> {
        self.score_tokens_in(input, None, queries)
    }

    /// `score_tokens` for an input that continues what `cache` holds (a shared prefix computed
    /// once); the cache is extended with the input.
    pub fn score_tokens_after(
        &self,
        cache: &mut KvCache,
        input: &StepInput,
        queries: &[TokenQuery],
    ) -> Result<Vec<TokenScore>> {
        self.score_tokens_in(input, Some(cache), queries)
    }

    fn score_tokens_in(
        &self,
        input: &StepInput,
        cache: Option<&mut KvCache>,
        queries: &[TokenQuery],
    ) -> Result<Vec<TokenScore>> {
        if queries.is_empty() {
            return Ok(Vec::new());
        }
        let (b, s, vocab) = (input.batch, input.seq, self.config.vocab_size);
        if let Some(q) = queries.iter().find(|q| q.target as usize >= vocab) {
            return Err(ModelError::Invalid(format!(
                "token id {} is beyond the model's vocabulary of {vocab} (is the tokenizer the model's?)",
                q.target
            )));
        }
        if let Some(q) = queries.iter().find(|q| q.row >= b || q.pos >= s) {
            return Err(ModelError::Invalid(format!("query {q:?} is outside the {b}×{s} batch")));
        }
        let hidden = self.hidden_states(input, cache)?;
        let h = self.config.hidden_size;
        let n = queries.len();
        let rows: Vec<i64> = queries.iter().map(|q| (q.row * s + q.pos) as i64).collect();
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [n]), &self.device);
        let hidden = hidden.reshape([b * s, h]).select(0, rows);
        // A streamed head is materialized once for all chunks.
        let head = self.lm_head.product(s == 1);
        let chunks = query_chunks(n, self.logits_chunk_rows);
        if chunks.len() == 1 {
            return self.score_positions(self.logits(&head, hidden), queries);
        }
        let mut scores = Vec::with_capacity(n);
        for chunk in chunks {
            let logits = self.logits(&head, hidden.clone().narrow(0, chunk.start, chunk.len()));
            scores.extend(self.score_positions(logits, &queries[chunk])?);
        }
        Ok(scores)
    }

    /// Each query's log-probability and whether it is the argmax, from its row of `logits`.
    fn score_positions(&self, logits: Tensor<2>, queries: &[TokenQuery]) -> Result<Vec<TokenScore>> {
        let targets: Vec<i64> = queries.iter().map(|q| q.target as i64).collect();
        let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [queries.len(), 1]), &self.device);
        let best = logits.clone().argmax(1);
        let logprobs = log_softmax(logits, 1).gather(1, targets);
        let read = |what: &str, e| ModelError::Invalid(format!("reading {what} back from the device: {e:?}"));
        let logprobs = logprobs
            .try_into_vec_as::<f32>()
            .map_err(|e| read("log-probabilities", e))?;
        let best = best.try_into_vec_as::<i64>().map_err(|e| read("argmax", e))?;
        ensure_finite(&logprobs, "log-probabilities")?;
        Ok(queries
            .iter()
            .zip(logprobs.into_iter().zip(best))
            .map(|(q, (logprob, best))| TokenScore {
                logprob,
                is_argmax: best == q.target as i64,
            })
            .collect())
    }

    /// The residual stream (f32) after the final norm, in the compute precision, [batch, seq, hidden].
    pub fn hidden_states(&self, input: &StepInput, mut cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        self.check_input(input, cache.as_deref())?;
        let (b, s) = (input.batch, input.seq);
        let groups = self.attention.num_heads / self.attention.kv_heads;
        let masks = match cache.as_deref_mut() {
            Some(c) => c.begin_step(input, groups, &self.device)?,
            None => self.masks(input, groups),
        };
        let rotary = self.rotary.tables(&input.positions, b, s, &self.device, self.dtype);
        // The residual stream is f32 whatever the compute precision: each sublayer runs in the
        // compute precision and its output is added in f32, so a half type's rounding is not
        // applied again to the running sum at every layer (README, "Half precision": bf16's mean
        // |Δ log p| against float32 0.036 → 0.020). For f32 the casts are no-ops.
        let mut x = self
            .embed
            .lookup(&input.ids)
            .reshape([b, s, self.config.hidden_size])
            .cast(FloatDType::F32);
        for (layer, block) in self.blocks.iter().enumerate() {
            let normed = block.attn_norm.forward(x.clone(), self.dtype);
            let attn =
                block
                    .attention
                    .forward(normed, &rotary, &masks[layer], cache.as_deref_mut().map(|c| (c, layer)));
            x = x + attn.cast(FloatDType::F32);
            let mlp = block.mlp.forward(block.mlp_norm.forward(x.clone(), self.dtype));
            x = x + mlp.cast(FloatDType::F32);
        }
        if let Some(cache) = cache {
            cache.commit(input);
        }
        Ok(self.norm.forward(x, self.dtype))
    }

    /// hidden [rows, hidden] → logits [rows, vocab], multiplied in f32 whatever the compute
    /// precision. transformers in half precision rounds every logit to the half type before its
    /// f32 log-softmax (bf16's step is 0.125 between 16 and 32); the f32 product does not.
    /// `head`: `lm_head.product(decode_step)`, the input having been one token per row or not.
    fn logits(&self, head: &Product, hidden: Tensor<2>) -> Tensor<2> {
        head.apply(hidden.cast(FloatDType::F32))
    }

    /// Per layer, the mask of `input` alone (no cache): one per distinct window, shared.
    fn masks(&self, input: &StepInput, groups: usize) -> Vec<Tensor<4, Bool>> {
        let mut built: Vec<(Option<usize>, Tensor<4, Bool>)> = Vec::new();
        self.attention
            .windows
            .iter()
            .map(|&window| match built.iter().find(|(w, _)| *w == window) {
                Some((_, mask)) => mask.clone(),
                None => {
                    let mask = blocked_mask(None, input, window, groups, &self.device);
                    built.push((window, mask.clone()));
                    mask
                }
            })
            .collect()
    }

    fn check_input(&self, input: &StepInput, cache: Option<&KvCache>) -> Result<()> {
        if input.seq == 0 || input.batch == 0 {
            return Err(ModelError::Invalid("empty batch: nothing to run".into()));
        }
        if let Some(&bad) = input.ids.iter().find(|&&t| t as usize >= self.config.vocab_size) {
            return Err(ModelError::Invalid(format!(
                "token id {bad} is outside the vocabulary (size {})",
                self.config.vocab_size
            )));
        }
        if let Some(cache) = cache
            && cache.batch() != input.batch
        {
            return Err(ModelError::Invalid(format!(
                "cache holds {} rows but the input has {}",
                cache.batch(),
                input.batch
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{ensure_finite, logits_chunk_rows, query_chunks};

    #[test]
    fn values_that_are_not_finite_are_counted_in_an_error() {
        assert!(ensure_finite(&[0.0, -1e30, f32::MIN], "logits").is_ok());
        let err = ensure_finite(&[0.0, f32::NAN, f32::NEG_INFINITY], "logits").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("2 of 3 logits the model computed are not finite"),
            "{err}"
        );
    }

    #[test]
    fn query_chunks_cover_every_position_once_and_never_leave_one_alone() {
        for n in 0..40 {
            for rows in 0..10 {
                let chunks = query_chunks(n, rows);
                let covered: Vec<usize> = chunks.iter().flat_map(|c| c.clone()).collect();
                assert_eq!(covered, (0..n).collect::<Vec<_>>(), "n {n}, rows {rows}");
                let most = rows.max(2);
                for (i, c) in chunks.iter().enumerate() {
                    assert!(n < 2 || c.len() >= 2, "n {n}, rows {rows}: {chunks:?}");
                    let last = i + 1 == chunks.len();
                    assert!(
                        c.len() <= most || (last && c.len() == most + 1),
                        "n {n}, rows {rows}: {chunks:?}"
                    );
                }
            }
        }
        assert_eq!(query_chunks(5, 2), [0..2, 2..5]);
        // Mistral's 32,000-token vocabulary: 524 positions (64 MiB of f32 logits) at once.
        assert_eq!(logits_chunk_rows(32_000), 524);
        assert_eq!(logits_chunk_rows(usize::MAX / 8), 2);
    }
}
