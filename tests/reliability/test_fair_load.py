"""Back-pressure that serves everyone in turn, through real HTTP: the real app and pipeline on
loopback, the Ollama stand-in as the model (each answer takes `DELAY` seconds), and the load
client `rag bench` uses: clients that honour Retry-After, each wanting many answers.

Promise under test: more clients than slots, and more answers wanted than the time allows, yet
every client gets an answer before any gets a second one's worth of the queue; Retry-After
comes from the measured wait, so a client that obeys it is not refused again and again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from api import create_app
from rag.bench import serving
from rag.bench.corpus import SEED_QUESTIONS
from rag.wiring import build_pipeline
from tests.reliability.conftest import SEEDS, ThreadServer, standin_settings
from tests.standins.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.slow

DELAY = 0.5  # seconds the stand-in takes per answer
SLOTS = 2  # settings.api.max_queue
CLIENTS = 16
ANSWERS = 30  # each client wants this many: far more than the time allows
SECONDS = 20.0  # no request is started after this; 16 answers take ~10 s


def test_every_client_that_honours_retry_after_gets_an_answer(
    tmp_path: Path, standin: OllamaStandIn
) -> None:
    standin.delay = DELAY
    settings = standin_settings(
        tmp_path / "data", standin.url, timeout=10.0, api={"max_queue": SLOTS}
    )
    pipeline = build_pipeline(settings)
    pipeline.ingest(SEEDS)
    questions = list(SEED_QUESTIONS)
    with ThreadServer(create_app(pipeline)) as server:
        result = serving.load(server.url, questions, CLIENTS, ANSWERS, SECONDS)
    print(f"\nfair load: {result}")
    assert result["errors"] == 0, result
    assert result["rejected_429"] > 0, "no back-pressure: the test proves nothing"
    assert result["clients_served"] == CLIENTS, result
    # Retry-After is the measured wait, not a constant: it grows with the line.
    assert len(result["retry_after"]) > 2, result["retry_after"]
