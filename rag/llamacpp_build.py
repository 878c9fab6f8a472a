"""Build llama.cpp for the CPU it is built on, and prove the build decodes before use.

A default ``pip install llama-cpp-python`` compiles llama.cpp with ``-march=native``. On Xeons that
list AMX, that turns on llama.cpp's AMX matmul path, which dies with SIGILL (``tilezero``) at the
first decode on machines of this project's kind, although the CPU advertises the instructions.
So the install builds with ``GGML_NATIVE=OFF`` and names each instruction set the CPU reports,
AMX always off: the build runs where it was built, and a CPU without AVX-512 gets no AVX-512 code.

Two commands, both stdlib-only at import time so they run before the project is installed:

- ``python -P rag/llamacpp_build.py cmake-args``: the ``CMAKE_ARGS`` for this CPU (a user's own
  ``CMAKE_ARGS`` wins: the Makefile passes it through untouched);
- ``python -m rag.llamacpp_build smoke [GGUF]``: loads the model and decodes a few tokens in a
  *subprocess*, so a build that crashes the process (SIGILL, SIGSEGV) is reported, not fatal.
"""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# CPU flag in /proc/cpuinfo -> ggml CMake option. Names from ggml/CMakeLists.txt (llama.cpp).
_X86_OPTIONS: tuple[tuple[str, str], ...] = (
    ("sse4_2", "GGML_SSE42"),
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("bmi2", "GGML_BMI2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
# Never compiled in: the AMX path is the one that crashes (see the module docstring).
_ALWAYS_OFF = ("GGML_AMX_TILE", "GGML_AMX_INT8", "GGML_AMX_BF16")

SMOKE_TIMEOUT = 120.0  # seconds: loading 100 MB and decoding 4 tokens takes ~1 s on 2 cores


def cpu_flags(cpuinfo: str) -> set[str]:
    """The instruction-set flags of the first CPU listed in a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


def cmake_args(machine: str, flags: set[str]) -> str:
    """``CMAKE_ARGS`` that build llama.cpp for exactly the instruction sets ``flags`` lists.

    On x86-64 the build is not native: each option is named ON or OFF from the flags, so a flag
    the CPU lacks is never compiled in and AMX never is. Elsewhere (ARM, ...) the native build is
    kept: it has no AMX path, and the CPU's own feature detection is what those targets rely on.
    """
    if machine.lower() not in {"x86_64", "amd64"}:
        return ""
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in _X86_OPTIONS]
    args += [f"-D{option}=OFF" for option in _ALWAYS_OFF]
    return " ".join(args)


def this_machine_cmake_args() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""  # not Linux: keep llama.cpp's own defaults
    return cmake_args(platform.machine(), cpu_flags(cpuinfo))


@dataclass(frozen=True)
class SmokeResult:
    ok: bool
    detail: str  # what was decoded, or what failed


# Runs in the child: the parent only reads its exit status and output.
_SMOKE_CHILD = """
import sys
import llama_cpp
from llama_cpp import Llama
print("system:", llama_cpp.llama_print_system_info().decode(errors="replace").strip())
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=2, verbose=False, seed=0)
out = llm.create_completion("The capital of France is", max_tokens=4, temperature=0.0)
text = out["choices"][0]["text"]
print("decoded:", repr(text))
"""


def smoke_test(
    model_path: Path,
    python: str = sys.executable,
    timeout: float = SMOKE_TIMEOUT,
    child_code: str = _SMOKE_CHILD,
) -> SmokeResult:
    """Load ``model_path`` with llama.cpp and decode a few tokens, in a subprocess.

    A crash of the native code (SIGILL from an instruction the CPU will not run, SIGSEGV) kills
    only the child; the result names the signal so the caller can say how to rebuild.
    """
    try:
        proc = subprocess.run(
            [python, "-c", child_code, str(model_path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
    except subprocess.TimeoutExpired:
        return SmokeResult(False, f"decoding did not finish within {timeout:.0f} s")
    if proc.returncode < 0:
        sig = signal.Signals(-proc.returncode).name
        return SmokeResult(False, f"the decoding process was killed by {sig}")
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return SmokeResult(
            False, f"the decoding process exited {proc.returncode}: {' | '.join(tail)}"
        )
    lines = proc.stdout.strip().splitlines()
    decoded = next((line for line in lines if line.startswith("decoded:")), "")
    if not decoded:
        return SmokeResult(False, "the decoding process printed no tokens")
    system = next((line for line in lines if line.startswith("system:")), "")
    return SmokeResult(True, f"{decoded} ({system})" if system else decoded)


REBUILD_HINT = (
    "Rebuild llama-cpp-python for this CPU:\n"
    '  CMAKE_ARGS="$(.venv/bin/python -P rag/llamacpp_build.py cmake-args)" .venv/bin/pip install '
    "--no-cache-dir --force-reinstall --no-deps llama-cpp-python\n"
    "(`make install` does this for you; it keeps a CMAKE_ARGS you set yourself.)"
)


def _default_model() -> Path:
    from rag.llm import default_gguf_path  # needs the project installed; the smoke test does too

    return default_gguf_path()


def main(argv: list[str]) -> int:
    command = argv[0] if argv else ""
    if command == "cmake-args":
        print(this_machine_cmake_args())
        return 0
    if command == "smoke":
        model = Path(argv[1]) if len(argv) > 1 else _default_model()
        result = smoke_test(model)
        if result.ok:
            print(f"llama.cpp smoke test passed ({model.name}): {result.detail}")
            return 0
        print(f"llama.cpp smoke test FAILED: {result.detail}.\n{REBUILD_HINT}", file=sys.stderr)
        return 1
    print("usage: llamacpp_build.py cmake-args | smoke [GGUF]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
