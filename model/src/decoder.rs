//! The Llama/Mistral decoder stack: embedding, pre-norm blocks (attention + SwiGLU), final
//! norm and LM head. Returns logits for every position, since scoring needs them all.

use burn::tensor::{Device, Int, Tensor, TensorData};

use crate::attention::Attention;
use crate::attention_spec::ResolvedAttention;
use crate::cache::{KvCache, PastKeys, blocked_mask};
use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::input::StepInput;
use crate::mlp::Mlp;
use crate::norm::RmsNorm;
use crate::rope::Rotary;

pub struct Block {
    pub attn_norm: RmsNorm,
    pub attention: Attention,
    pub mlp_norm: RmsNorm,
    pub mlp: Mlp,
}

pub struct Decoder {
    pub config: ModelConfig,
    pub attention: ResolvedAttention,
    /// [vocab, hidden]
    pub embed: Tensor<2>,
    pub blocks: Vec<Block>,
    pub norm: RmsNorm,
    /// [hidden, vocab]
    pub lm_head: Tensor<2>,
    pub rotary: Rotary,
    pub device: Device,
}

impl Decoder {
    /// A cache sized for this model's attention: a rolling buffer when it has a window.
    pub fn new_cache(&self, batch: usize) -> KvCache {
        KvCache::new(self.blocks.len(), batch, self.attention.window)
    }

    /// Logits [batch, seq, vocab] for every position of `input`. With a cache, the input
    /// continues what the cache holds, and the cache is extended.
    pub fn forward(&self, input: &StepInput, cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        let hidden = self.hidden_states(input, cache)?;
        let [b, s, h] = hidden.dims();
        let vocab = self.config.vocab_size;
        Ok(hidden
            .reshape([b * s, h])
            .matmul(self.lm_head.clone())
            .reshape([b, s, vocab]))
    }

    /// The residual stream after the final norm, [batch, seq, hidden].
    pub fn hidden_states(&self, input: &StepInput, mut cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        self.check_input(input, cache.as_deref())?;
        let (b, s) = (input.batch, input.seq);
        let groups = self.attention.num_heads / self.attention.kv_heads;
        let mask = match cache.as_deref() {
            Some(c) => blocked_mask(&c.past(), input, self.attention.window, groups, &self.device),
            None => blocked_mask(&PastKeys::none(), input, self.attention.window, groups, &self.device),
        };
        let rotary = self.rotary.tables(&input.positions, b, s, &self.device);
        let ids: Vec<i64> = input.ids.iter().map(|&t| t as i64).collect();
        let ids = Tensor::<1, Int>::from_data(TensorData::new(ids, [b * s]), &self.device);
        let mut x = self
            .embed
            .clone()
            .select(0, ids)
            .reshape([b, s, self.config.hidden_size]);
        for (layer, block) in self.blocks.iter().enumerate() {
            let normed = block.attn_norm.forward(x.clone());
            let attn = block
                .attention
                .forward(normed, &rotary, &mask, cache.as_deref_mut().map(|c| (c, layer)));
            x = x + attn;
            x = x.clone() + block.mlp.forward(block.mlp_norm.forward(x));
        }
        if let Some(cache) = cache {
            cache.commit(input);
        }
        Ok(self.norm.forward(x))
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
