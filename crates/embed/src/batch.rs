//! Batching shared by the engines: tokenize, sort by length (so each batch pads little), size
//! each batch to its length and the memory headroom ([`BatchSizer`]), pad per batch, run
//! the engine, restore input order; mean pooling for engines that return token states; and
//! the thread of its own each engine's async calls run on ([`Worker`]).

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

/// How many calls may wait for an engine's thread; a caller beyond them waits to queue.
const QUEUE: usize = 256;

type Job<E> = Box<dyn FnOnce(&E) + Send>;

/// One thread of its own that runs every inference of one engine, in arrival order.
///
/// Contract: each job runs once on the thread named at spawn, never on an async worker;
/// a job that panics answers its caller with an error and the thread goes on serving; the
/// thread ends, dropping the engine, once the last handle is dropped and the queue is
/// empty. Why not tokio's blocking pool: the engine runs one inference at a time, and
/// concurrent searches each parked a blocking-pool thread on the engine's lock, which
/// hands it to no one in particular; on one thread they queue in order. Serving the Python
/// tutorial at 4 searches in flight (2 cores, no cache), this answered 182 searches/s
/// against 153 and cut p99 from 46-56 ms to 28-47 ms (docs/operators/tuning.md).
pub(crate) struct Worker<E> {
    queue: tokio::sync::mpsc::Sender<Job<E>>,
}

impl<E: Send + Sync + 'static> Worker<E> {
    /// Start the thread `name`, which owns `engine` until the last handle is dropped.
    pub(crate) fn spawn(name: &str, engine: E) -> std::io::Result<Self> {
        let (queue, mut jobs) = tokio::sync::mpsc::channel::<Job<E>>(QUEUE);
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            while let Some(job) = jobs.blocking_recv() {
                job(&engine);
            }
        })?;
        Ok(Self { queue })
    }

    /// Run `f` on the engine's thread and wait for its answer; a caller that goes away
    /// leaves the job to finish (its answer is dropped).
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&E) -> Result<T, EmbedError> + Send + 'static,
    ) -> Result<T, aidocs_core::CoreError> {
        use aidocs_core::CoreError;
        let stopped = || CoreError::Embedding("the embedding thread has stopped".into());
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job<E> = Box::new(move |engine| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(engine)));
            let _ = reply.send(r);
        });
        self.queue.send(job).await.map_err(|_| stopped())?;
        match answer.await.map_err(|_| stopped())? {
            Ok(r) => r.map_err(Into::into),
            Err(panic) => {
                let what = panic.downcast_ref::<&str>().map(|s| s.to_string()).or_else(|| panic.downcast_ref::<String>().cloned());
                Err(CoreError::Embedding(format!("embedding failed: {}", what.as_deref().unwrap_or("the engine panicked"))))
            }
        }
    }
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
    use super::Worker;
    use crate::error::EmbedError;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in engine: the thread it ran on and how many jobs it served.
    struct Probe {
        served: AtomicUsize,
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn worker_runs_every_job_on_its_own_thread_and_answers_each_caller() {
        let worker = Arc::new(Worker::spawn("embed-test", Probe { served: AtomicUsize::new(0) }).unwrap());
        let calls = (0..64u32).map(|i| {
            let w = worker.clone();
            tokio::spawn(async move {
                w.run(move |p: &Probe| {
                    p.served.fetch_add(1, Ordering::SeqCst);
                    Ok((i, std::thread::current().name().map(str::to_owned)))
                })
                .await
            })
        });
        let answers = futures_join(calls.collect()).await;
        for (i, a) in answers.into_iter().enumerate() {
            assert_eq!(a.unwrap(), (i as u32, Some("embed-test".to_owned())), "each caller gets its own answer, run on the engine's thread");
        }
        assert_eq!(worker.run(|p: &Probe| Ok(p.served.load(Ordering::SeqCst))).await.unwrap(), 64);
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_panicking_job_is_an_error_and_the_thread_serves_on() {
        let worker = Worker::spawn("embed-test", Probe { served: AtomicUsize::new(0) }).unwrap();
        let err = worker.run(|_: &Probe| -> Result<(), EmbedError> { panic!("bad tensor shape") }).await.unwrap_err();
        assert!(err.to_string().contains("bad tensor shape"), "{err}");
        let err = worker.run(|_: &Probe| -> Result<(), EmbedError> { Err(EmbedError::Inference("no".into())) }).await.unwrap_err();
        assert!(err.to_string().contains("no"), "{err}");
        assert_eq!(worker.run(|p: &Probe| Ok(p.served.fetch_add(1, Ordering::SeqCst) + 1)).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn the_thread_ends_and_drops_the_engine_with_the_last_handle() {
        let alive = Arc::new(());
        let worker = Worker::spawn("embed-test", alive.clone()).unwrap();
        worker.run(|_: &Arc<()>| Ok(())).await.unwrap();
        assert_eq!(Arc::strong_count(&alive), 2, "the thread holds the engine");
        drop(worker);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&alive) > 1 {
            assert!(std::time::Instant::now() < deadline, "the engine thread did not end");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    #[test]
    fn mean_pool_ignores_padding_and_normalises() {
        // 1 row, 3 tokens (last is padding), 2 dims.
        let hidden = [1.0, 0.0, 3.0, 0.0, 100.0, 100.0];
        let v = super::mean_pool_normalize(&hidden, &[1, 1, 0], 1, 3, 2);
        assert_eq!(v, vec![vec![1.0, 0.0]]);
    }
}
