"""onnxruntime-python baseline for `cargo xtask bench`: the same int8 MiniLM model, the same
sentences and the same thread count as the Rust ONNX engine, with tokenization, mean
pooling and L2 normalisation as in sentence-transformers.

usage: ort_baseline.py MODEL_DIR SENTENCES_JSON THREADS
Prints one JSON object: batch throughput (sentences/s) over 32-sentence batches and
single-query latency samples (ms).
"""
import json
import sys
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer


def main():
    model_dir, sentences_path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    spec = json.load(open(sentences_path))
    batch, query = spec["batch"], spec["query"]
    tok = Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tok.enable_truncation(256)
    tok.enable_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(f"{model_dir}/model.onnx", opts, providers=["CPUExecutionProvider"])

    def embed(texts):
        enc = tok.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        out = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[..., None].astype(np.float32)
        pooled = (out * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    for _ in range(3):
        embed(batch)
    runs, started = 0, time.perf_counter()
    while time.perf_counter() - started < 10.0 or runs < 5:
        embed(batch)
        runs += 1
    batch_s = (time.perf_counter() - started) / runs
    for _ in range(20):
        embed([query])
    single = []
    for _ in range(200):
        t = time.perf_counter()
        embed([query])
        single.append((time.perf_counter() - t) * 1e3)
    vec = embed([query])[0].tolist()
    print(json.dumps({
        "onnxruntime": ort.__version__,
        "threads": threads,
        "sentences_per_s": len(batch) / batch_s,
        "single_query_ms": single,
        "query_vector": vec,
    }))


if __name__ == "__main__":
    main()
