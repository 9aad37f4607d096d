//! The language model as the evaluation sees it (lm-eval's `LM`): text requests in, scores and
//! generations out, with tokenization, batching and the KV cache inside.
//!
//! - [`Lm::loglikelihood`] (and `loglikelihood_rolling`): `loglikelihood` requests, packed so
//!   that the choices of one question compute their shared context once ([`loglikelihood`]);
//! - [`Lm::generate_until`]: `generate_until` requests, KV-cached, with continuous batching
//!   ([`generate`], [`batcher`]);
//! - both: a prefix that the contexts of a call share (few-shot exemplars) is computed once and
//!   kept for the next calls ([`prefix`]).
//!
//! `model/` knows token ids only and `tasks/` knows text only; this is where the two meet.

mod batcher;
pub mod generate;
pub mod loglikelihood;
pub mod prefix;
pub mod stops;

use anyhow::Context as _;
use model::load::tokenizer::TextTokenizer;
use model::{Decoder, LoadedModel};

pub use generate::{GenRequest, Generation, StopReason, TokenGenRequest};
pub use loglikelihood::{Loglikelihood, TokenRequest};
use prefix::PrefixStore;

/// The bytes of copies of a shared prefix's keys and values one scoring batch may hold, one per
/// row: pure duplication, so kept small. Five rows after a 7B model's ~6,000-token 5-shot history
/// prefix held ~7 GB of them (BENCHMARKS, "What the paper's Table 2 costs at 7B").
const PREFIX_COPIES_BYTES: usize = 2 << 30;

/// The bytes of keys and values a generation batch's rows may hold: whole contexts, which the
/// rows need, so the bound only stops extremes (the first pre-fill becomes the running cache;
/// a later one holds the rows it refills again while it runs). A 7B model's bbh prompts
/// (~2,600 tokens, 690 MB a row in f32 with 8 K/V heads) keep 8 rows; Llama 2 7B's 32 K/V heads on gsm8k's ~1,150-token prompts keep 6.
const GENERATION_KV_BYTES: usize = 8 << 30;

/// Rows per batch when each row holds `row_bytes` of keys and values of its own: `batch_size`,
/// or fewer (at least one) where they would pass `budget`. Scores do not depend on it, and a
/// generation only within the float noise of batching.
fn rows_within(batch_size: usize, row_bytes: usize, budget: usize) -> usize {
    (budget / row_bytes.max(1)).clamp(1, batch_size.max(1))
}

pub struct Lm<'a> {
    pub decoder: &'a Decoder,
    pub tokenizer: &'a TextTokenizer,
    /// Rows per forward pass.
    pub batch_size: usize,
    /// The model's maximum sequence length (lm-eval's `max_length`).
    pub max_len: usize,
    /// lm-eval's `prefix_token_id` (BOS if the tokenizer has one, else EOS), and its text (for
    /// `tok_encode`'s special-token rule).
    prefix_token: u32,
    prefix_text: String,
    eos: Option<u32>,
    bos_text: Option<String>,
    /// Key/value caches of prefixes that many requests share, reused across calls.
    prefixes: PrefixStore,
}

impl<'a> Lm<'a> {
    /// The model of a loaded checkpoint, which must have a tokenizer.
    pub fn of(model: &'a LoadedModel, batch_size: usize) -> anyhow::Result<Self> {
        let tokenizer = model
            .tokenizer
            .as_ref()
            .with_context(|| format!("{}: the model has no tokenizer (tokenizer.json)", model.path.display()))?;
        Self::new(&model.decoder, tokenizer, batch_size)
    }

    pub fn new(decoder: &'a Decoder, tokenizer: &'a TextTokenizer, batch_size: usize) -> anyhow::Result<Self> {
        let prefix_token = tokenizer
            .bos_id()
            .or(tokenizer.eos_id())
            .context(
                "the model's tokenizer has neither a BOS nor an EOS token (lm-eval's prefix token): an HF folder names them in tokenizer_config.json, a GGUF file in tokenizer.ggml.bos_token_id / eos_token_id",
            )?;
        let bos_text = match tokenizer.bos_id() {
            Some(id) => Some(tokenizer.decode(&[id], false)?),
            None => None,
        };
        Ok(Self {
            decoder,
            tokenizer,
            batch_size: batch_size.max(1),
            max_len: decoder.config.max_position_embeddings,
            prefix_token,
            prefix_text: tokenizer.decode(&[prefix_token], false)?,
            eos: tokenizer.eos_id(),
            bos_text,
            prefixes: PrefixStore::new(true),
        })
    }

    pub fn prefix_token_id(&self) -> u32 {
        self.prefix_token
    }

    /// Whether requests sharing a prefix compute it once (on by default; off recomputes every
    /// context, to measure what sharing saves and to test that it changes nothing).
    pub fn with_prefix_sharing(mut self, on: bool) -> Self {
        self.prefixes = PrefixStore::new(on);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_holding_much_take_smaller_batches() {
        let copies = |rows, bytes| rows_within(rows, bytes, PREFIX_COPIES_BYTES);
        // SmolLM2's ~430-token MMLU prefix (~20 MB): the batch size decides.
        assert_eq!(copies(8, 20 << 20), 8);
        // A 7B model's ~6,000-token prefix in f32 (~1.5 GiB): one row at a time.
        assert_eq!(copies(8, 6000 * (256 << 10)), 1);
        assert_eq!(copies(8, 600 << 20), 3);
        assert_eq!(copies(8, 0), 8);
        // Generating: Mistral 7B on bbh (256 KiB a token) keeps 8 rows, Llama 2 7B on gsm8k
        // (1 MiB a token) 6.
        assert_eq!(rows_within(8, 2700 * (256 << 10), GENERATION_KV_BYTES), 8);
        assert_eq!(rows_within(8, 1300 << 20, GENERATION_KV_BYTES), 6);
    }
}
