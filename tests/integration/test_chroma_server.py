"""The same code against a real Chroma server started with `chroma run` on loopback."""

from __future__ import annotations

import pytest

from rag.errors import BackendUnavailable
from rag.wiring import build_pipeline

pytestmark = [pytest.mark.slow, pytest.mark.chroma_server]


def test_ingest_and_search_through_a_chroma_server(chroma_server, make_settings, sources) -> None:
    settings = make_settings(chroma={"host": "127.0.0.1", "port": chroma_server.port})
    pipeline = build_pipeline(settings)
    report = pipeline.ingest(sources)
    assert report.embedded == 19  # 12 + 7 paragraphs
    assert pipeline.ingest(sources).embedded == 0
    _, hits = pipeline.retrieve("prison sentence sought for Chávez")
    assert hits[0].paragraph.source == "001_b162a8e02d0cef5d.txt"
    assert "twenty-five years" in hits[0].paragraph.text
    assert not (settings.data_dir / "chroma").exists()  # nothing went to the embedded store


def test_a_server_that_is_down_is_a_clear_error_naming_chroma_and_the_address(
    chroma_server, make_settings
) -> None:
    settings = make_settings(chroma={"host": "127.0.0.1", "port": chroma_server.port})
    pipeline = build_pipeline(settings)
    pipeline.store.ping()
    chroma_server.stop()
    with pytest.raises(BackendUnavailable) as e:
        pipeline.retrieve("anything at all")
    assert "chroma" in str(e.value) and str(chroma_server.port) in str(e.value)
