"""MiniLM's runtimes side by side: ``python -m rag.bench.embedders [--paragraphs 1000]``.

For each of torch (bfloat16 where native, as served), torch float32, ONNX float32 and ONNX int8:
forward-pass throughput over the synthetic corpus's paragraphs (through ``Embedder.texts``, so
sorted by length and batched as ingest does), single-question latency p50/p95, and the cosine of
its vectors to torch float32's (min and mean over the same paragraphs). Prints a markdown table
and the load average before and after; nothing is written to the data folder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from rag.bench.corpus import questions, write_corpus
from rag.config import Settings
from rag.embed import Embedder, _local_model


def _paragraphs(n: int) -> tuple[list[str], list[str]]:
    with tempfile.TemporaryDirectory(prefix="rag-embench-") as tmp:
        corpus = write_corpus(Path(tmp), n)
        texts: list[str] = []
        for f in sorted(Path(tmp).glob("*.txt")):
            texts.extend(p for p in f.read_text("utf-8").split("\n\n")[1:] if p.strip())
    return texts[:n], questions(corpus.facts, 200)


def _model(runtime: str, bf16: bool | None = None) -> Embedder:
    settings = Settings(embed={"runtime": runtime})
    if runtime == "torch" and bf16 is not None:
        from rag.embed import minilm_path
        from rag.minilm import MiniLMEmbedding

        model = MiniLMEmbedding(folder=str(minilm_path()), bf16=bf16)
    else:
        model = _local_model(settings)
    return Embedder(model, "local", runtime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--paragraphs", type=int, default=1000)
    ap.add_argument("--runtimes", default="torch-f32,torch,onnx,onnx-int8")
    args = ap.parse_args()
    texts, qs = _paragraphs(args.paragraphs)
    print(f"load average at start: {os.getloadavg()}; {len(texts)} paragraphs")
    ref: np.ndarray | None = None
    rows = []
    for name in args.runtimes.split(","):
        t0 = time.perf_counter()
        emb = _model("torch", bf16=False) if name == "torch-f32" else _model(name)
        load = time.perf_counter() - t0
        emb.texts(texts[:128])  # warm-up: first shapes pay one-off set-up
        t0 = time.perf_counter()
        vecs = np.array(emb.texts(texts))
        rate = len(texts) / (time.perf_counter() - t0)
        for q in qs[100:120]:  # warm-up on other questions
            emb.model.get_query_embedding(q)
        lat = []
        for q in qs[:100]:
            t0 = time.perf_counter()
            emb.model.get_query_embedding(q)
            lat.append((time.perf_counter() - t0) * 1000)
        lat.sort()
        if ref is None:
            ref = vecs
        cos = (vecs * ref).sum(1)
        rows.append(
            f"| {name} | {load:.1f} | {rate:.0f} | {statistics.median(lat):.1f} | "
            f"{lat[94]:.1f} | {cos.min():.5f} | {cos.mean():.5f} |"
        )
        print(rows[-1], flush=True)
    print(f"load average at end: {os.getloadavg()}")
    print(
        "| runtime | load (s) | paragraphs/s | query p50 (ms) | query p95 (ms) | cos min "
        "| cos mean |"
    )
    print("|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
