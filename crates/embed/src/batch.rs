//! Batching shared by the engines: tokenize, sort by length (so each batch pads little), size
//! each batch to its length and the memory headroom ([`BatchSizer`]), pad per batch, run
//! the engine, restore input order; and mean pooling for engines that return token states.

use crate::error::EmbedError;
use crate::memory::BatchSizer;
use tokenizers::Tokenizer;

/// Run `forward(ids, mask, n, len)` over padded batches of `texts` and return one vector per
/// text, in input order. `forward` gets row-major `n x len` ids and attention mask. Each
/// batch takes as many of the next texts (shortest first) as `sizer` allows for the length
/// of the longest of them.
pub(crate) fn embed_batched(
    tokenizer: &Tokenizer,
    texts: &[String],
    sizer: &BatchSizer,
    mut forward: impl FnMut(&[u32], &[u32], usize, usize) -> Result<Vec<Vec<f32>>, EmbedError>,
) -> Result<Vec<Vec<f32>>, EmbedError> {
    if texts.is_empty() {
        return Ok(Vec::new());
    }
    let encodings = tokenizer
        .encode_batch(texts.iter().map(String::as_str).collect::<Vec<_>>(), true)
        .map_err(|e| EmbedError::Inference(e.to_string()))?;
    let mut order: Vec<usize> = (0..texts.len()).collect();
    order.sort_by_key(|&i| encodings[i].get_ids().len());
    let mut out = vec![Vec::new(); texts.len()];
    let mut start = 0;
    while start < order.len() {
        // Lengths ascend, so the longest a full batch could hold bounds the estimate.
        let longest = encodings[order[(start + sizer.max()).min(order.len()) - 1]]
            .get_ids()
            .len();
        let take = sizer.batch_size(longest).min(order.len() - start);
        if take < sizer.max() && start + take < order.len() {
            tracing::debug!(
                batch = take,
                configured = sizer.max(),
                tokens = longest,
                "embedding batch shrunk to fit memory"
            );
        }
        let batch = &order[start..start + take];
        start += take;
        let len = batch
            .iter()
            .map(|&i| encodings[i].get_ids().len())
            .max()
            .unwrap_or(0)
            .max(1);
        let n = batch.len();
        let mut ids = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for &i in batch {
            let e = encodings[i].get_ids();
            ids.extend_from_slice(e);
            ids.extend(std::iter::repeat_n(0u32, len - e.len()));
            mask.extend(std::iter::repeat_n(1u32, e.len()));
            mask.extend(std::iter::repeat_n(0u32, len - e.len()));
        }
        let vectors = forward(&ids, &mask, n, len)?;
        if vectors.len() != n {
            return Err(EmbedError::Inference(format!("engine returned {} vectors for {n} inputs", vectors.len())));
        }
        for (&i, v) in batch.iter().zip(vectors) {
            out[i] = v;
        }
    }
    Ok(out)
}

/// Run a CPU-bound embedding on tokio's blocking pool so async callers never stall.
pub(crate) async fn off_runtime(
    texts: &[String],
    f: impl FnOnce(&[String]) -> Result<Vec<Vec<f32>>, EmbedError> + Send + 'static,
) -> Result<Vec<Vec<f32>>, aidocs_core::CoreError> {
    let texts = texts.to_vec();
    tokio::task::spawn_blocking(move || f(&texts))
        .await
        .map_err(|e| aidocs_core::CoreError::Embedding(format!("embedding task failed: {e}")))?
        .map_err(Into::into)
}

/// Mean over unmasked token states (`n x len x dims`, row-major), then L2 normalisation.
#[cfg_attr(not(feature = "onnx"), allow(dead_code))]
pub(crate) fn mean_pool_normalize(hidden: &[f32], mask: &[u32], n: usize, len: usize, dims: usize) -> Vec<Vec<f32>> {
    (0..n)
        .map(|row| {
            let mut v = vec![0f32; dims];
            let mut count = 0f32;
            for t in 0..len {
                if mask[row * len + t] == 0 {
                    continue;
                }
                count += 1.0;
                let h = &hidden[(row * len + t) * dims..(row * len + t + 1) * dims];
                v.iter_mut().zip(h).for_each(|(a, b)| *a += b);
            }
            let count = count.max(1e-9);
            v.iter_mut().for_each(|x| *x /= count);
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter_mut().for_each(|x| *x /= norm);
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn mean_pool_ignores_padding_and_normalises() {
        // 1 row, 3 tokens (last is padding), 2 dims.
        let hidden = [1.0, 0.0, 3.0, 0.0, 100.0, 100.0];
        let v = super::mean_pool_normalize(&hidden, &[1, 1, 0], 1, 3, 2);
        assert_eq!(v, vec![vec![1.0, 0.0]]);
    }
}
