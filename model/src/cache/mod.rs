//! The key/value cache of a decoder: per layer, the keys and values of every row so far.
//!
//! Layers that share a window share one [`WindowCache`] (`window.rs`): its slot positions, its
//! rows' lengths and, each step, one mask for all of them; a model whose layers alternate local
//! and global attention (`swa:W@even`) keeps two, a rolling buffer of W slots for the local
//! layers and a growing cache for the global ones. The mask of each distinct window is built once
//! per step (mistral-inference's per-step cache metadata), not once per layer.

mod mask;
mod window;

use burn::tensor::{Bool, Device, Tensor};

pub(crate) use mask::blocked_mask;
use window::WindowCache;

use crate::error::ModelError;
use crate::input::StepInput;

/// Cloning is cheap (tensors are shared until written) and the copies are independent.
#[derive(Clone)]
pub struct KvCache {
    /// One per distinct window, in order of first use by a layer.
    groups: Vec<WindowCache>,
    /// Per layer: (its group, its index among the group's layers).
    layer_slot: Vec<(usize, usize)>,
}

impl KvCache {
    /// A cache for layers with these windows (None: full attention), `batch` rows.
    pub fn new(windows: &[Option<usize>], batch: usize) -> Self {
        let mut distinct: Vec<Option<usize>> = Vec::new();
        let mut counts: Vec<usize> = Vec::new();
        let layer_slot = windows
            .iter()
            .map(|w| {
                let group = distinct.iter().position(|d| d == w).unwrap_or_else(|| {
                    distinct.push(*w);
                    counts.push(0);
                    distinct.len() - 1
                });
                counts[group] += 1;
                (group, counts[group] - 1)
            })
            .collect();
        let groups = distinct
            .iter()
            .zip(&counts)
            .map(|(&w, &layers)| WindowCache::new(layers, batch, w))
            .collect();
        Self { groups, layer_slot }
    }

    /// Rows will hold up to `tokens` tokens (a generation batch: its longest prompt and its new
    /// tokens): every buffer is made that size when first made or grown, instead of doubling,
    /// which can leave nearly half of it spare (a 2,100-token prompt in 4,096 slots).
    pub fn with_room_for(self, tokens: usize) -> Self {
        Self {
            groups: self.groups.into_iter().map(|g| g.with_room_for(tokens)).collect(),
            layer_slot: self.layer_slot,
        }
    }

    fn first(&self) -> &WindowCache {
        &self.groups[0]
    }

    pub fn batch(&self) -> usize {
        self.first().batch()
    }

    /// Tokens fed so far to the longest row (every row's count when the rows were fed together).
    pub fn len(&self) -> usize {
        self.first().len()
    }

    /// Tokens fed so far to `row` (padding included).
    pub fn row_len(&self, row: usize) -> usize {
        self.first().row_len(row)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Slots in use by the layers that hold the most (≤ W for a rolling buffer).
    pub fn slots(&self) -> usize {
        self.groups.iter().map(WindowCache::slots).max().unwrap_or(0)
    }

    /// Bytes of the key and value slots in use, all layers.
    pub fn bytes(&self) -> usize {
        self.groups.iter().map(WindowCache::bytes).sum()
    }

    /// Bytes of the key and value buffers, spare room included: what the cache takes in memory.
    pub fn allocated_bytes(&self) -> usize {
        self.groups.iter().map(WindowCache::allocated_bytes).sum()
    }

    /// Records where `input`'s tokens go and returns, per layer, the blocked-key mask for its
    /// queries ([batch, 1, groups * seq, keys]); layers sharing a window share one mask. Every
    /// layer then calls `attend_and_store`, and `commit` ends the step.
    pub(crate) fn begin_step(
        &mut self,
        input: &StepInput,
        heads_per_kv: usize,
        device: &Device,
    ) -> Result<Vec<Tensor<4, Bool>>, ModelError> {
        let masks = self
            .groups
            .iter_mut()
            .map(|g| g.begin_step(input, heads_per_kv, device))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.layer_slot.iter().map(|&(g, _)| masks[g].clone()).collect())
    }

    /// Keys and values to attend over for `layer` after storing the step's new ones.
    pub(crate) fn attend_and_store(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let (group, index) = self.layer_slot[layer];
        self.groups[group].attend_and_store(index, k, v)
    }

    /// Ends the step begun by `begin_step`: every row is `seq` tokens longer.
    pub(crate) fn commit(&mut self, input: &StepInput) {
        self.groups.iter_mut().for_each(|g| g.commit(input));
    }

    /// Keeps only the rows `keep` (ascending, distinct indices into the current batch), in that
    /// order; every other row's keys and values are dropped.
    ///
    /// Why: in a generation batch, rows that have finished would otherwise be carried through
    /// every later step until the longest row ends; dropping them makes those steps cheaper.
    /// What a kept row attends to is unchanged (its own slots, positions and padding).
    pub fn retain_rows(&mut self, keep: &[usize]) -> Result<(), ModelError> {
        self.groups.iter_mut().try_for_each(|g| g.retain_rows(keep))
    }

    /// A new cache of the rows `rows` of this one, in that order; a row may be taken several
    /// times (to continue one pre-filled prompt in several rows).
    pub fn select_rows(&self, rows: &[usize]) -> Result<KvCache, ModelError> {
        self.map_groups(|g| g.select_rows(rows))
    }

    /// A one-row cache holding the first `len` tokens of `row`: a prefix to continue from.
    /// The row must not have wrapped a rolling buffer (its first tokens would be gone).
    pub fn prefix(&self, row: usize, len: usize) -> Result<KvCache, ModelError> {
        self.map_groups(|g| g.prefix(row, len))
    }

    /// Empties row `row`, as in a new cache: a generation row whose request has ended stops
    /// growing and widening every step's attention while it waits for the next request.
    pub fn clear_row(&mut self, row: usize) -> Result<(), ModelError> {
        self.groups.iter_mut().try_for_each(|g| g.clear_row(row))
    }

    /// Replaces row `row` with row `src_row` of `src` (a cache of the same model and attention):
    /// the row's keys, values, positions and length become the source row's, and the other rows
    /// are untouched. How a pre-filled sequence joins a batch that is decoding.
    pub fn put_row(&mut self, row: usize, src: &KvCache, src_row: usize) -> Result<(), ModelError> {
        if src.layer_slot != self.layer_slot {
            return Err(ModelError::Invalid(
                "the source cache belongs to another model or attention variant".into(),
            ));
        }
        self.groups
            .iter_mut()
            .zip(&src.groups)
            .try_for_each(|(g, s)| g.put_row(row, s, src_row))
    }

    fn map_groups(&self, f: impl Fn(&WindowCache) -> Result<WindowCache, ModelError>) -> Result<KvCache, ModelError> {
        Ok(KvCache {
            groups: self.groups.iter().map(f).collect::<Result<_, _>>()?,
            layer_slot: self.layer_slot.clone(),
        })
    }
}

/// Bytes one layer's keys and values take after `tokens` tokens: at most `window` slots per
/// sequence when there is a window.
pub fn layer_kv_bytes(
    kv_heads: usize,
    head_dim: usize,
    batch: usize,
    tokens: usize,
    window: Option<usize>,
    bytes_per_value: usize,
) -> usize {
    let slots = window.map_or(tokens, |w| tokens.min(w));
    2 * batch * kv_heads * slots * head_dim * bytes_per_value
}

/// Bytes a cache holds after `tokens` tokens when every layer has the same `window` (what
/// `KvCache::bytes` reports; per-layer windows: sum `layer_kv_bytes` over the layers).
pub fn kv_cache_bytes(
    num_layers: usize,
    kv_heads: usize,
    head_dim: usize,
    batch: usize,
    tokens: usize,
    window: Option<usize>,
    bytes_per_value: usize,
) -> usize {
    num_layers * layer_kv_bytes(kv_heads, head_dim, batch, tokens, window, bytes_per_value)
}
