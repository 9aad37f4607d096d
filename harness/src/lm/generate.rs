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
//! Batches are left-padded; padding is marked invalid rather than filled with EOS, so a pad can
//! never be mistaken for the end of a sequence (lm-eval issue #1090), and positions count real
//! tokens only. Each row draws from its own seeded generator, so results depend neither on batch
//! order nor size (greedy rows: beyond float noise, tested against the unbatched path).

use anyhow::{Context as _, bail};
use model::StepInput;
use serde::{Deserialize, Serialize};

use super::Lm;
use crate::sampling::{Sampling, SeededRng, pick};

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

    /// Token requests → generations, in request order. Longest prompts are batched first (as
    /// lm-eval's Collator does), so padding stays small.
    pub fn generate_tokens(&self, requests: &[TokenGenRequest]) -> anyhow::Result<Vec<Generation>> {
        let mut order: Vec<usize> = (0..requests.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(requests[i].prompt.len()));
        let mut out: Vec<Option<Generation>> = vec![None; requests.len()];
        for chunk in order.chunks(self.batch_size) {
            let batch: Vec<&TokenGenRequest> = chunk.iter().map(|&i| &requests[i]).collect();
            for (&i, generation) in chunk.iter().zip(self.decode_batch(&batch)?) {
                out[i] = Some(generation);
            }
        }
        Ok(out.into_iter().map(|g| g.expect("every request is decoded")).collect())
    }

    fn decode_batch(&self, batch: &[&TokenGenRequest]) -> anyhow::Result<Vec<Generation>> {
        let vocab = self.decoder.config.vocab_size;
        let pad = self.eos.unwrap_or(0);
        let prompts: Vec<Vec<u32>> = batch.iter().map(|r| r.prompt.clone()).collect();
        let mut rows: Vec<Row> = batch
            .iter()
            .map(|r| Row {
                next_position: r.prompt.len() as i64,
                rng: SeededRng::new(r.seed),
                ids: Vec::new(),
                finished: (r.max_new_tokens == 0).then_some(StopReason::MaxTokens),
            })
            .collect();
        let mut cache = self.decoder.new_cache(batch.len());
        let mut input = StepInput::left_padded(&prompts, pad);
        // Cache row r holds batch row active[r]; finished rows leave the cache in bulk.
        let mut active: Vec<usize> = (0..batch.len()).collect();
        while rows.iter().any(|r| r.finished.is_none()) {
            let logits = self
                .decoder
                .last_logits(&input, Some(&mut cache))?
                .try_into_vec_as::<f32>()
                .map_err(|e| anyhow::anyhow!("reading logits back from the device: {e:?}"))?;
            for (r, &n) in active.iter().enumerate() {
                let (row, request) = (&mut rows[n], batch[n]);
                if row.finished.is_none() {
                    let token = pick(&logits[r * vocab..(r + 1) * vocab], &request.sampling, &mut row.rng);
                    row.ids.push(token);
                    row.finished = self.stop_reason(&row.ids, request)?;
                }
            }
            if rows.iter().all(|r| r.finished.is_some()) {
                break;
            }
            if should_compact(&active, &rows) {
                let keep: Vec<usize> = (0..active.len())
                    .filter(|&r| rows[active[r]].finished.is_none())
                    .collect();
                cache.retain_rows(&keep)?;
                active = keep.into_iter().map(|r| active[r]).collect();
            }
            let mut ids = Vec::with_capacity(active.len());
            let mut positions = Vec::with_capacity(active.len());
            let mut valid = Vec::with_capacity(active.len());
            for &n in &active {
                let row = &mut rows[n];
                ids.push(row.ids.last().copied().unwrap_or(pad));
                positions.push(row.next_position);
                valid.push(row.finished.is_none());
                row.next_position += 1;
            }
            input = StepInput::from_parts(active.len(), 1, ids, positions, valid)?;
        }
        rows.into_iter()
            .zip(batch)
            .map(|(row, request)| {
                let text = self.tokenizer.decode(&row.ids, true)?;
                Ok(Generation {
                    text: cut_at_stops(&text, &request.until).to_string(),
                    ids: row.ids,
                    stop: row.finished.context("a row ended without a reason")?,
                    prompt_tokens: request.prompt.len(),
                    truncated: request.truncated,
                })
            })
            .collect()
    }

    fn stop_reason(&self, ids: &[u32], request: &TokenGenRequest) -> anyhow::Result<Option<StopReason>> {
        if Some(*ids.last().expect("a token was just added")) == self.eos {
            return Ok(Some(StopReason::Eos));
        }
        if !request.until.is_empty() {
            let text = self.tokenizer.decode(ids, true)?;
            if request.until.iter().any(|s| !s.is_empty() && text.contains(s.as_str())) {
                return Ok(Some(StopReason::StopSequence));
            }
        }
        Ok((ids.len() >= request.max_new_tokens).then_some(StopReason::MaxTokens))
    }
}

/// Whether to drop the finished rows from the cache now: once they are at least half of it, so
/// a batch is compacted at most log2(batch) times (each compaction copies the kept rows' keys and
/// values) and never carries more than twice the rows still decoding.
fn should_compact(active: &[usize], rows: &[Row]) -> bool {
    let finished = active.iter().filter(|&&n| rows[n].finished.is_some()).count();
    finished > 0 && 2 * finished >= active.len()
}

struct Row {
    next_position: i64,
    rng: SeededRng,
    ids: Vec<u32>,
    finished: Option<StopReason>,
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
