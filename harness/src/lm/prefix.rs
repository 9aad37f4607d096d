//! Shared prefixes computed once. Requests that start with the same tokens (the fixed few-shot
//! exemplars of gsm8k_cot, bbh, minerva math or a 5-shot MMLU subject; the k samples of one
//! prompt) reuse the key/value cache of those tokens instead of recomputing it. The store keeps
//! the last few prefixes across calls, so every chunk of a task reuses its exemplars.
//!
//! Reusing a cache is exact up to float noise: keys and values of a prefix depend only on the
//! prefix (causal attention), and continuing from a cache is the chunked pre-fill that
//! `model`'s tests compare with one pass.

use std::sync::Mutex;

use anyhow::Context as _;
use model::{Decoder, KvCache, StepInput};

/// Prefixes shorter than this are not shared: copying their cache into every row would cost
/// about as much as recomputing them.
pub const MIN_SHARED_TOKENS: usize = 32;
/// Prefixes kept, the most recently used first.
const KEPT: usize = 2;
/// Tokens per pre-fill step when a prefix is computed (bounds the attention's memory).
pub const PREFILL_CHUNK: usize = 512;

pub struct PrefixStore {
    entries: Mutex<Vec<Entry>>,
    /// Off: every request computes its whole context (to measure what sharing saves).
    enabled: bool,
}

struct Entry {
    ids: Vec<u32>,
    /// One row holding `ids`.
    cache: KvCache,
}

impl PrefixStore {
    pub fn new(enabled: bool) -> Self {
        Self {
            entries: Mutex::new(Vec::new()),
            enabled,
        }
    }

    /// A one-row cache holding `ids`, continuing the stored prefix that shares the most tokens
    /// with them; None when `ids` are too short to be worth sharing or do not fit the model's
    /// rolling buffer (whose first tokens would be gone).
    pub fn cache_of(&self, decoder: &Decoder, ids: &[u32]) -> anyhow::Result<Option<KvCache>> {
        let fits = decoder.attention.smallest_window().is_none_or(|w| ids.len() <= w);
        if !self.enabled || ids.len() < MIN_SHARED_TOKENS || !fits {
            return Ok(None);
        }
        let mut entries = self
            .entries
            .lock()
            .map_err(|_| anyhow::anyhow!("the prefix store was poisoned by a panic"))?;
        let best = entries
            .iter()
            .enumerate()
            .map(|(i, e)| (common_prefix(&e.ids, ids), i))
            .max();
        let (mut cache, done) = match best {
            Some((n, i)) if n >= MIN_SHARED_TOKENS => (entries[i].cache.prefix(0, n)?, n),
            _ => (decoder.new_cache(1), 0),
        };
        for start in (done..ids.len()).step_by(PREFILL_CHUNK) {
            let chunk = &ids[start..ids.len().min(start + PREFILL_CHUNK)];
            decoder
                .hidden_states(&StepInput::single(chunk, start), Some(&mut cache))
                .context("computing a shared prefix")?;
        }
        // The new entry replaces any entry it extends; cache clones share their tensors.
        entries.retain(|e| !ids.starts_with(&e.ids));
        entries.insert(
            0,
            Entry {
                ids: ids.to_vec(),
                cache: cache.clone(),
            },
        );
        entries.truncate(KEPT);
        Ok(Some(cache))
    }
}

/// How many leading tokens `a` and `b` share.
pub fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// How many leading tokens all of `rows` share (0 for none).
pub fn common_prefix_of<'a>(mut rows: impl Iterator<Item = &'a [u32]>) -> usize {
    let Some(first) = rows.next() else {
        return 0;
    };
    rows.fold(first.len(), |n, row| common_prefix(&first[..n], row))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefixes() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[5], &[1]), 0);
        let rows: [&[u32]; 3] = [&[1, 2, 3, 4], &[1, 2, 3], &[1, 2, 9]];
        assert_eq!(common_prefix_of(rows.into_iter()), 2);
        assert_eq!(common_prefix_of(std::iter::empty()), 0);
    }
}
