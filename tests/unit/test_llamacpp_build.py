"""The llama.cpp build: flags from what the CPU reports; a decode check that survives crashes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rag.llamacpp_build import cmake_args, cpu_flags, main, smoke_test

HASWELL = "processor\t: 0\nflags\t\t: fpu sse4_2 avx avx2 bmi2 fma f16c\n"
SAPPHIRE_RAPIDS = (
    "flags\t\t: sse4_2 avx avx2 bmi2 fma f16c avx512f avx512vbmi avx512_vnni avx512_bf16 "
    "amx_tile amx_int8 amx_bf16\n"
)


def test_flags_are_read_from_the_first_cpu() -> None:
    assert cpu_flags(HASWELL) == {"fpu", "sse4_2", "avx", "avx2", "bmi2", "fma", "f16c"}
    assert cpu_flags("no flags line") == set()


def test_a_cpu_without_avx512_gets_no_avx512_code() -> None:
    args = cmake_args("x86_64", cpu_flags(HASWELL)).split()
    assert "-DGGML_NATIVE=OFF" in args
    assert "-DGGML_AVX2=ON" in args and "-DGGML_FMA=ON" in args
    assert "-DGGML_AVX512=OFF" in args and "-DGGML_AVX512_VNNI=OFF" in args


def test_amx_is_never_compiled_even_where_the_cpu_lists_it() -> None:
    args = cmake_args("x86_64", cpu_flags(SAPPHIRE_RAPIDS)).split()
    assert "-DGGML_AVX512=ON" in args and "-DGGML_AVX512_BF16=ON" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    assert not any("AMX" in a and a.endswith("=ON") for a in args)


def test_other_architectures_keep_llama_cpps_own_defaults() -> None:
    assert cmake_args("aarch64", {"asimd", "sve"}) == ""


CRASH_WITH_SIGILL = "import os, signal; os.kill(os.getpid(), signal.SIGILL)"


def test_a_build_that_dies_with_sigill_fails_the_smoke_test_and_names_the_signal() -> None:
    result = smoke_test(Path("any.gguf"), child_code=CRASH_WITH_SIGILL)
    assert not result.ok
    assert "SIGILL" in result.detail


def test_a_child_that_errors_or_prints_nothing_fails_too() -> None:
    assert "exited 3" in smoke_test(Path("m.gguf"), child_code="raise SystemExit(3)").detail
    assert not smoke_test(Path("m.gguf"), child_code="pass").ok


def test_the_smoke_command_exits_non_zero_with_how_to_rebuild(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF but not really a model")
    assert main(["smoke", str(broken)]) == 1
    err = capsys.readouterr().err
    assert "smoke test FAILED" in err and "--force-reinstall" in err


@pytest.mark.slow
def test_the_installed_build_decodes_the_bundled_model() -> None:
    from rag.llm import default_gguf_path

    result = smoke_test(default_gguf_path(), python=sys.executable)
    assert result.ok, result.detail
    assert result.detail.startswith("decoded:")
