//! Continuous batching for `generate_tokens`. The KV cache has `batch_size` rows (fewer for
//! long prompts: their keys and values stay within a bound, `rows_within`); a request
//! takes a free row as soon as one is free: its prompt is pre-filled in a cache of its own and
//! its row put into the running cache (`KvCache::put_row`), while the other rows go on
//! decoding. Rows keep their own lengths, so nothing waits for the longest row of a batch.
//!
//! Memory: where every row is free (the first batch), the pre-fill's cache becomes the running
//! cache instead of being copied into it (its pre-fill stays alive only while samples of one of
//! its prompts wait for a row); the running cache is made as long as the longest prompt plus its
//! new tokens at once (`KvCache::with_room_for`) rather than doubled, a pre-fill as long as its
//! prompts; and a finished row is emptied (`KvCache::clear_row`), so that while it waits it
//! neither grows past that plan nor widens the other rows' attention. At 7B on bbh (five
//! ~3,000-token rows) the running cache and the pre-fill had held 5.4 GB each.
//!
//! - Requests are admitted longest prompt first (as lm-eval's Collator orders them), in one
//!   fixed order, so no request waits behind requests admitted after it.
//! - Requests with the same prompt (the k samples of an item) share one pre-fill, and every
//!   prompt continues the cache of the prefix all prompts share ([`super::prefix`]).
//! - Each request draws from its own seeded generator, so a sample depends only on its seed,
//!   never on which row or batch it ran in.
//! - Once nothing is waiting, finished rows leave the cache in bulk (`KvCache::retain_rows`).

use std::collections::{HashMap, VecDeque};

use anyhow::Context as _;
use model::{KvCache, StepInput, ensure_finite};

use super::generate::{Generation, StopReason, TokenGenRequest, cut_at_stops};
use super::prefix::{MIN_SHARED_TOKENS, PREFILL_CHUNK, common_prefix_of};
use super::stops::StopScan;
use super::{GENERATION_KV_BYTES, Lm, rows_within};
use crate::sampling::{SeededRng, pick};

pub(super) struct Batcher<'l, 'r> {
    lm: &'l Lm<'l>,
    requests: &'r [TokenGenRequest],
    /// Requests not yet admitted, the next first.
    queue: VecDeque<usize>,
    /// Per request: its prompt group (requests with identical prompts).
    group: Vec<usize>,
    /// Per group: its requests still queued, and its first request.
    queued: Vec<usize>,
    first: Vec<usize>,
    /// Pre-filled prompts whose group still has queued requests.
    ready: HashMap<usize, Prefilled>,
    /// The prefix every prompt starts with: its length and cache, when long enough to share.
    shared: Option<(usize, KvCache)>,
    /// The most tokens a row holds: the longest prompt with the most new tokens.
    row_tokens: usize,
    cache: KvCache,
    /// Per cache row: the request decoding there, None for a free row.
    rows: Vec<Option<Active>>,
    out: Vec<Option<Generation>>,
}

/// The most tokens one row holds: the longest prompt with the most new tokens.
fn row_tokens(lm: &Lm, requests: &[TokenGenRequest], order: &[usize]) -> usize {
    let longest = order.iter().map(|&i| requests[i].prompt.len()).max().unwrap_or(0);
    let new_tokens = order.iter().map(|&i| requests[i].max_new_tokens).max().unwrap_or(0);
    (longest + new_tokens).min(lm.max_len)
}

/// A pre-filled prompt: row `row` of `cache`, and the logits after its last token.
struct Prefilled {
    cache: KvCache,
    row: usize,
    logits: Vec<f32>,
}

struct Active {
    request: usize,
    rng: SeededRng,
    ids: Vec<u32>,
    stops: StopScan,
}

impl<'l, 'r> Batcher<'l, 'r> {
    pub fn new(lm: &'l Lm<'l>, requests: &'r [TokenGenRequest]) -> anyhow::Result<Self> {
        let mut groups: HashMap<&[u32], usize> = HashMap::new();
        let group: Vec<usize> = requests
            .iter()
            .map(|r| {
                let next = groups.len();
                *groups.entry(r.prompt.as_slice()).or_insert(next)
            })
            .collect();
        let mut queued = vec![0; groups.len()];
        let mut first = vec![usize::MAX; groups.len()];
        for (i, &g) in group.iter().enumerate().rev() {
            first[g] = i;
        }
        let mut out = vec![None; requests.len()];
        let mut order = Vec::new();
        for (i, request) in requests.iter().enumerate() {
            if request.max_new_tokens == 0 {
                out[i] = Some(generation(lm, request, Vec::new(), StopReason::MaxTokens)?);
            } else {
                queued[group[i]] += 1;
                order.push(i);
            }
        }
        order.sort_by_key(|&i| (std::cmp::Reverse(requests[i].prompt.len()), group[i], i));
        let shared = shared_prefix(lm, order.iter().map(|&i| requests[i].prompt.as_slice()))?;
        let row_tokens = row_tokens(lm, requests, &order);
        let row_bytes = lm.decoder.kv_bytes_per_row(row_tokens);
        let rows = rows_within(lm.batch_size, row_bytes, GENERATION_KV_BYTES).min(order.len());
        Ok(Self {
            lm,
            requests,
            queue: order.into(),
            group,
            queued,
            first,
            ready: HashMap::new(),
            shared,
            row_tokens,
            cache: lm.decoder.new_cache(rows).with_room_for(row_tokens),
            rows: (0..rows).map(|_| None).collect(),
            out,
        })
    }

    /// Generations in request order.
    pub fn run(mut self) -> anyhow::Result<Vec<Generation>> {
        loop {
            self.admit()?;
            if self.rows.iter().all(Option::is_none) {
                break;
            }
            if self.queue.is_empty() {
                self.compact()?;
            }
            self.step()?;
        }
        self.out
            .into_iter()
            .enumerate()
            .map(|(i, g)| g.with_context(|| format!("request {i} was never decoded (batcher bug)")))
            .collect()
    }

    /// Fills free rows from the queue. A request can end at its first token, freeing its row
    /// again, so this repeats until no row is free or nothing is waiting.
    fn admit(&mut self) -> anyhow::Result<()> {
        loop {
            let free: Vec<usize> = (0..self.rows.len()).filter(|&r| self.rows[r].is_none()).collect();
            let take = free.len().min(self.queue.len());
            if take == 0 {
                return Ok(());
            }
            let admitted: Vec<usize> = self.queue.drain(..take).collect();
            let mut missing: Vec<usize> = Vec::new();
            for g in admitted.iter().map(|&i| self.group[i]) {
                if !missing.contains(&g) && !self.ready.contains_key(&g) {
                    missing.push(g);
                }
            }
            // Every row free and nothing pre-filled before: the pre-fill's cache becomes the
            // running one.
            let whole_batch = take == self.rows.len() && self.ready.is_empty();
            if whole_batch {
                self.cache = self.lm.decoder.new_cache(0); // the free rows' keys go before the pre-fill
            }
            let cache = self.prefill(&missing, whole_batch)?;
            if whole_batch {
                self.run_in(cache.context("a batch of free rows pre-fills its prompts")?, &admitted)?;
            }
            for (&request, row) in admitted.iter().zip(free) {
                self.start(request, row, !whole_batch)?;
            }
        }
    }

    /// Makes the pre-fill's cache the running one, row r holding `admitted[r]`'s prompt (copied
    /// only to reorder rows or repeat a prompt that rows share).
    fn run_in(&mut self, prefilled: KvCache, admitted: &[usize]) -> anyhow::Result<()> {
        let sources = admitted
            .iter()
            .map(|i| self.ready.get(&self.group[*i]).map(|p| p.row))
            .collect::<Option<Vec<usize>>>()
            .context("an admitted prompt was not pre-filled (batcher bug)")?;
        self.cache = match sources.iter().copied().eq(0..admitted.len()) {
            true => prefilled,
            false => prefilled.select_rows(&sources)?,
        };
        Ok(())
    }

    /// Pre-fills one prompt per group (after the shared prefix), left-padded, in chunks; row i
    /// of the cache it returns is `groups[i]`'s prompt. A cache that will become the running one
    /// has room for the new tokens too.
    fn prefill(&mut self, groups: &[usize], becomes_running: bool) -> anyhow::Result<Option<KvCache>> {
        if groups.is_empty() {
            return Ok(None);
        }
        let skip = self.shared.as_ref().map_or(0, |(n, _)| *n);
        let suffixes: Vec<Vec<u32>> = groups
            .iter()
            .map(|&g| self.requests[self.first[g]].prompt[skip..].to_vec())
            .collect();
        let mut input = StepInput::left_padded(&suffixes, self.lm.pad_token());
        let room = if becomes_running {
            self.row_tokens
        } else {
            skip + input.seq
        };
        let mut cache = match &self.shared {
            Some((_, prefix)) => prefix.select_rows(&vec![0; groups.len()])?,
            None => self.lm.decoder.new_cache(groups.len()),
        }
        .with_room_for(room);
        input.positions.iter_mut().for_each(|p| *p += skip as i64);
        let mut logits = None;
        for start in (0..input.seq).step_by(PREFILL_CHUNK) {
            let part = input.columns(start, PREFILL_CHUNK.min(input.seq - start));
            logits = Some(self.lm.decoder.last_logits(&part, Some(&mut cache))?);
        }
        let logits = read_logits(logits.context("an empty prompt")?)?;
        let vocab = self.lm.decoder.config.vocab_size;
        for (row, (&g, logits)) in groups.iter().zip(logits.chunks(vocab)).enumerate() {
            let prefilled = Prefilled {
                cache: cache.clone(),
                row,
                logits: logits.to_vec(),
            };
            self.ready.insert(g, prefilled);
        }
        Ok(Some(cache))
    }

    /// Starts `request` in the free cache row `row`: its first token from its prompt's logits,
    /// then (unless that ended it, or `put` is false because the row holds it already) its
    /// prompt's keys and values into the row.
    fn start(&mut self, request: usize, row: usize, put: bool) -> anyhow::Result<()> {
        let g = self.group[request];
        let prefilled = self.ready.get(&g).context("the prompt was pre-filled")?;
        let spec = &self.requests[request];
        let mut active = Active {
            request,
            rng: SeededRng::new(spec.seed),
            ids: Vec::new(),
            stops: StopScan::default(),
        };
        let token = pick(&prefilled.logits, &spec.sampling, &mut active.rng);
        let finished = self.lm.push_token(&mut active.ids, &mut active.stops, token, spec)?;
        if finished.is_none() && put {
            self.cache.put_row(row, &prefilled.cache, prefilled.row)?;
        }
        self.queued[g] -= 1;
        if self.queued[g] == 0 {
            self.ready.remove(&g);
        }
        self.rows[row] = Some(active);
        if let Some(reason) = finished {
            self.finish(row, reason)?;
        }
        Ok(())
    }

    /// One decoding step of every busy row.
    fn step(&mut self) -> anyhow::Result<()> {
        let pad = self.lm.pad_token();
        let b = self.rows.len();
        let (mut ids, mut positions, mut valid) = (Vec::with_capacity(b), Vec::with_capacity(b), Vec::with_capacity(b));
        for row in &self.rows {
            let (id, position) = match row {
                Some(a) => (
                    *a.ids.last().expect("a started row has a token"),
                    (self.requests[a.request].prompt.len() + a.ids.len() - 1) as i64,
                ),
                None => (pad, 0),
            };
            ids.push(id);
            positions.push(position);
            valid.push(row.is_some());
        }
        let input = StepInput::from_parts(b, 1, ids, positions, valid)?;
        let logits = read_logits(self.lm.decoder.last_logits(&input, Some(&mut self.cache))?)?;
        let vocab = self.lm.decoder.config.vocab_size;
        for row in 0..b {
            let Some(active) = self.rows[row].as_mut() else {
                continue;
            };
            let spec = &self.requests[active.request];
            let token = pick(&logits[row * vocab..(row + 1) * vocab], &spec.sampling, &mut active.rng);
            if let Some(reason) = self.lm.push_token(&mut active.ids, &mut active.stops, token, spec)? {
                self.finish(row, reason)?;
            }
        }
        Ok(())
    }

    /// Records the generation of the request in `row` and frees the row.
    fn finish(&mut self, row: usize, reason: StopReason) -> anyhow::Result<()> {
        let active = self.rows[row].take().context("finishing a free row")?;
        self.cache.clear_row(row)?;
        let request = &self.requests[active.request];
        self.out[active.request] = Some(generation(self.lm, request, active.ids, reason)?);
        Ok(())
    }

    /// With nothing waiting, drops the free rows from the cache once they are at least half of
    /// it: a batch is compacted at most log2(batch) times (each compaction copies the kept
    /// rows) and never carries more than twice the rows still decoding.
    fn compact(&mut self) -> anyhow::Result<()> {
        let free = self.rows.iter().filter(|r| r.is_none()).count();
        if free == 0 || 2 * free < self.rows.len() {
            return Ok(());
        }
        let keep: Vec<usize> = (0..self.rows.len()).filter(|&r| self.rows[r].is_some()).collect();
        self.cache.retain_rows(&keep)?;
        let mut rows = std::mem::take(&mut self.rows);
        self.rows = keep.iter().map(|&r| rows[r].take()).collect();
        Ok(())
    }
}

/// The logits of a step, [rows, vocabulary] row-major, read back for sampling; non-finite ones
/// are an error (`ensure_finite`), not a token drawn from garbage.
fn read_logits(logits: burn::tensor::Tensor<2>) -> anyhow::Result<Vec<f32>> {
    let values = logits
        .try_into_vec_as::<f32>()
        .map_err(|e| anyhow::anyhow!("reading logits back from the device: {e:?}"))?;
    ensure_finite(&values, "logits")?;
    Ok(values)
}

/// The prefix all `prompts` share, with its cache, when it is long enough to share. It stops
/// one token short of the shortest prompt, so every prompt has a token left to pre-fill (whose
/// logits give the first generated token).
fn shared_prefix<'p>(
    lm: &Lm,
    prompts: impl Iterator<Item = &'p [u32]> + Clone,
) -> anyhow::Result<Option<(usize, KvCache)>> {
    let shortest = prompts.clone().map(<[u32]>::len).min().unwrap_or(0);
    let n = common_prefix_of(prompts.clone()).min(shortest.saturating_sub(1));
    if n < MIN_SHARED_TOKENS {
        return Ok(None);
    }
    let first = prompts.clone().next().context("no prompts")?;
    Ok(lm.prefixes.cache_of(lm.decoder, &first[..n])?.map(|cache| (n, cache)))
}

/// The finished generation of `request`: its text cut at the stop strings.
fn generation(lm: &Lm, request: &TokenGenRequest, ids: Vec<u32>, stop: StopReason) -> anyhow::Result<Generation> {
    let text = lm.tokenizer.decode(&ids, true)?;
    Ok(Generation {
        text: cut_at_stops(&text, &request.until).to_string(),
        ids,
        stop,
        prompt_tokens: request.prompt.len(),
        truncated: request.truncated,
    })
}
