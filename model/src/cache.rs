//! The key/value cache: a growing cache for full attention, and for a sliding window W a
//! rolling buffer of W slots (stream index t lives in slot t mod W), so memory stays bounded
//! by W however long the sequence grows (Mistral 7B paper, §2 "Rolling Buffer Cache").
//!
//! Keys are cached after rotation, at their absolute positions, so a wrapped buffer still holds
//! correctly rotated keys. Attention does not care about the order of keys, only about which
//! ones a query may see, so the buffer is never unrolled: each slot remembers its position and
//! whether it holds a real token, and the mask is built from that.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::error::ModelError;
use crate::input::StepInput;

pub struct KvCache {
    /// Some(W): rolling buffer of W slots. None: grows without bound.
    capacity: Option<usize>,
    batch: usize,
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Per row, per slot: the position of the token held there; None for an empty slot or padding.
    rows: Vec<Vec<Option<i64>>>,
    /// Tokens fed so far (the same for every row: padding counts).
    stream_len: usize,
}

impl KvCache {
    pub fn new(num_layers: usize, batch: usize, window: Option<usize>) -> Self {
        Self {
            capacity: window,
            batch,
            layers: (0..num_layers).map(|_| None).collect(),
            rows: vec![Vec::new(); batch],
            stream_len: 0,
        }
    }

    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Tokens fed so far.
    pub fn len(&self) -> usize {
        self.stream_len
    }

    pub fn is_empty(&self) -> bool {
        self.stream_len == 0
    }

    /// Slots held per layer (≤ W for a rolling buffer).
    pub fn slots(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }

    /// Bytes of the key and value slots in use, all layers (buffers may hold spare room beyond
    /// this: see `reserved_bytes`).
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| {
                let [b, h, _, d] = k.dims();
                2 * b * h * self.slots() * d * k.dtype().size().max(v.dtype().size())
            })
            .sum()
    }

    /// Bytes of the key and value buffers allocated, spare room included.
    pub fn reserved_bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.shape().num_elements() + v.shape().num_elements()) * k.dtype().size())
            .sum()
    }

    /// Positions and validity of the slots now held, for the mask.
    pub(crate) fn past(&self) -> PastKeys<'_> {
        PastKeys { rows: &self.rows }
    }

    /// Keys and values to attend over for `layer`: the cached slots followed by the new ones.
    /// Also stores the new keys and values. The new tokens' metadata is recorded by `commit`.
    ///
    /// Until a rolling buffer wraps, keys are appended in place into a buffer with spare room
    /// (grown by doubling), so a decoding step writes one slot instead of copying the cache.
    pub(crate) fn attend_and_store(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, new, d] = k.dims();
        let used = self.slots();
        let old = self.layers[layer].take();
        if let Some(cap) = self.capacity.filter(|&cap| self.stream_len + new > cap) {
            let (k_all, v_all) = match old {
                Some((k_old, v_old)) => (
                    Tensor::cat(vec![k_old.narrow(2, 0, used), k.clone()], 2),
                    Tensor::cat(vec![v_old.narrow(2, 0, used), v.clone()], 2),
                ),
                None => (k.clone(), v.clone()),
            };
            let (k_ring, v_ring) = self.ring_of(&k_all, &v_all, cap);
            self.layers[layer] = Some((self.write_ring(k_ring, k, cap), self.write_ring(v_ring, v, cap)));
            return (k_all, v_all);
        }
        let needed = used + new;
        let (k_buf, v_buf) = match old {
            Some((k_buf, v_buf)) if k_buf.dims()[2] >= needed => (k_buf, v_buf),
            old => {
                let room = needed.next_power_of_two().max(64);
                let room = self.capacity.map_or(room, |cap| room.min(cap));
                let grow = |old: Option<Tensor<4>>| {
                    let buf = Tensor::zeros([b, h, room, d], (&k.device(), k.dtype()));
                    match old {
                        Some(old) if used > 0 => buf.slice_assign([0..b, 0..h, 0..used, 0..d], old.narrow(2, 0, used)),
                        _ => buf,
                    }
                };
                let (k_old, v_old) = old.unzip();
                (grow(k_old), grow(v_old))
            }
        };
        let k_buf = k_buf.slice_assign([0..b, 0..h, used..needed, 0..d], k);
        let v_buf = v_buf.slice_assign([0..b, 0..h, used..needed, 0..d], v);
        let attend = (k_buf.clone().narrow(2, 0, needed), v_buf.clone().narrow(2, 0, needed));
        self.layers[layer] = Some((k_buf, v_buf));
        attend
    }

    /// The buffer of `cap` slots as it was before this call (the first `slots` of `all`),
    /// padded with empty slots up to `cap`.
    fn ring_of(&self, k_all: &Tensor<4>, v_all: &Tensor<4>, cap: usize) -> (Tensor<4>, Tensor<4>) {
        let [b, h, _, d] = k_all.dims();
        let slots = self.slots();
        let take = |t: &Tensor<4>| {
            let empty = || Tensor::zeros([b, h, cap - slots, d], (&t.device(), t.dtype()));
            match slots {
                0 => empty(),
                s if s == cap => t.clone().narrow(2, 0, s),
                s => Tensor::cat(vec![t.clone().narrow(2, 0, s), empty()], 2),
            }
        };
        (take(k_all), take(v_all))
    }

    /// Writes the last min(new, cap) tokens of `fresh` at slots t mod cap.
    fn write_ring(&self, mut ring: Tensor<4>, fresh: Tensor<4>, cap: usize) -> Tensor<4> {
        let [b, h, new, d] = fresh.dims();
        for (src, dst, len) in ring_runs(self.stream_len, new, cap) {
            let part = fresh.clone().narrow(2, src, len);
            ring = ring.slice_assign([0..b, 0..h, dst..dst + len, 0..d], part);
        }
        ring
    }

    /// Keeps only the rows `keep` (ascending, distinct indices into the current batch), in that
    /// order; every other row's keys and values are dropped.
    ///
    /// Why: in a generation batch, rows that have finished would otherwise be carried through
    /// every later step until the longest row ends; dropping them makes those steps cheaper.
    /// What a kept row attends to is unchanged (its own slots, positions and padding).
    pub fn retain_rows(&mut self, keep: &[usize]) -> Result<(), ModelError> {
        let ascending = keep.windows(2).all(|pair| pair[0] < pair[1]);
        if !ascending || keep.last().is_some_and(|&last| last >= self.batch) {
            return Err(ModelError::Invalid(format!(
                "rows to keep {keep:?} must be ascending indices below the batch of {}",
                self.batch
            )));
        }
        if keep.len() == self.batch {
            return Ok(());
        }
        if let Some(device) = self.layers.iter().flatten().next().map(|(k, _)| k.device()) {
            let indices: Vec<i64> = keep.iter().map(|&row| row as i64).collect();
            let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [keep.len()]), &device);
            for (k, v) in self.layers.iter_mut().flatten() {
                *k = k.clone().select(0, indices.clone());
                *v = v.clone().select(0, indices.clone());
            }
        }
        let mut rows = std::mem::take(&mut self.rows);
        self.rows = keep.iter().map(|&row| std::mem::take(&mut rows[row])).collect();
        self.batch = keep.len();
        Ok(())
    }

    /// Records the positions and validity of the tokens just fed (after every layer stored them).
    pub(crate) fn commit(&mut self, input: &StepInput) {
        let new = input.seq;
        let wraps = self.capacity.filter(|&cap| self.stream_len + new > cap);
        for (row, slots) in self.rows.iter_mut().enumerate() {
            let token = |i: usize| input.valid[row * new + i].then_some(input.positions[row * new + i]);
            match wraps {
                Some(cap) => {
                    slots.resize(cap, None);
                    for (src, dst, len) in ring_runs(self.stream_len, new, cap) {
                        for i in 0..len {
                            slots[dst + i] = token(src + i);
                        }
                    }
                }
                None => slots.extend((0..new).map(token)),
            }
        }
        self.stream_len += new;
    }
}

/// Bytes a cache holds after `tokens` tokens: keys and values for every layer, with at most
/// `window` slots per sequence when there is a window (what `KvCache::bytes` reports).
pub fn kv_cache_bytes(
    num_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    batch: usize,
    tokens: usize,
    window: Option<usize>,
    bytes_per_value: usize,
) -> usize {
    let slots = window.map_or(tokens, |w| tokens.min(w));
    2 * num_layers * batch * kv_heads * slots * head_dim * bytes_per_value
}

/// Metadata of cached keys: per row, per slot, the position held (None: empty or padding).
pub(crate) struct PastKeys<'a> {
    pub rows: &'a [Vec<Option<i64>>],
}

impl PastKeys<'_> {
    pub fn none() -> PastKeys<'static> {
        PastKeys { rows: &[] }
    }

    fn slots(&self) -> usize {
        self.rows.first().map_or(0, Vec::len)
    }
}

/// Where the last min(new, cap) of `new` tokens starting at stream index `start` land in a
/// ring of `cap` slots: (index in the new tokens, slot, length), at most two runs.
fn ring_runs(start: usize, new: usize, cap: usize) -> Vec<(usize, usize, usize)> {
    let skip = new.saturating_sub(cap);
    let mut runs = Vec::new();
    let mut src = skip;
    while src < new {
        let slot = (start + src) % cap;
        let len = (cap - slot).min(new - src);
        runs.push((src, slot, len));
        src += len;
    }
    runs
}

/// The blocked-key mask for `input`'s queries over `past` keys followed by the new keys,
/// shaped [batch, 1, groups * seq, past + seq] (query rows repeated once per head in a group).
/// Query i sees key j iff j is a real token, pos_j ≤ pos_i, with a window W pos_i − pos_j < W,
/// and j is in the shared segment 0 or in i's own segment (cached keys count as segment 0).
pub(crate) fn blocked_mask(
    past: &PastKeys,
    input: &StepInput,
    window: Option<usize>,
    groups: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    let (b, s) = (input.batch, input.seq);
    let past_slots = past.slots();
    let keys = past_slots + s;
    let mut rows = Vec::with_capacity(b * s * keys);
    for row in 0..b {
        for i in 0..s {
            let qpos = input.positions[row * s + i];
            let qseg = input.segments[row * s + i];
            let key = |pos: i64, valid: bool| {
                let allowed = valid && pos <= qpos && window.is_none_or(|w| qpos - pos < w as i64);
                !allowed
            };
            if past_slots > 0 {
                rows.extend(past.rows[row].iter().map(|slot| key(slot.unwrap_or(0), slot.is_some())));
            }
            for j in 0..s {
                let kseg = input.segments[row * s + j];
                let same_segment = kseg == 0 || kseg == qseg;
                rows.push(key(
                    input.positions[row * s + j],
                    input.valid[row * s + j] && same_segment,
                ));
            }
        }
    }
    // Repeat each batch row's [seq, keys] block once per query head of a group.
    let mut mask = Vec::with_capacity(b * groups * s * keys);
    for block in rows.chunks(s * keys.max(1)).take(b) {
        for _ in 0..groups {
            mask.extend_from_slice(block);
        }
    }
    Tensor::from_data(TensorData::new(mask, [b, 1, groups * s, keys]), device)
}

#[cfg(test)]
mod tests {
    use super::ring_runs;

    #[test]
    fn ring_runs_wrap_and_keep_the_last_tokens() {
        assert_eq!(ring_runs(0, 3, 8), vec![(0, 0, 3)]);
        assert_eq!(ring_runs(6, 4, 8), vec![(0, 6, 2), (2, 0, 2)]);
        // 20 new tokens into 8 slots: only the last 8 are written, wrapping once.
        assert_eq!(ring_runs(5, 20, 8), vec![(12, 1, 7), (19, 0, 1)]);
    }
}
