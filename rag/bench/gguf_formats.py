"""How fast llama.cpp reads a prompt with the bundled GGUF as shipped (Q4_1) and as re-stored.

``python -m rag.bench.gguf_formats [--threads 2]``: decodes prompts of 16, 64 and 128 tokens in
one batch (as the question likelihood does, ``rag/likelihood.py``) with each file and prints
the best of three times in seconds. ``rag/requantize.py`` says why the service uses the copy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from rag.likelihood import OwnModel, _decode
from rag.llm import default_gguf_path
from rag.requantize import FORMAT, q8_copy

_TEXT = "Passage: The castles were built across the country to hold down the population. " * 12
LENGTHS = (16, 64, 128)


def prompt_seconds(path: Path, threads: int) -> dict[int, float]:
    """Best of three one-batch decodes per prompt length."""
    with OwnModel(lambda: path, threads=threads).lease() as llama:
        tokens = llama.tokenize(_TEXT.encode())
        out = {}
        for n in LENGTHS:
            times = []
            for _ in range(3):
                started = time.perf_counter()
                _decode(llama, tokens[:n], n - 4, 4)
                times.append(time.perf_counter() - started)
            out[n] = min(times)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rag.bench.gguf_formats", description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    shipped = default_gguf_path()
    with tempfile.TemporaryDirectory() as cache:
        files = {"as shipped": shipped, FORMAT: q8_copy(shipped, Path(cache))}
        print(f"prompt tokens: {', '.join(map(str, LENGTHS))} (seconds, best of 3)")
        for label, path in files.items():
            secs = prompt_seconds(path, args.threads)
            print(f"{label:>10}: " + "  ".join(f"{secs[n]:.3f}" for n in LENGTHS))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
