//! What one forward call is fed: a rectangular batch of token ids with explicit positions and
//! a validity flag per slot (false on padding).

use crate::error::ModelError;

#[derive(Clone, Debug, PartialEq)]
pub struct StepInput {
    pub batch: usize,
    pub seq: usize,
    /// Row-major [batch, seq].
    pub ids: Vec<u32>,
    /// Row-major [batch, seq]: the rotary position of each token.
    pub positions: Vec<i64>,
    /// Row-major [batch, seq]: false where the slot is padding (never attended to).
    pub valid: Vec<bool>,
    /// Row-major [batch, seq]: packing segments, [`StepInput::segment`]`(sequence, part)`. A
    /// token sees only tokens of its own sequence, and of those only part 0 (the sequence's
    /// context) and its own part, so one row can hold a context followed by several
    /// continuations, or several such sequences, each scored as if it were alone. Cached keys
    /// are seen by every sequence (a prefix they all continue). All 0 by default.
    pub segments: Vec<u32>,
}

/// Segment ids per packed sequence (see `StepInput::segments`).
const PARTS_PER_SEQUENCE: u32 = 1 << 16;

/// Whether a token of segment `query` may see a token of segment `key` of the same row (causality
/// and the window aside).
pub(crate) fn segment_sees(query: u32, key: u32) -> bool {
    let sequence = |segment: u32| segment / PARTS_PER_SEQUENCE;
    sequence(query) == sequence(key) && (key % PARTS_PER_SEQUENCE == 0 || key == query)
}

impl StepInput {
    /// The segment id of `part` of packed `sequence` (part 0: its context); None past the
    /// 65,536 parts a sequence may have.
    pub fn segment(sequence: u32, part: u32) -> Option<u32> {
        (part < PARTS_PER_SEQUENCE).then_some(sequence.checked_mul(PARTS_PER_SEQUENCE)?.checked_add(part)?)
    }

    /// One unpadded sequence whose first token sits at `start`.
    pub fn single(ids: &[u32], start: usize) -> Self {
        Self {
            batch: 1,
            seq: ids.len(),
            ids: ids.to_vec(),
            positions: (start..start + ids.len()).map(|p| p as i64).collect(),
            valid: vec![true; ids.len()],
            segments: vec![0; ids.len()],
        }
    }

    /// Rows padded on the right with `pad`; positions 0.. from each row's start.
    pub fn right_padded(rows: &[Vec<u32>], pad: u32) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut input = Self::empty(rows.len(), seq);
        for row in rows {
            for t in 0..seq {
                input.ids.push(row.get(t).copied().unwrap_or(pad));
                input.positions.push(t as i64);
                input.valid.push(t < row.len());
                input.segments.push(0);
            }
        }
        input
    }

    /// Rows padded on the left with `pad`; positions count real tokens only, as
    /// `generate()` does: clamp(cumsum(mask) - 1, 0).
    pub fn left_padded(rows: &[Vec<u32>], pad: u32) -> Self {
        let seq = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut input = Self::empty(rows.len(), seq);
        for row in rows {
            let pad_len = seq - row.len();
            for t in 0..seq {
                let real = t >= pad_len;
                input.ids.push(if real { row[t - pad_len] } else { pad });
                input.positions.push(t.saturating_sub(pad_len) as i64);
                input.valid.push(real);
                input.segments.push(0);
            }
        }
        input
    }

    /// A general batch from explicit rows of (id, position, valid).
    pub fn from_parts(
        batch: usize,
        seq: usize,
        ids: Vec<u32>,
        positions: Vec<i64>,
        valid: Vec<bool>,
    ) -> Result<Self, ModelError> {
        let n = batch * seq;
        if ids.len() != n || positions.len() != n || valid.len() != n {
            return Err(ModelError::Invalid(format!(
                "batch of {batch}×{seq} needs {n} ids, positions and flags; got {}, {}, {}",
                ids.len(),
                positions.len(),
                valid.len()
            )));
        }
        Ok(Self {
            batch,
            seq,
            ids,
            positions,
            valid,
            segments: vec![0; n],
        })
    }

    /// Sets the packing segments (see `segments`).
    pub fn with_segments(mut self, segments: Vec<u32>) -> Result<Self, ModelError> {
        if segments.len() != self.batch * self.seq {
            return Err(ModelError::Invalid(format!(
                "{} segment ids for a batch of {}×{}",
                segments.len(),
                self.batch,
                self.seq
            )));
        }
        self.segments = segments;
        Ok(self)
    }

    /// Columns `start..start + len` of every row: one chunk of a chunked pre-fill.
    pub fn columns(&self, start: usize, len: usize) -> Self {
        let take = |row: usize| row * self.seq + start..row * self.seq + start + len;
        let mut chunk = Self::empty(self.batch, len);
        for row in 0..self.batch {
            chunk.ids.extend_from_slice(&self.ids[take(row)]);
            chunk.positions.extend_from_slice(&self.positions[take(row)]);
            chunk.valid.extend_from_slice(&self.valid[take(row)]);
            chunk.segments.extend_from_slice(&self.segments[take(row)]);
        }
        chunk
    }

    fn empty(batch: usize, seq: usize) -> Self {
        let n = batch * seq;
        Self {
            batch,
            seq,
            ids: Vec::with_capacity(n),
            positions: Vec::with_capacity(n),
            valid: Vec::with_capacity(n),
            segments: Vec::with_capacity(n),
        }
    }
}
