//! The key/value cache of the layers that share one window: a growing cache for full attention,
//! and for a sliding window W a rolling buffer of W slots (a row's stream index t lives in slot t mod W), so memory stays
//! bounded by W however long the sequence grows (Mistral 7B paper, §2 "Rolling Buffer Cache").
//!
//! Keys are cached after rotation, at their absolute positions, so a wrapped buffer still holds
//! correctly rotated keys. Attention does not care about the order of keys, only about which
//! ones a query may see, so the buffer is never unrolled: a device tensor holds the position of
//! every slot (or `EMPTY`), and each step's mask is computed from it on the device, so no host
//! work grows with the length of the rows.
//!
//! Rows have their own lengths: a single-token step writes each row's token at that row's next
//! slot, so rows of different lengths decode together and a row can be replaced by another
//! sequence (`put_row`) while the others go on (continuous batching). A multi-token step (a
//! pre-fill chunk) needs every row at the same length.

use burn::tensor::{Bool, Device, IndexingUpdateOp, Int, Tensor, TensorData};

use super::mask::{blocked_mask, past_blocked};
use crate::error::ModelError;
use crate::input::StepInput;

/// The position recorded for an empty slot or padding: above any real position, so no query
/// ever sees it.
pub(crate) const EMPTY: i64 = i32::MAX as i64;

/// Cloning is cheap (tensors are shared until written) and the copies are independent.
#[derive(Clone)]
pub(crate) struct WindowCache {
    /// Some(W): rolling buffer of W slots. None: grows without bound.
    capacity: Option<usize>,
    /// Per layer: keys and values, [batch, kv_heads, room, head_dim] (room ≥ the slots in use).
    layers: Vec<Option<(Tensor<4>, Tensor<4>)>>,
    /// Per row: tokens fed so far (padding included); its next token goes to slot len (mod W).
    lens: Vec<usize>,
    /// [batch, room]: the position held by each slot, `EMPTY` for an empty slot or padding.
    slot_pos: Option<Tensor<2, Int>>,
    /// Slots every layer's buffers hold (spare room beyond the slots in use included).
    room: usize,
    /// Slots to make room for at once when growing (`with_room_for`); 0: grow by doubling.
    planned: usize,
    /// How the step in progress writes its keys (set by `begin_step`, cleared by `commit`).
    step: Option<StepWrite>,
}

/// Where the keys and values of the step in progress go.
#[derive(Clone)]
enum StepWrite {
    /// Every row at the same length: `new` tokens appended at slot `start` (no wrap).
    Append { start: usize, new: usize },
    /// Every row at the same length, and the rolling buffer wraps: attend over the old slots
    /// followed by the new tokens, then write the new tokens into the ring.
    Wrap,
    /// One token per row at the row's own slot: flat indices into [batch * kv_heads * room]
    /// for each (row, kv head), and the slots attended to.
    PerRow { slots: Vec<usize>, width: usize },
}

impl WindowCache {
    pub fn new(num_layers: usize, batch: usize, window: Option<usize>) -> Self {
        Self {
            capacity: window,
            layers: (0..num_layers).map(|_| None).collect(),
            lens: vec![0; batch],
            slot_pos: None,
            room: 0,
            planned: 0,
            step: None,
        }
    }

    /// Rows will hold up to `tokens` tokens: buffers are made that size (at most W slots) the
    /// first time they are made or grown, rather than doubled, so no slot is spare and no buffer
    /// is copied to grow. Doubling resumes past it.
    pub fn with_room_for(mut self, tokens: usize) -> Self {
        self.planned = self.slots_for(tokens);
        self
    }

    pub fn batch(&self) -> usize {
        self.lens.len()
    }

    /// Tokens fed so far to the longest row (every row's count when the rows were fed together).
    pub fn len(&self) -> usize {
        self.lens.iter().copied().max().unwrap_or(0)
    }

    /// Tokens fed so far to `row` (padding included).
    pub fn row_len(&self, row: usize) -> usize {
        self.lens[row]
    }

    /// Slots in use per layer (≤ W for a rolling buffer).
    pub fn slots(&self) -> usize {
        self.slots_for(self.len())
    }

    fn slots_for(&self, len: usize) -> usize {
        self.capacity.map_or(len, |cap| len.min(cap))
    }

    /// Bytes of the key and value slots in use, all layers.
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

    /// Bytes of the key and value buffers, spare room included: what the cache takes in memory.
    pub fn allocated_bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| k.shape().num_elements() * k.dtype().size() + v.shape().num_elements() * v.dtype().size())
            .sum()
    }

    /// Records where `input`'s tokens go and returns the blocked-key mask for its queries,
    /// [batch, 1, groups * seq, keys] (see `blocked_mask`). Every layer then calls
    /// `attend_and_store`, and `commit` ends the step.
    pub(crate) fn begin_step(
        &mut self,
        input: &StepInput,
        groups: usize,
        device: &Device,
    ) -> Result<Tensor<4, Bool>, ModelError> {
        let window = self.capacity;
        let (b, s) = (input.batch, input.seq);
        let positions = valid_positions(input);
        if s == 1 {
            return Ok(self.begin_per_row(&positions, window, groups, device));
        }
        let len = self.lens[0];
        if self.lens.iter().any(|&l| l != len) {
            return Err(ModelError::Invalid(format!(
                "a {s}-token step needs every cached row at the same length (rows hold {:?}): pre-fill rows apart and `put_row` them",
                self.lens
            )));
        }
        let used = self.slots();
        let past = self.slot_pos.clone().filter(|_| used > 0).map(|p| p.narrow(1, 0, used));
        let mask = blocked_mask(past, input, window, groups, device);
        let fresh = Tensor::<2, Int>::from_data(TensorData::new(positions, [b, s]), device);
        match self.capacity.filter(|&cap| len + s > cap) {
            Some(cap) => {
                let ring = self.ring_positions(b, cap, device);
                self.slot_pos = Some(write_ring_positions(ring, fresh, len, cap));
                self.step = Some(StepWrite::Wrap);
            }
            None => {
                self.ensure_room(used + s, b, device);
                let slot_pos = self.slot_pos.take().expect("room was made");
                self.slot_pos = Some(slot_pos.slice_assign([0..b, used..used + s], fresh));
                self.step = Some(StepWrite::Append { start: used, new: s });
            }
        }
        Ok(mask)
    }

    /// A single-token step: each row's token goes to its own next slot, written before
    /// attending, so the mask covers the buffer's slots only.
    fn begin_per_row(
        &mut self,
        positions: &[i64],
        window: Option<usize>,
        groups: usize,
        device: &Device,
    ) -> Tensor<4, Bool> {
        let b = self.batch();
        let slots: Vec<usize> = self
            .lens
            .iter()
            .map(|&len| self.capacity.map_or(len, |cap| len % cap))
            .collect();
        let width = self.lens.iter().map(|&len| self.slots_for(len + 1)).max().unwrap_or(0);
        self.ensure_room(width, b, device);
        let room = self.room;
        let flat: Vec<i64> = slots
            .iter()
            .enumerate()
            .map(|(r, &slot)| (r * room + slot) as i64)
            .collect();
        let flat = Tensor::<1, Int>::from_data(TensorData::new(flat, [b]), device);
        let fresh = Tensor::<2, Int>::from_data(TensorData::new(positions.to_vec(), [b, 1]), device);
        let slot_pos = self.slot_pos.take().expect("room was made").reshape([b * room, 1]);
        let slot_pos = slot_pos
            .select_assign(0, flat, fresh, IndexingUpdateOp::Assign)
            .reshape([b, room]);
        let past = slot_pos.clone().narrow(1, 0, width);
        self.slot_pos = Some(slot_pos);
        self.step = Some(StepWrite::PerRow { slots, width });
        let queries = Tensor::<2, Int>::from_data(TensorData::new(positions.to_vec(), [b, 1]), device);
        past_blocked(past, queries, window, device)
            .unsqueeze_dim::<4>(1)
            .repeat_dim(2, groups)
    }

    /// Keys and values to attend over for `layer`, [batch, kv_heads, keys, head_dim], after
    /// storing the step's new keys and values `k`, `v` ([batch, kv_heads, seq, head_dim]).
    ///
    /// Until a rolling buffer wraps, keys are written in place into a buffer with spare room
    /// (made the planned size, or grown by doubling), so a decoding step writes one slot instead
    /// of copying the cache.
    pub(crate) fn attend_and_store(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let step = self.step.clone().expect("begin_step comes before attend_and_store");
        let [b, h, new, d] = k.dims();
        let old = self.layers[layer].take();
        if let StepWrite::Wrap = step {
            let cap = self.capacity.expect("only a rolling buffer wraps");
            let used = self.slots();
            let (k_all, v_all) = match old {
                Some((k_old, v_old)) => (
                    Tensor::cat(vec![k_old.narrow(2, 0, used), k.clone()], 2),
                    Tensor::cat(vec![v_old.narrow(2, 0, used), v.clone()], 2),
                ),
                None => (k.clone(), v.clone()),
            };
            let start = self.lens[0];
            let ring = |all: &Tensor<4>, fresh: Tensor<4>| {
                let before = match used {
                    0 => Tensor::zeros([b, h, cap, d], (&fresh.device(), fresh.dtype())),
                    _ => grow_slots(all.clone().narrow(2, 0, used), cap),
                };
                write_ring(before, fresh, start, cap)
            };
            self.layers[layer] = Some((ring(&k_all, k), ring(&v_all, v)));
            return (k_all, v_all);
        }
        let room = self.room;
        let grow = |old: Option<Tensor<4>>| match old {
            Some(buf) if buf.dims()[2] == room => buf,
            old => {
                let buf = Tensor::zeros([b, h, room, d], (&k.device(), k.dtype()));
                match old {
                    Some(old) => {
                        let kept = old.dims()[2];
                        buf.slice_assign([0..b, 0..h, 0..kept, 0..d], old)
                    }
                    None => buf,
                }
            }
        };
        let (k_old, v_old) = old.unzip();
        let (k_buf, v_buf) = (grow(k_old), grow(v_old));
        let (k_buf, v_buf, width) = match step {
            StepWrite::Append { start, new: n } => (
                k_buf.slice_assign([0..b, 0..h, start..start + n, 0..d], k),
                v_buf.slice_assign([0..b, 0..h, start..start + n, 0..d], v),
                start + n,
            ),
            StepWrite::PerRow { slots, width } => {
                let flat: Vec<i64> = slots
                    .iter()
                    .enumerate()
                    .flat_map(|(r, &slot)| (0..h).map(move |head| (((r * h + head) * room) + slot) as i64))
                    .collect();
                let flat = Tensor::<1, Int>::from_data(TensorData::new(flat, [b * h]), &k.device());
                let write = |buf: Tensor<4>, fresh: Tensor<4>| {
                    buf.reshape([b * h * room, d])
                        .select_assign(
                            0,
                            flat.clone(),
                            fresh.reshape([b * h * new, d]),
                            IndexingUpdateOp::Assign,
                        )
                        .reshape([b, h, room, d])
                };
                (write(k_buf, k), write(v_buf, v), width)
            }
            StepWrite::Wrap => unreachable!("handled above"),
        };
        let attend = (k_buf.clone().narrow(2, 0, width), v_buf.clone().narrow(2, 0, width));
        self.layers[layer] = Some((k_buf, v_buf));
        attend
    }

    /// Ends the step begun by `begin_step`: every row is `seq` tokens longer.
    pub(crate) fn commit(&mut self, input: &StepInput) {
        self.lens.iter_mut().for_each(|len| *len += input.seq);
        self.step = None;
    }

    /// Grows every buffer (and the slot positions) to hold at least `needed` slots: the planned
    /// room when that is enough, else doubling; at most W for a rolling buffer.
    fn ensure_room(&mut self, needed: usize, batch: usize, device: &Device) {
        if needed <= self.room && self.slot_pos.is_some() {
            return;
        }
        let room = match needed <= self.planned {
            true => self.planned,
            false => needed.max(self.room).next_power_of_two().max(64),
        };
        let room = self.capacity.map_or(room, |cap| room.min(cap)).max(needed);
        let grown = Tensor::<2, Int>::full([batch, room], EMPTY, device);
        self.slot_pos = Some(match self.slot_pos.take() {
            Some(old) if self.room > 0 => grown.slice_assign([0..batch, 0..self.room], old),
            _ => grown,
        });
        self.room = room;
    }

    /// The slot positions as a full ring of `cap` slots (padded with `EMPTY`).
    fn ring_positions(&mut self, batch: usize, cap: usize, device: &Device) -> Tensor<2, Int> {
        let used = self.slots();
        let ring = Tensor::<2, Int>::full([batch, cap], EMPTY, device);
        self.room = cap;
        match self.slot_pos.take() {
            Some(old) if used > 0 => ring.slice_assign([0..batch, 0..used], old.narrow(1, 0, used)),
            _ => ring,
        }
    }

    /// Keeps only the rows `keep` (ascending, distinct indices into the current batch), in that
    /// order; every other row's keys and values are dropped.
    ///
    /// Why: in a generation batch, rows that have finished would otherwise be carried through
    /// every later step until the longest row ends; dropping them makes those steps cheaper.
    /// What a kept row attends to is unchanged (its own slots, positions and padding).
    pub fn retain_rows(&mut self, keep: &[usize]) -> Result<(), ModelError> {
        let ascending = keep.windows(2).all(|pair| pair[0] < pair[1]);
        if !ascending || keep.last().is_some_and(|&last| last >= self.batch()) {
            return Err(ModelError::Invalid(format!(
                "rows to keep {keep:?} must be ascending indices below the batch of {}",
                self.batch()
            )));
        }
        if keep.len() < self.batch() {
            self.select(keep);
        }
        Ok(())
    }

    /// A new cache of the rows `rows` of this one, in that order; a row may be taken several
    /// times (to continue one pre-filled prompt in several rows).
    pub fn select_rows(&self, rows: &[usize]) -> Result<WindowCache, ModelError> {
        if let Some(&bad) = rows.iter().find(|&&r| r >= self.batch()) {
            return Err(ModelError::Invalid(format!(
                "row {bad} is outside the cache's batch of {}",
                self.batch()
            )));
        }
        let mut copy = self.clone();
        copy.select(rows);
        Ok(copy)
    }

    /// A one-row cache holding the first `len` tokens of `row`: a prefix to continue from.
    /// The row must not have wrapped a rolling buffer (its first tokens would be gone).
    pub fn prefix(&self, row: usize, len: usize) -> Result<WindowCache, ModelError> {
        if row >= self.batch() || len > self.lens[row] || len == 0 {
            return Err(ModelError::Invalid(format!(
                "no {len}-token prefix of row {row} in a cache of {} rows holding {:?} tokens",
                self.batch(),
                self.lens
            )));
        }
        if self.capacity.is_some_and(|cap| self.lens[row] > cap) {
            return Err(ModelError::Invalid(format!(
                "row {row} has wrapped its rolling buffer: its first {len} tokens are gone"
            )));
        }
        let mut copy = self.select_rows(&[row])?;
        copy.layers = copy
            .layers
            .into_iter()
            .map(|kv| kv.map(|(k, v)| (k.narrow(2, 0, len), v.narrow(2, 0, len))))
            .collect();
        copy.slot_pos = copy.slot_pos.map(|p| p.narrow(1, 0, len));
        copy.room = len;
        copy.planned = 0;
        copy.lens = vec![len];
        Ok(copy)
    }

    /// Replaces row `row` with row `src_row` of `src` (a cache of the same model): the row's
    /// keys, values, positions and length become the source row's, and the other rows are
    /// untouched. How a pre-filled sequence joins a batch that is decoding.
    pub fn put_row(&mut self, row: usize, src: &WindowCache, src_row: usize) -> Result<(), ModelError> {
        let src_layers: Vec<&(Tensor<4>, Tensor<4>)> = src.layers.iter().flatten().collect();
        let (Some(src_pos), true) = (&src.slot_pos, src_layers.len() == self.layers.len()) else {
            return Err(ModelError::Invalid(
                "the source cache holds no tokens of this model".into(),
            ));
        };
        if row >= self.batch() || src_row >= src.batch() || src.capacity != self.capacity || src.lens[src_row] == 0 {
            return Err(ModelError::Invalid(format!(
                "cannot put row {src_row} of a {}-row cache (empty, or with another window) into row {row} of a {}-row cache",
                src.batch(),
                self.batch()
            )));
        }
        let (b, width) = (self.batch(), src.slots_for(src.lens[src_row]));
        let device = src_pos.device();
        self.ensure_room(width, b, &device);
        let room = self.room;
        let row_pos = Tensor::<2, Int>::full([1, room], EMPTY, &device).slice_assign(
            [0..1, 0..width],
            src_pos.clone().narrow(0, src_row, 1).narrow(1, 0, width),
        );
        let slot_pos = self.slot_pos.take().expect("room was made");
        self.slot_pos = Some(slot_pos.slice_assign([row..row + 1, 0..room], row_pos));
        for (layer, (k_src, v_src)) in self.layers.iter_mut().zip(src_layers) {
            let [_, h, _, d] = k_src.dims();
            let buffers = layer.take().unwrap_or_else(|| {
                (
                    Tensor::zeros([b, h, room, d], (&device, k_src.dtype())),
                    Tensor::zeros([b, h, room, d], (&device, v_src.dtype())),
                )
            });
            let put = |buf: Tensor<4>, src: &Tensor<4>| {
                let buf = grow_slots(buf, room);
                let part = src.clone().narrow(0, src_row, 1).narrow(2, 0, width);
                buf.slice_assign([row..row + 1, 0..h, 0..width, 0..d], part)
            };
            *layer = Some((put(buffers.0, k_src), put(buffers.1, v_src)));
        }
        self.lens[row] = src.lens[src_row];
        Ok(())
    }

    /// The rows `rows` copied, without room spare beyond the slots in use or planned (a prefix
    /// grown by doubling would otherwise hand its spare slots to every copy).
    fn select(&mut self, rows: &[usize]) {
        if let Some(device) = self.slot_pos.as_ref().map(|p| p.device()) {
            let room = self.room.min(self.slots().max(self.planned));
            let indices: Vec<i64> = rows.iter().map(|&row| row as i64).collect();
            let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [rows.len()]), &device);
            for (k, v) in self.layers.iter_mut().flatten() {
                *k = k.clone().narrow(2, 0, room).select(0, indices.clone());
                *v = v.clone().narrow(2, 0, room).select(0, indices.clone());
            }
            self.slot_pos = self.slot_pos.take().map(|p| p.narrow(1, 0, room).select(0, indices));
            self.room = room;
        }
        self.lens = rows.iter().map(|&row| self.lens[row]).collect();
    }

    /// Empties row `row`: no slot of it is visible any more and its length is 0, as in a new
    /// cache (its old keys stay in the buffers until overwritten).
    pub fn clear_row(&mut self, row: usize) -> Result<(), ModelError> {
        if row >= self.batch() {
            return Err(ModelError::Invalid(format!(
                "row {row} is outside the cache's batch of {}",
                self.batch()
            )));
        }
        if let Some(slot_pos) = self.slot_pos.take() {
            let empty = Tensor::<2, Int>::full([1, self.room], EMPTY, &slot_pos.device());
            self.slot_pos = Some(slot_pos.slice_assign([row..row + 1, 0..self.room], empty));
        }
        self.lens[row] = 0;
        Ok(())
    }
}

/// Each input token's position, or `EMPTY` for padding.
pub(crate) fn valid_positions(input: &StepInput) -> Vec<i64> {
    input
        .positions
        .iter()
        .zip(&input.valid)
        .map(|(&pos, &valid)| if valid { pos } else { EMPTY })
        .collect()
}

/// `buf` ([batch, heads, slots, dim]) with room for `room` slots, the new ones zero.
fn grow_slots(buf: Tensor<4>, room: usize) -> Tensor<4> {
    let [b, h, slots, d] = buf.dims();
    if slots >= room {
        return buf;
    }
    Tensor::zeros([b, h, room, d], (&buf.device(), buf.dtype())).slice_assign([0..b, 0..h, 0..slots, 0..d], buf)
}

/// Writes the last min(new, cap) of `fresh`'s tokens ([batch, heads, new, dim]) at slots
/// t mod cap, the first at stream index `start`.
fn write_ring(mut ring: Tensor<4>, fresh: Tensor<4>, start: usize, cap: usize) -> Tensor<4> {
    let [b, h, new, d] = fresh.dims();
    for (src, dst, len) in ring_runs(start, new, cap) {
        ring = ring.slice_assign([0..b, 0..h, dst..dst + len, 0..d], fresh.clone().narrow(2, src, len));
    }
    ring
}

/// `write_ring` for the slot positions ([batch, new] into [batch, cap]).
fn write_ring_positions(mut ring: Tensor<2, Int>, fresh: Tensor<2, Int>, start: usize, cap: usize) -> Tensor<2, Int> {
    let [b, new] = fresh.dims();
    for (src, dst, len) in ring_runs(start, new, cap) {
        ring = ring.slice_assign([0..b, dst..dst + len], fresh.clone().narrow(1, src, len));
    }
    ring
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
