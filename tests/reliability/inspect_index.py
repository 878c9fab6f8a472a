"""Print, as JSON, what an embedded Chroma data folder holds: sources, node ids per source,
counts, every vector, and what vector search returns. Run in a fresh process
(``python -m tests.reliability.inspect_index DATA_DIR BACKEND '["query", ...]'``): chromadb
caches one client per path per process, so a process that opened a folder before another
process wrote to it would read its own stale in-memory vector index.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from rag.config import Settings, offline_guards
from rag.embed import build_embedder, describe
from rag.store import build_store


def expected_nodes(corpus: Path, max_tokens: int) -> dict[str, list[Any]]:
    """Per file in ``corpus`` as it is now: [hash, sorted node ids] a complete ingest writes."""
    from rag.index import Indexer, paragraph_nodes

    max_words = Indexer(None, None, max_tokens).max_words  # type: ignore[arg-type]
    parsed = Indexer(None, None, max_tokens).parse_folder(corpus)  # type: ignore[arg-type]
    return {
        f.source: [
            f.hash,
            sorted(n.node_id for p in f.paragraphs for n in paragraph_nodes(p, max_words)),
        ]
        for f in parsed
    }


def inspect(
    data_dir: Path, backend: str, queries: list[str], corpus: Path | None = None
) -> dict[str, Any]:
    offline_guards()
    settings = Settings(data_dir=data_dir, embed={"backend": backend})
    store = build_store(settings, describe(settings))
    got = store.collection.get(include=["metadatas"])
    nodes: dict[str, list[str]] = {}
    for node_id, meta in zip(got["ids"], got["metadatas"], strict=True):
        nodes.setdefault(str(meta["source"]), []).append(node_id)
    sources = store.list_sources()
    out: dict[str, Any] = {
        "sources": {s.source.id: [s.source.hash, s.source.paragraphs] for s in sources},
        "nodes": {k: sorted(v) for k, v in nodes.items()},
        "all_ids": list(got["ids"]),
        "count": store.count(),
    }
    if corpus is not None:
        out["expected"] = expected_nodes(corpus, settings.embed.max_tokens)
    if queries:
        # Every stored vector (bit for bit), a sample of nodes each found first by its own
        # vector (the HNSW graph holds them), and top-5 scores per query (ids may swap among
        # equal scores, so scores are compared).
        embedder = build_embedder(settings)
        ids = sorted(out["all_ids"])
        vectors = store.embeddings(ids)
        sample = ids[:: max(1, len(ids) // 25)]
        out["self_hits"] = all(store.query(vectors[i], 1)[0][0].node_id == i for i in sample)
        out["vectors"] = {i: [round(x, 6) for x in v] for i, v in vectors.items()}
        out["scores"] = [
            [round(score, 4) for _, score in store.query(embedder.query(q), 5)] for q in queries
        ]
    return out


if __name__ == "__main__":
    corpus = Path(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
    print(json.dumps(inspect(Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3]), corpus)))
