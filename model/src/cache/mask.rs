//! Which keys each query may see, as a mask over the cached slots and the step's new tokens:
//! causal, real tokens only, within the window where there is one, and within a query's own
//! segment when a row packs several continuations.

use burn::tensor::{Bool, Device, Int, Tensor, TensorData};

use crate::input::{StepInput, segment_sees};

/// [batch, queries, slots]: whether each query (position `queries` [batch, queries]) may not
/// see each cached slot (position `past` [batch, slots]): a slot is blocked when it is empty or
/// later than the query, or with a window W when it is W or more positions behind.
pub(crate) fn past_blocked(
    past: Tensor<2, Int>,
    queries: Tensor<2, Int>,
    window: Option<usize>,
    device: &Device,
) -> Tensor<3, Bool> {
    let ([b, slots], [_, q]) = (past.dims(), queries.dims());
    let past = past.unsqueeze_dim::<3>(1).expand([b, q, slots]);
    let queries = queries.unsqueeze_dim::<3>(2).expand([b, q, slots]);
    let later = past.clone().greater(queries.clone());
    match window {
        Some(w) => {
            let edge = queries - Tensor::<3, Int>::full([b, q, slots], w as i64, device);
            later.bool_or(past.lower_equal(edge))
        }
        None => later,
    }
}

/// The blocked-key mask for `input`'s queries over the cached slots `past` ([batch, slots]
/// positions, or None) followed by the new keys, shaped [batch, 1, groups * seq, slots + seq]
/// (query rows repeated once per head in a group). Query i sees key j iff j is a real token,
/// pos_j ≤ pos_i, with a window W pos_i − pos_j < W, and j is in i's packed sequence, in its part
/// 0 or in i's own part (`StepInput::segments`; cached keys are seen by every sequence).
pub(crate) fn blocked_mask(
    past: Option<Tensor<2, Int>>,
    input: &StepInput,
    window: Option<usize>,
    groups: usize,
    device: &Device,
) -> Tensor<4, Bool> {
    let (b, s) = (input.batch, input.seq);
    let mut new = Vec::with_capacity(b * s * s);
    for row in 0..b {
        for i in 0..s {
            let qpos = input.positions[row * s + i];
            let qseg = input.segments[row * s + i];
            for j in 0..s {
                let (kpos, kseg) = (input.positions[row * s + j], input.segments[row * s + j]);
                let visible = input.valid[row * s + j]
                    && segment_sees(qseg, kseg)
                    && kpos <= qpos
                    && window.is_none_or(|w| qpos - kpos < w as i64);
                new.push(!visible);
            }
        }
    }
    let new = Tensor::<3, Bool>::from_data(TensorData::new(new, [b, s, s]), device);
    let mask = match past.filter(|p| p.dims()[1] > 0) {
        Some(past) => {
            let queries = Tensor::<2, Int>::from_data(TensorData::new(input.positions.clone(), [b, s]), device);
            Tensor::cat(vec![past_blocked(past, queries, window, device), new], 2)
        }
        None => new,
    };
    mask.unsqueeze_dim::<4>(1).repeat_dim(2, groups)
}
