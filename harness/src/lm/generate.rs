//! `generate_until`: KV-cached, batched decoding with stop sequences, as lm-eval's HFLM runs it
//! (lm_eval/models/huggingface.py `generate_until`, 0.4.12):
//!
//! - the context is encoded with the tokenizer's own special-token rule (no BOS for SmolLM2,
//!   none added when the text already starts with it) and left-truncated to
//!   `max_length - max_gen_toks` tokens;
//! - decoding stops at the EOS token, at `max_gen_toks` new tokens, or once the decoded text
//!   contains a stop string (which can span tokens);
//! - the text is decoded without special tokens and cut before the first occurrence of each stop
//!   string (`postprocess_generated_text`).
//!
//! Padding is marked invalid rather than filled with EOS, so a pad can never be mistaken for the
//! end of a sequence (lm-eval issue #1090), and positions count real tokens only. Each request
//! draws from its own seeded generator, so results depend neither on batch order nor size
//! (greedy rows: beyond float noise, tested against the unbatched path). Requests are decoded
//! with continuous batching and shared prefixes ([`super::batcher`]).

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::Lm;
use super::batcher::Batcher;
use super::stops::StopScan;
use crate::sampling::Sampling;

/// One request in token space.
#[derive(Clone, Debug)]
pub struct TokenGenRequest {
    pub prompt: Vec<u32>,
    /// Whether `prompt` was cut on the left to fit.
    pub truncated: bool,
    pub until: Vec<String>,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    pub seed: u64,
}

/// One text request: lm-eval's `(context, gen_kwargs)`.
#[derive(Clone, Debug)]
pub struct GenRequest {
    pub context: String,
    pub until: Vec<String>,
    pub max_gen_toks: usize,
    pub sampling: Sampling,
    pub seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    StopSequence,
    Eos,
    MaxTokens,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    /// The decoded text, cut before the first stop string.
    pub text: String,
    /// Tokens generated (the EOS included when it ended the sequence).
    pub ids: Vec<u32>,
    pub stop: StopReason,
    /// Prompt tokens (after left truncation).
    #[serde(default)]
    pub prompt_tokens: usize,
    /// Whether the prompt was cut on the left to leave room for `max_gen_toks` (as lm-eval does).
    #[serde(default)]
    pub truncated: bool,
}

impl Lm<'_> {
    /// `tok_batch_encode`: the tokenizer's special tokens unless the text already starts with
    /// BOS; left-truncated to leave room for `max_gen_toks` (the flag says whether it was).
    pub fn encode_context(&self, context: &str, max_gen_toks: usize) -> anyhow::Result<(Vec<u32>, bool)> {
        if max_gen_toks >= self.max_len {
            bail!(
                "max_gen_toks ({max_gen_toks}) must be less than the model's maximum length ({})",
                self.max_len
            );
        }
        let starts_with_bos = self
            .bos_text
            .as_deref()
            .is_some_and(|b| !b.is_empty() && context.starts_with(b));
        let mut ids = self.tokenizer.encode(context, !starts_with_bos)?;
        let room = self.max_len - max_gen_toks;
        let truncated = ids.len() > room;
        if truncated {
            ids.drain(..ids.len() - room);
        }
        if ids.is_empty() {
            bail!("the context encodes to no tokens: nothing to condition on");
        }
        Ok((ids, truncated))
    }

    /// lm-eval's `generate_until`: text requests → generations, in request order.
    pub fn generate_until(&self, requests: &[GenRequest]) -> anyhow::Result<Vec<Generation>> {
        let token_requests = requests
            .iter()
            .map(|r| {
                r.sampling.validate()?;
                let (prompt, truncated) = self.encode_context(&r.context, r.max_gen_toks)?;
                Ok(TokenGenRequest {
                    prompt,
                    truncated,
                    until: r.until.clone(),
                    max_new_tokens: r.max_gen_toks,
                    sampling: r.sampling,
                    seed: r.seed,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.generate_tokens(&token_requests)
    }

    /// Token requests → generations, in request order, decoded with continuous batching
    /// ([`super::batcher`]).
    pub fn generate_tokens(&self, requests: &[TokenGenRequest]) -> anyhow::Result<Vec<Generation>> {
        Batcher::new(self, requests)?.run()
    }

    /// The token that fills padding and free rows (never attended to).
    pub(super) fn pad_token(&self) -> u32 {
        self.eos.unwrap_or(0)
    }

    /// Appends `token` to a generation; why it ends there, if it does: EOS, a stop string in
    /// the decoded text, or the token limit (checked in that order).
    pub(super) fn push_token(
        &self,
        ids: &mut Vec<u32>,
        stops: &mut StopScan,
        token: u32,
        request: &TokenGenRequest,
    ) -> anyhow::Result<Option<StopReason>> {
        ids.push(token);
        if Some(token) == self.eos {
            return Ok(Some(StopReason::Eos));
        }
        if stops.push(self.tokenizer, ids, &request.until)? {
            return Ok(Some(StopReason::StopSequence));
        }
        Ok((ids.len() >= request.max_new_tokens).then_some(StopReason::MaxTokens))
    }
}

/// `postprocess_generated_text`: `generation.split(term)[0]` for each stop string in turn.
pub fn cut_at_stops<'t>(text: &'t str, until: &[String]) -> &'t str {
    let mut text = text;
    for stop in until.iter().filter(|s| !s.is_empty()) {
        if let Some(at) = text.find(stop.as_str()) {
            text = &text[..at];
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::cut_at_stops;

    #[test]
    fn cuts_before_the_earliest_stop() {
        let until = vec!["Question:".to_string(), "\n\n".to_string(), String::new()];
        assert_eq!(cut_at_stops("42.\n\nQuestion: next", &until), "42.");
        assert_eq!(cut_at_stops("no stop here", &until), "no stop here");
        assert_eq!(cut_at_stops("Question:", &until), "");
    }
}
