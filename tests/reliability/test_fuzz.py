"""Schemathesis fuzz from the service's own OpenAPI schema, against the *real* pipeline (embedded
Chroma in a tmp dir, hashed embeddings, the model behind the Ollama stand-in): valid and
deliberately invalid requests for every operation, a bounded number of examples each.

Promise: zero 5xx, and every 4xx carries a JSON body with an ``error`` string.
(tests/api/test_api.py fuzzes the HTTP layer alone, with a canned pipeline.)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from api import create_app
from rag.wiring import build_pipeline
from tests.reliability.conftest import SEEDS, standin_settings
from tests.standins.ollama_standin import OllamaStandIn

pytestmark = pytest.mark.slow

EXAMPLES = 25  # per operation and generation mode


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    schemathesis = pytest.importorskip("schemathesis")
    with OllamaStandIn(models=("llama3.2",)) as standin:
        settings = standin_settings(tmp_path_factory.mktemp("fuzz-real"), standin.url)
        pipeline = build_pipeline(settings)
        pipeline.ingest(SEEDS)
        app = create_app(pipeline)
        yield schemathesis.openapi.from_asgi("/openapi.json", app)


def test_fuzz_real_pipeline_no_5xx_and_json_errors(schema: Any) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    counts: Counter[int] = Counter()
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]

    def run(operation: Any, mode: Any) -> None:
        label = f"{operation.label} ({mode.value})"

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: Any) -> None:
            response = case.call()
            counts[response.status_code] += 1
            if response.status_code >= 500:
                failures.append(f"{label}: {response.status_code} {response.text[:200]}")
            elif response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("error"), str) and body["error"], (label, body)

        try:
            fuzz()
        except Unsatisfiable:
            assert mode.value == "negative", label  # nothing invalid to make (GET /healthz)

    for operation in operations:
        for mode in GenerationMode:
            run(operation, mode)

    print(
        f"\nfuzz (real pipeline): {sum(counts.values())} requests over {len(operations)} "
        f"operations; by status: {dict(sorted(counts.items()))}"
    )
    assert not failures, failures[:10]
    assert len(operations) >= 10
    assert sum(v for k, v in counts.items() if k >= 400) > 50, counts
    assert counts[200] > 20, counts  # valid requests really reached the pipeline
