//! Turning logits into log-probabilities on the host.

use burn::tensor::{Tensor, activation::log_softmax};

/// Row-wise log-softmax of [batch, seq, vocab] logits, copied to the host (f32, as lm-eval
/// takes log_softmax in the logits dtype).
pub fn log_probs(logits: Tensor<3>) -> anyhow::Result<Vec<f32>> {
    let values = log_softmax(logits, 2)
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| anyhow::anyhow!("reading log-probabilities back from the device: {e:?}"))?;
    model::ensure_finite(&values, "log-probabilities")?;
    Ok(values)
}

/// The `k` best (id, log-prob) pairs of one distribution, best first; ties keep the lower id.
pub fn top_k(row: &[f32], k: usize) -> Vec<(u32, f32)> {
    let mut ids: Vec<u32> = (0..row.len() as u32).collect();
    let k = k.min(ids.len());
    let better = |a: &u32, b: &u32| row[*b as usize].total_cmp(&row[*a as usize]).then(a.cmp(b));
    if k < ids.len() && k > 0 {
        ids.select_nth_unstable_by(k - 1, better);
    }
    ids.truncate(k);
    ids.sort_by(better);
    ids.into_iter().map(|i| (i, row[i as usize])).collect()
}

#[cfg(test)]
mod tests {
    use super::top_k;

    #[test]
    fn top_k_is_sorted_and_breaks_ties_by_id() {
        let row = [0.1, 0.5, -1.0, 0.5, 0.3];
        assert_eq!(top_k(&row, 3), vec![(1, 0.5), (3, 0.5), (4, 0.3)]);
        assert_eq!(top_k(&row, 10).len(), 5);
    }
}
